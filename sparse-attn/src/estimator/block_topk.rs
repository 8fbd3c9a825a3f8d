//! Block top-k from mean-pooled queries and keys (MInference's block-sparse pattern, as the
//! Sparse Frontier runs it: `_build_block_index` in PiotrNawrot/sparse-frontier
//! `sparse_frontier/modelling/attention/minference/block.py`).
//!
//! Per (batch, head): `q̄` and `k̄` are the means of q and k over blocks of `block` tokens,
//! `p = q̄ · k̄ᵀ` (no scale, no softmax: the ranking is all that matters), key blocks a query
//! block cannot see are dropped (causal), key block 0 (the sink), the diagonal block and the one
//! below it are forced, and each query block keeps its `top_k` best key blocks (forced ones
//! included, as the reference sets them to +∞ before its `topk`). Defaults are the Sparse
//! Frontier's configuration: blocks of 16 tokens, 64 blocks per query block.
//!
//! Differences from the reference, on purpose: a short last block is averaged over its real
//! tokens (the reference zero-pads and divides by the block size); GQA keys are pooled per KV
//! head and repeated to the query heads; causal layouts with an offset (chunked prefill) anchor
//! the diagonal at each query block's last key.

use super::host::{
    host_f32, host_padding, live_key_blocks, mean_pool, row_diagonal, visible_key_blocks,
};
use crate::budget::{Budget, RowSelector};
use crate::mask::{BlockEntry, BlockSize, MaskParts, SparseMask};
use crate::problem::{AttentionProblem, repeat_kv};

/// Block top-k estimator: square blocks, a budget per query block, forced sink and diagonals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockTopK {
    /// Tokens per block, for queries and keys (the Sparse Frontier's `chunk_size`, 16).
    pub block: usize,
    /// Key blocks per query block: [`Budget::TopK`] (`top_chunks`, 64) or [`Budget::KeepRatio`]
    /// of the visible key blocks. [`Budget::Coverage`] turns each row of pooled scores into
    /// masses with a softmax (scale `1/√d_head`) over its visible blocks first — FlexPrefill's
    /// query-aware block estimate.
    pub budget: Budget,
    /// Forced first key blocks (1: the sink block).
    pub sinks: usize,
    /// Forced key blocks ending at the diagonal (2: the diagonal and the sub-diagonal).
    pub local: usize,
}

impl Default for BlockTopK {
    fn default() -> Self {
        Self::new(16, 64)
    }
}

impl BlockTopK {
    /// `top_k` key blocks of `block` tokens per query block, with the reference's forced sink,
    /// diagonal and sub-diagonal.
    ///
    /// # Panics
    /// If `block` is 0.
    pub fn new(block: usize, top_k: usize) -> Self {
        assert!(
            block > 0,
            "BlockTopK::new: block must be at least 1, found 0"
        );
        Self {
            block,
            budget: Budget::TopK(top_k),
            sinks: 1,
            local: 2,
        }
    }

    /// The `top_k` whose analytic causal density over `seq_len` tokens is closest to
    /// `density`, found as the Sparse Frontier does (`_get_blocks_for_sparsity`): a binary
    /// search over `3..=n_blocks` on the block-count density of [`block_density`].
    ///
    /// # Panics
    /// If `block` is 0 or `density` is outside `[0, 1]`.
    pub fn for_density(seq_len: usize, block: usize, density: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&density),
            "BlockTopK::for_density: density must be in [0, 1], found {density}"
        );
        let mut me = Self::new(block, 3);
        let n = seq_len.div_ceil(block);
        let target = 1.0 - density;
        let (mut left, mut right) = (3usize, n);
        let (mut best, mut best_diff) = (3usize, f64::INFINITY);
        while left <= right {
            let mid = (left + right) / 2;
            let sparsity = 1.0 - block_density(n, mid);
            let diff = (sparsity - target).abs();
            if diff < best_diff {
                best_diff = diff;
                best = mid;
            }
            if sparsity < target {
                right = mid - 1;
            } else {
                left = mid + 1;
            }
        }
        me.budget = Budget::TopK(best);
        me
    }

    /// The pooled scores `q̄ · k̄ᵀ`, `[batch, heads, n_query_blocks, n_key_blocks]` row-major on
    /// the host.
    pub fn pooled_scores(&self, p: &AttentionProblem) -> Vec<f32> {
        p.check();
        let qp = mean_pool(p.q.clone(), self.block);
        let kp = repeat_kv(mean_pool(p.k.clone(), self.block), p.group_size());
        host_f32(qp.matmul(kp.transpose()))
    }

    /// The block mask of a problem: full `block × block` blocks, the problem's batch and query
    /// heads.
    ///
    /// # Panics
    /// If the problem's shapes are inconsistent or a ratio/alpha is outside `[0, 1]`.
    pub fn mask(&self, p: &AttentionProblem) -> SparseMask {
        let scores = self.pooled_scores(p);
        let [b, h, tq, d] = p.q.dims();
        let layout = p.layout;
        let bs = self.block;
        let (n_qb, n_kb) = (tq.div_ceil(bs), layout.k_len.div_ceil(bs));
        let live = live_key_blocks(host_padding(p).as_deref(), b, layout.k_len, bs);
        let selector = RowSelector {
            budget: self.budget,
            forced: crate::budget::Forced {
                sinks: self.sinks,
                local: self.local,
            },
        };
        let scale = 1.0 / (d as f32).sqrt();
        let mut blocks = Vec::with_capacity(b * h * n_qb);
        let mut row = Vec::with_capacity(n_kb);
        let mut kept = Vec::new();
        for g in 0..b * h * n_qb {
            let (bi, qb) = (g / (h * n_qb), g % n_qb);
            let r1 = ((qb + 1) * bs).min(tq);
            let n = visible_key_blocks(&layout, r1, bs);
            row.clear();
            row.extend((0..n).map(|kb| {
                if live[bi * n_kb + kb] {
                    scores[g * n_kb + kb]
                } else {
                    f32::NEG_INFINITY
                }
            }));
            if matches!(self.budget, Budget::Coverage { .. }) {
                softmax_in_place(&mut row, scale);
            }
            selector.select(&row, row_diagonal(&layout, r1 - 1) / bs, &mut kept);
            blocks.push(kept.iter().copied().map(BlockEntry::full).collect());
        }
        SparseMask::from_parts(MaskParts {
            layout,
            block: BlockSize::square(bs),
            batch: b,
            heads: h,
            blocks,
            columns: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("BlockTopK::mask: {e}"))
    }
}

/// The Sparse Frontier's analytic density of causal block top-k over `n` blocks
/// (`_calculate_sparsity`): selected blocks `k(k+1)/2 + (n − k)·k` (the first `k` query blocks
/// keep everything they see) over the `n(n+1)/2` causal blocks; `k ≥ n` gives 1.
pub fn block_density(n: usize, k: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let k = k.min(n);
    let selected = k * (k + 1) / 2 + (n - k) * k;
    selected as f64 / (n * (n + 1) / 2) as f64
}

/// Softmax of present scores (`−∞` stays absent) with a temperature.
fn softmax_in_place(row: &mut [f32], scale: f32) {
    let m = row
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return;
    }
    let mut z = 0f32;
    for x in row.iter_mut() {
        if x.is_finite() {
            *x = ((*x - m) * scale).exp();
            z += *x;
        }
    }
    for x in row.iter_mut() {
        if x.is_finite() {
            *x /= z;
        }
    }
}

#[cfg(test)]
mod tests;
