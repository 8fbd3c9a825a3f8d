//! Llama-family hyperparameters, read from Hugging Face `config.json` or GGUF metadata and
//! checked before any weight is touched.

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// The hyperparameters of a Llama-family decoder (SmolLM2, TinyLlama, Llama 2/3 without rope
/// scaling).
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Residual width `d_model` (HF `hidden_size`).
    pub d_model: usize,
    /// Number of decoder blocks (HF `num_hidden_layers`).
    pub n_layers: usize,
    /// Query heads (HF `num_attention_heads`).
    pub n_heads: usize,
    /// Key/value heads (HF `num_key_value_heads`; equal to `n_heads` without grouped-query
    /// attention).
    pub n_kv_heads: usize,
    /// Width of one head (HF `head_dim`, default `d_model / n_heads`).
    pub d_head: usize,
    /// SwiGLU hidden width (HF `intermediate_size`).
    pub d_mlp: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMSNorm ε (HF `rms_norm_eps`).
    pub rms_norm_eps: f64,
    /// RoPE base θ (HF `rope_theta`).
    pub rope_theta: f64,
    /// Longest supported sequence (HF `max_position_embeddings`, GGUF `context_length`).
    pub max_positions: usize,
    /// Whether the unembedding reuses the token embedding.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id, if the model has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids (generation stops on any of them).
    pub eos_token_ids: Vec<u32>,
}

impl LlamaConfig {
    /// SmolLM2-135M(-Instruct)'s hyperparameters, for tests and examples that build a model in
    /// code; loaders always read the file's own values.
    pub fn smollm2_135m() -> Self {
        Self {
            d_model: 576,
            n_layers: 30,
            n_heads: 9,
            n_kv_heads: 3,
            d_head: 64,
            d_mlp: 1536,
            vocab_size: 49152,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            max_positions: 8192,
            tie_word_embeddings: true,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
        }
    }

