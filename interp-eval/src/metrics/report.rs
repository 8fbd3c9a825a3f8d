//! All scores of one set of outcomes, with the failures on show.

use super::auroc::auroc;
use super::confusion::Confusion;
use super::outcome::{Outcome, Verdict};

/// The scores of a set of judged examples (one latent, or pooled over latents).
///
/// Every score counts failures as wrong answers (see [`Outcome`]); `valid_only` is the
/// confusion delphi would report after dropping them, kept so the difference is visible.
///
/// ```
/// use interp_eval::metrics::{Outcome, ScoreReport, Verdict};
///
/// let outcomes = [
///     Outcome::predicted(true, true),
///     Outcome::predicted(false, false),
///     Outcome { label: true, verdict: Verdict::ParseFailure },
///     Outcome { label: false, verdict: Verdict::Refusal },
/// ];
/// let r = ScoreReport::from_outcomes(&outcomes);
/// assert_eq!(r.n_failed(), 2);
/// assert_eq!(r.accuracy, 0.5); // the failures count as wrong
/// assert_eq!(r.valid_only.accuracy(), 1.0); // what dropping them would claim
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReport {
    /// Examples judged, failures included.
    pub n: usize,
    /// Replies that could not be parsed.
    pub n_parse_failures: usize,
    /// Refusals.
    pub n_refusals: usize,
    /// Failed calls.
    pub n_judge_errors: usize,
    /// Confusion with failures counted as wrong answers.
    pub confusion: Confusion,
    /// Confusion of the parsed answers only (for comparison with delphi).
    pub valid_only: Confusion,
    /// Accuracy.
    pub accuracy: f64,
    /// Balanced accuracy.
    pub balanced_accuracy: f64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// AUROC of the judge's probabilities (failures scored worst), when every parsed answer
    /// carries one and both classes are present.
    pub auroc: Option<f64>,
}

impl ScoreReport {
    /// Scores `outcomes`.
    pub fn from_outcomes(outcomes: &[Outcome]) -> Self {
        let count = |f: fn(&Verdict) -> bool| outcomes.iter().filter(|o| f(&o.verdict)).count();
        let confusion = Confusion::from_outcomes(outcomes);
        let scores: Option<Vec<f64>> = outcomes.iter().map(Outcome::effective_score).collect();
        let labels: Vec<bool> = outcomes.iter().map(|o| o.label).collect();
        Self {
            n: outcomes.len(),
            n_parse_failures: count(|v| matches!(v, Verdict::ParseFailure)),
            n_refusals: count(|v| matches!(v, Verdict::Refusal)),
            n_judge_errors: count(|v| matches!(v, Verdict::JudgeError)),
            confusion,
            valid_only: Confusion::valid_only(outcomes),
            accuracy: confusion.accuracy(),
            balanced_accuracy: confusion.balanced_accuracy(),
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            auroc: scores.and_then(|s| auroc(&s, &labels)),
        }
    }

