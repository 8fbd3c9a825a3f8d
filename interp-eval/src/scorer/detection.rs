//! Detection scoring: can the judge tell activating from non-activating examples?

use super::batch::{BatchConfig, LatentScore, Sample, judge_samples};
use super::prompt::DETECTION_SYSTEM_PROMPT;
use crate::examples::{Example, ExampleKind};
use crate::judge::{ChatModel, Explanation};
use crate::text::{TokenText, plain_text, token_strings};

/// Delphi's detection scorer (research note §1.A5): the test activating examples (label 1)
/// and the non-activating examples (label 0) as plain text, shuffled, batched; the judge
/// says for each whether the latent is active in it according to the explanation. An answer
/// is correct iff it equals the label; failures count as wrong
/// ([`crate::metrics::Outcome`]).
///
/// ```
/// use interp_eval::examples::{Example, ExampleKind, Span};
/// use interp_eval::judge::{Explanation, KeywordJudge};
/// use interp_eval::scorer::DetectionScorer;
///
/// let vocab: Vec<String> = [" a", " cat", " dog"].map(String::from).to_vec();
/// let ex = |tokens: Vec<u32>, act: f32, kind| Example {
///     span: Span { row: 0, start: 0, len: 2 },
///     source_window: 0,
///     tokens,
///     activations: vec![0.0, act],
///     max_activation: act,
///     kind,
/// };
/// let test = [ex(vec![0, 1], 1.0, ExampleKind::Activating { quantile: Some(0) })];
/// let negatives = [ex(vec![0, 2], 0.0, ExampleKind::Random)];
/// let score = DetectionScorer::default().score(
///     &KeywordJudge::default(),
///     &Explanation::new(r#"Fires on "cat"."#),
///     &test,
///     &negatives,
///     &vocab,
/// );
/// assert_eq!(score.report.accuracy, 1.0);
/// assert_eq!(score.report.auroc, Some(1.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectionScorer {
    /// Batching and judge settings.
    pub batch: BatchConfig,
}

impl DetectionScorer {
    /// A scorer with these batch settings.
    pub fn new(batch: BatchConfig) -> Self {
        Self { batch }
    }

    /// Scores `explanation` on `test` (activating) and `negatives` (non-activating).
    pub fn score(
        &self,
        judge: &dyn ChatModel,
        explanation: &Explanation,
        test: &[Example],
        negatives: &[Example],
        vocab: &dyn TokenText,
    ) -> LatentScore {
        let sample = |e: &Example, label| Sample {
            text: plain_text(&token_strings(&e.tokens, vocab)),
            label,
            quantile: e.quantile(),
            similarity: match e.kind {
                ExampleKind::Neighbour { similarity, .. } => Some(similarity),
                _ => None,
            },
        };
        let samples = test
            .iter()
            .map(|e| sample(e, true))
            .chain(negatives.iter().map(|e| sample(e, false)))
            .collect();
        judge_samples(
            judge,
            DETECTION_SYSTEM_PROMPT,
            &explanation.text,
            samples,
            &self.batch,
            0,
        )
    }
}
