//! Metrics of a sparse autoencoder: reconstruction quality and sparsity, streamed over batches;
//! decoder geometry; recovery of a known ground-truth dictionary.

mod afa;
mod decoder_geometry;
mod ground_truth;
mod host;
mod reconstruction;
mod sae_metrics;
mod sparsity;

pub use afa::afa_epsilon_lbo;
pub use decoder_geometry::{DecoderGeometry, decoder_geometry};
pub use ground_truth::{GroundTruthRecovery, MatchedPair, ground_truth_recovery, mcc, mmcs};
pub use reconstruction::{ReconstructionMetrics, ReconstructionReport};
pub use sae_metrics::{SaeMetrics, SaeMetricsReport};
pub use sparsity::{SparsityMetrics, SparsityReport};