    /// Reads a Hugging Face `config.json` (`LlamaForCausalLM` and look-alikes).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`], or [`Error::Config`] naming a missing or out-of-range key,
    /// an unsupported `hidden_act` or `rope_scaling`.
    pub fn from_hf_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let value = crate::hf_folder::read_json(path)?;
        Self::from_hf_value(&value, &path.display().to_string())
    }

    /// [`LlamaConfig::from_hf_json`] on an already parsed value; `source_name` names it in errors.
    ///
    /// # Errors
    /// As [`LlamaConfig::from_hf_json`].
    pub fn from_hf_value(value: &Value, source_name: &str) -> Result<Self> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::config(source_name, "top level is not a JSON object"))?;
        let get_usize = |key: &str| -> Result<Option<usize>> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                    Error::config(
                        source_name,
                        format!("`{key}` must be a non-negative integer, found {v}"),
                    )
                }),
            }
        };
        let need = |key: &str| -> Result<usize> {
            get_usize(key)?
                .ok_or_else(|| Error::config(source_name, format!("missing key `{key}`")))
        };
        let get_f64 = |key: &str| -> Result<Option<f64>> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                    Error::config(source_name, format!("`{key}` must be a number, found {v}"))
                }),
            }
        };
        if let Some(act) = obj.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
        {
            return Err(Error::config(
                source_name,
                format!("`hidden_act` is \"{act}\": only \"silu\" (SwiGLU) is supported"),
            ));
        }
        if let Some(scaling) = obj.get("rope_scaling").filter(|v| !v.is_null()) {
            return Err(Error::config(
                source_name,
                format!("`rope_scaling` {scaling} is not supported (plain RoPE only)"),
            ));
        }
        for flag in ["attention_bias", "mlp_bias"] {
            if obj.get(flag).and_then(Value::as_bool) == Some(true) {
                return Err(Error::config(
                    source_name,
                    format!("`{flag}: true` is not supported"),
                ));
            }
        }
        let d_model = need("hidden_size")?;
        let n_heads = need("num_attention_heads")?;
        let n_kv_heads = get_usize("num_key_value_heads")?.unwrap_or(n_heads);
        let d_head = match get_usize("head_dim")? {
            Some(d) => d,
            None if n_heads > 0 => d_model / n_heads,
            None => 0,
        };
        // transformers ≥ 5 may move the base into `rope_parameters`.
        let rope_theta = match get_f64("rope_theta")? {
            Some(t) => t,
            None => obj
                .get("rope_parameters")
                .and_then(|p| p.get("rope_theta"))
                .and_then(Value::as_f64)
                .unwrap_or(10_000.0),
        };
        let eos_token_ids = match obj.get("eos_token_id") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_u64().map(|n| n as u32))
                .collect(),
            Some(v) => v.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
            None => Vec::new(),
        };
        let config = Self {
            d_model,
            n_layers: need("num_hidden_layers")?,
            n_heads,
            n_kv_heads,
            d_head,
            d_mlp: need("intermediate_size")?,
            vocab_size: need("vocab_size")?,
            rms_norm_eps: get_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            max_positions: get_usize("max_position_embeddings")?.unwrap_or(8192),
            tie_word_embeddings: obj
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            bos_token_id: get_usize("bos_token_id")?.map(|n| n as u32),
            eos_token_ids,
        };
        config.check(source_name)?;
        Ok(config)
    }

    /// Checks the hyperparameters for consistency.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first value out of range.
    pub fn check(&self, source_name: &str) -> Result<()> {
        let positive = [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("d_head", self.d_head),
            ("d_mlp", self.d_mlp),
            ("vocab_size", self.vocab_size),
            ("max_positions", self.max_positions),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::config(
                    source_name,
                    format!("`{name}` must be positive, found 0"),
                ));
            }
        }
        // Bound sizes so that a hostile file cannot ask for an absurd allocation.
        let limits = [
            ("d_model", self.d_model, 1 << 16),
            ("n_layers", self.n_layers, 1 << 10),
            ("n_heads", self.n_heads, 1 << 10),
            ("d_head", self.d_head, 1 << 12),
            ("d_mlp", self.d_mlp, 1 << 18),
            ("vocab_size", self.vocab_size, 1 << 22),
            ("max_positions", self.max_positions, 1 << 22),
        ];
        for (name, value, limit) in limits {
            if value > limit {
                return Err(Error::config(
                    source_name,
                    format!("`{name}` = {value} exceeds the supported maximum {limit}"),
                ));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::config(
                source_name,
                format!(
                    "n_heads ({}) must be a multiple of n_kv_heads ({})",
                    self.n_heads, self.n_kv_heads
                ),
            ));
        }
        if !self.d_head.is_multiple_of(2) {
            return Err(Error::config(
                source_name,
                format!(
                    "d_head must be even for rotary embeddings, found {}",
                    self.d_head
                ),
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(Error::config(
                source_name,
                format!(
                    "rms_norm_eps must be positive and finite, found {}",
                    self.rms_norm_eps
                ),
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(Error::config(
                source_name,
                format!(
                    "rope_theta must be finite and > 1, found {}",
                    self.rope_theta
                ),
            ));
        }
        let vocab = self.vocab_size as u32;
        for (what, id) in self
            .bos_token_id
            .iter()
            .map(|&id| ("bos_token_id", id))
            .chain(self.eos_token_ids.iter().map(|&id| ("eos_token_id", id)))
        {
            if id >= vocab {
                return Err(Error::config(
                    source_name,
                    format!(
                        "{what} {id} is outside the vocabulary of {}",
                        self.vocab_size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The number of query heads that share one key/value head.
    pub fn group_size(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// The number of parameters (tied embeddings counted once).
    pub fn n_params(&self) -> usize {
        let attn = self.d_model * self.d_head * (2 * self.n_heads + 2 * self.n_kv_heads);
        let mlp = 3 * self.d_model * self.d_mlp;
        let block = attn + mlp + 2 * self.d_model;
        let embed = self.vocab_size * self.d_model;
        let unembed = if self.tie_word_embeddings { 0 } else { embed };
        self.n_layers * block + embed + unembed + self.d_model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hf() -> Value {
        json!({
            "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
            "bos_token_id": 1, "eos_token_id": [2, 3], "hidden_act": "silu"
        })
    }

    #[test]
    fn reads_hf_config_with_defaults() {
        let c = LlamaConfig::from_hf_value(&hf(), "t").unwrap();
        assert_eq!(c.d_head, 16);
        assert_eq!(c.group_size(), 2);
        assert_eq!(c.eos_token_ids, vec![2, 3]);
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn bad_values_are_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("hidden_size", json!(null), "missing key `hidden_size`"),
            ("num_key_value_heads", json!(3), "multiple of n_kv_heads"),
            ("hidden_act", json!("gelu"), "hidden_act"),
            (
                "rope_scaling",
                json!({"rope_type": "llama3"}),
                "rope_scaling",
            ),
            ("vocab_size", json!(-1), "vocab_size"),
            ("eos_token_id", json!(500), "eos_token_id 500"),
            ("hidden_size", json!(1u64 << 40), "exceeds"),
        ];
        for (key, value, needle) in cases {
            let mut v = hf();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = value;
            }
            let err = LlamaConfig::from_hf_value(&v, "cfg.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{key}: {err}");
        }
    }

    #[test]
    fn smollm2_param_count() {
        // 134.5M parameters with tied embeddings (the model card's "135M").
        let n = LlamaConfig::smollm2_135m().n_params();
        assert!((134_000_000..135_000_000).contains(&n), "{n}");
    }
}
