//! BERT hyperparameters, read from a Hugging Face `config.json` and validated.

use std::path::Path;

use burn::prelude::*;
use serde_json::Value;

use crate::{Error, Result};

/// BERT hyperparameters (Hugging Face `BertConfig` names).
///
/// Only what the forward pass needs; dropout and initialisation settings are ignored.
#[derive(Config, Debug, PartialEq)]
pub struct BertConfig {
    /// Vocabulary size (`vocab_size`).
    pub vocab_size: usize,
    /// Width of the residual stream (`hidden_size`), `d_model`.
    pub hidden_size: usize,
    /// Number of encoder blocks (`num_hidden_layers`).
    pub num_hidden_layers: usize,
    /// Attention heads per block (`num_attention_heads`); must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the MLP (`intermediate_size`), `d_mlp`.
    pub intermediate_size: usize,
    /// Rows of the absolute position table (`max_position_embeddings`): the longest input.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (`type_vocab_size`, Hugging Face default 2).
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon (`layer_norm_eps`, Hugging Face default 1e-12), used by every
    /// LayerNorm of the model, the MLM head's included.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// The padding token (`pad_token_id`, default 0): what [`BertInput::from_sequences`]
    /// pads with.
    ///
    /// [`BertInput::from_sequences`]: crate::bert::BertInput::from_sequences
    #[config(default = 0)]
    pub pad_token_id: usize,
}

impl BertConfig {
    /// Reads and validates a Hugging Face `config.json`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Json`] if it is not JSON, and
    /// [`Error::Config`] as [`BertConfig::from_hf_json`] says.
    pub fn from_hf_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let value = crate::hf_folder::read_json(path)?;
        Self::from_hf_json(&value, &path.display().to_string())
    }

    /// Builds the config from a parsed `config.json`; `source_name` names it in errors.
    ///
    /// Required keys: `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    /// `intermediate_size`, `max_position_embeddings`. Optional with Hugging Face's defaults:
    /// `type_vocab_size` (2), `layer_norm_eps` (1e-12), `pad_token_id` (0), `hidden_act`
    /// (`"gelu"`, the only activation supported: exact-erf GELU), `position_embedding_type`
    /// (`"absolute"`, the only one supported), `tie_word_embeddings` (`true`, the only value
    /// supported: the MLM decoder is the word embedding matrix).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for a missing key, a value of the wrong type, a zero
    /// size, `hidden_size` not divisible by `num_attention_heads`, a non-positive epsilon or an
    /// unsupported `hidden_act` / `position_embedding_type` / `tie_word_embeddings`.
    pub fn from_hf_json(value: &Value, source_name: &str) -> Result<Self> {
        let err = |reason: String| Error::config(source_name, reason);
        let obj = value
            .as_object()
            .ok_or_else(|| err("expected a JSON object".into()))?;
        let size = |key: &str, default: Option<usize>| -> Result<usize> {
            match obj.get(key) {
                None | Some(Value::Null) => {
                    default.ok_or_else(|| err(format!("missing required key `{key}`")))
                }
                Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                    err(format!("`{key}` must be a non-negative integer, found {v}"))
                }),
            }
        };
        let string = |key: &str, default: &str| -> Result<String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(err(format!("`{key}` must be a string, found {v}"))),
            }
        };
        let act = string("hidden_act", "gelu")?;
        if act != "gelu" {
            return Err(err(format!(
                "`hidden_act` is \"{act}\": only \"gelu\" (exact erf GELU) is supported"
            )));
        }
        let pos = string("position_embedding_type", "absolute")?;
        if pos != "absolute" {
            return Err(err(format!(
                "`position_embedding_type` is \"{pos}\": only \"absolute\" is supported"
            )));
        }
        match obj.get("tie_word_embeddings") {
            None | Some(Value::Null) | Some(Value::Bool(true)) => {}
            Some(v) => {
                return Err(err(format!(
                    "`tie_word_embeddings` is {v}: only tied MLM decoders are supported"
                )));
            }
        }
        let layer_norm_eps = match obj.get("layer_norm_eps") {
            None | Some(Value::Null) => 1e-12,
            Some(v) => v
                .as_f64()
                .ok_or_else(|| err(format!("`layer_norm_eps` must be a number, found {v}")))?,
        };
        let config = BertConfig {
            vocab_size: size("vocab_size", None)?,
            hidden_size: size("hidden_size", None)?,
            num_hidden_layers: size("num_hidden_layers", None)?,
            num_attention_heads: size("num_attention_heads", None)?,
            intermediate_size: size("intermediate_size", None)?,
            max_position_embeddings: size("max_position_embeddings", None)?,
            type_vocab_size: size("type_vocab_size", Some(2))?,
            layer_norm_eps,
            pad_token_id: size("pad_token_id", Some(0))?,
        };
        config.check(source_name)?;
        Ok(config)
    }

    /// Checks the sizes: none zero (except the layer count), heads divide the width, epsilon
    /// positive and finite, the pad token inside the vocabulary.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field, with `source_name` as its origin.
    pub fn check(&self, source_name: &str) -> Result<()> {
        let err = |reason: String| Err(Error::config(source_name, reason));
        for (key, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return err(format!("`{key}` must be positive, found 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return err(format!(
                "`hidden_size` {} is not divisible by `num_attention_heads` {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return err(format!(
                "`layer_norm_eps` must be positive and finite, found {}",
                self.layer_norm_eps
            ));
        }
        if self.pad_token_id >= self.vocab_size {
            return err(format!(
                "`pad_token_id` {} is outside the vocabulary of {}",
                self.pad_token_id, self.vocab_size
            ));
        }
        Ok(())
    }

    /// Width of one attention head, `hidden_size / num_attention_heads`.
    pub fn d_head(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 12, "layer_norm_eps": 1e-12, "hidden_act": "gelu"
        })
    }

    #[test]
    fn reads_hf_keys_and_defaults() {
        let c = BertConfig::from_hf_json(&base(), "t").unwrap();
        assert_eq!(c, BertConfig::new(30, 8, 2, 2, 16, 12));
        assert_eq!(c.d_head(), 4);
    }

    #[test]
    fn bad_configs_are_typed_errors_naming_the_key() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "hidden_size",
                Value::Null,
                "missing required key `hidden_size`",
            ),
            ("vocab_size", json!(0), "`vocab_size` must be positive"),
            ("num_attention_heads", json!(3), "not divisible"),
            ("hidden_act", json!("relu"), "`hidden_act`"),
            ("hidden_act", json!("gelu_new"), "`hidden_act`"),
            (
                "intermediate_size",
                json!("16"),
                "`intermediate_size` must be a non-negative integer",
            ),
            ("layer_norm_eps", json!(-1.0), "`layer_norm_eps`"),
            ("tie_word_embeddings", json!(false), "`tie_word_embeddings`"),
            (
                "position_embedding_type",
                json!("relative_key"),
                "`position_embedding_type`",
            ),
        ];
        for (key, value, want) in cases {
            let mut v = base();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = value;
            }
            let e = BertConfig::from_hf_json(&v, "cfg.json").unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(want) && msg.contains("cfg.json"),
                "{key}: {msg}"
            );
        }
        assert!(BertConfig::from_hf_json(&json!([1]), "x").is_err());
    }
}
