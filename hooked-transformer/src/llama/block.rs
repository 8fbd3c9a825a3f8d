//! One Llama decoder block: pre-norm grouped-query attention with rotary embeddings, then a
//! pre-norm SwiGLU MLP, every intermediate value passing through its TransformerLens hook point.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::attention::{
    AttentionInputs, apply_pattern, attention_pattern, attention_scores, dense_attention,
};
use crate::hooks::{ActivationCache, Hooks, names};
use crate::kv_cache::KvCache;
use crate::norm::LlamaRmsNorm;
use crate::rope::RotaryTables;

/// Attention projections (no biases, as in Llama). Weights are burn `[in, out]`.
#[derive(Module, Debug)]
pub struct LlamaAttention {
    /// `W_Q`: `[d_model, n_heads · d_head]`, HF `q_proj` order.
    pub q: Linear,
    /// `W_K`: `[d_model, n_kv_heads · d_head]`.
    pub k: Linear,
    /// `W_V`: `[d_model, n_kv_heads · d_head]`.
    pub v: Linear,
    /// `W_O`: `[n_heads · d_head, d_model]`.
    pub o: Linear,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Width of a head.
    pub d_head: usize,
}

/// The SwiGLU MLP: `down(silu(gate(x)) ⊙ up(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp {
    /// HF `gate_proj` (TransformerLens `W_gate`), `[d_model, d_mlp]`.
    pub gate: Linear,
    /// HF `up_proj` (TransformerLens `W_in`), `[d_model, d_mlp]`.
    pub up: Linear,
    /// HF `down_proj` (TransformerLens `W_out`), `[d_mlp, d_model]`.
    pub down: Linear,
}

/// A decoder block.
#[derive(Module, Debug)]
pub struct LlamaBlock {
    /// HF `input_layernorm` (TransformerLens `ln1`).
    pub ln1: LlamaRmsNorm,
    /// Self-attention.
    pub attn: LlamaAttention,
    /// HF `post_attention_layernorm` (TransformerLens `ln2`).
    pub ln2: LlamaRmsNorm,
    /// The MLP.
    pub mlp: LlamaMlp,
}

/// What every block of one forward pass shares.
pub(crate) struct BlockContext<'a> {
    /// RoPE rows for the new positions, `[batch, pos, 1, d_head]`.
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
    /// `[batch, k_len]`, true = padded key (cache included).
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Cached positions before this call.
    pub q_offset: usize,
    pub kv_cache: Option<&'a mut KvCache>,
}

/// `x · W` for `[batch, pos, in]` inputs as one 2-D matmul (flex runs it faster than the
/// broadcast batched form).
pub(crate) fn linear3(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, p, d] = x.dims();
    let out = layer.forward(x.reshape([b * p, d]));
    let n = out.dims()[1];
    out.reshape([b, p, n])
}

impl LlamaBlock {
    /// Runs the block on the residual `x` (`[batch, pos, d_model]`).
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: Tensor<3>,
        ctx: &mut BlockContext<'_>,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let n = |point: &str| names::block(layer, point);
        let resid_pre = hooks.point3(&n("hook_resid_pre"), x, cache);

        let ln1 = self.norm(layer, "ln1", &self.ln1, resid_pre.clone(), hooks, cache);
        let attn_out = self.attention(layer, ln1, ctx, hooks, cache);
        let attn_out = hooks.point3(&n("hook_attn_out"), attn_out, cache);
        let resid_mid = hooks.point3(&n("hook_resid_mid"), resid_pre + attn_out, cache);

