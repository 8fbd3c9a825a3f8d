//! Typed errors for masks built from caller data.

/// What is wrong with mask parts handed to [`SparseMask::from_parts`](crate::SparseMask::from_parts)
/// (or any constructor that forwards caller data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// A block size of zero.
    #[error("block size must be at least 1×1, found {q}×{k}")]
    ZeroBlock {
        /// Query rows per block.
        q: usize,
        /// Key columns per block.
        k: usize,
    },
    /// Batch or head count of zero.
    #[error("mask {what} must be at least 1, found 0")]
    ZeroExtent {
        /// `"batch"` or `"heads"`.
        what: &'static str,
    },
    /// The number of block lists does not match `batch · heads · query blocks`.
    #[error("mask has {found} block lists, expected {expected} (batch · heads · query blocks)")]
    GroupCount {
        /// batch · heads · ⌈q_len / block_q⌉.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// The number of column lists is neither 0 nor `batch · heads · q_len`.
    #[error("mask has {found} column lists, expected 0 or {expected} (batch · heads · q_len)")]
    RowCount {
        /// batch · heads · q_len.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A key block index at or past the number of key blocks.
    #[error("group {group}: key block {block} out of range (the keys have {n_blocks} blocks)")]
    BlockOutOfRange {
        /// Flat group index (b, h, query block).
        group: usize,
        /// The offending block index.
        block: u32,
        /// ⌈k_len / block_k⌉.
        n_blocks: usize,
    },
    /// A key column index at or past `k_len`.
    #[error("row {row}: key column {column} out of range (k_len {k_len})")]
    ColumnOutOfRange {
        /// Flat row index (b, h, query).
        row: usize,
        /// The offending key index.
        column: u32,
        /// The number of keys.
        k_len: usize,
    },
    /// A partial block's bitmap with the wrong number of 64-bit words.
    #[error("group {group}, block {block}: bitmap has {found} words, expected {expected}")]
    BitmapLength {
        /// Flat group index.
        group: usize,
        /// The block index.
        block: u32,
        /// ⌈block_q · block_k / 64⌉.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A dense bitmap whose length is not `batch · heads · q_len · k_len`.
    #[error("dense mask has {found} cells, expected {expected} (batch · heads · q_len · k_len)")]
    DenseLength {
        /// batch · heads · q_len · k_len.
        expected: usize,
        /// What was given.
        found: usize,
    },
}
