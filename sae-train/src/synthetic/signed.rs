//! Dataset 3: bidirectional (signed) features, the setting AbsTopK is made for.

use burn::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{SyntheticBatch, SyntheticDataset, random_unit_rows};
use crate::rng::{purpose, rng_for};

/// Settings of [`SignedFeatures`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedFeaturesConfig {
    /// Activation width.
    pub d_in: usize,
    /// Ground-truth features (each with two poles).
    pub num_features: usize,
    /// Mean number of active features per token.
    pub avg_active: f64,
    /// Coefficient magnitudes are drawn from `U(min_magnitude, max_magnitude)`.
    pub min_magnitude: f32,
    /// See [`min_magnitude`](Self::min_magnitude).
    pub max_magnitude: f32,
    /// Seed of the directions.
    pub seed: u64,
}

impl Default for SignedFeaturesConfig {
    fn default() -> Self {
        Self {
            d_in: 64,
            num_features: 128,
            avg_active: 4.0,
            min_magnitude: 0.5,
            max_magnitude: 1.5,
            seed: 0,
        }
    }
}

/// Features that appear with either sign: feature `i` fires with probability
/// `avg_active / num_features`, its coefficient is `±m` with a fair sign and
/// `m ~ U(min_magnitude, max_magnitude)`, and `x = Σ_i c_i f_i` (directions random unit vectors).
///
/// One signed latent (AbsTopK) can represent both poles of a feature; a non-negative latent (TopK,
/// ReLU) needs two, so at the same width it cannot recover every direction with one latent each.
///
/// ```
/// use burn::prelude::*;
/// use sae_train::{SignedFeatures, SignedFeaturesConfig, SyntheticDataset};
/// let data = SignedFeatures::new(SignedFeaturesConfig::default());
/// let batch = data.sample(0, 16, &Device::flex());
/// assert!(batch.codes.iter().any(|&c| c < 0.0));
/// ```
#[derive(Debug, Clone)]
pub struct SignedFeatures {
    config: SignedFeaturesConfig,
    features: Vec<f32>,
}

impl SignedFeatures {
    /// Builds the directions from the config's seed.
    ///
    /// # Panics
    /// If a size is 0, `avg_active` is not in `(0, num_features]`, or the magnitude range is empty
    /// or negative.
    pub fn new(config: SignedFeaturesConfig) -> Self {
        assert!(
            config.d_in > 0 && config.num_features > 0,
            "d_in and num_features must be positive, got {} and {}",
            config.d_in,
            config.num_features
        );
        assert!(
            config.avg_active > 0.0 && config.avg_active <= config.num_features as f64,
            "avg_active must lie in (0, num_features], got {}",
            config.avg_active
        );
        assert!(
            config.min_magnitude >= 0.0 && config.max_magnitude > config.min_magnitude,
            "magnitudes must satisfy 0 <= min < max, got {}..{}",
            config.min_magnitude,
            config.max_magnitude
        );
        let mut rng = rng_for(config.seed, purpose::SYNTHETIC_SETUP, 0);
        let features = random_unit_rows(&mut rng, config.num_features, config.d_in);
        Self { config, features }
    }
}

impl SyntheticDataset for SignedFeatures {
    fn name(&self) -> String {
        format!(
            "signed features (d {}, {} features, {} active)",
            self.config.d_in, self.config.num_features, self.config.avg_active
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
        let p = self.config.avg_active / n as f64;
        let (lo, hi) = (self.config.min_magnitude, self.config.max_magnitude);
        let mut rng = rng_for(self.config.seed, purpose::SYNTHETIC_BATCH, index);
        let mut codes = vec![0f32; batch_size * n];
        for c in codes.iter_mut() {
            let fire: f64 = rng.random();
            if fire < p {
                let m = lo + (hi - lo) * rng.random::<f32>();
                *c = if rng.random::<bool>() { m } else { -m };
            }
        }
        SyntheticBatch::mix(self, codes, batch_size, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_signs_appear_equally_often_at_the_expected_rate() {
        let data = SignedFeatures::new(SignedFeaturesConfig::default());
        let b = data.sample(0, 4_000, &crate::test_device());
        let pos = b.codes.iter().filter(|&&c| c > 0.0).count() as f64;
        let neg = b.codes.iter().filter(|&&c| c < 0.0).count() as f64;
        let l0 = (pos + neg) / 4_000.0;
        assert!((l0 - 4.0).abs() < 0.15, "L0 {l0}");
        assert!((pos / (pos + neg) - 0.5).abs() < 0.02);
        assert!(
            b.codes
                .iter()
                .all(|c| *c == 0.0 || (0.5..=1.5).contains(&c.abs()))
        );
    }
}
