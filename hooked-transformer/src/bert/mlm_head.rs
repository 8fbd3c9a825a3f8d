//! BERT's masked-language-model head: dense → GELU → LayerNorm, then the decoder tied to the
//! word embeddings plus a bias (Hugging Face `cls.predictions`).

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::config::BertConfig;
use super::norm::{layer_norm, layer_norm_points};
use crate::{ActivationCache, Hooks};

/// The MLM head's own parameters; the decoder matrix is the word embedding table.
#[derive(Module, Debug)]
pub struct MlmHead {
    /// `cls.predictions.transform.dense`, `[d_model, d_model]`.
    pub dense: Linear,
    /// `cls.predictions.transform.LayerNorm`.
    pub ln: LayerNorm,
    /// `cls.predictions.bias` (= `cls.predictions.decoder.bias`), `[vocab]`.
    pub bias: Param<Tensor<1>>,
    eps: f64,
}

impl MlmHead {
    /// A random head (normal, std 0.02; zero bias).
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        Self {
            dense: LinearConfig::new(d, d)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
            ln: LayerNormConfig::new(d)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
            eps: config.layer_norm_eps,
        }
    }

    /// `LayerNorm(gelu(dense(h)))`, firing `mlm_head.ln.hook_scale` and
    /// `mlm_head.ln.hook_normalized`.
    ///
    /// # Shapes
    /// - `h`: `[batch, pos, d_model]` → `[batch, pos, d_model]`
    pub fn transform(
        &self,
        h: Tensor<3>,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let t = gelu(self.dense.forward(h));
        layer_norm(&self.ln, self.eps, t, "mlm_head.ln", hooks, cache)
    }

    /// Decoder logits `t · W_wordᵀ + bias`.
    ///
    /// # Shapes
    /// - `t`: `[batch, pos, d_model]`, `word`: `[vocab, d_model]` → `[batch, pos, vocab]`
    pub fn logits(&self, t: Tensor<3>, word: &Embedding) -> Tensor<3> {
        let [b, p, d] = t.dims();
        let w = word.weight.val();
        let v = w.dims()[0];
        let logits = t.reshape([b * p, d]).matmul(w.transpose()) + self.bias.val().reshape([1, v]);
        logits.reshape([b, p, v])
    }

    /// The hook points of [`MlmHead::transform`].
    pub fn hook_points() -> Vec<String> {
        layer_norm_points("mlm_head.ln").into()
    }
}
