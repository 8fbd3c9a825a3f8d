//! Shared pieces of the sparseland example programs.
//!
//! The examples are the only code in the workspace that chooses a burn backend; libraries take a
//! `&Device` from their caller.

use burn::prelude::Device;

/// The device the examples run on.
///
/// A GPU backend when the crate is built with the `cuda` or `wgpu` feature, burn's `flex` CPU
/// backend (SIMD, multi-threaded) otherwise. The `BURN_DEVICE` environment variable
/// (`flex`, `wgpu`, `cuda`, ...) overrides the choice, as in burn.
///
/// ```
/// let device = examples::device();
/// let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
/// assert_eq!(x.dims(), [2]);
/// ```
pub fn device() -> Device {
    Device::default()
}
