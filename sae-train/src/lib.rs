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
//!
//! ```
//! use sae_train::{BatchStream, BatchStreamConfig, InMemorySource, TokenFilter};
//! // 64 tokens of width 8 in 8-token sequences; drop position 0 (the attention sink).
//! let acts: Vec<f32> = (0..64 * 8).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
//! let config = BatchStreamConfig::new(16)
//!     .with_seed(1)
//!     .with_filter(TokenFilter::none().drop_positions(8, vec![0]));
//! let mut stream = BatchStream::new(InMemorySource::new(acts, 8)?, config)?;
//! let batch = stream.next_batch()?.unwrap(); // 16 shuffled, normalised rows
//! assert_eq!(batch.len(), 16 * 8);
//! # Ok::<(), sae_train::Error>(())
//! ```

mod atomic;
mod auxk;
mod batches;
mod checkpoint;
mod clip;
mod dead;
mod error;
mod evaluate;
mod fast_topk;
mod filter;
mod metrics_log;
mod normalise;
mod plot;
mod rng;
mod schedule;
mod source;
mod synthetic;
mod trainer;
mod trainer_config;

pub use atomic::write_atomic;
pub use auxk::{AuxKConfig, aux_k_loss};
pub use batches::{BatchStream, BatchStreamConfig, Calibration, StreamCounters, StreamState};
pub use checkpoint::{CheckpointDir, CheckpointFiles};
pub use dead::DeadLatents;
pub use error::{Error, Result};
pub use evaluate::evaluate;
pub use filter::TokenFilter;
pub use metrics_log::{MetricRecord, MetricsLog, MetricsRead};
pub use normalise::Normaliser;
pub use plot::plot_training;
pub use schedule::{CoefficientWarmup, Decay, LrSchedule};
pub use source::{
    ActivationSource, ClosureSource, InMemorySource, NpySource, SafetensorsSource, SourcePosition,
};
pub use synthetic::{
    CorrelatedFeatures, CorrelatedFeaturesConfig, HierarchicalTree, HierarchicalTreeConfig,
    SignedFeatures, SignedFeaturesConfig, SyntheticBatch, SyntheticDataset, SyntheticSource,
    ZipfFeatures, ZipfFeaturesConfig,
};
pub use trainer::{FitOptions, FitSummary, Trainer};
pub use trainer_config::{AdamSettings, SaeRunConfig, TrainerConfig};

pub(crate) use source::{check_finite, host_rows};

/// The device unit tests run on.
#[cfg(test)]
pub(crate) fn test_device() -> burn::prelude::Device {
    burn::prelude::Device::flex()
}
