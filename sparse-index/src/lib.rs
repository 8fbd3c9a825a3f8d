//! # sparse-index — top-k retrieval over learned sparse vectors
//!
//! An inverted index for learned sparse representations (SPLADE-style document vectors,
//! sparse-autoencoder latents) that answers top-k inner-product queries.
//!
//! What this crate holds:
//! - a validated sparse vector type and readers/writers for Seismic's binary format and the
//!   JSONL `{"id", "vector": {"term": weight}}` interchange format;
//! - exact search (forward-index brute force, term-at-a-time traversal) as the oracle;
//! - Seismic-style approximate search: pruned posting lists clustered into blocks with quantised
//!   summaries, and a forward index for exact re-scoring;
//! - documents added after the build, versioned and checksummed files that can be memory-mapped;
//! - retrieval metrics (recall@k, nDCG@k, MRR@k) and, behind the `burn` feature, training losses
//!   for sparse encoders and dense + sparse score fusion.
//!
//! The index itself does not depend on burn.
