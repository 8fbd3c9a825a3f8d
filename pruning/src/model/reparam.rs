//! The reparameterization that turns a dense parameter into (dense weight, mask): burn's
//! equivalent of torch's `weight_orig` + `weight_mask` + forward pre-hook.

use burn::module::{Module, Param, ParamId, Reparameterization};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::Mask;

/// The name under which the mask lives inside a pruned parameter: a parameter `fc1.weight`
/// stores its dense weight at `fc1.weight` (torch: `weight_orig`), its mask at
/// `fc1.weight.pruning.mask` (torch: `weight_mask`) and its forward mode at
/// `fc1.weight.pruning.mode`.
pub const REPARAM_NAME: &str = "pruning";

/// The mask attached to one pruned parameter.
///
/// burn calls [`Reparameterization::apply`] whenever the parameter is read (`param.val()`, so
/// every `forward`), so any module — `Linear`, `Conv2d`, your own — computes with the masked
/// weight while the optimiser updates the dense one (`param.base()`), exactly like torch's
/// pruning hooks. The mask is a `Bool` parameter: saved and loaded with the model, moved with
/// it between devices, never trained.
///
/// The effective weight is `w ⊙ m̃` with the soft mask `m̃ = E + (1 − E)·α`, where `E` is the
/// binary mask and `α` the scale of pruned weights (0 for plain pruning; Progressive Gradient
/// Flow's mask decay raises it). The gradient reaching the dense weight is
/// `g ⊙ (m̃ + (1 − m̃)·s)`: with `s = 0` it is torch's `g ⊙ mask` (hard masking), with `s = 1`
/// the full `g` (the straight-through estimator of SR-STE and PGF). `α` and `s` are stored in
/// the two-element `mode` parameter, which never receives a gradient.
#[derive(Module, Debug)]
pub struct PruningReparam {
    /// The keep mask, flattened row-major (`true` = kept).
    pub(crate) mask: Param<Tensor<1, Bool>>,
    /// `[α, s]`: the scale of pruned weights in the forward and the straight-through switch.
    pub(crate) mode: Param<Tensor<1>>,
}

impl PruningReparam {
    /// A hard mask (`α = 0`, `s = 0`) on `device`.
    pub(crate) fn new(mask: &Mask, device: &Device) -> Self {
        Self {
            mask: Param::initialized(ParamId::new(), mask_tensor(mask, device)),
            mode: Param::initialized(
                ParamId::new(),
                Tensor::from_data(TensorData::new(vec![0.0f32, 0.0], [2]), device),
            ),
        }
    }
}

pub(crate) fn mask_tensor(mask: &Mask, device: &Device) -> Tensor<1, Bool> {
    Tensor::from_data(
        TensorData::new(mask.as_slice().to_vec(), [mask.len()]),
        device,
    )
}

impl Reparameterization for PruningReparam {
    const NAME: &'static str = REPARAM_NAME;

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        let shape = base.shape();
        let ones = Shape::from(vec![1; D]);
        let keep: Tensor<D> = self.mask.val().float().reshape(shape);
        let mode = self.mode.val().detach();
        let alpha: Tensor<D> = mode.clone().narrow(0, 0, 1).reshape(ones.clone());
        let ste: Tensor<D> = mode.narrow(0, 1, 1).reshape(ones);
        // m̃ = E + (1 − E)·α; the gradient factor is m̃ + (1 − m̃)·s.
        let soft = keep.clone() + (keep.neg() + 1.0) * alpha;
        let leak = (soft.clone().neg() + 1.0) * ste;
        let through = base.clone() * leak;
        base * soft + through.clone() - through.detach()
    }
}
