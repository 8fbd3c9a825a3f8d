//! # sae-core — dictionary-learning layers for burn
//!
//! Sparse autoencoders (SAEs) as burn modules, written once and run on any burn backend: the
//! caller passes tensors and a `&Device`, this crate never picks a backend.
//!
//! What this crate holds:
//! - one shared interface (encode to codes, decode codes, forward, the training-loss terms each
//!   architecture defines) and, where L0 is bounded, k-sparse codes (indices, values) so decoding
//!   gathers k decoder rows instead of a dense matmul;
//! - the architectures: ReLU + L1, TopK, BatchTopK, JumpReLU, Gated, Matryoshka, AbsTopK,
//!   matching pursuit, top-AFA and archetypal (RA-SAE) dictionaries;
//! - initialisation, unit-norm decoders and weight folding that provably keeps outputs unchanged;
//! - SAELens v6 folders (read and write), sparsify and dictionary_learning files (read);
//! - reconstruction metrics (L0, FVU, explained variance, shrinkage, density, decoder geometry)
//!   and ground-truth recovery (MMCS, MCC with an optimal one-to-one matching).
//!
//! `sae-train` trains these layers, `interp-eval` scores them and `sparse-index` searches their
//! codes. See `ARCHITECTURE.md` at the repository root for how the crates fit together.

mod error;

pub use error::{Error, Result};
