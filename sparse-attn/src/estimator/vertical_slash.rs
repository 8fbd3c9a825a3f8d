//! Vertical-slash estimation from the last queries (MInference 1.0, `vertical_and_slash_kernel`
//! in microsoft/MInference `minference/modules/minference_forward.py`; the Sparse Frontier's copy
//! in `sparse_frontier/modelling/attention/minference/vertical_and_slash.py`), and its
//! FlexPrefill-style coverage variant (the Sparse Frontier's `FlexPrefill`).
//!
//! 1. `A = softmax(q[−last_q:] · kᵀ · scale)` over each of the last `last_q` queries' valid keys
//!    (the causal mask only bites inside the last block; padded keys are excluded).
//! 2. Vertical scores: column sums of `A` (key `j`'s total mass). Slash scores: sums along each
//!    diagonal, indexed by the offset `d = position(query) − key ≥ 0` (`d = 0` is the main
//!    diagonal).
//! 3. The first `sinks` columns and the `local` smallest offsets (the last diagonals) are forced,
//!    inside the budgets; the best `vertical` columns and `slash` offsets are kept
//!    ([`Budget::TopK`], MInference's `vertical_size`/`slash_size`, or [`Budget::Coverage`],
//!    FlexPrefill's α with `min_budget`; sums and means rank and cover alike).
//! 4. Lowering to a [`SparseMask`] of `block × block` blocks: with [`SlashRaster::Blocks`]
//!    (default) every slash becomes the full blocks that cover its cells in each query block —
//!    the way MInference's `convert_vertical_slash_indexes` hands slashes to its kernel as 64-wide
//!    key blocks (ours are aligned to the block grid, so a slash crossing a block boundary takes
//!    two) — and the verticals stay per-row key columns, exactly as the kernel's `column_index`
//!    (columns inside a kept block are merged into it). [`SlashRaster::Exact`] keeps exactly the
//!    slash cells, as columns too.
//!
//! Defaults are MInference's online kernel: `last_q = 64`, 1000 verticals, 6096 slashes, 30
//! forced first columns, 100 forced last diagonals, 64-token blocks. The layout must be causal
//! with the queries at the end of the keys (prefill); GQA keys are repeated to the query heads.

use super::host::{host_padding, softmax_rows};
use crate::budget::{Budget, RowSelector};
use crate::mask::{BlockEntry, BlockSize, MaskParts, SparseMask};
use crate::problem::{AttentionProblem, repeat_kv};

/// How slashes are written into the mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SlashRaster {
    /// Full blocks of the mask's block size covering each slash (kernel-friendly, over-selects).
    #[default]
    Blocks,
    /// Exactly the slash cells, as per-row key columns.
    Exact,
}

/// The vertical-slash estimator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VerticalSlash {
    /// Queries the estimate is made from (the last ones).
    pub last_q: usize,
    /// Budget of vertical columns.
    pub vertical: Budget,
    /// Budget of slash offsets.
    pub slash: Budget,
    /// Forced first columns (attention sinks).
    pub sinks: usize,
    /// Forced smallest offsets (the local window of the last diagonals).
    pub local: usize,
    /// Block size of the mask (square).
    pub block: usize,
    /// How slashes become mask cells.
    pub raster: SlashRaster,
}

impl Default for VerticalSlash {
    fn default() -> Self {
        Self {
            last_q: 64,
            vertical: Budget::TopK(1000),
            slash: Budget::TopK(6096),
            sinks: 30,
            local: 100,
            block: 64,
            raster: SlashRaster::Blocks,
        }
    }
}

/// Vertical and slash scores of every (batch, head), and which were kept.
#[derive(Clone, Debug, PartialEq)]
pub struct VerticalSlashEstimate {
    /// Column sums `[batch, heads, k_len]` (padded keys `−∞`).
    pub vertical_scores: Vec<f32>,
    /// Diagonal sums by offset `[batch, heads, k_len]`.
    pub slash_scores: Vec<f32>,
    /// Kept columns per (batch, head), sorted.
    pub verticals: Vec<Vec<u32>>,
    /// Kept offsets per (batch, head), sorted.
    pub slashes: Vec<Vec<u32>>,
}

impl VerticalSlash {
    /// The Sparse Frontier's configuration: 512 verticals, 512 slashes, the last 256 queries,
    /// 4 forced columns, 64 forced diagonals.
    pub fn sparse_frontier() -> Self {
        Self {
            last_q: 256,
            vertical: Budget::TopK(512),
            slash: Budget::TopK(512),
            sinks: 4,
            local: 64,
            ..Self::default()
        }
    }

    /// FlexPrefill's adaptive budgets as the Sparse Frontier runs them: coverage `alpha` of the
    /// vertical and the slash mass, at least `min_budget` each, from the last 512 queries, 4
    /// forced columns, 64 forced diagonals (its configuration: α 0.65, `min_budget` 512).
    pub fn flexprefill(alpha: f64, min_budget: usize) -> Self {
        Self {
            last_q: 512,
            vertical: Budget::Coverage { alpha, min_budget },
            slash: Budget::Coverage { alpha, min_budget },
            sinks: 4,
            local: 64,
            ..Self::default()
        }
    }

