//! RMSNorm as Hugging Face Llama computes it: in f32, the weight applied after normalising, with
//! the scale and the normalised value exposed for TransformerLens' `hook_scale` /
//! `hook_normalized`.

use burn::module::Param;
use burn::prelude::*;

/// Root-mean-square normalisation with a learned per-channel weight.
///
/// Named `LlamaRmsNorm` (not `RmsNorm`) so that burn-store's PyTorch adapter, which renames
/// `weight` → `gamma` for burn's own `RmsNorm`, leaves Hugging Face's `weight` name alone.
#[derive(Module, Debug)]
pub struct LlamaRmsNorm {
    /// Per-channel weight `[d_model]`.
    pub weight: Param<Tensor<1>>,
    /// ε added to the mean square.
    pub eps: f64,
}

impl LlamaRmsNorm {
    /// A norm with weight 1.
    pub fn new(d_model: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d_model], device)),
            eps,
        }
    }

    /// `scale = sqrt(mean(x²) + ε)`, `[batch, pos, 1]`; the normalised value is `x / scale`.
    pub fn scale(&self, x: Tensor<3>) -> Tensor<3> {
        x.powi_scalar(2).mean_dim(2).add_scalar(self.eps).sqrt()
    }

    /// Applies the weight to a normalised value.
    pub fn weigh(&self, normalized: Tensor<3>) -> Tensor<3> {
        let d = self.weight.dims()[0];
        normalized * self.weight.val().reshape([1, 1, d])
    }
}
