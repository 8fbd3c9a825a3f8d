//! # sae-core — dictionary-learning layers for burn
//!
//! Sparse autoencoders (SAEs) as burn modules, written once and run on any burn backend: the
//! caller passes tensors and a `&Device`, this crate never picks a backend.
//!
//! What this crate holds:
//! - one shared interface, [`SparseAutoencoder`]: encode to codes, decode codes, forward, and the
//!   training hooks (the loss terms each architecture defines, decoder constraints, running
//!   state, input-scale folding, export to the inference form) that keep `sae-train`
//!   architecture-agnostic;
//! - k-sparse codes ([`SparseCodes`], `(indices, values)` `[batch, k]`) so decoding gathers k
//!   decoder rows instead of a dense matmul;
//! - the architectures: ReLU + L1 ([`ReluSae`]), TopK ([`TopKSae`]), BatchTopK
//!   ([`BatchTopKSae`]), JumpReLU ([`JumpReluSae`]), Gated ([`GatedSae`]), Matryoshka
//!   ([`MatryoshkaSae`]), AbsTopK ([`AbsTopKSae`]), matching pursuit ([`MatchingPursuitSae`]),
//!   top-AFA ([`TopAfaSae`]) and relaxed archetypal dictionaries ([`ArchetypalSae`]), and
//!   [`AnySae`], one type for all of them;
//! - initialisation ([`init`]), unit-norm decoders ([`decoder`]) and weight folding that keeps
//!   outputs unchanged;
//! - CPU kernels with a portable tensor-op twin ([`kernels`]): partial-selection top-k and k-row
//!   sparse decoding with its backward products;
//! - files ([`io`]): SAELens v6 folders read and written with SAELens' tensor names and
//!   orientations ([`io::save_saelens`], [`io::load_saelens`]), sparsify and dictionary_learning
//!   folders read, every bad input a typed [`Error`];
//! - metrics ([`metrics`]): streaming L0, L1, FVU / explained variance, MSE, cosine, shrinkage,
//!   firing density ([`metrics::SaeMetrics`]), decoder geometry, and ground-truth recovery
//!   (MMCS, MCC with an optimal matching).
//!
//! `sae-train` trains these layers, `interp-eval` scores them and `sparse-index` searches their
//! codes. See `ARCHITECTURE.md` at the repository root for how the crates fit together.
//!
//! ```
//! use burn::prelude::*;
//! use sae_core::{SparseAutoencoder, StepContext, TopKSaeConfig};
//!
//! let device = Device::flex();
//! device.seed(42);
//! let sae = TopKSaeConfig::new(16, 64, 4).init(&device);
//! let x = Tensor::<2>::random([8, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
//!
//! // Inference: k-sparse codes, decoded by gathering 4 dictionary rows per token.
//! let codes = sae.encode_sparse(x.clone()).unwrap();
//! let x_hat = sae.decode_sparse(&codes);
//! assert_eq!(x_hat.dims(), [8, 16]);
//!
//! // Training: the architecture's loss terms for this step.
//! let out = sae.training_forward(x, &StepContext::new(0));
//! assert!(out.loss("mse").is_some());
//! ```

pub use any_sae::AnySae;
pub use architecture::ConfigError;
pub use architecture::{
    AbsTopKSae, AbsTopKSaeConfig, ArchetypalSae, ArchetypalSaeConfig, BatchTopKSae,
    BatchTopKSaeConfig, GatedSae, GatedSaeConfig, JumpReluSae, JumpReluSaeConfig,
    JumpReluSparsityLoss, MatchingPursuitSae, MatchingPursuitSaeConfig, MatryoshkaLevelCodes,
    MatryoshkaSae, MatryoshkaSaeConfig, ReluPenalty, ReluSae, ReluSaeConfig, TopAfaSae,
    TopAfaSaeConfig, TopKSae, TopKSaeConfig,
};

/// Activation functions with their straight-through estimators (JumpReLU and the step).
pub mod activation {
    pub use crate::architecture::{jumprelu, step};
}
pub use error::{Error, Result};
pub use sae::{Architecture, DecoderConstraint, SparseAutoencoder};
pub use sparse_codes::SparseCodes;
pub use training::{LossKind, LossTerm, StepContext, TrainingOutput, sse_per_token};

pub mod decoder;
pub mod init;
pub mod io;
pub mod kernels;
pub mod metrics;

mod any_sae;
mod architecture;
mod error;
mod sae;
mod sparse_codes;
mod training;

/// The CPU device tests run on.
#[cfg(test)]
pub(crate) fn test_device() -> burn::prelude::Device {
    burn::prelude::Device::flex()
}
