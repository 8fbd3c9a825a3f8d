//! Dataset 4: Zipfian firing frequencies with magnitudes, optionally correlated (after SAELens'
//! `sae_lens/synthetic` generator).

use burn::prelude::*;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::normal::normal_quantile;
use super::{SyntheticBatch, SyntheticDataset, random_unit_rows};
use crate::rng::{purpose, rng_for};

/// Settings of [`ZipfFeatures`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZipfFeaturesConfig {
    /// Activation width.
    pub d_in: usize,
    /// Ground-truth features.
    pub num_features: usize,
    /// Zipf exponent `α`: feature of rank `r` (1-based) fires with a probability `∝ r^(−α)`...
    pub exponent: f64,
    /// ... rescaled linearly into `[min_probability, max_probability]` (SAELens: 0.01 – 0.3).
    pub min_probability: f64,
    /// See [`min_probability`](Self::min_probability).
    pub max_probability: f64,
    /// Mean magnitude of an active feature.
    pub magnitude_mean: f32,
    /// Standard deviation of the magnitude (the result is clipped at 0, as SAELens' ReLU does).
    pub magnitude_std: f32,
    /// Rank of the Gaussian-copula correlation (0: independent firing).
    pub correlation_rank: usize,
    /// Scale of the copula's factor entries (`N(0, scale²)`).
    pub correlation_scale: f64,
    /// Seed of the directions, probabilities and correlation.
    pub seed: u64,
}

impl Default for ZipfFeaturesConfig {
    fn default() -> Self {
        Self {
            d_in: 128,
            num_features: 256,
            exponent: 1.0,
            min_probability: 0.01,
            max_probability: 0.3,
            magnitude_mean: 1.0,
            magnitude_std: 0.25,
            correlation_rank: 0,
            correlation_scale: 0.1,
            seed: 0,
        }
    }
}

/// Features with Zipfian firing probabilities and Gaussian magnitudes.
///
/// Feature `i` fires with probability `p_i` (rank `i + 1`, `p ∝ r^(−α)` rescaled linearly so the
/// most frequent feature fires with `max_probability` and the rarest with `min_probability`), with
/// magnitude `max(0, magnitude_mean + magnitude_std · N(0, 1))`. With `correlation_rank > 0` firing
/// is correlated through a Gaussian copula with a low-rank factor `F` (`[n, rank]`, entries
/// `N(0, scale²)`, row norms capped at 0.95): `z_i = F_i u + √(1 − ‖F_i‖²) e_i` and feature `i`
/// fires when `z_i > Φ⁻¹(1 − p_i)`, which keeps every marginal rate at `p_i`.
///
/// ```
/// use burn::prelude::*;
/// use sae_train::{SyntheticDataset, ZipfFeatures, ZipfFeaturesConfig};
/// let data = ZipfFeatures::new(ZipfFeaturesConfig::default());
/// assert!((4.0..4.1).contains(&data.expected_l0())); // Σ_r p_r ≈ 4.05
/// ```
#[derive(Debug, Clone)]
pub struct ZipfFeatures {
    config: ZipfFeaturesConfig,
    features: Vec<f32>,
    probabilities: Vec<f64>,
    thresholds: Vec<f64>,
    factor: Vec<f64>,
    noise_scale: Vec<f64>,
}

impl ZipfFeatures {
    /// Builds the directions, probabilities and copula from the config's seed.
    ///
    /// # Panics
    /// If a size is 0, the probability range is not `0 < min <= max < 1`, or the magnitude
    /// standard deviation is negative.
    pub fn new(config: ZipfFeaturesConfig) -> Self {
        let n = config.num_features;
        assert!(
            config.d_in > 0 && n > 0,
            "d_in and num_features must be positive, got {} and {n}",
            config.d_in
        );
        assert!(
            config.min_probability > 0.0
                && config.min_probability <= config.max_probability
                && config.max_probability < 1.0,
            "need 0 < min_probability <= max_probability < 1, got {} and {}",
            config.min_probability,
            config.max_probability
        );
        assert!(
            config.magnitude_std >= 0.0,
            "magnitude_std must be non-negative, got {}",
            config.magnitude_std
        );
        let raw: Vec<f64> = (1..=n).map(|r| (r as f64).powf(-config.exponent)).collect();
        let (lo, hi) = (raw[n - 1], raw[0]);
        let probabilities: Vec<f64> = raw
            .iter()
            .map(|&v| {
                if hi > lo {
                    config.min_probability
                        + (config.max_probability - config.min_probability) * (v - lo) / (hi - lo)
                } else {
                    config.max_probability
                }
            })
            .collect();
        let thresholds = probabilities
            .iter()
            .map(|&p| normal_quantile(1.0 - p))
            .collect();
        let mut rng = rng_for(config.seed, purpose::SYNTHETIC_SETUP, 0);
        let features = random_unit_rows(&mut rng, n, config.d_in);
        let rank = config.correlation_rank;
        let mut factor = vec![0f64; n * rank];
        let mut noise_scale = vec![1f64; n];
        for i in 0..n {
            let row = &mut factor[i * rank..(i + 1) * rank];
            for v in row.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = z * config.correlation_scale;
            }
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.95 {
                row.iter_mut().for_each(|v| *v *= 0.95 / norm);
            }
            noise_scale[i] = (1.0 - row.iter().map(|v| v * v).sum::<f64>()).sqrt();
        }
        Self {
            config,
            features,
            probabilities,
            thresholds,
            factor,
            noise_scale,
        }
    }

    /// The firing probability of each feature.
    pub fn probabilities(&self) -> &[f64] {
        &self.probabilities
    }
}

