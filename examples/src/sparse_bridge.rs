//! Runs a sparse-attn method inside a hooked-transformer model, in any subset of layers.
//!
//! hooked-transformer's [`Hooks::attention_override`] takes any
//! `FnMut(AttentionInputs) -> Tensor<4>`; sparse-attn's methods take an [`AttentionProblem`].
//! The two carry the same fields (q, k, v in burn's `[batch, heads, seq, d_head]` layout with
//! KV heads unexpanded, causal structure with the query offset, key padding, scale), so the
//! bridge is a field-by-field conversion.
//!
//! It lives here, in the examples crate, rather than behind a `hooked-transformer` feature of
//! sparse-attn: this crate already depends on both, neither library then depends on the other
//! (hooked-transformer knows no sparse method, sparse-attn knows no model), and the
//! conversion is a dozen lines a downstream user can copy without pulling a feature matrix
//! into sparse-attn's public API.

use burn::prelude::*;
use hooked_transformer::{AttentionInputs, Hooks};
use sparse_attn::{AttentionLayout, AttentionProblem};

/// The sparse-attn problem of one attention call of a model.
pub fn attention_problem(inputs: &AttentionInputs) -> AttentionProblem {
    let q_len = inputs.q.dims()[2];
    let k_len = inputs.k.dims()[2];
    let layout = if inputs.causal {
        AttentionLayout {
            q_len,
            k_len,
            causal: true,
            q_offset: inputs.q_offset,
        }
    } else {
        AttentionLayout::full(q_len, k_len)
    };
    let problem =
        AttentionProblem::new(inputs.q.clone(), inputs.k.clone(), inputs.v.clone(), layout)
            .with_scale(inputs.scale);
    match &inputs.key_padding {
        Some(pad) => problem.with_key_padding(pad.clone()),
        None => problem,
    }
}

/// An attention override that runs `method` on the converted problem; `method` gets the layer
/// index too and returns the output `[batch, heads, q_len, d_value]`.
pub fn sparse_override<F>(mut method: F) -> impl FnMut(AttentionInputs) -> Tensor<4> + Send
where
    F: FnMut(usize, &AttentionProblem) -> Tensor<4> + Send,
{
    move |inputs: AttentionInputs| method(inputs.layer, &attention_problem(&inputs))
}

/// `hooks` with `make(layer)`'s method as the attention of every layer in `layers` (the other
/// layers stay dense).
pub fn with_method_in_layers<F>(
    mut hooks: Hooks,
    layers: impl IntoIterator<Item = usize>,
    mut make: impl FnMut(usize) -> F,
) -> Hooks
where
    F: FnMut(usize, &AttentionProblem) -> Tensor<4> + Send + 'static,
{
    for layer in layers {
        hooks = hooks.attention_override(layer, sparse_override(make(layer)));
    }
    hooks
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use burn::tensor::Tolerance;
    use hooked_transformer::llama::{Llama, LlamaConfig};
    use sparse_attn::{BlockSize, SparseMask, dense_attention, masked_dense_attention};

    use super::*;

    fn tiny() -> LlamaConfig {
        LlamaConfig {
            d_model: 32,
            n_layers: 3,
            n_heads: 4,
            n_kv_heads: 2,
            d_head: 8,
            d_mlp: 48,
            vocab_size: 61,
            max_positions: 64,
            ..LlamaConfig::smollm2_135m()
        }
    }

    fn ids(rows: &[&[i64]], device: &Device) -> Tensor<2, Int> {
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
    }

    #[test]
    fn dense_and_full_mask_methods_in_every_layer_leave_the_logits_unchanged() {
        let d = Device::flex();
        let model = Llama::random(&tiny(), 3, &d);
        let t = ids(&[&[1, 5, 9, 2, 7, 3], &[4, 4, 8, 1, 0, 6]], &d);
        let clean = model.forward(t.clone()).unwrap();
        let layouts = Arc::new(Mutex::new(Vec::new()));
        let seen = layouts.clone();
        let mut hooks = with_method_in_layers(Hooks::new(), 0..3, |_| {
            let seen = seen.clone();
            move |layer: usize, p: &AttentionProblem| {
                seen.lock().unwrap().push((layer, p.layout, p.group_size()));
                dense_attention(p)
            }
        });
        let out = model.run(t.clone(), &mut hooks).unwrap().logits.unwrap();
        out.into_data()
            .assert_approx_eq::<f32>(&clean.clone().into_data(), Tolerance::rel_abs(1e-5, 1e-5));
        let layouts = layouts.lock().unwrap().clone();
        assert_eq!(layouts.len(), 3);
        for (l, (layer, layout, group)) in layouts.into_iter().enumerate() {
            assert_eq!(layer, l);
            assert_eq!(layout, AttentionLayout::causal(6));
            assert_eq!(group, 2, "KV heads arrive unexpanded");
        }
        let mut hooks = with_method_in_layers(Hooks::new(), [1], |_| {
            |_: usize, p: &AttentionProblem| {
                let all = SparseMask::all(p.layout, BlockSize::square(4), 1, 1);
                masked_dense_attention(p, &all)
            }
        });
        let out = model.run(t, &mut hooks).unwrap().logits.unwrap();
        out.into_data()
            .assert_approx_eq::<f32>(&clean.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    #[test]
    fn a_method_that_drops_keys_changes_only_from_its_layer_on() {
        let d = Device::flex();
        let model = Llama::random(&tiny(), 4, &d);
        let t = ids(&[&[1, 5, 9, 2, 7, 3, 8, 8]], &d);
        let clean = model.forward(t.clone()).unwrap();
        // Each query keeps only itself: far from dense attention.
        let mut hooks = with_method_in_layers(Hooks::new(), [2], |_| {
            |_: usize, p: &AttentionProblem| {
                let rows = (0..p.layout.q_len as u32).map(|i| vec![i]).collect();
                let m = SparseMask::from_rows(p.layout, BlockSize::square(4), 1, 1, rows).unwrap();
                masked_dense_attention(p, &m)
            }
        });
        let out = model.run(t, &mut hooks).unwrap().logits.unwrap();
        assert!((out - clean).abs().max().into_scalar::<f32>() > 1e-4);
    }

    #[test]
    fn bidirectional_inputs_with_padding_become_a_full_layout_with_padding() {
        let d = Device::flex();
        let q = Tensor::<4>::zeros([2, 2, 3, 4], &d);
        let k = Tensor::<4>::zeros([2, 1, 3, 4], &d);
        let pad = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, true, false, false, false], [2, 3]),
            &d,
        );
        let inputs = AttentionInputs {
            layer: 0,
            q,
            k: k.clone(),
            v: k,
            causal: false,
            q_offset: 0,
            key_padding: Some(pad),
            scale: 0.3,
        };
        let p = attention_problem(&inputs);
        assert_eq!(p.layout, AttentionLayout::full(3, 3));
        assert_eq!(p.scale, 0.3);
        assert!(p.key_padding.is_some());
        let decode = AttentionInputs {
            causal: true,
            q_offset: 2,
            key_padding: None,
            q: inputs.q.clone().slice(burn::tensor::s![.., .., 0..1, ..]),
            ..inputs
        };
        assert_eq!(
            attention_problem(&decode).layout,
            AttentionLayout::causal_suffix(1, 3)
        );
    }
}
