//! One mask type for every sparse-attention method.
//!
//! A [`SparseMask`] says, for each (batch, head, query block), which key blocks are kept —
//! sorted, each either **full** (every valid cell kept) or **partial** (a bitmap of kept
//! cells) — plus, optionally, a sorted list of extra key **columns** per query row. This is
//! FlexAttention's `BlockMask` (block lists with full/partial blocks) joined with MInference's
//! column lists, so every method here lowers to it without loss: block top-k and SparseD are
//! full blocks, Quest pages are blocks of one query row, vertical-slash is blocks plus columns,
//! SEA and oracle top-k are columns (or partial blocks after re-blocking).
//!
//! Semantics, fixed for every kernel:
//! - **keep = true.** (burn's own attention mask uses `true` = masked; [`SparseMask::to_masked_tensor`]
//!   converts.)
//! - A mask only selects among the layout's **valid** cells; the causal constraint and the
//!   caller's key padding are applied on top. Cells outside the layout are dropped when the
//!   mask is built, so [`SparseMask::kept_cells`] and densities count valid cells only.
//! - **Set semantics**: duplicates are merged, lists sorted. The stored form is canonical
//!   (no column inside a listed block, no empty block, a partial block that keeps every valid
//!   cell becomes full), so two masks are equal exactly when they keep the same cells.
//! - A query row with nothing kept gives a zero output, never NaN.
//! - **Broadcast**: `batch` is 1 (one pattern for the whole batch) or the batch size; `heads` is
//!   1, the KV-head count (one pattern per GQA group) or the query-head count. Query head `h` of
//!   `n` reads mask head `h · heads / n`.
//! - The **block size is a property of the mask**: a kernel that needs another tile size
//!   re-blocks explicitly ([`SparseMask::reblock`], exact) or covers ([`SparseMask::covering_blocks`],
//!   which reports the over-selection); nothing silently reinterprets indices.

mod convert;
mod density;
mod tensor;

pub use convert::Covering;
pub use density::Density;

use crate::error::MaskError;
use crate::layout::AttentionLayout;

/// Query rows × key columns of one mask block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockSize {
    /// Query rows per block.
    pub q: usize,
    /// Key columns per block.
    pub k: usize,
}

impl BlockSize {
    /// A `q × k` block.
    pub fn new(q: usize, k: usize) -> Self {
        Self { q, k }
    }

    /// A square `n × n` block.
    pub fn square(n: usize) -> Self {
        Self { q: n, k: n }
    }

    /// 64-bit words of one partial block's bitmap.
    pub fn words(&self) -> usize {
        (self.q * self.k).div_ceil(64)
    }
}

/// One kept key block in [`MaskParts`]: its index and, for a partial block, the bitmap of kept
/// cells (bit `r · block_k + c` = local row `r`, local column `c`; cells outside the sequence or
/// the layout are ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// Key block index (`key / block_k`).
    pub index: u32,
    /// `None` = full block; `Some(bits)` = partial, `BlockSize::words()` words.
    pub cells: Option<Vec<u64>>,
}

impl BlockEntry {
    /// A full block.
    pub fn full(index: u32) -> Self {
        Self { index, cells: None }
    }
}

/// The raw pieces of a mask, as an estimator or a user produces them; [`SparseMask::from_parts`]
/// validates and canonicalises them.
#[derive(Clone, Debug)]
pub struct MaskParts {
    /// The cells that exist.
    pub layout: AttentionLayout,
    /// Block size of the block lists.
    pub block: BlockSize,
    /// 1 (shared by the batch) or the batch size.
    pub batch: usize,
    /// 1, the KV-head count or the query-head count.
    pub heads: usize,
    /// Per group `(b, h, query block)`, row-major, the kept key blocks (any order, duplicates
    /// merged).
    pub blocks: Vec<Vec<BlockEntry>>,
    /// Empty (no columns), or per row `(b, h, query)`, row-major, extra kept key columns (any
    /// order, duplicates merged).
    pub columns: Vec<Vec<u32>>,
}

/// Marks a full block in [`SparseMask`]'s `partial` array.
const FULL: u32 = u32::MAX;

/// A validated, canonical sparse-attention mask (see the [module docs](self) for its semantics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseMask {
    layout: AttentionLayout,
    block: BlockSize,
    batch: usize,
    heads: usize,
    /// CSR offsets of `blocks`/`partial` per group.
    group_ptr: Vec<usize>,
    /// Kept key-block indices, sorted within a group.
    blocks: Vec<u32>,
    /// `FULL` or the index of the block's bitmap in `bitmaps`.
    partial: Vec<u32>,
    /// Bitmaps of partial blocks, `block.words()` words each.
    bitmaps: Vec<u64>,
    /// CSR offsets of `columns` per row; empty when the mask has no columns at all.
    row_ptr: Vec<usize>,
    /// Extra kept key columns, sorted within a row, none inside a listed block.
    columns: Vec<u32>,
}

