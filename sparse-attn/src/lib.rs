//! # sparse-attn — sparse attention for burn
//!
//! One mask type, [`SparseMask`], that every sparse-attention method lowers to without loss
//! (block lists with full and partial blocks plus per-row key columns, broadcast over batch and
//! GQA groups), the kernels that run attention under it on any burn backend, and the estimators
//! that build it: oracle top-k, block top-k, vertical-slash (MInference), Quest, SparseD and SEA.
//!
//! The dense masked path, [`masked_dense_attention`], is burn's own attention with the
//! equivalent bool mask; it is the oracle every sparse kernel is tested against.

pub mod budget;
mod error;
pub mod estimator;
pub mod kernel;
mod layout;
pub mod mask;
mod problem;
pub mod schedule;

pub use budget::{Budget, Forced, RowSelector, SplitSelector, select_shared};
pub use error::MaskError;
pub use estimator::{
    BlockTopK, Oracle, SlashRaster, VerticalSlash, VerticalSlashEstimate, block_density,
};
pub use kernel::{dense_attention, masked_dense_attention};
pub use layout::AttentionLayout;
pub use mask::{BlockEntry, BlockSize, Covering, Density, KeptBlock, MaskParts, SparseMask};
pub use problem::{AttentionProblem, repeat_kv};
pub use schedule::{Schedule, StepAction};
