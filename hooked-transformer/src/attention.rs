//! Scaled dot-product attention with grouped-query heads, and the per-layer override through
//! which other crates (sparse attention) run inside a model without this crate knowing them.
//!
//! Layout is burn's: `[batch, heads, seq, d_head]`. Keys and values keep their own (KV) head
//! count; query head `h` reads KV head `h / (heads / kv_heads)` — repeat-interleave, as
//! Hugging Face's `repeat_kv` and TransformerLens do, never tiling.

use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// Everything an attention implementation gets from the model for one layer.
///
/// Queries are positioned in the keys' index space: with `causal`, query `i` may attend keys
/// `0..=q_offset + i` (`q_offset` = the number of cached keys before this call's first query),
/// and never a key whose `key_padding` entry is `true`. A query row with no allowed key gives a
/// zero output, never NaN.
#[derive(Clone, Debug)]
pub struct AttentionInputs {
    /// The layer index.
    pub layer: usize,
    /// Queries after rotary embedding, `[batch, heads, q_len, d_head]`.
    pub q: Tensor<4>,
    /// Keys after rotary embedding (cache included), `[batch, kv_heads, k_len, d_head]`.
    pub k: Tensor<4>,
    /// Values (cache included), `[batch, kv_heads, k_len, d_head]`.
    pub v: Tensor<4>,
    /// Causal (decoder) or bidirectional (encoder) attention.
    pub causal: bool,
    /// Index of the first query among the keys (KV-cache length before this call).
    pub q_offset: usize,
    /// `[batch, k_len]`, `true` where the key is padding and must not be attended.
    pub key_padding: Option<Tensor<2, Bool>>,
    /// The score scale (`1/√d_head` for the models here).
    pub scale: f64,
}

impl AttentionInputs {
    /// Number of query heads per KV head.
    pub fn group_size(&self) -> usize {
        self.q.dims()[1] / self.k.dims()[1]
    }

    /// The disallowed cells as a boolean mask `[batch, 1, q_len, k_len]` (`true` = masked),
    /// or `None` when every cell is allowed.
    pub fn mask(&self) -> Option<Tensor<4, Bool>> {
        let [b, _, q_len, _] = self.q.dims();
        let k_len = self.k.dims()[2];
        let device = self.q.device();
        let causal = self.causal.then(|| {
            // Query i sits at key index q_offset + i: mask keys after it.
            let qi = Tensor::<1, Int>::arange(0..q_len as i64, &device)
                .add_scalar(self.q_offset as i64)
                .reshape([q_len, 1]);
            let kj = Tensor::<1, Int>::arange(0..k_len as i64, &device).reshape([1, k_len]);
            kj.greater(qi).reshape([1, 1, q_len, k_len])
        });
        let padding = self
            .key_padding
            .clone()
            .map(|p| p.reshape([b, 1, 1, k_len]));
        match (causal, padding) {
            (None, None) => None,
            (Some(c), None) => Some(c.expand([b, 1, q_len, k_len])),
            (None, Some(p)) => Some(p.expand([b, 1, q_len, k_len])),
            (Some(c), Some(p)) => Some(
                c.expand([b, 1, q_len, k_len])
                    .bool_or(p.expand([b, 1, q_len, k_len])),
            ),
        }
    }
}

/// An attention implementation for one layer: gets q, k, v and the mask structure, returns the
/// per-head output `z` as `[batch, heads, q_len, d_head]`.
///
/// Any `FnMut(AttentionInputs) -> Tensor<4>` is one.
pub trait AttentionOverride: Send {
    /// Computes the attention output for these inputs.
    fn attend(&mut self, inputs: AttentionInputs) -> Tensor<4>;
}

impl<F> AttentionOverride for F
where
    F: FnMut(AttentionInputs) -> Tensor<4> + Send,
{
    fn attend(&mut self, inputs: AttentionInputs) -> Tensor<4> {
        self(inputs)
    }
}

/// Repeats KV heads to the query head count by interleaving: `[b, kv, t, d]` →
/// `[b, kv · group, t, d]` with query head `h` reading KV head `h / group`.
pub fn repeat_kv(x: Tensor<4>, group: usize) -> Tensor<4> {
    if group == 1 {
        return x;
    }
    let [b, kv, t, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, group, t, d])
        .reshape([b, kv * group, t, d])
}

