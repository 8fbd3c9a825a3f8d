//! Hot operations with a portable tensor-op path and a fast host (CPU) path.
//!
//! See [`ComputePath`] for how the path is chosen, and `ARCHITECTURE.md` (sae-core) for how
//! `sae-train` uses the backward kernels to build a TopK training step whose decoder touches only
//! the `k` active rows.

mod compute_path;
mod host;
mod sparse_decode;
mod top_k;

pub use compute_path::ComputePath;
pub use sparse_decode::{
    scatter_outer, scatter_outer_tensor, scatter_sum, sparse_decode, sparse_decode_backward,
    sparse_decode_backward_values, sparse_decode_tensor,
};
pub use top_k::{Rank, batch_top_k, top_k, top_k_flat, top_k_rows};
