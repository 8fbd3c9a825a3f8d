//! One score type over many latents: pooled, averaged with intervals, frequency-weighted.

use super::bootstrap::{BootstrapConfig, ConfidenceInterval, bootstrap_ci};
use super::confusion::frequency_weighted_f1;
use super::outcome::Outcome;
use super::report::ScoreReport;

/// The scores of one score type (detection, fuzzing…) over the latents of one module.
///
/// ```
/// use interp_eval::metrics::{BootstrapConfig, ModuleSummary, Outcome};
///
/// let good = [Outcome::predicted(true, true), Outcome::predicted(false, false)];
/// let bad = [Outcome::predicted(true, false), Outcome::predicted(false, true)];
/// let s = ModuleSummary::new(&[(3, &good[..]), (1, &bad[..])], 2, &BootstrapConfig::default());
/// assert_eq!(s.n_scored, 2);
/// assert_eq!(s.n_skipped, 2);
/// assert_eq!(s.frequency_weighted_f1, 0.75);
/// assert_eq!(s.pooled.accuracy, 0.5);
/// assert_eq!(s.mean_balanced_accuracy.unwrap().estimate, 0.5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSummary {
    /// Latents scored.
    pub n_scored: usize,
    /// Latents skipped (too few examples, dead): counted, so that a summary of 10 latents out
    /// of 1000 says so.
    pub n_skipped: usize,
    /// Every latent's outcomes pooled into one report (delphi's per-score-type confusion and
    /// AUROC), failures counted.
    pub pooled: ScoreReport,
    /// Mean per-latent balanced accuracy with its bootstrap interval over latents.
    pub mean_balanced_accuracy: Option<ConfidenceInterval>,
    /// Mean per-latent F1 with its bootstrap interval over latents.
    pub mean_f1: Option<ConfidenceInterval>,
    /// Per-latent F1 weighted by firing count ([`frequency_weighted_f1`]).
    pub frequency_weighted_f1: f64,
}

impl ModuleSummary {
    /// Summarises `latents` (each: its firing count and its outcomes) with `n_skipped`
    /// latents that could not be scored; the intervals resample latents.
    pub fn new(
        latents: &[(u64, &[Outcome])],
        n_skipped: usize,
        bootstrap: &BootstrapConfig,
    ) -> Self {
        let reports: Vec<ScoreReport> = latents
            .iter()
            .map(|(_, o)| ScoreReport::from_outcomes(o))
            .collect();
        let all: Vec<Outcome> = latents
            .iter()
            .flat_map(|(_, o)| o.iter().copied())
            .collect();
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        let bal: Vec<f64> = reports.iter().map(|r| r.balanced_accuracy).collect();
        let f1: Vec<f64> = reports.iter().map(|r| r.f1).collect();
        let counts: Vec<u64> = latents.iter().map(|(c, _)| *c).collect();
        Self {
            n_scored: latents.len(),
            n_skipped,
            pooled: ScoreReport::from_outcomes(&all),
            mean_balanced_accuracy: bootstrap_ci(&bal, mean, bootstrap),
            mean_f1: bootstrap_ci(&f1, mean, bootstrap),
            frequency_weighted_f1: frequency_weighted_f1(&f1, &counts),
        }
    }
}