/// Dense attention through burn's fused primitive (flash-style on backends that have it): the
/// default path and the oracle every override is tested against.
pub fn dense_attention(inputs: &AttentionInputs) -> Tensor<4> {
    let group = inputs.group_size();
    let k = repeat_kv(inputs.k.clone(), group);
    let v = repeat_kv(inputs.v.clone(), group);
    let [b, h, q_len, _] = inputs.q.dims();
    let k_len = k.dims()[2];
    // Plain causal attention whose queries are the last keys (prefill, and decoding with a
    // cache) is burn's bottom-right-aligned `is_causal`: no mask tensor, and backends skip the
    // masked blocks.
    let plain_causal =
        inputs.causal && inputs.key_padding.is_none() && inputs.q_offset + q_len == k_len;
    let options = AttentionModuleOptions {
        scale: Some(inputs.scale),
        softcap: None,
        is_causal: plain_causal,
    };
    let mask = if plain_causal {
        None
    } else {
        inputs.mask().map(|m| m.expand([b, h, q_len, k_len]))
    };
    attention(inputs.q.clone(), k, v, mask, None, options)
}

/// The pre-softmax scores `q·kᵀ · scale` with masked cells at −∞, `[batch, heads, q_len, k_len]`
/// (TransformerLens `hook_attn_scores`).
pub fn attention_scores(inputs: &AttentionInputs) -> Tensor<4> {
    let k = repeat_kv(inputs.k.clone(), inputs.group_size());
    let scores = inputs
        .q
        .clone()
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(inputs.scale);
    match inputs.mask() {
        Some(mask) => {
            let dims = scores.dims();
            scores.mask_fill(mask.expand(dims), f32::NEG_INFINITY)
        }
        None => scores,
    }
}

/// Softmax over keys of [`attention_scores`], with fully masked rows set to 0
/// (TransformerLens `hook_pattern`).
pub fn attention_pattern(scores: Tensor<4>) -> Tensor<4> {
    let pattern = burn::tensor::activation::softmax(scores, 3);
    let nan = pattern.clone().is_nan();
    pattern.mask_fill(nan, 0.0)
}

/// `pattern · v` with KV heads repeated: the per-head output `[batch, heads, q_len, d_head]`.
pub fn apply_pattern(pattern: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let group = pattern.dims()[1] / v.dims()[1];
    pattern.matmul(repeat_kv(v, group))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn inputs(
        b: usize,
        h: usize,
        kv: usize,
        q_len: usize,
        k_len: usize,
        seed: u64,
    ) -> AttentionInputs {
        let d = Device::flex();
        d.seed(seed);
        let n = Distribution::Normal(0.0, 1.0);
        AttentionInputs {
            layer: 0,
            q: Tensor::random([b, h, q_len, 8], n, &d),
            k: Tensor::random([b, kv, k_len, 8], n, &d),
            v: Tensor::random([b, kv, k_len, 8], n, &d),
            causal: true,
            q_offset: k_len - q_len,
            key_padding: None,
            scale: 1.0 / 8f64.sqrt(),
        }
    }

    #[test]
    fn fused_equals_explicit_softmax_with_gqa_cache_and_padding() {
        let mut inp = inputs(2, 6, 2, 3, 5, 7);
        let d = inp.q.device();
        // Second sequence: first two keys are left padding.
        inp.key_padding = Some(Tensor::<2, Bool>::from_data(
            [
                [false, false, false, false, false],
                [true, true, false, false, false],
            ],
            &d,
        ));
        let fused = dense_attention(&inp);
        let explicit = apply_pattern(attention_pattern(attention_scores(&inp)), inp.v.clone());
        fused
            .into_data()
            .assert_approx_eq::<f32>(&explicit.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
    }

    #[test]
    fn fully_masked_rows_give_zero_not_nan() {
        let mut inp = inputs(1, 2, 1, 2, 2, 3);
        inp.q_offset = 0;
        let d = inp.q.device();
        inp.key_padding = Some(Tensor::<2, Bool>::from_data([[true, false]], &d));
        // Query 0 may only see key 0, which is padding.
        let pattern = attention_pattern(attention_scores(&inp));
        let z = apply_pattern(pattern, inp.v.clone());
        let row0: Vec<f32> = z
            .clone()
            .slice(burn::tensor::s![.., .., 0..1, ..])
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(row0.iter().all(|&x| x == 0.0), "{row0:?}");
        let fused: Vec<f32> = dense_attention(&inp).into_data().try_to_vec().unwrap();
        assert!(fused.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn repeat_kv_interleaves() {
        let d = Device::flex();
        let x = Tensor::<1>::from_floats([0.0, 1.0], &d).reshape([1, 2, 1, 1]);
        let y: Vec<f32> = repeat_kv(x, 3).into_data().try_to_vec().unwrap();
        assert_eq!(y, vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    }
}
