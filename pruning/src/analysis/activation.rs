//! Activation sparsity as the "Sparsing Law" paper measures it (Luo et al. 2024): a per-layer
//! threshold chosen by CETT, and the PPL-p% search over the CETT bound.

use burn::prelude::*;

use crate::{Error, HostTensor, Result};

/// The threshold of one feed-forward layer at a CETT bound, and what it implies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CettThreshold {
    /// The threshold `t` on neuron output norms `|a_j|·‖W_out[j]‖`.
    pub threshold: f32,
    /// The fraction of (token, neuron) activations whose output norm is ≤ `t`: the activation
    /// sparsity.
    pub sparsity: f64,
    /// The CETT reached at `t` (≤ the bound).
    pub cett: f64,
}

/// CETT — cumulative errors of tail truncation — of one layer at threshold `t`: over tokens,
/// the mean of `‖Σ_{j: n_ij ≤ t} a_ij W_out[j]‖ / ‖Σ_j a_ij W_out[j]‖` with `n_ij = |a_ij|·‖W_out[j]‖`.
///
/// `activations` is the layer's intermediate output `[tokens, d_ff]` (after the activation
/// function and gating), `w_out` the down projection in burn's `Linear` layout
/// `[d_ff, d_model]`. Tokens whose layer output is exactly zero are left out of the mean (the
/// reference divides by zero there).
///
/// # Panics
/// If the shapes do not agree (`activations` `[tokens, d_ff]`, `w_out` `[d_ff, d_model]`).
pub fn cett(activations: &Tensor<2>, w_out: &Tensor<2>, threshold: f32) -> f64 {
    let norms = neuron_output_norms(activations, w_out);
    cett_at(activations, w_out, &norms, threshold)
}

fn neuron_output_norms(activations: &Tensor<2>, w_out: &Tensor<2>) -> Tensor<2> {
    let [_, d_ff] = activations.dims();
    let [d_ff_w, _] = w_out.dims();
    assert_eq!(
        d_ff, d_ff_w,
        "activations are [tokens, d_ff = {d_ff}] but w_out is [{d_ff_w}, d_model]"
    );
    let col = w_out
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .reshape([1, d_ff]);
    activations.clone().abs() * col
}

