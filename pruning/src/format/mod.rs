//! Compressed storage formats for pruned weights: CSR, block-sparse (BSR), generic N:M, and the
//! 2:4 layout of PyTorch's CUTLASS backend.
//!
//! Every format takes a row-major dense weight `[rows, cols]` = `[out, in]` (torch's
//! `Linear.weight` layout; burn's `Linear.weight` is the transpose) together with a mask or
//! pattern, round-trips to the same dense matrix bit for bit, and validates raw arrays read from
//! elsewhere (`try_from_parts`) with a typed [`FormatError`].

mod block_sparse;
mod csr;
mod dense_input;
mod error;
mod nm;
mod semi_structured;
#[cfg(test)]
pub(crate) mod testing;

pub use block_sparse::{BlockSparseMatrix, BlockSparseParts};
pub use csr::{CsrMatrix, CsrParts};
pub use error::{FormatError, FormatResult};
pub use nm::{NmMatrix, NmParts};
pub use semi_structured::{MetaWord, SemiStructured, SemiStructuredElement};
