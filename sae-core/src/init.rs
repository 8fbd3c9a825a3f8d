//! Initialisation: tied encoder/decoder weights and the decoder bias from data.
//!
//! - [`tied_weights`]: SAELens `TrainingSAE.initialize_weights` — `W_dec` drawn Kaiming-uniform
//!   `[d_sae, d_in]`, rows rescaled to a given norm (SAELens `decoder_init_norm = 0.1`, the
//!   Anthropic April-2024 heuristic; `1.0` for unit-norm decoders as OpenAI, sparsify and
//!   dictionary_learning), and `W_enc = W_decᵀ`.
//! - [`mean_b_dec`]: sparsify's `b_dec` = mean of the first batch ("equivalent to centering").
//! - [`geometric_median`]: OpenAI's and dictionary_learning's `b_dec` = geometric median of a
//!   sample, by Weiszfeld's algorithm.

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::{Error, Result};

/// Tied initial weights `(W_enc [d_in, d_sae], W_dec [d_sae, d_in])`.
///
/// `W_dec` is Kaiming-uniform as torch's `kaiming_uniform_` on a `[d_sae, d_in]` tensor draws it
/// (fan-in `d_in`, gain `√2`: `U(−√(6/d_in), √(6/d_in))`), then every row is rescaled to
/// `row_norm`; `W_enc` is its transpose (a copy, not tied during training). Randomness comes from
/// the device's seeded generator (`device.seed(..)`).
///
/// # Panics
/// If a dimension is zero or `row_norm` is not finite and positive.
pub fn tied_weights(
    d_in: usize,
    d_sae: usize,
    row_norm: f64,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    assert!(
        d_in > 0 && d_sae > 0,
        "tied_weights: d_in and d_sae must be positive, found {d_in} and {d_sae}"
    );
    assert!(
        row_norm.is_finite() && row_norm > 0.0,
        "tied_weights: row_norm must be finite and positive, found {row_norm}"
    );
    let bound = (6.0 / d_in as f64).sqrt();
    let w = Tensor::<2>::random([d_sae, d_in], Distribution::Uniform(-bound, bound), device);
    let w_dec = crate::decoder::unit_rows(w).mul_scalar(row_norm);
    let w_enc = w_dec.clone().transpose();
    (w_enc, w_dec)
}

/// Checks user data: at least one row, every value finite.
fn check_data(what: &str, x: &Tensor<2>) -> Result<()> {
    let [rows, _] = x.dims();
    if rows == 0 {
        return Err(Error::Empty {
            what: what.to_string(),
        });
    }
    let finite = x.clone().is_finite().all().into_scalar::<bool>();
    if !finite {
        let host = x
            .clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        let index = host.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::NonFinite {
            path: Error::MEMORY.into(),
            name: what.to_string(),
            index,
            value: host.get(index).copied().unwrap_or(f32::NAN),
        });
    }
    Ok(())
}

/// The mean of the rows of `x [n, d_in]`, `[d_in]`: sparsify's decoder-bias initialisation.
///
/// # Errors
/// [`Error::Empty`] for zero rows, [`Error::NonFinite`] for NaN or infinite values.
pub fn mean_b_dec(x: Tensor<2>) -> Result<Tensor<1>> {
    check_data("b_dec initialisation data", &x)?;
    let [_, d] = x.dims();
    Ok(x.mean_dim(0).reshape([d]))
}

/// Settings of [`geometric_median`]; the defaults are dictionary_learning's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeiszfeldOptions {
    /// Iteration cap (default 100).
    pub max_iter: usize,
    /// Stop when the estimate moves less than this (Euclidean) between iterations (default 1e-5).
    pub tol: f64,
    /// Distances below this are clamped to it, so an estimate that lands on a data point does
    /// not divide by zero (default 1e-8).
    pub eps: f64,
}

