//! Running samples past a judge in shuffled batches and recording everything.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::parse::{parse_binary_list, probabilities_from_logprobs};
use super::prompt::user_prompt;
use crate::judge::{ChatModel, Completion, FinishReason, GenParams, JudgeError, Message};
use crate::metrics::{Outcome, ScoreReport, Verdict};

/// One text to judge, with its truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The text shown (plain, or with `<<marks>>`).
    pub text: String,
    /// The right answer.
    pub label: bool,
    /// The quantile of the activating example it shows, if any.
    pub quantile: Option<usize>,
    /// Neighbour similarity of a neighbour negative, if any (delphi's `distance`).
    pub similarity: Option<f32>,
}

/// A judged sample: where it was shown and what the judge said.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedSample {
    /// The sample.
    pub sample: Sample,
    /// The judge call (batch) it was shown in.
    pub batch: usize,
    /// Its 0-based position in that batch (for position-bias checks).
    pub position: usize,
    /// The verdict.
    pub verdict: Verdict,
}

impl JudgedSample {
    /// The outcome the metrics count.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            label: self.sample.label,
            verdict: self.verdict,
        }
    }
}

/// One judge call as it happened: the prompt and the raw reply (for audit).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// The messages sent.
    pub prompt: Vec<Message>,
    /// The reply, or the error.
    pub reply: Result<Completion, JudgeError>,
}

/// A scorer's result for one latent.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentScore {
    /// Every sample with its verdict, in the order shown.
    pub samples: Vec<JudgedSample>,
    /// The scores, every failure counted.
    pub report: ScoreReport,
    /// Every judge call, in order.
    pub calls: Vec<RecordedCall>,
    /// Examples that could not be made into a sample (fuzzing: no token below the highlight
    /// threshold to mark falsely); not judged, counted here.
    pub n_unusable: usize,
}

impl LatentScore {
    /// The scores of the samples of each quantile (activating samples carry their quantile;
    /// with only positives in a group, its recall is what delphi plots per quantile), in
    /// increasing quantile.
    pub fn by_quantile(&self) -> Vec<(usize, ScoreReport)> {
        let mut quantiles: Vec<usize> = self
            .samples
            .iter()
            .filter_map(|j| j.sample.quantile)
            .collect();
        quantiles.sort_unstable();
        quantiles.dedup();
        quantiles
            .into_iter()
            .map(|q| {
                let o: Vec<Outcome> = self
                    .samples
                    .iter()
                    .filter(|j| j.sample.quantile == Some(q))
                    .map(JudgedSample::outcome)
                    .collect();
                (q, ScoreReport::from_outcomes(&o))
            })
            .collect()
    }

    /// Accuracy (failures counted as wrong) by position within a batch: a judge biased
    /// towards early or late examples shows a slope here.
    pub fn accuracy_by_position(&self) -> Vec<(usize, f64)> {
        let n = self
            .samples
            .iter()
            .map(|j| j.position + 1)
            .max()
            .unwrap_or(0);
        (0..n)
            .map(|p| {
                let at: Vec<&JudgedSample> =
                    self.samples.iter().filter(|j| j.position == p).collect();
                let right = at.iter().filter(|j| j.outcome().is_correct()).count();
                (p, right as f64 / at.len() as f64)
            })
            .collect()
    }
}

/// How samples are batched and asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConfig {
    /// Examples per prompt (delphi's `n_examples_shown`, 5 on its command line).
    pub n_per_prompt: usize,
    /// Seed of the shuffle of all samples before batching (delphi: 42).
    pub shuffle_seed: u64,
    /// Ask for top-5 token logprobs when the judge has them (for AUROC).
    pub logprobs: bool,
    /// Most tokens the judge may reply with.
    pub max_tokens: usize,
}

impl Default for BatchConfig {
    /// 5 per prompt, seed 42, logprobs when available, 64 reply tokens.
    fn default() -> Self {
        Self {
            n_per_prompt: 5,
            shuffle_seed: 42,
            logprobs: true,
            max_tokens: 64,
        }
    }
}

/// Shuffles `samples` (seeded), asks `judge` batch by batch with `system` + [`user_prompt`]
/// at temperature 0, and turns each reply into verdicts: a refusal finish reason →
/// [`Verdict::Refusal`], a failed call → [`Verdict::JudgeError`], a reply that does not parse
/// into exactly one 0/1 per example → [`Verdict::ParseFailure`], each for the whole batch.
///
/// # Panics
/// If `n_per_prompt` is 0.
pub(crate) fn judge_samples(
    judge: &dyn ChatModel,
    system: &str,
    explanation: &str,
    mut samples: Vec<Sample>,
    config: &BatchConfig,
    n_unusable: usize,
) -> LatentScore {
    assert!(
        config.n_per_prompt > 0,
        "BatchConfig::n_per_prompt must be at least 1, found 0"
    );
    samples.shuffle(&mut ChaCha8Rng::seed_from_u64(config.shuffle_seed));
    let params = GenParams {
        max_tokens: config.max_tokens,
        temperature: 0.0,
        top_logprobs: (config.logprobs && judge.capabilities().token_logprobs).then_some(5),
        ..GenParams::default()
    };
    let mut judged = Vec::with_capacity(samples.len());
    let mut calls = Vec::new();
    for (batch, chunk) in samples.chunks(config.n_per_prompt).enumerate() {
        let texts: Vec<String> = chunk.iter().map(|s| s.text.clone()).collect();
        let prompt = vec![
            Message::system(system),
            Message::user(user_prompt(explanation, &texts)),
        ];
        let reply = judge.complete(&prompt, &params);
        let verdicts: Vec<Verdict> = match &reply {
            Err(_) => vec![Verdict::JudgeError; chunk.len()],
            Ok(c) if c.finish == FinishReason::Refusal => vec![Verdict::Refusal; chunk.len()],
            Ok(c) => match parse_binary_list(&c.text, chunk.len()) {
                None => vec![Verdict::ParseFailure; chunk.len()],
                Some(answers) => {
                    let probs = c
                        .tokens
                        .as_deref()
                        .and_then(|t| probabilities_from_logprobs(t, chunk.len()));
                    answers
                        .iter()
                        .enumerate()
                        .map(|(i, &positive)| Verdict::Predicted {
                            positive,
                            probability: probs.as_ref().map(|p| p[i]),
                        })
                        .collect()
                }
            },
        };
        for (position, (sample, verdict)) in chunk.iter().zip(verdicts).enumerate() {
            judged.push(JudgedSample {
                sample: sample.clone(),
                batch,
                position,
                verdict,
            });
        }
        calls.push(RecordedCall { prompt, reply });
    }
    let outcomes: Vec<Outcome> = judged.iter().map(JudgedSample::outcome).collect();
    LatentScore {
        report: ScoreReport::from_outcomes(&outcomes),
        samples: judged,
        calls,
        n_unusable,
    }
}
