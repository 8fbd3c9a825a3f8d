//! Writing a model back out in Hugging Face layout, for loader tests.

use std::path::Path;

use burn::nn::Linear;
use burn::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

use super::model::Llama;

/// Every weight of `model` under its Hugging Face name, PyTorch shape (`[out, in]` for linear
/// layers) and row-major f32 values.
pub(crate) fn hf_tensors(model: &Llama) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let host = |t: Tensor<2>| -> (Vec<usize>, Vec<f32>) {
        let dims = t.dims().to_vec();
        (dims, t.into_data().convert::<f32>().try_to_vec().unwrap())
    };
    let linear = |l: &Linear| host(l.weight.val().transpose());
    let vec1 = |t: Tensor<1>| {
        (
            t.dims().to_vec(),
            t.into_data().convert::<f32>().try_to_vec().unwrap(),
        )
    };
    let mut out = Vec::new();
    let (s, v) = host(model.embed.weight.val());
    out.push(("model.embed_tokens.weight".to_string(), s, v));
    for (l, b) in model.blocks.iter().enumerate() {
        let p = format!("model.layers.{l}");
        let (s, v) = vec1(b.ln1.weight.val());
        out.push((format!("{p}.input_layernorm.weight"), s, v));
        let (s, v) = vec1(b.ln2.weight.val());
        out.push((format!("{p}.post_attention_layernorm.weight"), s, v));
        for (n, lin) in [
            ("self_attn.q_proj", &b.attn.q),
            ("self_attn.k_proj", &b.attn.k),
            ("self_attn.v_proj", &b.attn.v),
            ("self_attn.o_proj", &b.attn.o),
            ("mlp.gate_proj", &b.mlp.gate),
            ("mlp.up_proj", &b.mlp.up),
            ("mlp.down_proj", &b.mlp.down),
        ] {
            let (s, v) = linear(lin);
            out.push((format!("{p}.{n}.weight"), s, v));
        }
    }
    let (s, v) = vec1(model.ln_final.weight.val());
    out.push(("model.norm.weight".to_string(), s, v));
    if let Some(u) = &model.unembed {
        let (s, v) = linear(u);
        out.push(("lm_head.weight".to_string(), s, v));
    }
    out
}

/// Writes `config.json` and `model.safetensors` for `model`.
pub(crate) fn write_hf_folder(model: &Llama, dir: &Path) {
    write_hf_folder_with(model, dir, |_, shape| Some(shape));
}

/// Like [`write_hf_folder`], `edit` may drop a tensor (`None`) or change its shape (the values
/// are then filled with zeros).
pub(crate) fn write_hf_folder_with(
    model: &Llama,
    dir: &Path,
    edit: impl Fn(&str, Vec<usize>) -> Option<Vec<usize>>,
) {
    let c = model.config();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": c.d_model, "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.d_head, "intermediate_size": c.d_mlp, "vocab_size": c.vocab_size,
        "rms_norm_eps": c.rms_norm_eps, "rope_theta": c.rope_theta,
        "max_position_embeddings": c.max_positions,
        "tie_word_embeddings": c.tie_word_embeddings, "hidden_act": "silu",
        "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_ids,
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let mut owned = Vec::new();
    for (name, shape, values) in hf_tensors(model) {
        let Some(new_shape) = edit(&name, shape.clone()) else {
            continue;
        };
        let values = if new_shape == shape {
            values
        } else {
            vec![0.0; new_shape.iter().product()]
        };
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((name, new_shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}
