//! Seismic-style approximate search: pruned posting lists clustered into summarised blocks,
//! with a compact forward index for exact re-scoring.

mod clustering;
mod config;
mod forward;
mod index;
mod parts;
mod pending;
mod pruning;
mod reorder;
mod search;
mod summary;

pub use config::{
    BlockOrder, PostingBudget, SearchParams, SeismicConfig, UnknownComponents, ValuePrecision,
};
pub use index::{IndexMemory, SeismicIndex};
pub use parts::{BuildProgress, BuildStage};
pub use search::SearchStats;