impl Default for WeiszfeldOptions {
    fn default() -> Self {
        Self {
            max_iter: 100,
            tol: 1e-5,
            eps: 1e-8,
        }
    }
}

/// The geometric median of the rows of `x [n, d_in]` — the point minimising the sum of Euclidean
/// distances to them — by Weiszfeld's algorithm, `[d_in]`.
///
/// Starting from the mean, each iteration re-weights the rows by the inverse of their distance
/// to the current estimate, `m ← Σ_i x_i/‖x_i − m‖ / Σ_i 1/‖x_i − m‖`, until the estimate moves
/// less than `options.tol` or `options.max_iter` iterations ran (dictionary_learning
/// `geometric_median`: 100 iterations, tolerance 1e-5). Distances are clamped below at
/// `options.eps`.
///
/// # Errors
/// [`Error::Empty`] for zero rows, [`Error::NonFinite`] for NaN or infinite values.
pub fn geometric_median(x: Tensor<2>, options: WeiszfeldOptions) -> Result<Tensor<1>> {
    check_data("geometric-median data", &x)?;
    let [_, d] = x.dims();
    let mut guess = x.clone().mean_dim(0); // [1, d]
    for _ in 0..options.max_iter {
        let dist = (x.clone() - guess.clone())
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(options.eps); // [n, 1]
        let weights = dist.recip();
        let total = weights.clone().sum();
        let next = (x.clone() * weights).sum_dim(0) / total.unsqueeze::<2>();
        let moved = (next.clone() - guess)
            .powi_scalar(2)
            .sum()
            .sqrt()
            .into_scalar::<f64>();
        guess = next;
        if moved < options.tol {
            break;
        }
    }
    Ok(guess.reshape([d]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_abs_diff_eq;

    #[test]
    fn tied_weights_are_transposes_with_the_requested_row_norm() {
        let device = test_device();
        device.seed(1);
        let (w_enc, w_dec) = tied_weights(5, 7, 0.1, &device);
        assert_eq!(w_enc.dims(), [5, 7]);
        w_enc
            .clone()
            .transpose()
            .into_data()
            .assert_eq(&w_dec.clone().into_data(), true);
        crate::decoder::row_norms(w_dec)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([0.1f32; 7]), Default::default());
    }

    #[test]
    fn geometric_median_of_collinear_points_is_the_middle_one() {
        // On a line the geometric median is the ordinary median: for 0, 1, 10 it is 1 (the mean,
        // 11/3, is far from it).
        let device = test_device();
        let x = Tensor::<2>::from_floats([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]], &device);
        let m = geometric_median(
            x,
            WeiszfeldOptions {
                max_iter: 1000,
                ..Default::default()
            },
        )
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
        assert_abs_diff_eq!(m[0], 1.0, epsilon = 1e-3);
        assert_abs_diff_eq!(m[1], 0.0, epsilon = 1e-6);
    }

    #[test]
    fn geometric_median_of_a_square_is_its_centre() {
        let device = test_device();
        let x = Tensor::<2>::from_floats(
            [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]],
            &device,
        );
        let m = geometric_median(x, Default::default())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_abs_diff_eq!(m[0], 1.0, epsilon = 1e-5);
        assert_abs_diff_eq!(m[1], 1.0, epsilon = 1e-5);
    }

    #[test]
    fn bad_data_gives_typed_errors() {
        let device = test_device();
        let x = Tensor::<2>::from_floats([[0.0, 1.0], [f32::NAN, 0.0]], &device);
        match geometric_median(x, Default::default()) {
            Err(Error::NonFinite { index, .. }) => assert_eq!(index, 2),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let empty = Tensor::<2>::zeros([0, 3], &device);
        assert!(matches!(mean_b_dec(empty), Err(Error::Empty { .. })));
        let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 6.0]], &device);
        mean_b_dec(x)
            .unwrap()
            .into_data()
            .assert_eq(&TensorData::from([2.0f32, 4.0]), false);
    }
}
