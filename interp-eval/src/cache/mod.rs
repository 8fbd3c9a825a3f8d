//! The latent cache: SAE codes of an activation stream as posting lists by latent.

mod builder;
mod config;
mod cooccurrence;
mod format;
mod latent_cache;
mod stats;

pub use builder::{CacheBuilder, CodeEntry};
pub use config::CacheConfig;
pub use cooccurrence::Cooccurrence;
pub use format::{FORMAT_VERSION, MAGIC};
pub use latent_cache::{LatentCache, Posting, Postings};

#[cfg(test)]
mod tests;
