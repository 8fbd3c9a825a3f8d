//! One judged example: its true label and what the judge said, failures included.

/// What the judge said about one example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A parsed answer, with the judge's probability of "positive" when token logprobs were
    /// available.
    Predicted {
        /// The judge's 0/1 answer.
        positive: bool,
        /// `P(1)` from the reply's token logprobs, if any.
        probability: Option<f64>,
    },
    /// The reply could not be parsed (no list, wrong length, not 0/1).
    ParseFailure,
    /// The judge refused (a refusal finish reason or refusal field).
    Refusal,
    /// The call failed (transport, timeout, a script running out).
    JudgeError,
}

impl Verdict {
    /// Whether the judge gave no usable answer.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Verdict::Predicted { .. })
    }
}

/// An example's label with the judge's verdict.
///
/// Delphi drops rows whose prediction is `None` before aggregating, and its `failed_count`
/// is always 0 (research note §1.A11.5), so a judge that fails on hard examples looks better.
/// Here a failure is **counted as a wrong answer in every score**: a failed positive is a
/// false negative, a failed negative a false positive, and for AUROC it gets the worst
/// possible score (0 for a positive, 1 for a negative). Reports also keep the failure counts
/// and the valid-only confusion for comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The ground truth (activating example, or correctly highlighted one).
    pub label: bool,
    /// What the judge said.
    pub verdict: Verdict,
}

impl Outcome {
    /// A parsed 0/1 answer without probability.
    pub fn predicted(label: bool, positive: bool) -> Self {
        Self {
            label,
            verdict: Verdict::Predicted {
                positive,
                probability: None,
            },
        }
    }

    /// The answer counted in scores: the judge's, or the wrong one on a failure.
    pub fn effective_prediction(&self) -> bool {
        match self.verdict {
            Verdict::Predicted { positive, .. } => positive,
            _ => !self.label,
        }
    }

    /// Whether the counted answer is right.
    pub fn is_correct(&self) -> bool {
        self.effective_prediction() == self.label
    }

    /// The score AUROC ranks: the probability when there is one, the worst score on a
    /// failure, `None` for a parsed answer without probability.
    pub fn effective_score(&self) -> Option<f64> {
        match self.verdict {
            Verdict::Predicted { probability, .. } => probability,
            _ => Some(if self.label { 0.0 } else { 1.0 }),
        }
    }
}
