//! Low-rank + channel-sparse split of a weight matrix (LOST-style) and Sparse-IFT's iso-FLOP
//! width and rank formulas.

use burn::prelude::*;

use crate::mask::keep_top_k;
use crate::{Error, HostTensor, Result};

/// A weight split as `W ≈ B·A + S`: a rank-`r` part in factor form and a channel-sparse
/// residual.
#[derive(Clone, Debug)]
pub struct LowRankSparse {
    /// `[rows, r]` = `U_r · √Σ_r`.
    pub b: Tensor<2>,
    /// `[r, cols]` = `√Σ_r · V_rᵀ`.
    pub a: Tensor<2>,
    /// `[rows, cols]`: the residual `W − B·A` on the kept channels, zero elsewhere.
    pub sparse: Tensor<2>,
    /// The kept channels of the residual (indices along `channel_dim`), ascending.
    pub channels: Vec<usize>,
    /// The singular values of `W`, descending.
    pub singular_values: Vec<f32>,
}

impl LowRankSparse {
    /// `B·A + S`.
    pub fn reconstruct(&self) -> Tensor<2> {
        self.b.clone().matmul(self.a.clone()) + self.sparse.clone()
    }
}

/// Splits `weight` into its top-`rank` SVD part and a channel-sparse residual that keeps the
/// `channels` channels (slices along `channel_dim`) of largest ℓ2 norm — the decomposition LOST
/// initialises its low-rank and sparse branches from.
///
/// The SVD is burn's own (`burn::linalg::svd`: Golub–Kahan bidiagonalisation + implicit QR on the
/// host, deterministic on every backend); the √Σ is split evenly between the factors. LOST's
/// paper describes the sparse part as built from the remaining singular directions with
/// channel-wise sparsity; its exact channel rule was not available to us, so channels are ranked
/// by the ℓ2 norm of the residual (ties: lower index), which is the choice that removes the most
/// residual energy for a given number of channels.
///
/// # Errors
/// [`Error::OutOfRange`] for `rank > min(rows, cols)`, `channel_dim > 1` or more channels than
/// the dimension has; [`Error::NonFinite`] for NaN/Inf weights.
///
/// ```
/// use burn::prelude::*;
/// use pruning::low_rank_sparse_split;
///
/// let device = Device::flex();
/// // Rank 1 plus one outlier column.
/// let w = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 19.0]], &device);
/// let split = low_rank_sparse_split(w.clone(), 1, 1, 1).unwrap();
/// let err = (split.reconstruct() - w.clone()).abs().max().into_scalar::<f32>();
/// let plain = (split.b.clone().matmul(split.a.clone()) - w).abs().max().into_scalar::<f32>();
/// assert!(err < plain);
/// ```
pub fn low_rank_sparse_split(
    weight: Tensor<2>,
    rank: usize,
    channels: usize,
    channel_dim: usize,
) -> Result<LowRankSparse> {
    let [rows, cols] = weight.dims();
    let host = HostTensor::from_tensor(&weight, "the weight to split")?;
    let k = rows.min(cols);
    if rank > k {
        return Err(Error::OutOfRange {
            what: "rank".into(),
            value: rank.to_string(),
            reason: format!("at most min(rows, cols) = {k}"),
        });
    }
    if channel_dim > 1 {
        return Err(Error::OutOfRange {
            what: "channel_dim".into(),
            value: channel_dim.to_string(),
            reason: "0 (rows) or 1 (columns)".into(),
        });
    }
    let n_channels = [rows, cols][channel_dim];
    if channels > n_channels {
        return Err(Error::OutOfRange {
            what: "channels".into(),
            value: channels.to_string(),
            reason: format!("dimension {channel_dim} has {n_channels}"),
        });
    }
    let device = weight.device();
    let plain = weight.inner().detach();
    let (u, s, vt) = burn::linalg::svd::<2, 1>(plain.clone(), 64);
    let singular_values = HostTensor::from_tensor(&s, "singular values")?.into_values();
    let root = s.clone().narrow(0, 0, rank).sqrt();
    let b = u.slice([0..rows, 0..rank]) * root.clone().unsqueeze_dim::<2>(0);
    let a = vt.slice([0..rank, 0..cols]) * root.unsqueeze_dim::<2>(1);
    let residual = plain - b.clone().matmul(a.clone());
    let res = HostTensor::from_tensor(&residual, "residual")?;
    let norms: Vec<f32> = (0..n_channels)
        .map(|c| {
            let sq: f64 = (0..[cols, rows][channel_dim])
                .map(|i| {
                    let (r, col) = if channel_dim == 1 { (i, c) } else { (c, i) };
                    (res.values()[r * cols + col] as f64).powi(2)
                })
                .sum();
            sq.sqrt() as f32
        })
        .collect();
    let keep = keep_top_k(&norms, None, channels);
    let kept: Vec<usize> = (0..n_channels).filter(|&c| keep[c]).collect();
    let mut sparse = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            if keep[if channel_dim == 1 { c } else { r }] {
                sparse[r * cols + c] = res.values()[r * cols + c];
            }
        }
    }
    let _ = host;
    Ok(LowRankSparse {
        b,
        a,
        sparse: HostTensor::new(sparse, &[rows, cols], "sparse part")?.to_tensor(&device),
        channels: kept,
        singular_values,
    })
}

