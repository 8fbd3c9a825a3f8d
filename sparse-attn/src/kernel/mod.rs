//! Kernels that run attention under a [`SparseMask`](crate::SparseMask).
//!
//! - [`masked_dense_attention`]: burn's own attention with the equivalent bool mask — the
//!   fallback above the crossover density and the oracle every other kernel is tested against.
//! - [`gather_attention`]: computes only the kept cells — whole kept key blocks gathered and
//!   multiplied as matrices, per-row columns gathered key by key, one softmax over both; burn
//!   tensor ops only, so it runs on every backend and under autodiff.
//! - [`host_gather_attention`]: a CPU kernel of our own for element masks (rows read in place
//!   from host memory over rayon; forward only), faster than the portable path on the CPU.
//! - [`sparse_attention`]: picks one by the measured [`Crossover`].

mod dense;
mod dispatch;
mod gather;
mod host;

pub use dense::{dense_attention, masked_dense_attention};
pub use dispatch::{Crossover, KernelChoice, choose_kernel, sparse_attention};
pub use gather::{GatherPlan, gather_attention};
pub use host::host_gather_attention;

#[cfg(test)]
mod tests;