/// A kept block as a kernel sees it.
#[derive(Clone, Copy, Debug)]
pub struct KeptBlock<'a> {
    /// Key block index.
    pub index: u32,
    /// `None` = every valid cell kept; `Some(bits)` = the kept cells (bit `r · block_k + c`).
    pub cells: Option<&'a [u64]>,
}

impl KeptBlock<'_> {
    /// Whether local cell (`r`, `c`) is kept (before the layout's causal constraint).
    pub fn keeps(&self, r: usize, c: usize, block_k: usize) -> bool {
        match self.cells {
            None => true,
            Some(bits) => bit(bits, r * block_k + c),
        }
    }
}

fn bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] >> (i % 64) & 1 == 1
}

fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

impl SparseMask {
    /// Validates and canonicalises caller-made parts.
    ///
    /// # Errors
    /// [`MaskError`] naming the first wrong count, index or bitmap.
    pub fn from_parts(parts: MaskParts) -> Result<Self, MaskError> {
        let MaskParts {
            layout,
            block,
            batch,
            heads,
            blocks,
            columns,
        } = parts;
        if block.q == 0 || block.k == 0 {
            return Err(MaskError::ZeroBlock {
                q: block.q,
                k: block.k,
            });
        }
        if batch == 0 {
            return Err(MaskError::ZeroExtent { what: "batch" });
        }
        if heads == 0 {
            return Err(MaskError::ZeroExtent { what: "heads" });
        }
        let n_qb = layout.q_len.div_ceil(block.q);
        let n_kb = layout.k_len.div_ceil(block.k);
        let n_groups = batch * heads * n_qb;
        if blocks.len() != n_groups {
            return Err(MaskError::GroupCount {
                expected: n_groups,
                found: blocks.len(),
            });
        }
        let n_rows = batch * heads * layout.q_len;
        if !columns.is_empty() && columns.len() != n_rows {
            return Err(MaskError::RowCount {
                expected: n_rows,
                found: columns.len(),
            });
        }
        let words = block.words();
        for (g, list) in blocks.iter().enumerate() {
            for e in list {
                if e.index as usize >= n_kb {
                    return Err(MaskError::BlockOutOfRange {
                        group: g,
                        block: e.index,
                        n_blocks: n_kb,
                    });
                }
                if let Some(bits) = &e.cells
                    && bits.len() != words
                {
                    return Err(MaskError::BitmapLength {
                        group: g,
                        block: e.index,
                        expected: words,
                        found: bits.len(),
                    });
                }
            }
        }
        for (r, cols) in columns.iter().enumerate() {
            if let Some(&c) = cols.iter().find(|&&c| c as usize >= layout.k_len) {
                return Err(MaskError::ColumnOutOfRange {
                    row: r,
                    column: c,
                    k_len: layout.k_len,
                });
            }
        }
        Ok(Self::canonical(
            layout, block, batch, heads, blocks, columns,
        ))
    }