        let ln2 = self.norm(layer, "ln2", &self.ln2, resid_mid.clone(), hooks, cache);
        let mlp_out = self.mlp(layer, ln2, hooks, cache);
        let mlp_out = hooks.point3(&n("hook_mlp_out"), mlp_out, cache);
        hooks.point3(&n("hook_resid_post"), resid_mid + mlp_out, cache)
    }

    fn norm(
        &self,
        layer: usize,
        which: &str,
        norm: &LlamaRmsNorm,
        x: Tensor<3>,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        normalize(
            norm,
            x,
            &names::ln(layer, which, "scale"),
            &names::ln(layer, which, "normalized"),
            hooks,
            cache,
        )
    }

    fn attention(
        &self,
        layer: usize,
        x: Tensor<3>,
        ctx: &mut BlockContext<'_>,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let a = &self.attn;
        let [b, p, _] = x.dims();
        let (h, kv, dh) = (a.n_heads, a.n_kv_heads, a.d_head);
        let q = linear3(&a.q, x.clone()).reshape([b, p, h, dh]);
        let k = linear3(&a.k, x.clone()).reshape([b, p, kv, dh]);
        let v = linear3(&a.v, x).reshape([b, p, kv, dh]);
        let q = hooks.point4(&names::attn(layer, "q"), q, cache);
        let k = hooks.point4(&names::attn(layer, "k"), k, cache);
        let v = hooks.point4(&names::attn(layer, "v"), v, cache);

        let rot_q = RotaryTables::apply(q, &ctx.cos, &ctx.sin);
        let rot_q = hooks.point4(&names::attn(layer, "rot_q"), rot_q, cache);
        let rot_k_new = RotaryTables::apply(k, &ctx.cos, &ctx.sin);

        // [b, heads, pos, d_head] from here on.
        let q = rot_q.swap_dims(1, 2);
        let (k, v) = {
            let k_new = rot_k_new.swap_dims(1, 2);
            let v_new = v.swap_dims(1, 2);
            match ctx.kv_cache.as_deref_mut() {
                Some(kv_cache) => kv_cache.append(layer, k_new, v_new),
                None => (k_new, v_new),
            }
        };
        let rot_k_name = names::attn(layer, "rot_k");
        let k = if hooks.is_active(&rot_k_name) {
            hooks
                .point4(&rot_k_name, k.swap_dims(1, 2), cache)
                .swap_dims(1, 2)
        } else {
            k
        };

        let inputs = AttentionInputs {
            layer,
            q,
            k,
            v,
            causal: true,
            q_offset: ctx.q_offset,
            key_padding: ctx.key_padding.clone(),
            scale: 1.0 / (dh as f64).sqrt(),
        };
        let scores_name = names::attn(layer, "attn_scores");
        let pattern_name = names::attn(layer, "pattern");
        let z = if hooks.is_active(&scores_name) || hooks.is_active(&pattern_name) {
            // Materialise the T × T matrices only when someone reads or writes them.
            let scores = hooks.point4(&scores_name, attention_scores(&inputs), cache);
            let pattern = hooks.point4(&pattern_name, attention_pattern(scores), cache);
            apply_pattern(pattern, inputs.v)
        } else if let Some(attend) = hooks.attention_for(layer) {
            let z = attend.attend(inputs);
            assert_eq!(
                z.dims(),
                [b, h, p, dh],
                "attention override of layer {layer}: output shape expected [batch, heads, q_len, d_head]"
            );
            z
        } else {
            dense_attention(&inputs)
        };
        let z = hooks.point4(&names::attn(layer, "z"), z.swap_dims(1, 2), cache);
        linear3(&a.o, z.reshape([b, p, h * dh]))
    }

    fn mlp(
        &self,
        layer: usize,
        x: Tensor<3>,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let m = &self.mlp;
        let pre = hooks.point3(
            &names::mlp(layer, "pre"),
            linear3(&m.gate, x.clone()),
            cache,
        );
        let pre_linear = hooks.point3(&names::mlp(layer, "pre_linear"), linear3(&m.up, x), cache);
        let post = hooks.point3(&names::mlp(layer, "post"), silu(pre) * pre_linear, cache);
        linear3(&m.down, post)
    }
}

/// RMSNorm through its two hook points: a hook on the scale changes what `x` is divided by, as
/// in TransformerLens.
pub(crate) fn normalize(
    norm: &LlamaRmsNorm,
    x: Tensor<3>,
    scale_name: &str,
    normalized_name: &str,
    hooks: &mut Hooks,
    cache: &mut ActivationCache,
) -> Tensor<3> {
    let scale = hooks.point3(scale_name, norm.scale(x.clone()), cache);
    let normalized = hooks.point3(normalized_name, x / scale, cache);
    norm.weigh(normalized)
}

/// The hook points of block `layer`, in execution order.
pub(crate) fn block_hook_points(layer: usize) -> Vec<String> {
    let mut out = vec![names::resid_pre(layer)];
    out.push(names::ln(layer, "ln1", "scale"));
    out.push(names::ln(layer, "ln1", "normalized"));
    for p in [
        "q",
        "k",
        "v",
        "rot_q",
        "rot_k",
        "attn_scores",
        "pattern",
        "z",
    ] {
        out.push(names::attn(layer, p));
    }
    out.push(names::attn_out(layer));
    out.push(names::resid_mid(layer));
    out.push(names::ln(layer, "ln2", "scale"));
    out.push(names::ln(layer, "ln2", "normalized"));
    for p in ["pre", "pre_linear", "post"] {
        out.push(names::mlp(layer, p));
    }
    out.push(names::mlp_out(layer));
    out.push(names::resid_post(layer));
    out
}
