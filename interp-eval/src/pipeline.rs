//! One latent end to end: examples → train/test → negatives → explanation → scores.

use crate::LatentCache;
use crate::examples::{Example, ExampleConfig, TooFewExamples, activating_examples};
use crate::judge::{ChatModel, Explainer, Explanation, JudgeError};
use crate::negatives::{NegativeConfig, NegativeSource, non_activating_examples};
use crate::sampling::{SamplerConfig, Split, split_train_test};
use crate::scorer::{DetectionScorer, FuzzingScorer, LatentScore};
use crate::text::TokenText;

/// What [`evaluate_latent`] does.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// How activating examples are cut (its `window_len` also sizes the negatives).
    pub examples: ExampleConfig,
    /// Train/test sampling; the latent's seed is `sampler.seed + latent` (wrapping), so
    /// latents get independent, reproducible draws.
    pub sampler: SamplerConfig,
    /// How many non-activating windows, and their seed (also offset by the latent).
    pub negatives: NegativeConfig,
    /// Where non-activating windows come from.
    pub negative_source: NegativeSource,
    /// Detection scoring, if wanted.
    pub detection: Option<DetectionScorer>,
    /// Fuzzing scoring, if wanted.
    pub fuzzing: Option<FuzzingScorer>,
}

impl Default for PipelineConfig {
    /// Delphi's defaults (windows of 32, 200 minimum, 40/50 quantile sampling, 50 random
    /// negatives — here without replacement), detection and default fuzzing.
    fn default() -> Self {
        Self {
            examples: ExampleConfig::default(),
            sampler: SamplerConfig::default(),
            negatives: NegativeConfig::default(),
            negative_source: NegativeSource::random(),
            detection: Some(DetectionScorer::default()),
            fuzzing: Some(FuzzingScorer::default()),
        }
    }
}

/// Everything [`evaluate_latent`] produced for one latent.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentEvaluation {
    /// The latent.
    pub latent: u32,
    /// Tokens it fires on.
    pub firing_count: u64,
    /// Fraction of example windows it fires in.
    pub per_context_frequency: f64,
    /// Train and test examples (disjoint by tokens).
    pub split: Split,
    /// Non-activating examples (sharing no token with train or test).
    pub negatives: Vec<Example>,
    /// The explanation scored.
    pub explanation: Explanation,
    /// The explainer's failure, if it failed: the scores then judge the placeholder
    /// explanation "Explanation could not be produced." (so the failure shows in every score
    /// instead of removing the latent).
    pub explainer_error: Option<JudgeError>,
    /// Detection scores.
    pub detection: Option<LatentScore>,
    /// Fuzzing scores.
    pub fuzzing: Option<LatentScore>,
}

/// Runs the pipeline for `latent`: activating examples, the seeded disjoint split, negatives
/// away from both sets, the explanation of the train examples, then the configured scorers
/// on the test examples and negatives.
///
/// # Errors
/// [`TooFewExamples`] when the latent fires in fewer than `min_examples` windows (the skip is
/// returned, so callers count it).
///
/// # Panics
/// As [`activating_examples`], [`split_train_test`] and [`non_activating_examples`].
pub fn evaluate_latent(
    cache: &LatentCache,
    latent: usize,
    config: &PipelineConfig,
    explainer: &dyn Explainer,
    judge: &dyn ChatModel,
    vocab: &dyn TokenText,
) -> Result<LatentEvaluation, TooFewExamples> {
    let examples = activating_examples(cache, latent, &config.examples)?;
    let offset = latent as u64;
    let sampler = SamplerConfig {
        seed: config.sampler.seed.wrapping_add(offset),
        ..config.sampler
    };
    let split = split_train_test(&examples, &sampler);
    let spans: Vec<_> = split
        .train
        .iter()
        .chain(&split.test)
        .map(|e| e.span)
        .collect();
    let negative_config = NegativeConfig {
        window_len: config.examples.window_len,
        seed: config.negatives.seed.wrapping_add(offset),
        ..config.negatives
    };
    let negatives = non_activating_examples(
        cache,
        latent,
        &config.negative_source,
        &negative_config,
        &spans,
    );
    let (explanation, explainer_error) = match explainer.explain(&split.train, vocab) {
        Ok(e) => (e, None),
        Err(e) => (
            Explanation::new("Explanation could not be produced."),
            Some(e),
        ),
    };
    let detection = config
        .detection
        .map(|d| d.score(judge, &explanation, &split.test, &negatives, vocab));
    let fuzzing = config
        .fuzzing
        .map(|f| f.score(judge, &explanation, &split.test, &negatives, vocab));
    Ok(LatentEvaluation {
        latent: latent as u32,
        firing_count: cache.firing_count(latent),
        per_context_frequency: cache.per_context_frequency(latent, config.examples.window_len),
        split,
        negatives,
        explanation,
        explainer_error,
        detection,
        fuzzing,
    })
}