    /// Builds the canonical form from checked parts.
    fn canonical(
        layout: AttentionLayout,
        block: BlockSize,
        batch: usize,
        heads: usize,
        mut blocks: Vec<Vec<BlockEntry>>,
        mut columns: Vec<Vec<u32>>,
    ) -> Self {
        let n_qb = layout.q_len.div_ceil(block.q);
        let words = block.words();
        let mut mask = Self {
            layout,
            block,
            batch,
            heads,
            group_ptr: Vec::with_capacity(blocks.len() + 1),
            blocks: Vec::new(),
            partial: Vec::new(),
            bitmaps: Vec::new(),
            row_ptr: Vec::new(),
            columns: Vec::new(),
        };
        let has_columns = !columns.is_empty();
        mask.group_ptr.push(0);
        if has_columns {
            mask.row_ptr.push(0);
        }
        for (g, list) in blocks.iter_mut().enumerate() {
            let qb = g % n_qb;
            let bh = g / n_qb;
            let r0 = qb * block.q;
            let r1 = (r0 + block.q).min(layout.q_len);
            // Merge duplicates: a full entry wins, partial bitmaps are OR-ed.
            list.sort_by_key(|e| e.index);
            let mut merged: Vec<BlockEntry> = Vec::with_capacity(list.len());
            for e in list.drain(..) {
                match merged.last_mut() {
                    Some(last) if last.index == e.index => match (&mut last.cells, e.cells) {
                        (None, _) => {}
                        (slot @ Some(_), None) => *slot = None,
                        (Some(a), Some(b)) => a.iter_mut().zip(b).for_each(|(x, y)| *x |= y),
                    },
                    _ => merged.push(e),
                }
            }
            // Route this group's columns: into a listed block (full: already kept; partial: set
            // the bit) or kept as a column.
            let mut kept_cols: Vec<Vec<u32>> = Vec::new();
            if has_columns {
                for i in r0..r1 {
                    let row = &mut columns[bh * layout.q_len + i];
                    row.sort_unstable();
                    row.dedup();
                    let mut rest = Vec::new();
                    for &j in row.iter() {
                        if !layout.is_valid(i, j as usize) {
                            continue;
                        }
                        let kb = j as usize / block.k;
                        match merged.binary_search_by_key(&(kb as u32), |e| e.index) {
                            Ok(p) => {
                                if let Some(bits) = &mut merged[p].cells {
                                    set_bit(bits, (i - r0) * block.k + (j as usize - kb * block.k));
                                }
                            }
                            Err(_) => rest.push(j),
                        }
                    }
                    kept_cols.push(rest);
                }
            }
            for e in merged {
                let c0 = e.index as usize * block.k;
                let c1 = (c0 + block.k).min(layout.k_len);
                let (any_valid, all_valid) = block_validity(&layout, r0, r1, c0, c1);
                if !any_valid {
                    continue;
                }
                match e.cells {
                    None => {
                        mask.blocks.push(e.index);
                        mask.partial.push(FULL);
                    }
                    Some(mut bits) => {
                        // Clear cells outside the sequence or the layout, then classify.
                        let mut kept = 0usize;
                        let mut valid = 0usize;
                        for r in 0..block.q {
                            for c in 0..block.k {
                                let idx = r * block.k + c;
                                let (i, j) = (r0 + r, c0 + c);
                                let ok = i < r1 && j < c1 && layout.is_valid(i, j);
                                valid += ok as usize;
                                if bit(&bits, idx) {
                                    if ok {
                                        kept += 1;
                                    } else {
                                        bits[idx / 64] &= !(1 << (idx % 64));
                                    }
                                }
                            }
                        }
                        debug_assert!(all_valid || valid > 0);
                        if kept == 0 {
                            continue;
                        }
                        mask.blocks.push(e.index);
                        if kept == valid {
                            mask.partial.push(FULL);
                        } else {
                            mask.partial.push((mask.bitmaps.len() / words) as u32);
                            mask.bitmaps.extend_from_slice(&bits);
                        }
                    }
                }
            }
            mask.group_ptr.push(mask.blocks.len());
            for rest in kept_cols {
                mask.columns.extend_from_slice(&rest);
                mask.row_ptr.push(mask.columns.len());
            }
        }
        if has_columns && mask.columns.is_empty() {
            mask.row_ptr.clear();
        }
        mask
    }

    /// The cells the mask selects from.
    pub fn layout(&self) -> AttentionLayout {
        self.layout
    }

    /// The block size of the block lists.
    pub fn block_size(&self) -> BlockSize {
        self.block
    }

    /// 1 (shared by the batch) or the batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// 1, the KV-head count or the query-head count.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// ⌈q_len / block_q⌉.
    pub fn n_query_blocks(&self) -> usize {
        self.layout.q_len.div_ceil(self.block.q)
    }

    /// ⌈k_len / block_k⌉.
    pub fn n_key_blocks(&self) -> usize {
        self.layout.k_len.div_ceil(self.block.k)
    }

    /// Whether any row has extra columns.
    pub fn has_columns(&self) -> bool {
        !self.row_ptr.is_empty()
    }

    /// Whether any kept block is partial.
    pub fn has_partial_blocks(&self) -> bool {
        !self.bitmaps.is_empty()
    }

    /// The mask (batch, head) that query batch `b` and query head `h` of `n_query_heads` read.
    ///
    /// # Panics
    /// If the mask's batch is neither 1 nor larger than `b`, or `n_query_heads` is not a
    /// multiple of the mask's heads.
    pub fn resolve(&self, b: usize, h: usize, n_query_heads: usize) -> (usize, usize) {
        assert!(
            self.batch == 1 || b < self.batch,
            "SparseMask::resolve: batch index {b} out of range for a mask of batch {}",
            self.batch
        );
        assert!(
            n_query_heads.is_multiple_of(self.heads),
            "SparseMask::resolve: query heads must be a multiple of the mask's heads, found {n_query_heads} query heads for {} mask heads",
            self.heads
        );
        let mb = if self.batch == 1 { 0 } else { b };
        (mb, h * self.heads / n_query_heads)
    }