    /// Failures of every kind.
    pub fn n_failed(&self) -> usize {
        self.n_parse_failures + self.n_refusals + self.n_judge_errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{auroc_pairwise, frequency_weighted_f1};
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    #[test]
    fn golden_confusion_and_weighted_f1() {
        let c = Confusion {
            tp: 8,
            fn_: 2,
            tn: 30,
            fp: 10,
        };
        assert_relative_eq!(c.balanced_accuracy(), 0.775);
        assert_relative_eq!(c.precision(), 0.444, epsilon = 5e-4);
        assert_relative_eq!(c.recall(), 0.8);
        assert_relative_eq!(c.f1(), 0.571, epsilon = 5e-4);
        // On a balanced set balanced accuracy is accuracy.
        let b = Confusion {
            tp: 40,
            fn_: 10,
            tn: 35,
            fp: 15,
        };
        assert_relative_eq!(b.balanced_accuracy(), b.accuracy());
        assert_relative_eq!(frequency_weighted_f1(&[1.0, 0.0], &[3, 1]), 0.75);
        assert_eq!(frequency_weighted_f1(&[1.0], &[0]), 0.0);
        let empty = Confusion::default();
        assert_eq!(
            (empty.f1(), empty.precision(), empty.balanced_accuracy()),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn failures_are_counted_in_every_score() {
        let ok = |label, p: f64| Outcome {
            label,
            verdict: Verdict::Predicted {
                positive: p > 0.5,
                probability: Some(p),
            },
        };
        let perfect = [ok(true, 0.9), ok(true, 0.8), ok(false, 0.2), ok(false, 0.1)];
        let r = ScoreReport::from_outcomes(&perfect);
        assert_eq!((r.accuracy, r.f1, r.auroc), (1.0, 1.0, Some(1.0)));
        let mut with_failures = perfect.to_vec();
        with_failures.push(Outcome {
            label: true,
            verdict: Verdict::ParseFailure,
        });
        with_failures.push(Outcome {
            label: false,
            verdict: Verdict::JudgeError,
        });
        let r = ScoreReport::from_outcomes(&with_failures);
        assert_eq!(r.n, 6);
        assert_eq!(
            (r.n_parse_failures, r.n_judge_errors, r.n_failed()),
            (1, 1, 2)
        );
        assert_relative_eq!(r.accuracy, 4.0 / 6.0);
        assert_relative_eq!(r.recall, 2.0 / 3.0);
        assert_relative_eq!(r.precision, 2.0 / 3.0);
        assert!(r.auroc.unwrap() < 1.0);
        assert_eq!(r.valid_only.accuracy(), 1.0);
        // A parsed answer without probability: no AUROC, other scores unchanged.
        let hard = [Outcome::predicted(true, true), ok(false, 0.1)];
        assert_eq!(ScoreReport::from_outcomes(&hard).auroc, None);
    }

    fn outcomes() -> impl Strategy<Value = Vec<(bool, f64)>> {
        proptest::collection::vec(
            (any::<bool>(), (0u8..12).prop_map(|s| f64::from(s) / 11.0)),
            0..60,
        )
    }

    proptest! {
        #[test]
        fn auroc_is_a_probability_and_flips(pairs in outcomes()) {
            let (labels, scores): (Vec<bool>, Vec<f64>) = pairs.into_iter().unzip();
            let a = auroc(&scores, &labels);
            prop_assert_eq!(a.is_some(), labels.contains(&true) && labels.contains(&false));
            if let Some(a) = a {
                prop_assert!((0.0..=1.0).contains(&a));
                let flipped: Vec<f64> = scores.iter().map(|s| -s).collect();
                prop_assert!((auroc(&flipped, &labels).unwrap() - (1.0 - a)).abs() < 1e-12);
                prop_assert!((auroc_pairwise(&scores, &labels).unwrap() - a).abs() < 1e-12);
                let constant = vec![0.3; scores.len()];
                prop_assert_eq!(auroc(&constant, &labels), Some(0.5));
            }
        }

        #[test]
        fn constant_predictors_have_balanced_accuracy_one_half(
            labels in proptest::collection::vec(any::<bool>(), 2..60),
            answer in any::<bool>(),
        ) {
            prop_assume!(labels.contains(&true) && labels.contains(&false));
            let o: Vec<Outcome> = labels.iter().map(|&l| Outcome::predicted(l, answer)).collect();
            prop_assert!((ScoreReport::from_outcomes(&o).balanced_accuracy - 0.5).abs() < 1e-12);
        }

        #[test]
        fn turning_answers_into_failures_never_raises_a_score(
            pairs in outcomes(),
            fail in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let base: Vec<Outcome> = pairs.iter().map(|&(l, s)| Outcome {
                label: l,
                verdict: Verdict::Predicted { positive: s > 0.5, probability: Some(s) },
            }).collect();
            let failed: Vec<Outcome> = base.iter().zip(&fail).map(|(o, &f)| {
                if f { Outcome { label: o.label, verdict: Verdict::Refusal } } else { *o }
            }).collect();
            let (a, b) = (ScoreReport::from_outcomes(&base), ScoreReport::from_outcomes(&failed));
            prop_assert_eq!(b.n, a.n);
            prop_assert_eq!(b.n_refusals, fail.iter().take(base.len()).filter(|&&f| f).count());
            prop_assert!(b.accuracy <= a.accuracy + 1e-12);
            prop_assert!(b.balanced_accuracy <= a.balanced_accuracy + 1e-12);
            prop_assert!(b.recall <= a.recall + 1e-12);
            if let (Some(x), Some(y)) = (a.auroc, b.auroc) {
                prop_assert!(y <= x + 1e-12);
            }
        }
    }
}
