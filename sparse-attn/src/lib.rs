//! # sparse-attn — sparse attention for burn
//!
//! One mask type, [`SparseMask`], that every sparse-attention method lowers to without loss
//! (block lists with full and partial blocks plus per-row key columns, broadcast over batch and
//! GQA groups), the dense masked oracle, model-free quality metrics, budget policies and
//! schedules, and the estimators oracle top-k, block top-k (Sparse Frontier), vertical-slash
//! (MInference, FlexPrefill's coverage variant), SEA's trainable estimator, SparseD's
//! head-specific block masks ([`Sparsed`], with the per-layer schedule and mask cache
//! [`SparsedAttention`]) and Quest's decode-time page selection ([`Quest`] over a
//! [`PageBounds`] cache).
//!
//! Kernels: [`gather_attention`] computes only the kept cells (kept key blocks gathered and
//! multiplied as matrices, per-row columns gathered key by key, one softmax over both) with
//! burn tensor ops, so it runs on every backend and under autodiff; [`masked_dense_attention`]
//! is burn's own attention with the equivalent bool mask — the fallback and the oracle every
//! kernel is tested against; [`sparse_attention`] picks between them by the measured
//! [`Crossover`] density.
//!
//! [`quality`] judges a mask against dense attention without a model: attention-mass recall,
//! output relative error, oracle top-k recall, KL and achieved density, in query chunks.

pub mod budget;
mod error;
pub mod estimator;
pub mod kernel;
mod layout;
pub mod mask;
mod problem;
pub mod quality;
pub mod schedule;

pub use budget::{Budget, Forced, RowSelector, SplitSelector, select_shared};
pub use error::MaskError;
pub use estimator::{
    BlockTopK, Oracle, PageBounds, Quest, SlashRaster, Sparsed, SparsedAttention, SparsedScale,
    VerticalSlash, VerticalSlashEstimate, block_density,
};
pub use kernel::{
    Crossover, GatherPlan, KernelChoice, choose_kernel, dense_attention, gather_attention,
    host_gather_attention, masked_dense_attention, sparse_attention,
};
pub use layout::AttentionLayout;
pub use mask::{BlockEntry, BlockSize, Covering, Density, KeptBlock, MaskParts, SparseMask};
pub use problem::{AttentionProblem, repeat_kv};
pub use quality::{
    Candidate, HeadQuality, MaskQuality, QualityOptions, evaluate_masks, mask_quality,
};
pub use schedule::{Schedule, StepAction};
