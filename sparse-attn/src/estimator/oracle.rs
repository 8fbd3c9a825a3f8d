//! Oracle top-k: the mask chosen from the exact dense attention probabilities — the upper bound
//! every estimator is measured against (the Sparse Frontier's and SEA's "oracle top-k").
//!
//! The scores `q·kᵀ · scale` are computed on the device in chunks of query rows (memory stays at
//! `batch · heads · chunk · k_len` floats), turned into probabilities by a softmax over each
//! row's valid, unpadded keys, and selected on the host with a [`RowSelector`]:
//! - [`Oracle::element_mask`]: per query row, keys ranked by probability (top-k, keep ratio or
//!   coverage α of the row's mass) → per-row key columns.
//! - [`Oracle::block_mask`]: per query block, key blocks ranked by their exact attention mass
//!   (the sum of the block's probabilities over its rows and keys) → full blocks.

use rayon::prelude::*;

use super::host::{host_padding, live_key_blocks, row_diagonal, softmax_rows, visible_key_blocks};
use crate::budget::RowSelector;
use crate::mask::{BlockEntry, BlockSize, MaskParts, SparseMask};
use crate::problem::{AttentionProblem, repeat_kv};

/// The exact top-k masks of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oracle {
    /// Query rows per device matmul (default 128); any value gives the same mask.
    pub chunk: usize,
}

impl Default for Oracle {
    fn default() -> Self {
        Self { chunk: 128 }
    }
}

impl Oracle {
    /// An oracle computing `chunk` query rows at a time.
    ///
    /// # Panics
    /// If `chunk` is 0.
    pub fn new(chunk: usize) -> Self {
        assert!(chunk > 0, "Oracle::new: chunk must be at least 1, found 0");
        Self { chunk }
    }

