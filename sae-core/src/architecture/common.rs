//! Pieces shared by the architectures: shape checks for constructors, the encoder input, the
//! linear encoder and decoder most architectures share (initialisation, pre-activations,
//! dictionary, unit-norm constraint), the fold arithmetic and the `"mse"` training output.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::decoder::{
    NORM_EPS, map_param, project_param_gradient, renormalize_rows, row_norms, unit_rows,
};
use crate::training::sse_per_token;
use crate::{DecoderConstraint, Error, LossKind, LossTerm, Result, TrainingOutput};

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

/// Checks the shapes of a linear SAE's tensors against `d_in` and `d_sae`, in the order
/// `W_enc [d_in, d_sae]`, `b_enc [d_sae]`, `W_dec [d_sae, d_in]`, `b_dec [d_in]`.
pub(crate) fn check_linear_shapes(
    d_in: usize,
    d_sae: usize,
    w_enc: &Tensor<2>,
    b_enc: &Tensor<1>,
    w_dec: &Tensor<2>,
    b_dec: &Tensor<1>,
) -> Result<()> {
    check_shape("W_enc", w_enc, [d_in, d_sae])?;
    check_shape("b_enc", b_enc, [d_sae])?;
    check_shape("W_dec", w_dec, [d_sae, d_in])?;
    check_shape("b_dec", b_dec, [d_in])
}

/// The values of a float tensor on the host as `f32`, for a value check (a quantized tensor is
/// dequantized first).
///
/// # Errors
/// [`Error::InvalidValue`] naming `what` when the values cannot be read as `f32` (a check that
/// cannot see the values must not pass them).
pub(crate) fn host_values<const D: usize>(tensor: &Tensor<D>, what: &str) -> Result<Vec<f32>> {
    tensor
        .clone()
        .dequantize()
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::InvalidValue {
            what: what.to_string(),
            reason: format!("its values cannot be read as f32 for checking: {e:?}"),
        })
}

/// [`DecoderConstraint::UnitNorm`] when `unit_norm`, [`DecoderConstraint::Free`] otherwise.
pub(crate) fn unit_norm_when(unit_norm: bool) -> DecoderConstraint {
    if unit_norm {
        DecoderConstraint::UnitNorm
    } else {
        DecoderConstraint::Free
    }
}

