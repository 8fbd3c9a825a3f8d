//! Conversions dense ⇄ block ⇄ element. Every direction is exact except
//! [`SparseMask::covering_blocks`], which keeps whole blocks and reports how many cells that adds.

use super::{BlockEntry, BlockSize, MaskParts, SparseMask, set_bit};
use crate::error::MaskError;
use crate::layout::AttentionLayout;

/// A block mask that covers another mask, and what covering cost.
#[derive(Clone, Debug)]
pub struct Covering {
    /// Full blocks covering every kept cell of the original.
    pub mask: SparseMask,
    /// Valid cells kept by the original.
    pub kept_before: u64,
    /// Valid cells kept by the covering mask that the original did not keep.
    pub over_selected: u64,
}

impl Covering {
    /// `over_selected / kept_before` (0 for an empty original).
    pub fn over_selection_ratio(&self) -> f64 {
        if self.kept_before == 0 {
            0.0
        } else {
            self.over_selected as f64 / self.kept_before as f64
        }
    }
}

impl SparseMask {
    /// A mask that keeps nothing (every row outputs zero).
    ///
    /// # Panics
    /// If a block dimension, `batch` or `heads` is zero.
    pub fn empty(layout: AttentionLayout, block: BlockSize, batch: usize, heads: usize) -> Self {
        let n_groups = batch * heads * layout.q_len.div_ceil(block.q.max(1));
        Self::from_parts(MaskParts {
            layout,
            block,
            batch,
            heads,
            blocks: vec![Vec::new(); n_groups],
            columns: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("SparseMask::empty: {e}"))
    }

    /// A mask that keeps every valid cell: dense attention written as a block mask.
    ///
    /// # Panics
    /// If a block dimension, `batch` or `heads` is zero.
    pub fn all(layout: AttentionLayout, block: BlockSize, batch: usize, heads: usize) -> Self {
        let n_qb = layout.q_len.div_ceil(block.q.max(1));
        let n_kb = layout.k_len.div_ceil(block.k.max(1)) as u32;
        let list: Vec<BlockEntry> = (0..n_kb).map(BlockEntry::full).collect();
        Self::from_parts(MaskParts {
            layout,
            block,
            batch,
            heads,
            blocks: vec![list; batch * heads * n_qb],
            columns: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("SparseMask::all: {e}"))
    }

    /// An element mask: per row `(b, h, query)` the kept key indices (any order).
    ///
    /// # Errors
    /// [`MaskError`] for a wrong row count or an index past `k_len`.
    pub fn from_rows(
        layout: AttentionLayout,
        block: BlockSize,
        batch: usize,
        heads: usize,
        rows: Vec<Vec<u32>>,
    ) -> Result<Self, MaskError> {
        let n_groups = batch * heads * layout.q_len.div_ceil(block.q.max(1));
        if rows.is_empty() && batch * heads * layout.q_len > 0 {
            return Err(MaskError::RowCount {
                expected: batch * heads * layout.q_len,
                found: 0,
            });
        }
        Self::from_parts(MaskParts {
            layout,
            block,
            batch,
            heads,
            blocks: vec![Vec::new(); n_groups],
            columns: rows,
        })
    }

    /// From a dense keep-bitmap `[batch, heads, q_len, k_len]` (row-major, `true` = keep),
    /// exactly: blocks whose valid cells are all kept become full, others partial.
    ///
    /// # Errors
    /// [`MaskError::DenseLength`] when the bitmap's length is wrong, or a zero block/extent.
    pub fn from_dense(
        layout: AttentionLayout,
        block: BlockSize,
        batch: usize,
        heads: usize,
        keep: &[bool],
    ) -> Result<Self, MaskError> {
        let expected = batch * heads * layout.q_len * layout.k_len;
        if keep.len() != expected {
            return Err(MaskError::DenseLength {
                expected,
                found: keep.len(),
            });
        }
        if block.q == 0 || block.k == 0 {
            return Err(MaskError::ZeroBlock {
                q: block.q,
                k: block.k,
            });
        }
        let rows = (0..batch * heads * layout.q_len)
            .map(|r| {
                let row = &keep[r * layout.k_len..(r + 1) * layout.k_len];
                (0..layout.k_len as u32)
                    .filter(|&j| row[j as usize])
                    .collect()
            })
            .collect();
        Ok(Self::from_rows(layout, block, batch, heads, rows)?.reblock(block))
    }

    /// The dense keep-bitmap `[batch, heads, q_len, k_len]`, row-major (`true` = keep).
    pub fn to_dense(&self) -> Vec<bool> {
        let (q_len, k_len) = (self.layout.q_len, self.layout.k_len);
        let mut out = vec![false; self.batch * self.heads * q_len * k_len];
        let mut keys = Vec::new();
        for b in 0..self.batch {
            for h in 0..self.heads {
                for i in 0..q_len {
                    self.row_keys(b, h, i, &mut keys);
                    let base = ((b * self.heads + h) * q_len + i) * k_len;
                    for &j in &keys {
                        out[base + j as usize] = true;
                    }
                }
            }
        }
        out
    }

    /// The same cells as one key list per row and no blocks (exact).
    pub fn to_element(&self) -> SparseMask {
        let mut keys = Vec::new();
        let mut rows = Vec::with_capacity(self.batch * self.heads * self.layout.q_len);
        for b in 0..self.batch {
            for h in 0..self.heads {
                for i in 0..self.layout.q_len {
                    self.row_keys(b, h, i, &mut keys);
                    rows.push(keys.clone());
                }
            }
        }
        let n_groups = self.batch * self.heads * self.n_query_blocks();
        Self::canonical(
            self.layout,
            self.block,
            self.batch,
            self.heads,
            vec![Vec::new(); n_groups],
            rows,
        )
    }

    /// The same cells with another block size, as blocks only (exact: blocks the cells do not
    /// fill become partial).
    ///
    /// # Panics
    /// If a dimension of `block` is zero.
    pub fn reblock(&self, block: BlockSize) -> SparseMask {
        assert!(
            block.q > 0 && block.k > 0,
            "SparseMask::reblock: block size must be at least 1×1, found {}×{}",
            block.q,
            block.k
        );
        self.blocks_with(
            block,
            |blocks, kb, r, c| {
                let e = blocks.entry(kb).or_insert_with(|| vec![0; block.words()]);
                set_bit(e, r * block.k + c);
            },
            false,
        )
    }

    /// Full blocks of size `block` covering every kept cell, with the over-selection counted.
    ///
    /// # Panics
    /// If a dimension of `block` is zero.
    pub fn covering_blocks(&self, block: BlockSize) -> Covering {
        assert!(
            block.q > 0 && block.k > 0,
            "SparseMask::covering_blocks: block size must be at least 1×1, found {}×{}",
            block.q,
            block.k
        );
        let mask = self.blocks_with(
            block,
            |blocks, kb, _, _| {
                blocks.entry(kb).or_default();
            },
            true,
        );
        let kept_before = self.kept_cells();
        Covering {
            over_selected: mask.kept_cells() - kept_before,
            kept_before,
            mask,
        }
    }

    /// Re-groups every kept cell into blocks of `block`; `touch` records cell (`r`, `c`) of key
    /// block `kb`; `full` makes every touched block full.
    fn blocks_with(
        &self,
        block: BlockSize,
        mut touch: impl FnMut(&mut std::collections::BTreeMap<u32, Vec<u64>>, u32, usize, usize),
        full: bool,
    ) -> SparseMask {
        let n_qb = self.layout.q_len.div_ceil(block.q);
        let mut groups = Vec::with_capacity(self.batch * self.heads * n_qb);
        let mut keys = Vec::new();
        for b in 0..self.batch {
            for h in 0..self.heads {
                for qb in 0..n_qb {
                    let mut touched = std::collections::BTreeMap::new();
                    let r0 = qb * block.q;
                    for i in r0..(r0 + block.q).min(self.layout.q_len) {
                        self.row_keys(b, h, i, &mut keys);
                        for &j in &keys {
                            let kb = j / block.k as u32;
                            touch(&mut touched, kb, i - r0, j as usize - kb as usize * block.k);
                        }
                    }
                    groups.push(
                        touched
                            .into_iter()
                            .map(|(index, bits)| BlockEntry {
                                index,
                                cells: (!full).then_some(bits),
                            })
                            .collect(),
                    );
                }
            }
        }
        Self::canonical(
            self.layout,
            block,
            self.batch,
            self.heads,
            groups,
            Vec::new(),
        )
    }
}