    /// Per query row, the keys `selector` keeps when ranked by their exact attention probability
    /// (padded keys are absent; the local window ends at the row's own key). The mask has the
    /// problem's batch and query heads, no blocks and one column list per row; `block` is only
    /// its block size for later re-blocking.
    ///
    /// # Panics
    /// If the problem's shapes are inconsistent, `block` has a zero dimension, or the selector's
    /// ratio/alpha is outside `[0, 1]`.
    pub fn element_mask(
        &self,
        p: &AttentionProblem,
        selector: &RowSelector,
        block: BlockSize,
    ) -> SparseMask {
        p.check();
        let [b, h, tq, _] = p.q.dims();
        let layout = p.layout;
        let tk = layout.k_len;
        let k = repeat_kv(p.k.clone(), p.group_size());
        let pad = host_padding(p);
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); b * h * tq];
        for c0 in (0..tq).step_by(self.chunk.max(1)) {
            let c1 = (c0 + self.chunk).min(tq);
            let n = c1 - c0;
            let probs = softmax_rows(&p.q, &k, &p.layout, c0..c1, p.scale, pad.as_deref());
            rows.par_chunks_mut(tq.max(1))
                .enumerate()
                .for_each(|(bh, head_rows)| {
                    let bi = bh / h;
                    let mut scores = Vec::with_capacity(tk);
                    for (i, out) in head_rows.iter_mut().enumerate().take(c1).skip(c0) {
                        let valid = layout.valid_keys(i);
                        let base = (bh * n + i - c0) * tk;
                        scores.clear();
                        scores.extend(probs[base..base + valid].iter().enumerate().map(
                            |(j, &x)| {
                                if pad.as_ref().is_some_and(|pd| pd[bi * tk + j]) {
                                    f32::NEG_INFINITY
                                } else {
                                    x
                                }
                            },
                        ));
                        selector.select(&scores, row_diagonal(&layout, i), out);
                    }
                });
        }
        SparseMask::from_rows(layout, block, b, h, rows)
            .unwrap_or_else(|e| panic!("Oracle::element_mask: {e}"))
    }

    /// Per query block of `block`, the key blocks `selector` keeps when ranked by their exact
    /// attention mass. Key blocks the query block cannot see (causal) or that hold only padding
    /// are absent; the local window ends at the block holding the query block's last row's own
    /// key (the diagonal block). Full blocks, the problem's batch and query heads.
    ///
    /// # Panics
    /// If the problem's shapes are inconsistent, `block` has a zero dimension, or the selector's
    /// ratio/alpha is outside `[0, 1]`.
    pub fn block_mask(
        &self,
        p: &AttentionProblem,
        block: BlockSize,
        selector: &RowSelector,
    ) -> SparseMask {
        p.check();
        assert!(
            block.q > 0 && block.k > 0,
            "Oracle::block_mask: block must be at least 1×1, found {}×{}",
            block.q,
            block.k
        );
        let mass = self.block_masses(p, block);
        let [b, h, tq, _] = p.q.dims();
        let layout = p.layout;
        let n_qb = tq.div_ceil(block.q);
        let n_kb = layout.k_len.div_ceil(block.k);
        let live = live_key_blocks(host_padding(p).as_deref(), b, layout.k_len, block.k);
        let blocks: Vec<Vec<BlockEntry>> = (0..b * h * n_qb)
            .into_par_iter()
            .map(|g| {
                let (bh, qb) = (g / n_qb, g % n_qb);
                let bi = bh / h;
                let r1 = ((qb + 1) * block.q).min(tq);
                let n = visible_key_blocks(&layout, r1, block.k);
                let scores: Vec<f32> = (0..n)
                    .map(|kb| {
                        if live[bi * n_kb + kb] {
                            mass[g * n_kb + kb] as f32
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                    .collect();
                let mut kept = Vec::new();
                selector.select(&scores, row_diagonal(&layout, r1 - 1) / block.k, &mut kept);
                kept.into_iter().map(BlockEntry::full).collect()
            })
            .collect();
        SparseMask::from_parts(MaskParts {
            layout,
            block,
            batch: b,
            heads: h,
            blocks,
            columns: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("Oracle::block_mask: {e}"))
    }

    /// Exact attention mass of every (batch, head, query block, key block) of `block`,
    /// row-major `[batch, heads, ⌈q_len/block_q⌉, ⌈k_len/block_k⌉]`.
    ///
    /// # Panics
    /// If the problem's shapes are inconsistent or `block` has a zero dimension.
    pub fn block_masses(&self, p: &AttentionProblem, block: BlockSize) -> Vec<f64> {
        p.check();
        assert!(
            block.q > 0 && block.k > 0,
            "Oracle::block_masses: block must be at least 1×1, found {}×{}",
            block.q,
            block.k
        );
        let [b, h, tq, _] = p.q.dims();
        let tk = p.layout.k_len;
        let n_qb = tq.div_ceil(block.q);
        let n_kb = tk.div_ceil(block.k);
        let k = repeat_kv(p.k.clone(), p.group_size());
        let pad = host_padding(p);
        let mut mass = vec![0f64; b * h * n_qb * n_kb];
        // Chunks of whole query blocks, so each block's rows arrive together.
        let chunk = (self.chunk / block.q).max(1) * block.q;
        for c0 in (0..tq).step_by(chunk) {
            let c1 = (c0 + chunk).min(tq);
            let n = c1 - c0;
            let probs = softmax_rows(&p.q, &k, &p.layout, c0..c1, p.scale, pad.as_deref());
            mass.par_chunks_mut(n_qb * n_kb)
                .enumerate()
                .for_each(|(bh, head_mass)| {
                    for i in c0..c1 {
                        let row = &probs[(bh * n + i - c0) * tk..(bh * n + i - c0 + 1) * tk];
                        let acc = &mut head_mass[(i / block.q) * n_kb..(i / block.q + 1) * n_kb];
                        for (kb, keys) in row.chunks(block.k).enumerate() {
                            acc[kb] += keys.iter().map(|&x| x as f64).sum::<f64>();
                        }
                    }
                });
        }
        mass
    }
}

#[cfg(test)]
mod tests;