impl SyntheticDataset for ZipfFeatures {
    fn name(&self) -> String {
        format!(
            "Zipfian features (d {}, {} features, α {}, rank-{} correlation)",
            self.config.d_in,
            self.config.num_features,
            self.config.exponent,
            self.config.correlation_rank
        )
    }
    fn d_in(&self) -> usize {
        self.config.d_in
    }
    fn num_features(&self) -> usize {
        self.config.num_features
    }
    fn features(&self) -> &[f32] {
        &self.features
    }
    fn expected_l0(&self) -> f64 {
        self.probabilities.iter().sum()
    }

    fn sample(&self, index: u64, batch_size: usize, device: &Device) -> SyntheticBatch {
        let n = self.config.num_features;
        let rank = self.config.correlation_rank;
        let mut rng = rng_for(self.config.seed, purpose::SYNTHETIC_BATCH, index);
        let mut codes = vec![0f32; batch_size * n];
        let mut u = vec![0f64; rank];
        for b in 0..batch_size {
            for v in u.iter_mut() {
                *v = StandardNormal.sample(&mut rng);
            }
            for i in 0..n {
                let fires = if rank == 0 {
                    rng.random::<f64>() < self.probabilities[i]
                } else {
                    let shared: f64 = (0..rank).map(|r| self.factor[i * rank + r] * u[r]).sum();
                    let e: f64 = StandardNormal.sample(&mut rng);
                    shared + self.noise_scale[i] * e > self.thresholds[i]
                };
                let z: f64 = StandardNormal.sample(&mut rng);
                if fires {
                    let m = self.config.magnitude_mean + self.config.magnitude_std * z as f32;
                    codes[b * n + i] = m.max(0.0);
                }
            }
        }
        SyntheticBatch::mix(self, codes, batch_size, device)
    }
}

/// Probability that a standard normal exceeds `t` (kept beside the copula for its test).
#[cfg(test)]
fn tail(t: f64) -> f64 {
    1.0 - super::normal::normal_cdf(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(data: &ZipfFeatures, rows: usize) -> Vec<f64> {
        let b = data.sample(0, rows, &crate::test_device());
        let n = data.num_features();
        (0..n)
            .map(|i| b.codes.chunks(n).filter(|r| r[i] != 0.0).count() as f64 / rows as f64)
            .collect()
    }

    #[test]
    fn probabilities_are_zipfian_within_the_range() {
        let data = ZipfFeatures::new(ZipfFeaturesConfig {
            num_features: 16,
            d_in: 8,
            ..Default::default()
        });
        let p = data.probabilities();
        assert!((p[0] - 0.3).abs() < 1e-12 && (p[15] - 0.01).abs() < 1e-12);
        assert!(p.windows(2).all(|w| w[0] > w[1]));
        assert!((tail(data.thresholds[0]) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn marginal_rates_hold_with_and_without_correlation() {
        for rank in [0, 4] {
            let data = ZipfFeatures::new(ZipfFeaturesConfig {
                num_features: 16,
                d_in: 8,
                correlation_rank: rank,
                correlation_scale: 0.3,
                ..Default::default()
            });
            let r = rates(&data, 6_000);
            for (got, want) in r.iter().zip(data.probabilities()) {
                assert!(
                    (got - want).abs() < 0.025,
                    "rank {rank}: rate {got} vs {want}"
                );
            }
        }
    }
}
