//! Shared plumbing of the estimators: device scores to host, the cells a row may see, pooling.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::layout::AttentionLayout;
use crate::problem::AttentionProblem;

/// A float tensor's values on the host, row-major.
pub(crate) fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("a tensor converted to f32 reads back as f32")
}

/// The problem's key padding on the host, `[batch · k_len]`, `true` = padding.
pub(crate) fn host_padding(p: &AttentionProblem) -> Option<Vec<bool>> {
    p.key_padding.as_ref().map(|t| {
        t.clone()
            .into_data()
            .convert::<bool>()
            .try_to_vec::<bool>()
            .expect("a bool tensor converted to bool reads back as bool")
    })
}

/// The key index a query row sits at (the anchor of local windows): `q_offset + i`, clipped to
/// the keys. For causal rows it is the row's last valid key.
pub(crate) fn row_diagonal(layout: &AttentionLayout, i: usize) -> usize {
    (layout.q_offset + i).min(layout.k_len.saturating_sub(1))
}

/// `[batch, 1, rows, k_len]`, `true` where query row `i ∈ rows` may not see key `j`: outside the
/// layout, or a padded key.
pub(crate) fn invalid_cells(
    layout: &AttentionLayout,
    rows: Range<usize>,
    batch: usize,
    padding: Option<&[bool]>,
    device: &Device,
) -> Tensor<4, Bool> {
    let tk = layout.k_len;
    let n = rows.len();
    let mut cells = Vec::with_capacity(batch * n * tk);
    for b in 0..batch {
        for i in rows.clone() {
            let valid = layout.valid_keys(i);
            cells.extend((0..tk).map(|j| j >= valid || padding.is_some_and(|p| p[b * tk + j])));
        }
    }
    Tensor::from_data(TensorData::new(cells, [batch, 1, n, tk]), device)
}

/// Attention probabilities of query rows `rows`: `softmax(q_rows · kᵀ · scale)` over each row's
/// valid keys, computed on the device, `[batch, heads, rows, k_len]` on the host. Invalid cells
/// are 0; a row with no valid key is all 0. `k` is already repeated to the query heads.
pub(crate) fn softmax_rows(
    q: &Tensor<4>,
    k: &Tensor<4>,
    layout: &AttentionLayout,
    rows: Range<usize>,
    scale: f64,
    padding: Option<&[bool]>,
) -> Vec<f32> {
    let [b, h, _, d] = q.dims();
    let tk = layout.k_len;
    let n = rows.len();
    if n == 0 || tk == 0 {
        return vec![0.0; b * h * n * tk];
    }
    let device = q.device();
    let q_rows = q.clone().slice([0..b, 0..h, rows.clone(), 0..d]);
    let scores = q_rows.matmul(k.clone().transpose()).mul_scalar(scale);
    let invalid = invalid_cells(layout, rows, b, padding, &device).expand([b, h, n, tk]);
    let probs = softmax(scores.mask_fill(invalid, f32::NEG_INFINITY), 3);
    let mut v = host_f32(probs);
    // Fully masked rows come back as NaN on some backends; they keep nothing.
    for x in &mut v {
        if x.is_nan() {
            *x = 0.0;
        }
    }
    v
}

/// Mean of `x` `[b, h, t, d]` over consecutive blocks of `block` rows → `[b, h, ⌈t/block⌉, d]`;
/// a short last block is averaged over its real rows.
pub(crate) fn mean_pool(x: Tensor<4>, block: usize) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let nb = t.div_ceil(block);
    let device = x.device();
    let padded = if nb * block > t {
        Tensor::cat(
            vec![x, Tensor::zeros([b, h, nb * block - t, d], &device)],
            2,
        )
    } else {
        x
    };
    let sums = padded
        .reshape([b, h, nb, block, d])
        .sum_dim(3)
        .reshape([b, h, nb, d]);
    let inv: Vec<f32> = (0..nb)
        .map(|i| 1.0 / ((t - i * block).min(block) as f32))
        .collect();
    sums * Tensor::<1>::from_data(TensorData::new(inv, [nb]), &device).reshape([1, 1, nb, 1])
}

/// Key blocks query block `qb` (rows `r0..r1`) can see: `⌈valid_keys(r1 − 1) / block_k⌉`.
pub(crate) fn visible_key_blocks(layout: &AttentionLayout, r1: usize, block_k: usize) -> usize {
    if r1 == 0 {
        return 0;
    }
    layout.valid_keys(r1 - 1).div_ceil(block_k)
}

/// Per batch, whether key block `kb` holds at least one unpadded key: `[batch · n_kb]`.
pub(crate) fn live_key_blocks(
    padding: Option<&[bool]>,
    batch: usize,
    k_len: usize,
    block_k: usize,
) -> Vec<bool> {
    let n_kb = k_len.div_ceil(block_k);
    let mut live = vec![true; batch * n_kb];
    if let Some(p) = padding {
        for b in 0..batch {
            for kb in 0..n_kb {
                let keys = kb * block_k..((kb + 1) * block_k).min(k_len);
                live[b * n_kb + kb] = keys.into_iter().any(|j| !p[b * k_len + j]);
            }
        }
    }
    live
}
