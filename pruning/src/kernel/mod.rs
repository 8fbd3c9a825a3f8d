//! CPU sparse × dense kernels: multi-threaded (rayon), cache-blocked, vectorised at run time for
//! the widest instruction set the CPU has.
//!
//! Both entry points take the weight as the sparse left operand `A[out, in]`:
//! - `*_matmul`: `C = A · B` with `B` row-major `[in, n]`;
//! - `*_linear`: `Y = X · Aᵀ` with `X` row-major `[batch, in]`, the forward pass of a linear layer.
//!
//! They use the current rayon pool; run them inside `ThreadPool::install` to choose the thread
//! count.

mod bsr_spmm;
mod csr_spmm;
pub(crate) mod isa;
mod panel;
mod schedule;

pub use bsr_spmm::{bsr_linear, bsr_matmul};
pub use csr_spmm::{csr_linear, csr_matmul};
pub use isa::Isa;
