//! Dataset 1: correlated sparse features (Sharkey, Braun & Millidge 2022).

use burn::prelude::*;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::normal::normal_cdf;
use super::{SyntheticBatch, SyntheticDataset, host_f32, random_unit_rows};
use crate::rng::{purpose, rng_for};

/// Settings of [`CorrelatedFeatures`]; the defaults are the paper's (`h = 256`, `G = 512`,
/// 5 active features on average, decay `λ = 0.99`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrelatedFeaturesConfig {
    /// Activation width (`h`).
    pub d_in: usize,
    /// Ground-truth features (`G`).
    pub num_features: usize,
    /// Mean number of active features per token.
    pub avg_active: f64,
    /// Per-feature probability decay: feature `i` is scaled by `decay^i`.
    pub decay: f64,
    /// Correlate the features' firing (through a Gaussian with covariance `A Aᵀ`); `false` gives
    /// independent firing with probabilities `∝ decay^i`.
    pub correlated: bool,
    /// Seed of the features and covariance.
    pub seed: u64,
}

impl Default for CorrelatedFeaturesConfig {
    fn default() -> Self {
        Self {
            d_in: 256,
            num_features: 512,
            avg_active: 5.0,
            decay: 0.99,
            correlated: true,
            seed: 0,
        }
    }
}

/// Sharkey/Braun toy data: `G` random unit features in `h` dimensions; per token a Gaussian
/// `g ~ N(0, A Aᵀ)` (`A` with standard-normal entries) gives firing probabilities
/// `p_i = Φ(g_i / σ_i) · decay^i`, rescaled so that `mean_i p_i = avg_active / G`; feature `i`
/// fires with probability `min(p_i, 1)` with a coefficient drawn from `U(0, 1)`, and
/// `x = Σ_i c_i f_i`.
///
/// Choices where the anchors differ: the covariance is `A Aᵀ` (the e2e_sae port of the paper),
/// positive semi-definite by construction, rather than HoagyC's shifted `(R + Rᵀ)/2`; `g` is drawn
/// per token (the port) rather than once per batch, so that features co-fire within a token, which
/// is what makes the data correlated; the probabilities decay multiplicatively by `decay^i` as the
/// research notes and HoagyC's generator do (the port's `p^(λ·i)` is read as a typo).
///
/// ```
/// use burn::prelude::*;
/// use sae_train::{CorrelatedFeatures, CorrelatedFeaturesConfig, SyntheticDataset};
/// let data = CorrelatedFeatures::new(CorrelatedFeaturesConfig { d_in: 16, num_features: 32, ..Default::default() });
/// let batch = data.sample(0, 8, &Device::flex());
/// assert_eq!(batch.activations.len(), 8 * 16);
/// ```
#[derive(Debug, Clone)]
pub struct CorrelatedFeatures {
    config: CorrelatedFeaturesConfig,
    features: Vec<f32>,
    /// `A / σ` row-normalised so that `g_i = (A z)_i / σ_i` is standard normal: `[n, n]`.
    factor: Vec<f32>,
    decay: Vec<f64>,
}