/// Tied initial weights `(W_enc, W_dec)` ([`crate::init::tied_weights`]) whose decoder rows
/// start at norm 1 for a unit-norm decoder and at `decoder_init_norm` for a free one.
pub(crate) fn tied_init_weights(
    d_in: usize,
    d_sae: usize,
    constraint: DecoderConstraint,
    decoder_init_norm: f64,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let norm = match constraint {
        DecoderConstraint::UnitNorm => 1.0,
        DecoderConstraint::Free => decoder_init_norm,
    };
    crate::init::tied_weights(d_in, d_sae, norm, device)
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

/// The linear pre-activations `(x − b_dec) W_enc + b_enc` (without the `b_dec` subtraction
/// unless `apply_b_dec`), `[batch, d_sae]`.
pub(crate) fn linear_pre_activations(
    x: Tensor<2>,
    w_enc: &Param<Tensor<2>>,
    b_enc: &Param<Tensor<1>>,
    b_dec: &Param<Tensor<1>>,
    apply_b_dec: bool,
) -> Tensor<2> {
    encoder_input(x, b_dec, apply_b_dec).matmul(w_enc.val()) + row(b_enc.val())
}

/// `pre ⊙ ‖W_dec,i‖` when `rescale` (SAELens `rescale_acts_by_decoder_norm`), `pre` otherwise.
pub(crate) fn rescale_by_decoder_norms(
    pre: Tensor<2>,
    w_dec: &Param<Tensor<2>>,
    rescale: bool,
) -> Tensor<2> {
    if rescale {
        pre * row(row_norms(w_dec.val()))
    } else {
        pre
    }
}

/// The dictionary of a linear decoder: `W_dec` with unit rows when the codes are rescaled by
/// the decoder norms (`rescale`: they are then the codes of the unit-row SAE), as stored
/// otherwise.
pub(crate) fn linear_dictionary(w_dec: &Param<Tensor<2>>, rescale: bool) -> Tensor<2> {
    if rescale {
        unit_rows(w_dec.val())
    } else {
        w_dec.val()
    }
}

/// [`crate::SparseAutoencoder::project_gradients`] of a decoder `W_dec` under `constraint`:
/// removes each row's parallel gradient component for a unit-norm decoder, nothing otherwise.
pub(crate) fn project_decoder_gradient(
    grads: &mut GradientsParams,
    w_dec: &Param<Tensor<2>>,
    constraint: DecoderConstraint,
) {
    if constraint == DecoderConstraint::UnitNorm {
        project_param_gradient(grads, w_dec);
    }
}

/// [`crate::SparseAutoencoder::apply_constraints`] of a decoder `W_dec` under `constraint`:
/// rows renormalised to unit norm for a unit-norm decoder, unchanged otherwise.
pub(crate) fn constrain_decoder(
    w_dec: Param<Tensor<2>>,
    constraint: DecoderConstraint,
) -> Param<Tensor<2>> {
    match constraint {
        DecoderConstraint::UnitNorm => renormalize_rows(w_dec),
        DecoderConstraint::Free => w_dec,
    }
}

/// The decoder row norms `‖W_dec,i‖`, at least [`NORM_EPS`] (what folding divides by).
pub(crate) fn decoder_norms(w_dec: &Param<Tensor<2>>) -> Tensor<1> {
    row_norms(w_dec.val()).clamp_min(NORM_EPS)
}

/// Folds the decoder row norms `n` ([`decoder_norms`]) of a linear SAE into its encoder:
/// returns `(W_enc[:, i] · n_i, b_enc[i] · n_i, W_dec,i / n_i)`.
pub(crate) fn fold_norms_into_encoder(
    w_enc: Param<Tensor<2>>,
    b_enc: Param<Tensor<1>>,
    w_dec: Param<Tensor<2>>,
) -> (Param<Tensor<2>>, Param<Tensor<1>>, Param<Tensor<2>>) {
    let norms = decoder_norms(&w_dec);
    (
        scale_columns(w_enc, norms.clone()),
        scale_vector(b_enc, norms.clone()),
        scale_rows(w_dec, norms.recip()),
    )
}

/// Folds an input scale into a linear encoder and decoder: returns
/// `(W_enc · scale, W_dec / scale, b_dec / scale)`. The pre-activations of raw `x` are then
/// those of `x · scale` before, and the output is divided by `scale` (see
/// [`crate::SparseAutoencoder::fold_input_scale`]).
pub(crate) fn fold_scale_into_linear(
    w_enc: Param<Tensor<2>>,
    w_dec: Param<Tensor<2>>,
    b_dec: Param<Tensor<1>>,
    scale: f64,
) -> (Param<Tensor<2>>, Param<Tensor<2>>, Param<Tensor<1>>) {
    (
        scale_param(w_enc, scale),
        scale_param(w_dec, 1.0 / scale),
        scale_param(b_dec, 1.0 / scale),
    )
}

/// The main reconstruction term `"mse"`: SSE per token of `reconstruction` against `x`.
pub(crate) fn mse_term(x: Tensor<2>, reconstruction: Tensor<2>) -> LossTerm {
    LossTerm {
        name: "mse",
        kind: LossKind::Reconstruction,
        value: sse_per_token(x, reconstruction),
    }
}

/// A training output whose objective is the `"mse"` term alone, with unsigned codes and no
/// sparse codes or pre-activations; callers set those with struct-update syntax.
pub(crate) fn mse_output(
    x: Tensor<2>,
    reconstruction: Tensor<2>,
    codes: Tensor<2>,
) -> TrainingOutput {
    TrainingOutput {
        losses: vec![mse_term(x, reconstruction.clone())],
        reconstruction,
        codes,
        sparse_codes: None,
        pre_activations: None,
        signed_codes: false,
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
