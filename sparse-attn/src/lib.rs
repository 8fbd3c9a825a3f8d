//! # sparse-attn — sparse attention for burn
//!
//! This crate will hold top-k and block-sparse attention masks — SEA, SparseD, vertical-slash
//! and Quest — and the kernels that run attention under them, as plain functions over burn
//! tensors that work on any backend.
//!
//! It has no public items yet: its issue has not been taken. The algorithms it will implement
//! are described in the workspace's research notes (`sparse-attn.md`).