    /// Scores and selections (steps 1–3).
    ///
    /// # Panics
    /// If the layout is not causal with the queries ending at the last key, `last_q` is 0, or a
    /// budget's ratio/alpha is outside `[0, 1]`.
    pub fn estimate(&self, p: &AttentionProblem) -> VerticalSlashEstimate {
        p.check();
        let layout = p.layout;
        assert!(
            layout.causal && layout.q_offset + layout.q_len == layout.k_len,
            "VerticalSlash: the layout must be causal with the queries at the end of the keys, found {layout:?}"
        );
        assert!(
            self.last_q > 0,
            "VerticalSlash: last_q must be at least 1, found 0"
        );
        let [b, h, tq, _] = p.q.dims();
        let tk = layout.k_len;
        let last = self.last_q.min(tq);
        let k = repeat_kv(p.k.clone(), p.group_size());
        let pad = host_padding(p);
        let probs = softmax_rows(&p.q, &k, &layout, tq - last..tq, p.scale, pad.as_deref());
        let mut vertical_scores = vec![0f32; b * h * tk];
        let mut slash_scores = vec![0f32; b * h * tk];
        for bh in 0..b * h {
            let vs = &mut vertical_scores[bh * tk..(bh + 1) * tk];
            let ss = &mut slash_scores[bh * tk..(bh + 1) * tk];
            for r in 0..last {
                let pos = layout.q_offset + tq - last + r;
                let row = &probs[(bh * last + r) * tk..(bh * last + r + 1) * tk];
                for (j, &a) in row.iter().enumerate().take(pos + 1) {
                    vs[j] += a;
                    ss[pos - j] += a;
                }
            }
            if let Some(pd) = &pad {
                let bi = bh / h;
                for j in 0..tk {
                    if pd[bi * tk + j] {
                        vs[j] = f32::NEG_INFINITY;
                    }
                }
            }
        }
        let vsel = RowSelector::new(self.vertical).with_sinks(self.sinks);
        let ssel = RowSelector::new(self.slash).with_sinks(self.local);
        let mut verticals = vec![Vec::new(); b * h];
        let mut slashes = vec![Vec::new(); b * h];
        for bh in 0..b * h {
            let range = bh * tk..(bh + 1) * tk;
            vsel.select(
                &vertical_scores[range.clone()],
                tk.saturating_sub(1),
                &mut verticals[bh],
            );
            ssel.select(&slash_scores[range], 0, &mut slashes[bh]);
        }
        VerticalSlashEstimate {
            vertical_scores,
            slash_scores,
            verticals,
            slashes,
        }
    }

    /// The mask of a problem (step 4): the problem's batch and query heads.
    ///
    /// # Panics
    /// As [`VerticalSlash::estimate`], or if `block` is 0.
    pub fn mask(&self, p: &AttentionProblem) -> SparseMask {
        assert!(
            self.block > 0,
            "VerticalSlash: block must be at least 1, found 0"
        );
        let est = self.estimate(p);
        self.lower(p, &est)
    }

    /// Lowers kept verticals and slashes to a mask (step 4).
    ///
    /// # Panics
    /// If the estimate does not have one selection per (batch, head) of the problem.
    pub fn lower(&self, p: &AttentionProblem, est: &VerticalSlashEstimate) -> SparseMask {
        let [b, h, tq, _] = p.q.dims();
        let layout = p.layout;
        assert!(
            est.verticals.len() == b * h && est.slashes.len() == b * h,
            "VerticalSlash::lower: estimate has {} vertical and {} slash lists, expected {}",
            est.verticals.len(),
            est.slashes.len(),
            b * h
        );
        let bs = self.block;
        let n_qb = tq.div_ceil(bs);
        let mut blocks = vec![Vec::new(); b * h * n_qb];
        let mut columns = vec![Vec::new(); b * h * tq];
        for bh in 0..b * h {
            let (vert, slash) = (&est.verticals[bh], &est.slashes[bh]);
            for i in 0..tq {
                let pos = layout.q_offset + i;
                let cols = &mut columns[bh * tq + i];
                cols.extend(vert.iter().copied().filter(|&j| j as usize <= pos));
                if self.raster == SlashRaster::Exact {
                    cols.extend(
                        slash
                            .iter()
                            .filter(|&&d| d as usize <= pos)
                            .map(|&d| (pos - d as usize) as u32),
                    );
                }
            }
            if self.raster == SlashRaster::Blocks {
                for qb in 0..n_qb {
                    let p0 = layout.q_offset + qb * bs;
                    let p1 = layout.q_offset + ((qb + 1) * bs).min(tq) - 1;
                    let list = &mut blocks[bh * n_qb + qb];
                    for &d in slash {
                        let d = d as usize;
                        if d > p1 {
                            continue;
                        }
                        let lo = p0.saturating_sub(d) / bs;
                        let hi = (p1 - d) / bs;
                        list.extend((lo..=hi).map(|kb| BlockEntry::full(kb as u32)));
                    }
                }
            }
        }
        SparseMask::from_parts(MaskParts {
            layout,
            block: BlockSize::square(bs),
            batch: b,
            heads: h,
            blocks,
            columns,
        })
        .unwrap_or_else(|e| panic!("VerticalSlash::lower: {e}"))
    }
}

#[cfg(test)]
mod tests;
