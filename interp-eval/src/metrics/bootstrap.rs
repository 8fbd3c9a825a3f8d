//! Seeded percentile-bootstrap confidence intervals.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Settings of [`bootstrap_ci`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// Number of resamples (1000).
    pub n_resamples: usize,
    /// Coverage of the interval (0.95).
    pub level: f64,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    /// 1000 resamples, 95%, seed 0.
    fn default() -> Self {
        Self {
            n_resamples: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

/// A statistic with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceInterval {
    /// The statistic on the data itself.
    pub estimate: f64,
    /// Lower bound (the `(1 − level)/2` quantile of the resampled statistics).
    pub lo: f64,
    /// Upper bound (the `(1 + level)/2` quantile).
    pub hi: f64,
    /// Coverage asked for.
    pub level: f64,
    /// Resamples whose statistic was finite (the interval's sample).
    pub n_used: usize,
    /// Resamples whose statistic was undefined (NaN/infinite, e.g. AUROC of a one-class
    /// resample): left out, and counted here.
    pub n_undefined: usize,
}

/// The percentile-bootstrap interval of `statistic` over `items`: `n_resamples` resamples
/// of `items.len()` drawn with replacement from a `ChaCha8Rng` seeded with `seed`; bounds by
/// linear interpolation between order statistics (numpy's default quantile). Resample over
/// examples for one latent's score, over latents for a dictionary's mean.
///
/// `None` if `items` is empty or no resample gives a finite value.
///
/// ```
/// use interp_eval::metrics::{BootstrapConfig, bootstrap_ci};
///
/// let correct = [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0];
/// let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
/// let ci = bootstrap_ci(&correct, mean, &BootstrapConfig::default()).unwrap();
/// assert_eq!(ci.estimate, 0.75);
/// assert!(ci.lo < 0.75 && 0.75 < ci.hi && ci.hi <= 1.0);
/// ```
///
/// # Panics
/// If `level` is not in `(0, 1)` or `n_resamples` is 0.
pub fn bootstrap_ci<T: Clone>(
    items: &[T],
    statistic: impl Fn(&[T]) -> f64,
    config: &BootstrapConfig,
) -> Option<ConfidenceInterval> {
    assert!(
        config.level > 0.0 && config.level < 1.0,
        "BootstrapConfig::level must be in (0, 1), found {}",
        config.level
    );
    assert!(
        config.n_resamples > 0,
        "BootstrapConfig::n_resamples must be at least 1, found 0"
    );
    if items.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut sample = Vec::with_capacity(items.len());
    let mut stats = Vec::with_capacity(config.n_resamples);
    let mut n_undefined = 0;
    for _ in 0..config.n_resamples {
        sample.clear();
        sample.extend((0..items.len()).map(|_| items[rng.random_range(0..items.len())].clone()));
        let s = statistic(&sample);
        if s.is_finite() {
            stats.push(s);
        } else {
            n_undefined += 1;
        }
    }
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - config.level) / 2.0;
    Some(ConfidenceInterval {
        estimate: statistic(items),
        lo: quantile(&stats, tail),
        hi: quantile(&stats, 1.0 - tail),
        level: config.level,
        n_used: stats.len(),
        n_undefined,
    })
}

/// Linear-interpolation quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.5), 2.5);
    }

    #[test]
    fn seeded_and_counts_undefined_resamples() {
        let items = [true, false, false, false];
        let rate = |x: &[bool]| {
            let p = x.iter().filter(|&&b| b).count();
            if p == 0 {
                f64::NAN
            } else {
                p as f64 / x.len() as f64
            }
        };
        let cfg = BootstrapConfig {
            n_resamples: 200,
            ..BootstrapConfig::default()
        };
        let a = bootstrap_ci(&items, rate, &cfg).unwrap();
        assert_eq!(a, bootstrap_ci(&items, rate, &cfg).unwrap());
        assert!(a.n_undefined > 0);
        assert_eq!(a.n_used + a.n_undefined, 200);
        assert!(a.lo <= a.hi);
        let empty: [bool; 0] = [];
        assert!(bootstrap_ci(&empty, rate, &cfg).is_none());
        assert!(bootstrap_ci(&[false], rate, &cfg).is_none());
    }
}
