//! Wanda importance scores: |W| times the norm of the input feature each weight reads.

use burn::prelude::*;

use super::HostTensor;
use crate::{Error, Result};

/// Accumulates the per-feature input norms ‖X_j‖ of one linear layer over calibration batches
/// (Wanda's `scaler_row`).
///
/// Wanda scores `S_ij = |W_ij| · ‖X_j‖₂`, where `X_j` is input feature j over all calibration
/// tokens. This accumulator keeps Σ x_j² in f64 and reports the root mean square
/// `sqrt(Σ x_j² / tokens)`; the reference code divides by the number of sequences instead, a
/// constant factor that leaves every mask unchanged.
///
/// ```
/// use burn::prelude::*;
/// use pruning::{Amount, HostTensor, WandaCalibration, unstructured_along};
///
/// let device = Device::flex();
/// let mut calib = WandaCalibration::new(2);
/// // Feature 0 is large, feature 1 small.
/// calib.observe(&Tensor::<2>::from_floats([[10.0, 0.1], [-10.0, 0.1]], &device)).unwrap();
/// // burn Linear weight [d_in = 2, d_out = 1]: |w| favours input 1, the activations input 0.
/// let w = HostTensor::new(vec![0.5, 2.0], &[2, 1], "w").unwrap();
/// let scores = calib.scores(&w).unwrap();
/// let mask = unstructured_along(&scores, Amount::Count(1), 0, None).unwrap();
/// assert_eq!(mask.as_slice(), &[true, false]);
/// ```
#[derive(Clone, Debug)]
pub struct WandaCalibration {
    sum_sq: Vec<f64>,
    tokens: usize,
}

impl WandaCalibration {
    /// An empty accumulator for a layer with `d_in` input features.
    pub fn new(d_in: usize) -> Self {
        Self {
            sum_sq: vec![0.0; d_in],
            tokens: 0,
        }
    }

    /// Adds a batch of layer inputs `[tokens, d_in]` (flatten batch and sequence first).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for another width; [`Error::NonFinite`] for NaN/Inf.
    pub fn observe(&mut self, inputs: &Tensor<2>) -> Result<()> {
        self.observe_host(&HostTensor::from_tensor(inputs, "calibration activations")?)
    }

    /// [`observe`](Self::observe) for activations already on the host, `[tokens, d_in]`.
    ///
    /// # Errors
    /// As [`observe`](Self::observe).
    pub fn observe_host(&mut self, inputs: &HostTensor) -> Result<()> {
        let d_in = self.sum_sq.len();
        if inputs.shape().len() != 2 || inputs.shape()[1] != d_in {
            return Err(Error::ShapeMismatch {
                what: "calibration activations [tokens, d_in]".into(),
                expected: vec![inputs.shape().first().copied().unwrap_or(0), d_in],
                found: inputs.shape().to_vec(),
            });
        }
        for row in inputs.values().chunks(d_in) {
            for (acc, &x) in self.sum_sq.iter_mut().zip(row) {
                *acc += (x as f64) * (x as f64);
            }
        }
        self.tokens += inputs.shape()[0];
        Ok(())
    }

    /// The number of tokens seen.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The root-mean-square norm of each input feature.
    ///
    /// # Errors
    /// [`Error::Empty`] before any token was observed.
    pub fn input_norms(&self) -> Result<Vec<f32>> {
        if self.tokens == 0 {
            return Err(Error::Empty {
                what: "the Wanda calibration (no activations observed)".into(),
            });
        }
        Ok(self
            .sum_sq
            .iter()
            .map(|s| (s / self.tokens as f64).sqrt() as f32)
            .collect())
    }

    /// Wanda scores for a weight in burn's `Linear` layout `[d_in, d_out]`:
    /// `S[j, o] = |W[j, o]| · ‖X_j‖`. Prune per output with
    /// [`unstructured_along`](crate::unstructured_along)`(.., dim = 0)` or N:M with
    /// [`nm_mask`](crate::nm_mask)`(.., dim = 0)`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the weight's first dimension is not `d_in`;
    /// [`Error::Empty`] before any token was observed.
    pub fn scores(&self, weight: &HostTensor) -> Result<HostTensor> {
        let norms = self.input_norms()?;
        let shape = weight.shape();
        if shape.len() != 2 || shape[0] != norms.len() {
            return Err(Error::ShapeMismatch {
                what: "Linear weight [d_in, d_out] vs calibrated d_in".into(),
                expected: vec![norms.len(), shape.get(1).copied().unwrap_or(0)],
                found: shape.to_vec(),
            });
        }
        let d_out = shape[1];
        let values = weight
            .values()
            .iter()
            .enumerate()
            .map(|(i, w)| w.abs() * norms[i / d_out])
            .collect();
        HostTensor::new(values, shape, "Wanda scores")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn norms_are_rms_over_tokens_and_batches() {
        let mut c = WandaCalibration::new(3);
        assert!(c.input_norms().is_err());
        c.observe_host(&HostTensor::new(vec![1.0, 2.0, 0.0, 3.0, 2.0, 0.0], &[2, 3], "x").unwrap())
            .unwrap();
        c.observe_host(&HostTensor::new(vec![0.0, 2.0, 0.0], &[1, 3], "x").unwrap())
            .unwrap();
        let n = c.input_norms().unwrap();
        assert_relative_eq!(n[0], (10.0f32 / 3.0).sqrt(), epsilon = 1e-6);
        assert_relative_eq!(n[1], 2.0, epsilon = 1e-6);
        assert_eq!(n[2], 0.0);
        assert!(
            c.observe_host(&HostTensor::new(vec![1.0; 4], &[2, 2], "x").unwrap())
                .is_err()
        );
        let w = HostTensor::new(vec![1.0; 6], &[3, 2], "w").unwrap();
        let s = c.scores(&w).unwrap();
        assert_relative_eq!(s.values()[2], 2.0, epsilon = 1e-6);
        assert!(
            c.scores(&HostTensor::new(vec![1.0; 4], &[2, 2], "w").unwrap())
                .is_err()
        );
    }
}
