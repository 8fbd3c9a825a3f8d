//! Global gradient-norm clipping over every parameter of a module (PyTorch's
//! `clip_grad_norm_`, which SAELens and dictionary_learning apply with max norm 1.0).
//!
//! burn's `GradientClippingConfig::Norm` clips each parameter tensor separately; the reference
//! trainers clip the norm of all gradients together, so this module does that instead.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.total += g.square().sum().into_scalar::<f32>() as f64;
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f32,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, g * self.factor);
        }
    }
}

/// The global L2 norm of `module`'s gradients in `grads`.
pub(crate) fn global_grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: 0.0 };
    module.visit(&mut v);
    v.total.sqrt()
}

/// Scales all of `module`'s gradients so that their global norm is at most `max_norm`; returns the
/// norm before clipping.
pub(crate) fn clip_global_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_grad_norm(module, grads);
    // PyTorch: clip_coef = max_norm / (norm + 1e-6), applied when below 1.
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let mut s = Scale {
            grads,
            factor: coef as f32,
        };
        module.visit(&mut s);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    #[test]
    fn clips_the_norm_of_all_parameters_together() {
        let device = crate::test_device().autodiff();
        device.seed(1);
        let model = LinearConfig::new(3, 2).init(&device);
        let x = Tensor::<2>::ones([4, 3], &device) * 10.0;
        let loss = model.forward(x).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let before = global_grad_norm(&model, &grads);
        assert!(before > 1.0);
        let reported = clip_global_norm(&model, &mut grads, 1.0);
        approx::assert_relative_eq!(reported, before);
        approx::assert_relative_eq!(global_grad_norm(&model, &grads), 1.0, max_relative = 1e-4);
        // Below the limit nothing changes.
        let again = clip_global_norm(&model, &mut grads, 10.0);
        approx::assert_relative_eq!(global_grad_norm(&model, &grads), again, max_relative = 1e-6);
    }
}
