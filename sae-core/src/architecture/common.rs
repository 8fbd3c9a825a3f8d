//! Pieces shared by the architectures: shape checks for constructors, the encoder input, the
//! fold arithmetic.

use burn::module::Param;
use burn::prelude::*;

use crate::decoder::map_param;
use crate::{Error, Result};

/// Checks that `tensor` has shape `expected`, naming it in the error (the path is
/// [`Error::MEMORY`]: the tensors are in memory; a file reader reports its own path).
pub(crate) fn check_shape<const D: usize, K: burn::tensor::kind::Basic>(
    name: &str,
    tensor: &Tensor<D, K>,
    expected: [usize; D],
) -> Result<()> {
    let found = tensor.dims();
    if found == expected {
        Ok(())
    } else {
        Err(Error::TensorShape {
            path: Error::MEMORY.into(),
            name: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

/// Panics with a message naming the architecture, when `x` is not `[batch, d_in]`.
pub(crate) fn check_input(architecture: &str, x: &Tensor<2>, d_in: usize) {
    let [_, width] = x.dims();
    assert_eq!(
        width, d_in,
        "{architecture}: input must be [batch, d_in = {d_in}], found width {width}"
    );
}

/// Panics when a hyperparameter is out of range.
pub(crate) fn check_positive(what: &str, value: usize) {
    assert!(value > 0, "{what} must be positive, found {value}");
}

/// `x − b_dec` when the architecture subtracts the decoder bias from its input (SAELens
/// `apply_b_dec_to_input`), `x` otherwise.
pub(crate) fn encoder_input(
    x: Tensor<2>,
    b_dec: &Param<Tensor<1>>,
    apply_b_dec: bool,
) -> Tensor<2> {
    if apply_b_dec {
        x - b_dec.val().unsqueeze::<2>()
    } else {
        x
    }
}

/// A `[d_sae]` vector as a `[1, d_sae]` row for broadcasting over the batch.
pub(crate) fn row(v: Tensor<1>) -> Tensor<2> {
    v.unsqueeze::<2>()
}

/// A `[d_sae]` vector as a `[d_sae, 1]` column.
pub(crate) fn column(v: Tensor<1>) -> Tensor<2> {
    let [n] = v.dims();
    v.reshape([n, 1])
}

/// Multiplies a parameter by a constant (outside the graph).
pub(crate) fn scale_param<const D: usize>(p: Param<Tensor<D>>, factor: f64) -> Param<Tensor<D>> {
    map_param(p, |t| t.mul_scalar(factor))
}

/// Multiplies column `i` of a `[rows, d_sae]` parameter by `factors[i]`.
pub(crate) fn scale_columns(p: Param<Tensor<2>>, factors: Tensor<1>) -> Param<Tensor<2>> {
    map_param(p, |t| t * row(factors.detach()))
}

/// Multiplies row `i` of a `[d_sae, cols]` parameter by `factors[i]`.
pub(crate) fn scale_rows(p: Param<Tensor<2>>, factors: Tensor<1>) -> Param<Tensor<2>> {
    map_param(p, |t| t * column(factors.detach()))
}

/// Multiplies a `[d_sae]` parameter elementwise.
pub(crate) fn scale_vector(p: Param<Tensor<1>>, factors: Tensor<1>) -> Param<Tensor<1>> {
    map_param(p, |t| t * factors.detach())
}
