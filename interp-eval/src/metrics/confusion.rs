//! Confusion counts and the scores read off them.

use super::outcome::Outcome;

/// True/false positives and negatives.
///
/// ```
/// use interp_eval::metrics::Confusion;
///
/// let c = Confusion { tp: 8, fn_: 2, tn: 30, fp: 10 };
/// assert!((c.balanced_accuracy() - 0.775).abs() < 1e-12);
/// assert!((c.precision() - 8.0 / 18.0).abs() < 1e-12);
/// assert!((c.recall() - 0.8).abs() < 1e-12);
/// assert!((c.f1() - 0.571_428_571_428_571_4).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confusion {
    /// Positives answered positive.
    pub tp: u64,
    /// Negatives answered negative.
    pub tn: u64,
    /// Negatives answered positive.
    pub fp: u64,
    /// Positives answered negative.
    pub fn_: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Confusion {
    /// Counts of `outcomes`, failures counted as wrong answers
    /// ([`Outcome::effective_prediction`]).
    pub fn from_outcomes(outcomes: &[Outcome]) -> Self {
        let mut c = Self::default();
        for o in outcomes {
            c.add(o.label, o.effective_prediction());
        }
        c
    }

    /// Counts of the outcomes with a parsed answer only (delphi's view, which hides failures).
    pub fn valid_only(outcomes: &[Outcome]) -> Self {
        let mut c = Self::default();
        for o in outcomes.iter().filter(|o| !o.verdict.is_failure()) {
            c.add(o.label, o.effective_prediction());
        }
        c
    }

    /// Adds one answer.
    pub fn add(&mut self, label: bool, predicted: bool) {
        match (label, predicted) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// Number of positives `TP + FN`.
    pub fn positives(&self) -> u64 {
        self.tp + self.fn_
    }

    /// Number of negatives `TN + FP`.
    pub fn negatives(&self) -> u64 {
        self.tn + self.fp
    }

    /// All answers.
    pub fn total(&self) -> u64 {
        self.positives() + self.negatives()
    }

    /// `(TP + TN) / total` (0 when empty).
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    /// `(TP/P + TN/N) / 2` (what delphi reports as "accuracy"). With one class present it is
    /// that class's rate; 0 when empty.
    pub fn balanced_accuracy(&self) -> f64 {
        match (self.positives(), self.negatives()) {
            (0, 0) => 0.0,
            (0, _) => self.specificity(),
            (_, 0) => self.recall(),
            _ => 0.5 * (self.recall() + self.specificity()),
        }
    }

    /// `TP / (TP + FP)` (0 when nothing was answered positive).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `TP / P`, the true-positive rate (0 without positives).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.positives())
    }

    /// `TN / N`, the true-negative rate (0 without negatives).
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.negatives())
    }

    /// `2PR / (P + R)` (0 when both are 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// The element-wise sum (pooling over latents, as delphi pools per score type).
    pub fn merged(&self, other: &Confusion) -> Confusion {
        Confusion {
            tp: self.tp + other.tp,
            tn: self.tn + other.tn,
            fp: self.fp + other.fp,
            fn_: self.fn_ + other.fn_,
        }
    }
}

/// Frequency-weighted F1 of one module (hookpoint): `Σ_l F1_l · count_l / Σ_l count_l` with
/// `count_l` the latent's firing count (0 when every count is 0). Delphi then averages the
/// modules' values.
///
/// ```
/// use interp_eval::metrics::frequency_weighted_f1;
///
/// assert_eq!(frequency_weighted_f1(&[1.0, 0.0], &[3, 1]), 0.75);
/// ```
///
/// # Panics
/// If the slices differ in length.
pub fn frequency_weighted_f1(f1: &[f64], counts: &[u64]) -> f64 {
    assert_eq!(
        f1.len(),
        counts.len(),
        "frequency_weighted_f1: {} F1 values but {} counts",
        f1.len(),
        counts.len()
    );
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    if total == 0.0 {
        return 0.0;
    }
    f1.iter()
        .zip(counts)
        .map(|(f, &c)| f * c as f64)
        .sum::<f64>()
        / total
}
