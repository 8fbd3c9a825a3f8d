//! Fuzzing scoring: can the judge tell correctly from wrongly highlighted tokens?

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use super::batch::{BatchConfig, LatentScore, Sample, judge_samples};
use super::prompt::FUZZING_SYSTEM_PROMPT;
use crate::examples::{Example, ExampleKind};
use crate::judge::{ChatModel, Explanation};
use crate::text::{HIGHLIGHT_FRACTION, TokenText, highlight, marked_tokens, token_strings};

/// Where fuzzing's wrongly highlighted (label 0) samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzKind {
    /// Delphi `main`'s default: the non-activating examples with false marks (a neighbour
    /// negative shows its neighbour's truly active tokens instead).
    Default,
    /// The paper's fuzzing (delphi's `fuzz_type=active`): the same test activating examples
    /// with false marks on tokens below the highlight threshold, so only the position of the
    /// marks tells them apart.
    Active,
}

/// `n_incorrect` false highlights for an example with `activations`: only tokens
/// [`marked_tokens`] leaves unmarked are eligible (the one convention: a true mark is
/// `a ≥ 0.3 · max`, a false one `a < 0.3 · max`); the token at `len − len/4` — where centring
/// puts the maximum, i.e. where true marks sit — is always taken when eligible, the rest drawn
/// uniformly without replacement from the other eligible tokens. Fewer marks when fewer are
/// eligible; `None` when none is.
pub fn false_marks(
    activations: &[f32],
    n_incorrect: usize,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<bool>> {
    let len = activations.len();
    let eligible: Vec<bool> = marked_tokens(activations, HIGHLIGHT_FRACTION)
        .into_iter()
        .map(|m| !m)
        .collect();
    if !eligible.contains(&true) || n_incorrect == 0 {
        return None;
    }
    let mut marks = vec![false; len];
    let anchor = len - len / 4;
    let mut left = n_incorrect;
    if anchor < len && eligible[anchor] {
        marks[anchor] = true;
        left -= 1;
    }
    let others: Vec<usize> = (0..len).filter(|&t| eligible[t] && !marks[t]).collect();
    for k in index::sample(rng, others.len(), left.min(others.len())) {
        marks[others[k]] = true;
    }
    Some(marks)
}

/// Delphi's fuzzing scorer (research note §1.A6): positives are the test activating
/// examples with their active tokens (`a ≥ 0.3 · max`) highlighted (label 1); negatives
/// carry `n_incorrect = ceil(mean number of non-zero activations of the test examples)`
/// false highlights ([`false_marks`]), from the non-activating examples ([`FuzzKind::Default`])
/// or from the test examples themselves ([`FuzzKind::Active`]). The judge says for each
/// whether every marked token is correctly marked; correct iff that equals the label.
///
/// The false marks come from one generator seeded with `highlight_seed` per call (delphi
/// re-seeds with 22, so the same positions repeat across latents; so do these).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FuzzingScorer {
    /// Default or active.
    pub kind: FuzzKind,
    /// Batching and judge settings.
    pub batch: BatchConfig,
    /// Seed of the false highlights (22).
    pub highlight_seed: u64,
}

impl Default for FuzzingScorer {
    /// Default fuzzing, default batches, highlight seed 22.
    fn default() -> Self {
        Self {
            kind: FuzzKind::Default,
            batch: BatchConfig::default(),
            highlight_seed: 22,
        }
    }
}

impl FuzzingScorer {
    /// A scorer of this kind with default settings.
    pub fn new(kind: FuzzKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// Scores `explanation`. `negatives` is used by [`FuzzKind::Default`] only.
    pub fn score(
        &self,
        judge: &dyn ChatModel,
        explanation: &Explanation,
        test: &[Example],
        negatives: &[Example],
        vocab: &dyn TokenText,
    ) -> LatentScore {
        let n_incorrect = if test.is_empty() {
            1
        } else {
            let total: usize = test.iter().map(Example::active_tokens).sum();
            total.div_ceil(test.len()).max(1)
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.highlight_seed);
        let shown = |e: &Example, marks: &[bool], label| Sample {
            text: highlight(&token_strings(&e.tokens, vocab), marks),
            label,
            quantile: e.quantile(),
            similarity: match e.kind {
                ExampleKind::Neighbour { similarity, .. } => Some(similarity),
                _ => None,
            },
        };
        let mut samples: Vec<Sample> = test
            .iter()
            .map(|e| shown(e, &marked_tokens(&e.activations, HIGHLIGHT_FRACTION), true))
            .collect();
        let mut n_unusable = 0;
        let sources: &[Example] = match self.kind {
            FuzzKind::Default => negatives,
            FuzzKind::Active => test,
        };
        for e in sources {
            let marks = match (&e.kind, self.kind) {
                (ExampleKind::Neighbour { activations, .. }, FuzzKind::Default)
                    if activations.iter().any(|&a| a > 0.0) =>
                {
                    Some(marked_tokens(activations, HIGHLIGHT_FRACTION))
                }
                _ => false_marks(&e.activations, n_incorrect, &mut rng),
            };
            match marks {
                Some(m) => samples.push(shown(e, &m, false)),
                None => n_unusable += 1,
            }
        }
        judge_samples(
            judge,
            FUZZING_SYSTEM_PROMPT,
            &explanation.text,
            samples,
            &self.batch,
            n_unusable,
        )
    }
}
