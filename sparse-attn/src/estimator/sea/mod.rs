//! **SEA** — Sparse linear attention with an Estimated Attention mask (Lee, Kim, Willette,
//! Hwang; ICLR 2024), following the reference `gmlwns2000/sea-attention@5609413`
//! (`src/models/perlin_attention/`, code name "perlin").
//!
//! Per layer, an estimator network reads `q`, `k`, `v`, summarises every query's attention with
//! Performer linear attention ([`performer`]) over `concat(V_pos, v)` ([`position`]), and decodes
//! a compressed score row of `T_M` relative key positions per query ([`network`], [`decoder`]).
//! A grouped top-k over the heads of each query ([`topk`]) keeps `≈ H·k·T_M/len` compressed
//! cells, which nearest-neighbour interpolation stretches over each row's own keys
//! ([`interpolate`]) into a [`SparseMask`](crate::SparseMask) with on average `≈ k` keys per
//! query and head. Attention then runs on the mask, its probabilities scaled and its context
//! mixed with a running average by two learned per-query gates ([`output`]). The estimator is
//! trained by distillation from the dense teacher ([`loss`]).

pub mod decoder;
pub mod interpolate;
pub mod loss;
pub mod network;
pub mod output;
pub mod performer;
pub mod position;
mod random;
pub mod resample;
pub mod topk;

pub use interpolate::{
    column_keys, compressed_column, interpolate_mask, oversample_keeps, stretch_to_full,
};
pub use loss::{
    DistillationLoss, attention_distillation, context_mse, estimate_distillation, probability_mse,
    teacher_to_compressed,
};
pub use network::{SeaEstimate, SeaEstimator, SeaEstimatorConfig};
pub use output::{MASKED_SCORE, SeaOutput, sea_output};
pub use performer::{Performer, PerformerConfig, performer_features};
pub use topk::{CompressedMask, SeaBudget, grouped_top_k, row_budget};