/// The Sparse-IFT sizing rules are defined for a sparsity `s` in `[0, 1)`.
#[track_caller]
fn assert_sparsity(s: f64) {
    assert!(
        (0.0..1.0).contains(&s),
        "sparsity s must be in [0, 1), found {s}"
    );
}

/// Sparse-IFT's `base_scaling = round(1 / (1 − s))` (the round keeps 0.9 → 10, not 9.99… → 9).
///
/// # Panics
/// If `s` is not in `[0, 1)`.
pub fn sparse_ift_scaling(s: f64) -> usize {
    assert_sparsity(s);
    (1.0 / (1.0 - s)).round() as usize
}

/// Sparse Wide: the widened layer width, `floor(width · √base_scaling)` (CIFAR ResNet:
/// `int(64 · √base_scaling)`); FLOPs grow by the square of the factor and the density `1 − s`
/// cancels it.
///
/// ```
/// assert_eq!(pruning::sparse_wide_width(64, 0.75), 128);
/// assert_eq!(pruning::sparse_wide_width(64, 0.9), 202); // 64·√10
/// ```
pub fn sparse_wide_width(width: usize, s: f64) -> usize {
    (width as f64 * (sparse_ift_scaling(s) as f64).sqrt()) as usize
}

/// Sparse Parallel: the number of parallel sparse branches, `base_scaling`.
pub fn sparse_parallel_branches(s: f64) -> usize {
    sparse_ift_scaling(s)
}

/// Sparse Factorized: the inner width of `W ≈ U·V` with both factors sparse at `s`,
/// `ceil(k·d_in·d_out / ((1 − s)(k·d_in + d_out)))`, where `k` is the kernel area (1 for a
/// linear layer, 9 for a 3×3 convolution).
///
/// ```
/// // 512×512 at 75 %: ceil(512·512 / (0.25·1024)) = 1024.
/// assert_eq!(pruning::sparse_factorized_rank(512, 512, 0.75, 1), 1024);
/// ```
pub fn sparse_factorized_rank(d_in: usize, d_out: usize, s: f64, kernel_area: usize) -> usize {
    assert_sparsity(s);
    let (di, d_o, k) = (d_in as f64, d_out as f64, kernel_area as f64);
    (k * di * d_o / ((1.0 - s) * (k * di + d_o))).ceil() as usize
}

/// Sparse Doped: the rank of the dense low-rank part of `W = U·V + W_s` (`W_s` at density
/// `1 − s`), `floor(s·k·d_in·d_out / (k·d_in + d_out))`.
///
/// ```
/// assert_eq!(pruning::sparse_doped_rank(512, 512, 0.5, 1), 128);
/// ```
pub fn sparse_doped_rank(d_in: usize, d_out: usize, s: f64, kernel_area: usize) -> usize {
    assert_sparsity(s);
    let (di, d_o, k) = (d_in as f64, d_out as f64, kernel_area as f64);
    (s * k * di * d_o / (k * di + d_o)).floor() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_rank_split_reconstructs_and_channels_catch_outliers() {
        let device = crate::test_device();
        let vals: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let w: Tensor<2> = HostTensor::new(vals, &[4, 6], "w")
            .unwrap()
            .to_tensor(&device);
        let full = low_rank_sparse_split(w.clone(), 4, 0, 1).unwrap();
        full.reconstruct().into_data().assert_approx_eq::<f32>(
            &w.clone().into_data(),
            burn::tensor::Tolerance::permissive(),
        );
        // Rank 1 + all channels of the residual is exact too.
        let all = low_rank_sparse_split(w.clone(), 1, 6, 1).unwrap();
        all.reconstruct().into_data().assert_approx_eq::<f32>(
            &w.clone().into_data(),
            burn::tensor::Tolerance::permissive(),
        );
        assert_eq!(all.channels, (0..6).collect::<Vec<_>>());
        let sv = &full.singular_values;
        assert!(sv.windows(2).all(|p| p[0] >= p[1]));
        assert!(low_rank_sparse_split(w.clone(), 5, 0, 1).is_err());
        assert!(low_rank_sparse_split(w, 1, 7, 1).is_err());
    }

    proptest! {
        #[test]
        fn iso_flop_formulas(d_in in 1usize..2048, d_out in 1usize..2048, s in 0.0f64..0.99) {
            let r = sparse_factorized_rank(d_in, d_out, s, 1) as f64;
            let dense = (d_in * d_out) as f64;
            // The sparse factors cost at least the dense layer, and one less rank would not.
            prop_assert!((1.0 - s) * r * (d_in + d_out) as f64 >= dense - 1e-6);
            prop_assert!((1.0 - s) * (r - 1.0) * ((d_in + d_out) as f64) < dense + 1e-6);
            let doped = sparse_doped_rank(d_in, d_out, s, 1) as f64;
            // Low-rank FLOPs + sparse FLOPs ≤ dense.
            prop_assert!(doped * (d_in + d_out) as f64 + (1.0 - s) * dense <= dense + 1e-6);
            prop_assert!(sparse_wide_width(d_in, s) >= d_in);
        }
    }
}