    fn group(&self, b: usize, h: usize, qb: usize) -> usize {
        (b * self.heads + h) * self.n_query_blocks() + qb
    }

    /// The kept blocks of mask (batch `b`, head `h`, query block `qb`), sorted by index.
    pub fn blocks(
        &self,
        b: usize,
        h: usize,
        qb: usize,
    ) -> impl ExactSizeIterator<Item = KeptBlock<'_>> + '_ {
        let g = self.group(b, h, qb);
        let words = self.block.words();
        (self.group_ptr[g]..self.group_ptr[g + 1]).map(move |p| KeptBlock {
            index: self.blocks[p],
            cells: (self.partial[p] != FULL).then(|| {
                let s = self.partial[p] as usize * words;
                &self.bitmaps[s..s + words]
            }),
        })
    }

    /// Number of kept blocks of one group.
    pub fn block_count(&self, b: usize, h: usize, qb: usize) -> usize {
        let g = self.group(b, h, qb);
        self.group_ptr[g + 1] - self.group_ptr[g]
    }

    /// The largest number of kept blocks of any group.
    pub fn max_block_count(&self) -> usize {
        self.group_ptr
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    }

    /// The extra columns of mask (batch `b`, head `h`) for query `i` (sorted, none inside a kept
    /// block).
    pub fn columns(&self, b: usize, h: usize, i: usize) -> &[u32] {
        if self.row_ptr.is_empty() {
            return &[];
        }
        let r = (b * self.heads + h) * self.layout.q_len + i;
        &self.columns[self.row_ptr[r]..self.row_ptr[r + 1]]
    }

    /// Writes the kept keys of query `i` of mask (batch `b`, head `h`) into `out`, sorted
    /// (cleared first). Only valid cells are ever kept.
    pub fn row_keys(&self, b: usize, h: usize, i: usize, out: &mut Vec<u32>) {
        out.clear();
        let qb = i / self.block.q;
        let r = i - qb * self.block.q;
        let valid = self.layout.valid_keys(i);
        for blk in self.blocks(b, h, qb) {
            let c0 = blk.index as usize * self.block.k;
            let c1 = (c0 + self.block.k).min(valid);
            for j in c0..c1 {
                if blk.keeps(r, j - c0, self.block.k) {
                    out.push(j as u32);
                }
            }
        }
        let cols = self.columns(b, h, i);
        if !cols.is_empty() {
            out.extend_from_slice(cols);
            out.sort_unstable();
        }
    }

    /// Whether mask (batch `b`, head `h`) keeps cell (`i`, `j`).
    pub fn is_kept(&self, b: usize, h: usize, i: usize, j: usize) -> bool {
        if !self.layout.is_valid(i, j) {
            return false;
        }
        let qb = i / self.block.q;
        let kb = (j / self.block.k) as u32;
        if let Some(blk) = self.blocks(b, h, qb).find(|blk| blk.index == kb) {
            return blk.keeps(
                i - qb * self.block.q,
                j - kb as usize * self.block.k,
                self.block.k,
            );
        }
        self.columns(b, h, i).binary_search(&(j as u32)).is_ok()
    }

    /// Number of kept keys of query `i` of mask (batch `b`, head `h`).
    pub fn row_count(&self, b: usize, h: usize, i: usize) -> usize {
        let qb = i / self.block.q;
        let r = i - qb * self.block.q;
        let valid = self.layout.valid_keys(i);
        let mut n = self.columns(b, h, i).len();
        for blk in self.blocks(b, h, qb) {
            let c0 = blk.index as usize * self.block.k;
            let c1 = (c0 + self.block.k).min(valid);
            if c1 <= c0 {
                continue;
            }
            n += match blk.cells {
                None => c1 - c0,
                Some(_) => (c0..c1)
                    .filter(|&j| blk.keeps(r, j - c0, self.block.k))
                    .count(),
            };
        }
        n
    }

    /// The largest number of kept keys in any row.
    pub fn max_row_count(&self) -> usize {
        let mut best = 0;
        for b in 0..self.batch {
            for h in 0..self.heads {
                for i in 0..self.layout.q_len {
                    best = best.max(self.row_count(b, h, i));
                }
            }
        }
        best
    }
}

/// Whether any / every cell of rows `r0..r1` × keys `c0..c1` is valid. Valid key counts grow
/// with the row, so the first and last rows decide.
fn block_validity(
    layout: &AttentionLayout,
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
) -> (bool, bool) {
    if r0 >= r1 || c0 >= c1 {
        return (false, false);
    }
    let any = layout.valid_keys(r1 - 1) > c0;
    let all = layout.valid_keys(r0) >= c1;
    (any, all)
}

#[cfg(test)]
mod tests;
