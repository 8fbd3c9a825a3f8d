//! Input normalisation to a fixed expected norm.

use serde::{Deserialize, Serialize};

/// Scales every input by one constant so that the mean token norm becomes `target_norm`
/// (SAELens' `expected_average_only_in`: `s = √d_in / mean‖x‖`, estimated once on a sample).
///
/// One scalar (not per-token normalisation) keeps the SAE a function of the raw activations: after
/// training the factor is folded into the weights (`W_enc · s`, `W_dec / s`, `b_dec / s`), so the
/// saved SAE reads raw activations and needs no extra state (the trainer folds it when saving
/// a SAELens folder).
///
/// ```
/// use sae_train::Normaliser;
/// let n = Normaliser::from_mean_norm(4, 10.0, None);
/// assert_eq!(n.scale(), 0.2); // √4 / 10
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normaliser {
    scale: f32,
}

impl Normaliser {
    /// The identity (no normalisation).
    pub fn identity() -> Self {
        Self { scale: 1.0 }
    }

    /// The normaliser that maps a mean norm of `mean_norm` to `target_norm` (default `√d_in`).
    ///
    /// # Panics
    /// If `mean_norm` or `target_norm` is not finite and positive.
    pub fn from_mean_norm(d_in: usize, mean_norm: f32, target_norm: Option<f32>) -> Self {
        let target = target_norm.unwrap_or((d_in as f32).sqrt());
        assert!(
            mean_norm.is_finite() && mean_norm > 0.0,
            "mean_norm must be finite and positive, got {mean_norm}"
        );
        assert!(
            target.is_finite() && target > 0.0,
            "target_norm must be finite and positive, got {target}"
        );
        Self {
            scale: target / mean_norm,
        }
    }

    /// The factor inputs are multiplied by.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Scales `values` in place.
    pub fn apply(&self, values: &mut [f32]) {
        if self.scale != 1.0 {
            values.iter_mut().for_each(|v| *v *= self.scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn normalised_rows_have_the_target_mean_norm(
            rows in prop::collection::vec(prop::collection::vec(-10f32..10.0, 8), 2..20),
        ) {
            let norms: Vec<f32> = rows.iter().map(|r| crate::filter::row_norm(r)).collect();
            let mean = norms.iter().sum::<f32>() / norms.len() as f32;
            prop_assume!(mean > 1e-3);
            let n = Normaliser::from_mean_norm(8, mean, None);
            let mut flat: Vec<f32> = rows.concat();
            n.apply(&mut flat);
            let after = flat.chunks(8).map(crate::filter::row_norm).sum::<f32>() / rows.len() as f32;
            assert_relative_eq!(after, 8f32.sqrt(), max_relative = 1e-4);
        }
    }
}