impl CorrelatedFeatures {
    /// Builds the features and covariance factor from the config's seed.
    ///
    /// # Panics
    /// If a size is 0, `avg_active` is not in `(0, num_features]` or `decay` not in `(0, 1]`.
    pub fn new(config: CorrelatedFeaturesConfig) -> Self {
        let n = config.num_features;
        assert!(config.d_in > 0, "d_in must be positive, got 0");
        assert!(n > 0, "num_features must be positive, got 0");
        assert!(
            config.avg_active > 0.0 && config.avg_active <= n as f64,
            "avg_active must lie in (0, num_features = {n}], got {}",
            config.avg_active
        );
        assert!(
            config.decay > 0.0 && config.decay <= 1.0,
            "decay must lie in (0, 1], got {}",
            config.decay
        );
        let mut rng = rng_for(config.seed, purpose::SYNTHETIC_SETUP, 0);
        let features = random_unit_rows(&mut rng, n, config.d_in);
        // Rows of A normalised to unit length make every g_i standard normal: Var(g_i) = ‖A_i‖².
        let factor = if config.correlated {
            random_unit_rows(&mut rng, n, n)
        } else {
            Vec::new()
        };
        let decay = (0..n).map(|i| config.decay.powi(i as i32)).collect();
        Self {
            config,
            features,
            factor,
            decay,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CorrelatedFeaturesConfig {
        &self.config
    }

    /// `Φ(g)` for `g = z Aᵀ` per token (`[batch, n]`), or ones without correlation.
    fn gaussian_quantiles(
        &self,
        rng: &mut rand::rngs::Xoshiro256PlusPlus,
        batch_size: usize,
        device: &Device,
    ) -> Vec<f64> {
        let n = self.config.num_features;
        if !self.config.correlated {
            return vec![1.0; batch_size * n];
        }
        let z: Vec<f32> = (0..batch_size * n)
            .map(|_| StandardNormal.sample(&mut *rng))
            .collect();
        // g = z Aᵀ: [batch, n] · [n, n]ᵀ, each g_i standard normal, correlated across i.
        let z = Tensor::<2>::from_data(TensorData::new(z, [batch_size, n]), device);
        let a = Tensor::<2>::from_data(TensorData::new(self.factor.clone(), [n, n]), device);
        host_f32(z.matmul(a.transpose()))
            .into_iter()
            .map(|g| normal_cdf(g as f64))
            .collect()
    }
}

impl SyntheticDataset for CorrelatedFeatures {
    fn name(&self) -> String {
        format!(
            "correlated features (d {}, {} features, {} active, decay {})",
            self.config.d_in, self.config.num_features, self.config.avg_active, self.config.decay
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
        self.config.avg_active
    }

    fn sample(&self, index: u64, batch_size: usize, device: &Device) -> SyntheticBatch {
        let n = self.config.num_features;
        let mut rng = rng_for(self.config.seed, purpose::SYNTHETIC_BATCH, index);
        let uniform = self.gaussian_quantiles(&mut rng, batch_size, device);
        let target = self.config.avg_active / n as f64;
        let mut codes = vec![0f32; batch_size * n];
        for b in 0..batch_size {
            let row = &uniform[b * n..(b + 1) * n];
            let p: Vec<f64> = row.iter().zip(&self.decay).map(|(u, d)| u * d).collect();
            let mean = p.iter().sum::<f64>() / n as f64;
            let scale = if mean > 0.0 { target / mean } else { 0.0 };
            for (i, pi) in p.iter().enumerate() {
                let fire: f64 = rng.random();
                let magnitude: f32 = rng.random();
                if fire < pi * scale {
                    codes[b * n + i] = magnitude;
                }
            }
        }
        SyntheticBatch::mix(self, codes, batch_size, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(correlated: bool) -> CorrelatedFeatures {
        CorrelatedFeatures::new(CorrelatedFeaturesConfig {
            d_in: 16,
            num_features: 48,
            avg_active: 4.0,
            decay: 0.99,
            correlated,
            seed: 5,
        })
    }

    #[test]
    fn mean_l0_is_close_to_the_target_and_batches_are_deterministic() {
        let device = crate::test_device();
        for correlated in [false, true] {
            let data = small(correlated);
            let batch = data.sample(3, 2_000, &device);
            let l0 = batch.codes.iter().filter(|&&c| c != 0.0).count() as f64 / 2_000.0;
            // Probabilities above 1 are clipped, so L0 can fall a little short of the target.
            assert!(
                (3.5..=4.3).contains(&l0),
                "correlated {correlated}: L0 {l0}"
            );
            assert_eq!(batch, data.sample(3, 2_000, &device));
            assert_ne!(batch.codes, data.sample(4, 2_000, &device).codes);
        }
    }

    #[test]
    fn activations_are_codes_times_features() {
        let device = crate::test_device();
        let data = small(true);
        let b = data.sample(0, 4, &device);
        let (n, d) = (48, 16);
        for r in 0..4 {
            for c in 0..d {
                let x: f32 = (0..n)
                    .map(|i| b.codes[r * n + i] * data.features()[i * d + c])
                    .sum();
                approx::assert_abs_diff_eq!(b.activations[r * d + c], x, epsilon = 1e-5);
            }
        }
        for f in data.features().chunks(d) {
            approx::assert_relative_eq!(crate::filter::row_norm(f), 1.0, max_relative = 1e-5);
        }
    }

    #[test]
    fn correlated_features_co_fire_as_the_covariance_says() {
        // Among the first 12 features (decay ≈ 1) take the pair whose Gaussians are most
        // correlated (|A_i · A_j| largest); their firing indicators must correlate with the same
        // sign, and not at all without correlation.
        let device = crate::test_device();
        let data = small(true);
        let n = 48;
        let dot = |i: usize, j: usize| -> f32 {
            (0..n)
                .map(|c| data.factor[i * n + c] * data.factor[j * n + c])
                .sum()
        };
        let (i, j) = (0..12)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .max_by(|a, b| dot(a.0, a.1).abs().total_cmp(&dot(b.0, b.1).abs()))
            .unwrap();
        // The per-token firing propensities Φ(g_i), Φ(g_j) correlate like the Gaussians
        // (ρ_Φ = (6/π) asin(ρ/2) ≈ 0.95 ρ); the rescaling that fixes the mean L0 keeps this.
        let rows = 20_000;
        let mut rng = rng_for(0, purpose::SYNTHETIC_BATCH, 0);
        let u = data.gaussian_quantiles(&mut rng, rows, &device);
        let col = |k: usize| -> Vec<f64> { u.chunks(n).map(|r| r[k]).collect() };
        let (a, b) = (col(i), col(j));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(&a), mean(&b));
        let cov = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>();
        let va = a.iter().map(|x| (x - ma).powi(2)).sum::<f64>();
        let vb = b.iter().map(|y| (y - mb).powi(2)).sum::<f64>();
        let corr = cov / (va * vb).sqrt();
        let rho = dot(i, j) as f64;
        let expected = 6.0 / std::f64::consts::PI * (rho / 2.0).asin();
        assert!(rho.abs() > 0.3, "strongest pair only {rho}");
        assert!(
            (corr - expected).abs() < 0.03,
            "Φ correlation {corr}, expected {expected}"
        );
        assert!(
            small(false)
                .gaussian_quantiles(&mut rng, 3, &device)
                .iter()
                .all(|&v| v == 1.0)
        );
    }
}