fn cett_at(activations: &Tensor<2>, w_out: &Tensor<2>, norms: &Tensor<2>, t: f32) -> f64 {
    let full = activations.clone().matmul(w_out.clone());
    let tail = activations
        .clone()
        .mask_fill(norms.clone().greater_elem(t), 0.0)
        .matmul(w_out.clone());
    let full_n =
        HostTensor::from_tensor(&full.powi_scalar(2).sum_dim(1).sqrt(), "layer output norms");
    let tail_n = HostTensor::from_tensor(&tail.powi_scalar(2).sum_dim(1).sqrt(), "truncated norms");
    let (Ok(full_n), Ok(tail_n)) = (full_n, tail_n) else {
        return f64::NAN;
    };
    let (sum, count) = full_n
        .values()
        .iter()
        .zip(tail_n.values())
        .filter(|(f, _)| **f > 0.0)
        .fold((0.0, 0usize), |(s, c), (f, t)| {
            (s + (*t / *f) as f64, c + 1)
        });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// The largest threshold whose CETT stays within `cett_bound`, searched exactly over the
/// sorted neuron output norms (the reference searches a 65 536-point grid up to the 99th
/// percentile; the exact search gives the same answer up to that grid's resolution). Like the
/// reference it assumes CETT grows with the threshold, which holds in practice but not in
/// every case (the norm of a partial sum is not monotone in general).
///
/// # Errors
/// [`Error::OutOfRange`] for a bound outside `[0, 1]`; [`Error::NonFinite`] for NaN/Inf
/// activations or weights; [`Error::ShapeMismatch`] when `w_out` is not `[d_ff, d_model]`.
///
/// ```
/// use burn::prelude::*;
/// use pruning::cett_threshold;
///
/// let device = Device::flex();
/// // Two tokens, four neurons; neuron 3 dominates every output.
/// let a = Tensor::<2>::from_floats([[0.01, 0.02, 0.0, 3.0], [0.02, 0.01, 0.05, 2.0]], &device);
/// let w = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]], &device);
/// let t = cett_threshold(&a, &w, 0.2).unwrap();
/// assert!(t.cett <= 0.2);
/// assert_eq!(t.sparsity, 0.75); // everything but the dominant neuron is truncated
/// ```
pub fn cett_threshold(
    activations: &Tensor<2>,
    w_out: &Tensor<2>,
    cett_bound: f64,
) -> Result<CettThreshold> {
    if !(0.0..=1.0).contains(&cett_bound) {
        return Err(Error::OutOfRange {
            what: "CETT bound".into(),
            value: cett_bound.to_string(),
            reason: "must lie in [0, 1]".into(),
        });
    }
    let [_, d_ff] = activations.dims();
    let wd = w_out.dims();
    if wd[0] != d_ff {
        return Err(Error::ShapeMismatch {
            what: "down projection [d_ff, d_model] vs activations [tokens, d_ff]".into(),
            expected: vec![d_ff, wd[1]],
            found: wd.to_vec(),
        });
    }
    HostTensor::from_tensor(activations, "activations")?;
    HostTensor::from_tensor(w_out, "down projection")?;
    let norms = neuron_output_norms(activations, w_out);
    let mut sorted = HostTensor::from_tensor(&norms, "neuron output norms")?.into_values();
    sorted.sort_by(f32::total_cmp);
    sorted.dedup();
    // Binary search for the first candidate whose CETT exceeds the bound.
    let (mut lo, mut hi) = (0usize, sorted.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if cett_at(activations, w_out, &norms, sorted[mid]) > cett_bound {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    // `lo` is the first index over the bound; truncating below every norm gives CETT 0.
    let threshold = if lo == 0 { -1.0 } else { sorted[lo - 1] };
    let n = HostTensor::from_tensor(&norms, "neuron output norms")?;
    let below = n.values().iter().filter(|&&v| v <= threshold).count();
    Ok(CettThreshold {
        threshold,
        sparsity: below as f64 / n.len().max(1) as f64,
        cett: if lo == 0 {
            0.0
        } else {
            cett_at(activations, w_out, &norms, threshold)
        },
    })
}

/// Zeroes the activations a threshold truncates (`|a_j|·‖W_out[j]‖ ≤ t`), as the paper's sparse
/// forward does.
pub fn sparsify_activations(
    activations: Tensor<2>,
    w_out: &Tensor<2>,
    threshold: f32,
) -> Tensor<2> {
    let norms = neuron_output_norms(&activations, w_out);
    activations.mask_fill(norms.lower_equal_elem(threshold), 0.0)
}

/// PPL-p% sparsity's outer search: bisection of the CETT bound in `[0, 1]` until the bracket is
/// narrower than `tolerance` (the reference uses 1e-3), keeping the bound whose metric ratio
/// stays below `target_ratio` (`1 + p/100`, e.g. 1.01 for PPL-1%). `evaluate(bound)` must return
/// the ratio of the sparse model's metric to the dense one (perplexity ratio) with every layer
/// thresholded at that bound. Returns the midpoint of the final bracket, as the reference does.
///
/// # Errors
/// [`Error::OutOfRange`] for a tolerance ≤ 0; the first error `evaluate` returns.
///
/// ```
/// // A toy model whose perplexity ratio is 1 + bound²/10.
/// let bound = pruning::cett_bound_for_target(|c| Ok(1.0 + c * c / 10.0), 1.01, 1e-4).unwrap();
/// assert!((bound - 0.1f64.sqrt()).abs() < 1e-3);
/// ```
pub fn cett_bound_for_target(
    mut evaluate: impl FnMut(f64) -> Result<f64>,
    target_ratio: f64,
    tolerance: f64,
) -> Result<f64> {
    if tolerance <= 0.0 || !tolerance.is_finite() {
        return Err(Error::OutOfRange {
            what: "tolerance".into(),
            value: tolerance.to_string(),
            reason: "must be > 0".into(),
        });
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while hi - lo > tolerance {
        let mid = (lo + hi) / 2.0;
        if evaluate(mid)? < target_ratio {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((lo + hi) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cett_is_zero_at_negative_threshold_and_one_at_the_max() {
        let device = crate::test_device();
        let a = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.3, 0.1, -4.0]], &device);
        let w = Tensor::<2>::from_floats([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]], &device);
        assert_eq!(cett(&a, &w, -1.0), 0.0);
        assert!((cett(&a, &w, 1e9) - 1.0).abs() < 1e-6);
        let t = cett_threshold(&a, &w, 1.0).unwrap();
        assert_eq!(t.sparsity, 1.0);
        let t0 = cett_threshold(&a, &w, 0.0).unwrap();
        assert_eq!(t0.sparsity, 0.0);
        let s = sparsify_activations(a, &w, t0.threshold);
        assert_eq!(
            HostTensor::from_tensor(&s, "s")
                .unwrap()
                .values()
                .iter()
                .filter(|v| **v == 0.0)
                .count(),
            0
        );
        assert!(
            cett_threshold(
                &Tensor::<2>::ones([2, 3], &device),
                &Tensor::<2>::ones([2, 2], &device),
                0.1
            )
            .is_err()
        );
    }
}
