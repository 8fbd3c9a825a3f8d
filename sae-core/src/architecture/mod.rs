//! The architectures, one per file.

mod common;
mod relu;
mod topk;

pub use relu::{ReluPenalty, ReluSae, ReluSaeConfig};
pub use topk::{TopKSae, TopKSaeConfig};
