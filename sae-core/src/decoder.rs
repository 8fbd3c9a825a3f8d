//! Decoder geometry: row norms, unit-norm rows and the parallel-gradient projection that keeps a
//! unit-norm decoder on its constraint during training.
//!
//! The unit-norm convention (OpenAI `unit_norm_decoder_grad_adjustment_`, sparsify
//! `remove_gradient_parallel_to_decoder_directions`, dictionary_learning `ConstrainedAdam`):
//! before the optimiser step the component of each decoder row's gradient parallel to the row is
//! removed, `g_i ← g_i − (g_i · ŵ_i) ŵ_i`; after the step every row is rescaled to norm 1.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Smallest norm used as a divisor, so an all-zero row stays zero instead of becoming NaN.
pub const NORM_EPS: f32 = 1e-8;

/// Euclidean norm of each row, `[rows]`.
///
/// # Shapes
/// `w`: `[rows, cols]` → `[rows]`.
pub fn row_norms(w: Tensor<2>) -> Tensor<1> {
    let [rows, _] = w.dims();
    w.powi_scalar(2).sum_dim(1).sqrt().reshape([rows])
}

/// Each row divided by its norm (rows of norm below [`NORM_EPS`] are divided by `NORM_EPS`).
pub fn unit_rows(w: Tensor<2>) -> Tensor<2> {
    let norms = w
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(NORM_EPS);
    w / norms
}

/// Removes from each row of `grad` its component along the same row of `w`:
/// `g_i − (g_i · ŵ_i) ŵ_i` with `ŵ_i = w_i / ‖w_i‖`.
///
/// # Shapes
/// `grad`, `w`: `[rows, cols]`.
pub fn remove_parallel_component(grad: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let unit = unit_rows(w);
    let parallel = (grad.clone() * unit.clone()).sum_dim(1);
    grad - unit * parallel
}

/// Applies [`remove_parallel_component`] to the gradient registered for `param` in `grads`
/// (nothing happens when `param` has no gradient).
pub fn project_param_gradient(grads: &mut GradientsParams, param: &Param<Tensor<2>>) {
    if let Some(grad) = grads.remove::<2>(param.id) {
        let w = param.val().inner();
        grads.register::<2>(param.id, remove_parallel_component(grad, w));
    }
}

/// Rescales every row of the parameter to unit norm, keeping its id (so optimiser state stays
/// attached) and its gradient requirement.
pub fn renormalize_rows(param: Param<Tensor<2>>) -> Param<Tensor<2>> {
    map_param(param, unit_rows)
}

/// Replaces a parameter's value by `f(value)` computed outside the autodiff graph, keeping its
/// id and its `require_grad` setting.
pub(crate) fn map_param<const D: usize>(
    param: Param<Tensor<D>>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    param.map(|value| {
        let require_grad = value.is_require_grad();
        let mapped = f(value.detach());
        if require_grad {
            mapped.detach().require_grad()
        } else {
            mapped.detach()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    #[test]
    fn projection_removes_exactly_the_radial_component() {
        let device = test_device();
        let w = Tensor::<2>::from_floats([[3.0, 4.0], [0.0, 2.0]], &device);
        let g = Tensor::<2>::from_floats([[1.0, 1.0], [5.0, 7.0]], &device);
        // Row 0: ŵ = (0.6, 0.8), g·ŵ = 1.4, g − 1.4ŵ = (0.16, −0.12).
        // Row 1: ŵ = (0, 1), g·ŵ = 7, g − 7ŵ = (5, 0).
        remove_parallel_component(g, w)
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[0.16f32, -0.12], [5.0, 0.0]]),
                Default::default(),
            );
    }

    #[test]
    fn renormalize_keeps_id_and_gradient_requirement() {
        let device = test_device().autodiff();
        let p = Param::from_tensor(Tensor::<2>::from_floats([[3.0, 4.0], [0.0, 0.0]], &device));
        let id = p.id;
        let p = renormalize_rows(p);
        assert_eq!(p.id, id);
        assert!(p.val().is_require_grad());
        p.val().into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.6f32, 0.8], [0.0, 0.0]]),
            Default::default(),
        );
    }
}
