//! # interp-eval — evaluation of sparse-autoencoder latents without an LLM judge
//!
//! This crate will hold detection and intervention scoring of latents and LLM-free evaluation
//! metrics for dictionaries trained with `sae-core`/`sae-train`, using `sparse-index` to find the
//! contexts where a latent fires.
//!
//! It has no public items yet: its issue has not been taken. The metrics it will implement are
//! described in the workspace's research notes (`interp-eval.md`).
