//! # sae-train — train sparse autoencoders on burn
//!
//! A resumable trainer for the layers of `sae-core`, architecture-agnostic: each architecture
//! brings its own loss terms, the trainer brings the rest.
//!
//! What this crate holds:
//! - activation sources behind one trait (in-memory tensors, chunked memory-mapped safetensors and
//!   `.npy` files, a closure such as a forward hook), a seeded shuffle buffer and token filters;
//! - input normalisation to a fixed expected norm, folded into the weights when saving;
//! - Adam with warm-up and decay schedules, sparsity-coefficient warm-up, gradient clipping and
//!   unit-norm decoders with gradient projection;
//! - dead-latent tracking and the auxiliary-K loss;
//! - checkpoint and resume that is bit-identical to an uninterrupted run on the CPU backend;
//! - progress bars, JSONL metric logs and PNG plots; several SAEs trained from one stream;
//! - seeded synthetic datasets with known ground-truth features.
