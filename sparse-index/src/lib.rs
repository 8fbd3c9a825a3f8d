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
//!
//! ```
//! use sparse_index::metrics::recall_at_k;
//! use sparse_index::{ExactIndex, SearchParams, SeismicConfig, SeismicIndex, SparseCollection, SparseVector};
//!
//! // Documents: strictly increasing component ids with finite values (checked).
//! let docs: SparseCollection = (0..1000u32)
//!     .map(|d| SparseVector::new(vec![d % 17, 20 + d % 31], vec![1.0, 0.5]))
//!     .collect::<Result<Vec<_>, _>>()?
//!     .into_iter()
//!     .collect();
//! let query = SparseVector::new(vec![3, 25], vec![1.0, 2.0])?;
//!
//! // Approximate (Seismic-style) and exact search agree here.
//! let index = SeismicIndex::build(&docs, &SeismicConfig::default())?;
//! let hits = index.search(&query, 10, &SearchParams::default())?;
//! let exact = ExactIndex::new(docs)?.search(&query, 10)?;
//! let ids = |h: &[sparse_index::ScoredDoc]| h.iter().map(|h| h.doc).collect::<Vec<_>>();
//! assert_eq!(recall_at_k(&ids(&hits), &ids(&exact), 10), 1.0);
//! assert_eq!(hits[0].score, 2.0); // 1·1 + 2·0.5
//! # Ok::<(), sparse_index::Error>(())
//! ```
//!
//! The guide (`docs/src/sparse-index.md` in the repository) explains the algorithm, its
//! parameters, where it departs from Seismic and the on-disk format.

pub use collection::SparseCollection;
pub use error::{Error, Result};
pub use exact::{ExactIndex, brute_force_search};
pub use io::{
    JsonlRecord, RecordId, read_jsonl, read_jsonl_with_vocabulary, read_results_tsv,
    read_seismic_bin, write_jsonl, write_results_tsv, write_seismic_bin,
};
pub use seismic::{
    BlockOrder, BuildProgress, BuildStage, IndexMemory, PostingBudget, SearchParams, SearchStats,
    SeismicConfig, SeismicIndex, UnknownComponents, ValuePrecision,
};
pub use topk::{ScoredDoc, TopK};
pub use vector::{SparseVector, SparseView};
pub use vocabulary::Vocabulary;

pub mod fusion;
pub mod metrics;
#[cfg(feature = "burn")]
pub mod tensors;
#[cfg(feature = "burn")]
pub mod training;

mod collection;
mod error;
mod exact;
mod file_format;
mod io;
mod seismic;
mod storage;
mod topk;
mod vector;
mod vocabulary;
