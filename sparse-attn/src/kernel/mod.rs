//! Kernels that run attention under a [`SparseMask`](crate::SparseMask).
//!
//! [`masked_dense_attention`] is burn's own attention with the equivalent bool mask: the
//! fallback above the crossover density and the oracle every other kernel is tested against.

mod dense;

pub use dense::{dense_attention, masked_dense_attention};
