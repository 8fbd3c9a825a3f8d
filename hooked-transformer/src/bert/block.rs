//! One post-LayerNorm BERT encoder block: bidirectional self-attention with key padding, then a
//! GELU MLP, each followed by a residual add and a LayerNorm.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::config::BertConfig;
use super::norm::{layer_norm, layer_norm_points};
use crate::attention::{apply_pattern, attention_pattern, attention_scores, dense_attention};
use crate::{ActivationCache, AttentionInputs, Hooks, names};

/// BERT self-attention: q, k, v and output projections (Hugging Face `attention.self.*` and
/// `attention.output.dense`).
#[derive(Module, Debug)]
pub struct BertAttention {
    /// Query projection `[d_model, d_model]` (burn's `[in, out]` layout).
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    n_heads: usize,
}

/// BERT's MLP: `intermediate.dense` then exact GELU then `output.dense`.
#[derive(Module, Debug)]
pub struct BertMlp {
    /// `[d_model, d_mlp]`.
    pub w_in: Linear,
    /// `[d_mlp, d_model]`.
    pub w_out: Linear,
}

/// One encoder block (Hugging Face `BertLayer`, TransformerLens `BertBlock`).
#[derive(Module, Debug)]
pub struct BertBlock {
    /// Self-attention.
    pub attn: BertAttention,
    /// LayerNorm after attention (Hugging Face `attention.output.LayerNorm`).
    pub ln1: LayerNorm,
    /// The MLP.
    pub mlp: BertMlp,
    /// LayerNorm after the MLP (Hugging Face `output.LayerNorm`).
    pub ln2: LayerNorm,
    layer: usize,
    eps: f64,
}

impl BertBlock {
    /// Block `layer` with random weights (normal, std 0.02, zero biases).
    pub fn new(config: &BertConfig, layer: usize, device: &Device) -> Self {
        let init = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let linear = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(init.clone())
                .init(device)
        };
        let (d, f) = (config.hidden_size, config.intermediate_size);
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        Self {
            attn: BertAttention {
                q: linear(d, d),
                k: linear(d, d),
                v: linear(d, d),
                o: linear(d, d),
                n_heads: config.num_attention_heads,
            },
            ln1: ln(),
            mlp: BertMlp {
                w_in: linear(d, f),
                w_out: linear(f, d),
            },
            ln2: ln(),
            layer,
            eps: config.layer_norm_eps,
        }
    }

    /// The block's output (the next block's input), firing this layer's hook points in
    /// TransformerLens order: `hook_resid_pre`, `attn.hook_q/k/v` `[batch, pos, heads, d_head]`,
    /// `attn.hook_attn_scores`/`attn.hook_pattern` `[batch, heads, query, key]` (computed only
    /// when a hook or the cache asks for them, and not at all under an attention override),
    /// `attn.hook_z`, `hook_attn_out`, `hook_resid_mid`, `ln1.hook_scale/normalized`,
    /// `mlp.hook_pre`, `mlp.hook_post`, `hook_mlp_out`, `hook_resid_post` (before `ln2`, as in
    /// TransformerLens), `ln2.hook_scale/normalized`, `hook_normalized_resid_post`.
    ///
    /// # Shapes
    /// - `x`: `[batch, pos, d_model]`; `padding`: `[batch, pos]`, `true` = padding
    /// - output: `[batch, pos, d_model]`
    ///
    /// # Panics
    /// If an attention override returns a tensor of another shape than `[batch, heads, pos,
    /// d_head]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        padding: Option<&Tensor<2, Bool>>,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let l = self.layer;
        let x = hooks.point3(&names::resid_pre(l), x, cache);
        let attn_out = self.attn.forward(x.clone(), padding, l, hooks, cache);
        let attn_out = hooks.point3(&names::attn_out(l), attn_out, cache);
        let mid = hooks.point3(&names::resid_mid(l), x + attn_out, cache);
        let h = layer_norm(
            &self.ln1,
            self.eps,
            mid,
            &names::block(l, "ln1"),
            hooks,
            cache,
        );
        let pre = hooks.point3(
            &names::mlp(l, "pre"),
            self.mlp.w_in.forward(h.clone()),
            cache,
        );
        let post = hooks.point3(&names::mlp(l, "post"), gelu(pre), cache);
        let mlp_out = hooks.point3(&names::mlp_out(l), self.mlp.w_out.forward(post), cache);
        let resid_post = hooks.point3(&names::resid_post(l), h + mlp_out, cache);
        let out = layer_norm(
            &self.ln2,
            self.eps,
            resid_post,
            &names::block(l, "ln2"),
            hooks,
            cache,
        );
        hooks.point3(&names::block(l, "hook_normalized_resid_post"), out, cache)
    }

    /// The hook points of block `layer`, in execution order.
    pub fn hook_points(layer: usize) -> Vec<String> {
        let mut v = vec![names::resid_pre(layer)];
        v.extend(["q", "k", "v", "attn_scores", "pattern", "z"].map(|p| names::attn(layer, p)));
        v.extend([names::attn_out(layer), names::resid_mid(layer)]);
        v.extend(layer_norm_points(&names::block(layer, "ln1")));
        v.extend([
            names::mlp(layer, "pre"),
            names::mlp(layer, "post"),
            names::mlp_out(layer),
            names::resid_post(layer),
        ]);
        v.extend(layer_norm_points(&names::block(layer, "ln2")));
        v.push(names::block(layer, "hook_normalized_resid_post"));
        v
    }
}

impl BertAttention {
    /// Attention output before the residual add, `[batch, pos, d_model]`.
    fn forward(
        &self,
        x: Tensor<3>,
        padding: Option<&Tensor<2, Bool>>,
        l: usize,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let [b, p, d] = x.dims();
        let h = self.n_heads;
        let dh = d / h;
        let mut heads = |lin: &Linear, point: &str| {
            let t = lin.forward(x.clone()).reshape([b, p, h, dh]);
            hooks
                .point4(&names::attn(l, point), t, cache)
                .swap_dims(1, 2)
        };
        let q = heads(&self.q, "q");
        let k = heads(&self.k, "k");
        let v = heads(&self.v, "v");
        let inputs = AttentionInputs {
            layer: l,
            q,
            k,
            v,
            causal: false,
            q_offset: 0,
            key_padding: padding.cloned(),
            scale: 1.0 / (dh as f64).sqrt(),
        };
        let scores_name = names::attn(l, "attn_scores");
        let pattern_name = names::attn(l, "pattern");
        let z = if let Some(attend) = hooks.attention_for(l) {
            let z = attend.attend(inputs);
            assert_eq!(
                z.dims(),
                [b, h, p, dh],
                "attention override of layer {l}: expected output [batch, heads, pos, d_head] = \
                 {:?}, found {:?}",
                [b, h, p, dh],
                z.dims()
            );
            z
        } else if hooks.is_active(&scores_name) || hooks.is_active(&pattern_name) {
            let scores = hooks.point4(&scores_name, attention_scores(&inputs), cache);
            let pattern = hooks.point4(&pattern_name, attention_pattern(scores), cache);
            apply_pattern(pattern, inputs.v)
        } else {
            dense_attention(&inputs)
        };
        let z = hooks.point4(&names::attn(l, "z"), z.swap_dims(1, 2), cache);
        self.o.forward(z.reshape([b, p, d]))
    }
}
