//! # sparse-attn — sparse attention for burn
//!
//! One mask type, [`SparseMask`], that every sparse-attention method lowers to without loss
//! (block lists with full and partial blocks plus per-row key columns, broadcast over batch and
//! GQA groups), the dense masked oracle, model-free quality metrics, and SEA's trainable mask
//! estimator. *Planned*: the sparse kernels (block gather, element gather, a CPU kernel, a
//! dispatcher) and the other estimators (oracle top-k, block top-k, vertical-slash, Quest,
//! SparseD) with their schedules.
//!
//! The dense masked path, [`masked_dense_attention`], is burn's own attention with the
//! equivalent bool mask; it is the oracle every sparse kernel is tested against.
//!
//! [`quality`] judges a mask against dense attention without a model: attention-mass recall,
//! output relative error, oracle top-k recall, KL and achieved density, in query chunks.

mod error;
pub mod estimator;
pub mod kernel;
mod layout;
pub mod mask;
mod problem;
pub mod quality;

pub use error::MaskError;
pub use kernel::{dense_attention, masked_dense_attention};
pub use layout::AttentionLayout;
pub use mask::{BlockEntry, BlockSize, Covering, Density, KeptBlock, MaskParts, SparseMask};
pub use problem::{AttentionProblem, repeat_kv};
pub use quality::{
    Candidate, HeadQuality, MaskQuality, QualityOptions, evaluate_masks, mask_quality,
};
