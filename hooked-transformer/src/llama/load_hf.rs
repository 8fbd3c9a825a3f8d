//! Llama from a Hugging Face folder (`config.json` + `model.safetensors` or a sharded
//! `model.safetensors.index.json`) through burn-store.

use std::collections::BTreeSet;
use std::path::Path;

use burn::prelude::*;
use burn::store::{
    ApplyError, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::DType;

use super::config::LlamaConfig;
use super::model::Llama;
use crate::hf_folder::weight_files;
use crate::{Error, Result};

/// Hugging Face names → this crate's module paths.
const REMAPS: [(&str, &str); 13] = [
    (r"^model\.embed_tokens\.weight$", "embed.weight"),
    (r"^model\.norm\.weight$", "ln_final.weight"),
    (r"^lm_head\.weight$", "unembed.weight"),
    (
        r"^model\.layers\.(\d+)\.input_layernorm\.weight$",
        "blocks.$1.ln1.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$",
        "blocks.$1.ln2.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$",
        "blocks.$1.attn.q.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$",
        "blocks.$1.attn.k.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$",
        "blocks.$1.attn.v.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$",
        "blocks.$1.attn.o.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$",
        "blocks.$1.mlp.gate.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.mlp\.up_proj\.weight$",
        "blocks.$1.mlp.up.weight",
    ),
    (
        r"^model\.layers\.(\d+)\.mlp\.down_proj\.weight$",
        "blocks.$1.mlp.down.weight",
    ),
    // Some exports drop the `model.` prefix.
    (r"^embed_tokens\.weight$", "embed.weight"),
];

impl Llama {
    /// Loads a Hugging Face Llama folder: `config.json` and `model.safetensors` (or the shards
    /// listed in `model.safetensors.index.json`), any float dtype (cast to f32).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`], [`Error::Config`], [`Error::Safetensors`]-like store
    /// errors as [`Error::BadInput`], [`Error::MissingTensor`], [`Error::TensorShape`].
    pub fn from_hf_folder(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = LlamaConfig::from_hf_json(dir.join("config.json"))?;
        let shards = weight_files(dir)?;
        let mut model = Llama::zeros(&config, device);
        let mut applied = BTreeSet::new();
        for shard in &shards {
            let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
            let remapper =
                KeyRemapper::from_patterns(REMAPS.to_vec()).expect("static patterns compile");
            let mut store = SafetensorsStore::from_file(shard.clone())
                .with_from_adapter(adapter)
                .remap(remapper)
                .allow_partial(true)
                .validate(false);
            let result = model.load_from(&mut store).map_err(|e| Error::BadInput {
                path: shard.clone(),
                reason: e.to_string(),
            })?;
            if let Some(err) = result.errors.first() {
                return Err(match err {
                    ApplyError::ShapeMismatch {
                        path,
                        expected,
                        found,
                    } => Error::TensorShape {
                        source_name: shard.display().to_string(),
                        name: path.clone(),
                        expected: expected.iter().copied().collect(),
                        found: found.iter().copied().collect(),
                    },
                    other => Error::TensorData {
                        source_name: shard.display().to_string(),
                        name: String::new(),
                        reason: other.to_string(),
                    },
                });
            }
            applied.extend(result.applied);
        }
        let required = model.required_tensor_paths();
        if let Some(missing) = required.iter().find(|p| !applied.contains(*p)) {
            return Err(Error::MissingTensor {
                source_name: dir.display().to_string(),
                name: hf_name_of(missing),
            });
        }
        model.check_finite(&dir.display().to_string())?;
        Ok(model)
    }

    /// The module paths a weight file must provide.
    fn required_tensor_paths(&self) -> Vec<String> {
        let c = self.config();
        let mut out = vec!["embed.weight".to_string(), "ln_final.weight".to_string()];
        if !c.tie_word_embeddings {
            out.push("unembed.weight".into());
        }
        for l in 0..c.n_layers {
            for p in [
                "ln1", "ln2", "attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up",
                "mlp.down",
            ] {
                out.push(format!("blocks.{l}.{p}.weight"));
            }
        }
        out
    }

    fn check_finite(&self, source_name: &str) -> Result<()> {
        let finite = |t: Tensor<2>| t.is_finite().all().into_scalar::<bool>();
        let mut tensors: Vec<(String, Tensor<2>)> =
            vec![("embed.weight".into(), self.embed.weight.val())];
        for (l, b) in self.blocks.iter().enumerate() {
            for (n, lin) in [
                ("attn.q", &b.attn.q),
                ("attn.k", &b.attn.k),
                ("attn.v", &b.attn.v),
                ("attn.o", &b.attn.o),
                ("mlp.gate", &b.mlp.gate),
                ("mlp.up", &b.mlp.up),
                ("mlp.down", &b.mlp.down),
            ] {
                tensors.push((format!("blocks.{l}.{n}.weight"), lin.weight.val()));
            }
        }
        for (name, t) in tensors {
            if !finite(t) {
                return Err(Error::TensorData {
                    source_name: source_name.to_string(),
                    name: hf_name_of(&name),
                    reason: "holds NaN or infinite values".into(),
                });
            }
        }
        Ok(())
    }
}

/// The Hugging Face name of one of our module paths (for error messages).
fn hf_name_of(path: &str) -> String {
    let fixed = match path {
        "embed.weight" => return "model.embed_tokens.weight".into(),
        "ln_final.weight" => return "model.norm.weight".into(),
        "unembed.weight" => return "lm_head.weight".into(),
        p => p,
    };
    fixed
        .replacen("blocks.", "model.layers.", 1)
        .replace(".ln1.", ".input_layernorm.")
        .replace(".ln2.", ".post_attention_layernorm.")
        .replace(".attn.q.", ".self_attn.q_proj.")
        .replace(".attn.k.", ".self_attn.k_proj.")
        .replace(".attn.v.", ".self_attn.v_proj.")
        .replace(".attn.o.", ".self_attn.o_proj.")
        .replace(".mlp.gate.", ".mlp.gate_proj.")
        .replace(".mlp.up.", ".mlp.up_proj.")
        .replace(".mlp.down.", ".mlp.down_proj.")
}
