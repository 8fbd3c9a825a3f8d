//! Hot operations with a portable tensor-op path and a fast host (CPU) path.
//!
//! - Selection: [`top_k_rows`] (row-wise partial selection, tie rule: lower index wins),
//!   [`top_k_flat`] (batch-level, for BatchTopK), and their tensor wrappers [`top_k`] and
//!   [`batch_top_k`].
//! - k-row decoding: [`sparse_decode`] and its backward products
//!   [`sparse_decode_backward_values`], [`scatter_outer`], [`scatter_sum`], with the tensor
//!   wrappers [`sparse_decode_tensor`], [`sparse_decode_backward`], [`scatter_outer_tensor`].
//! - Building blocks for kernels of your own: [`host_data`]/[`f32_slice`] (a tensor's memory
//!   as an `f32` slice, zero-copy on `flex`) and the row primitives [`dot`] and [`axpy`].
//!
//! [`ComputePath`] says which implementation runs; every host kernel is tested against the
//! tensor-op path or a brute-force reference (and, composed into a TopK training step, against
//! autodiff in `sae-train`'s `fast_topk`).
//!
//! **Why plain kernels, not a differentiable op.** burn 0.22 can register a hand-written
//! backward only through its backend-extension API (`extension` feature): a
//! `#[backend_extension(Autodiff, Flex, ..)]` trait with a concrete implementation for every
//! backend it should run on, built against the backend crates themselves. A library crate
//! would have to compile in (and so choose) backends, and the op would not exist on the others.
//! Plain kernels keep `sae-core` backend-free: on a CPU backend a trainer composes them into the
//! step's gradients — for a TopK SAE with `a` the ReLU of the selected pre-activations and `g` the
//! upstream gradient of `x̂`: `∂/∂a = W_dec[idx]·g` ([`sparse_decode_backward_values`]), masked by
//! `a > 0` into `gp`; `∂/∂W_dec` = [`scatter_outer`]`(idx, a, g)`; `∂/∂W_encᵀ` =
//! [`scatter_outer`]`(idx, gp, x − b_dec)`; `∂/∂b_enc` = [`scatter_sum`]`(idx, gp)` — and registers
//! them with `GradientsParams::register` (`sae-train`'s fast TopK step does exactly this); on any
//! other backend it uses autodiff on [`crate::SparseAutoencoder::training_forward`], which gives
//! the same numbers. (With `rescale_acts_by_decoder_norm` the rescale cancels between encoding and
//! decoding, so the same formulas hold with `a = ReLU(pre)` of the unrescaled pre-activations.)

mod compute_path;
mod host;
mod sparse_decode;
mod top_k;
mod vector_ops;

pub use compute_path::ComputePath;
pub use host::{f32_slice, host_data};
pub use sparse_decode::{
    scatter_outer, scatter_outer_tensor, scatter_sum, sparse_decode, sparse_decode_backward,
    sparse_decode_backward_values, sparse_decode_tensor,
};
pub use top_k::{Rank, batch_top_k, top_k, top_k_flat, top_k_rows};
pub use vector_ops::{axpy, dot};
