//! # interp-eval — evaluation of sparse-autoencoder latents
//!
//! (crate docs written below in full once the modules land)

pub use cache::{
    CacheBuilder, CacheConfig, CodeEntry, Cooccurrence, FORMAT_VERSION, LatentCache, MAGIC,
    Posting, Postings,
};
pub use error::{Error, Result};

pub mod cache;
mod error;
pub mod examples;
pub mod judge;
pub mod metrics;
pub mod negatives;
pub mod neighbours;
pub mod pipeline;
pub mod sampling;
pub mod scorer;
pub mod text;

#[cfg(test)]
mod tests;
