//! Loading BERT from a Hugging Face folder (`config.json`, `model.safetensors` or a sharded
//! `model.safetensors.index.json`, `tokenizer.json`) through burn-store.
//!
//! Every tensor the config implies is first checked against the safetensors headers (present
//! under its Hugging Face name, the expected shape, a float dtype, finite values), so errors
//! name the file's tensor. The weights then go through burn-store: [`SafetensorsStore`] with
//! [`PyTorchToBurnAdapter`] (transposes `Linear` weights, accepts LayerNorm `weight`/`bias` as
//! well as the old `gamma`/`beta`), chained with [`FloatCastAdapter`] to F32, and a
//! [`KeyRemapper`] from Hugging Face names (`bert.` prefix optional) to this crate's module
//! paths. The MLM decoder is the word embedding matrix, so no decoder weight is loaded; its
//! bias is `cls.predictions.bias` (or `cls.predictions.decoder.bias` when only that is stored).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{
    ApplyError, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::DType;
use safetensors::{Dtype, SafeTensors};

use super::config::BertConfig;
use super::model::{Bert, BertForMaskedLm};
use crate::{Error, Result, Tokenizer};

impl Bert {
    /// Loads a BERT encoder (Hugging Face `BertModel`, or the encoder of a `BertForMaskedLM`;
    /// a pooler and an MLM head in the file are ignored) and its tokenizer from `dir`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`], [`Error::Config`] for `config.json`;
    /// [`Error::Tokenizer`] for a missing or bad `tokenizer.json`; [`Error::Safetensors`] for a
    /// corrupt weight file; [`Error::MissingTensor`], [`Error::TensorShape`] and
    /// [`Error::TensorData`] when the weights disagree with the config.
    pub fn from_hf_folder(dir: impl AsRef<Path>, device: &Device) -> Result<(Self, Tokenizer)> {
        let dir = dir.as_ref();
        let (config, tokenizer) = config_and_tokenizer(dir)?;
        Ok((Self::from_hf_weights(&config, dir, device)?, tokenizer))
    }

    /// Loads the encoder's weights from the safetensors in `dir` into a model built from
    /// `config`.
    ///
    /// # Errors
    /// As [`Bert::from_hf_folder`], without the config and tokenizer ones.
    pub fn from_hf_weights(config: &BertConfig, dir: &Path, device: &Device) -> Result<Self> {
        let weights = Weights::read(dir)?;
        let mut model = config.init(device);
        weights.load_into(&mut model, config, false, "")?;
        Ok(model)
    }
}

impl BertForMaskedLm {
    /// Loads a Hugging Face `BertForMaskedLM` folder and its tokenizer.
    ///
    /// ```
    /// use burn::prelude::*;
    /// use hooked_transformer::Tokenizer;
    /// use hooked_transformer::bert::{BertConfig, BertForMaskedLm, BertInput};
    ///
    /// let device = Device::flex();
    /// device.seed(1);
    /// // A tiny random model and a word-level tokenizer, written as a Hugging Face folder.
    /// let model = BertConfig::new(4, 8, 1, 2, 16, 8).init_masked_lm(&device);
    /// let tokenizer = Tokenizer::from_bytes(br#"{"version": "1.0", "added_tokens": [],
    ///     "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
    ///     "decoder": null, "truncation": null, "padding": null,
    ///     "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3},
    ///               "unk_token": "[UNK]"}}"#)?;
    /// let dir = tempfile::tempdir().unwrap();
    /// model.save_hf_folder(dir.path(), &tokenizer)?;
    ///
    /// let (loaded, tokenizer) = BertForMaskedLm::from_hf_folder(dir.path(), &device)?;
    /// let input = BertInput::from_sequences(&[tokenizer.encode("a b a", true)?], None, 0, &device);
    /// let (ours, theirs) = (model.forward(&input)?, loaded.forward(&input)?);
    /// assert_eq!(ours.dims(), [1, 3, 4]);
    /// assert!(ours.all_close(theirs, None, None));
    /// # Ok::<(), hooked_transformer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Bert::from_hf_folder`]; the MLM head's tensors (`cls.predictions.transform.*`
    /// and the decoder bias) are required too.
    pub fn from_hf_folder(dir: impl AsRef<Path>, device: &Device) -> Result<(Self, Tokenizer)> {
        let dir = dir.as_ref();
        let (config, tokenizer) = config_and_tokenizer(dir)?;
        Ok((Self::from_hf_weights(&config, dir, device)?, tokenizer))
    }

    /// Loads the weights from the safetensors in `dir` into a model built from `config`.
    ///
    /// # Errors
    /// As [`BertForMaskedLm::from_hf_folder`], without the config and tokenizer ones.
    pub fn from_hf_weights(config: &BertConfig, dir: &Path, device: &Device) -> Result<Self> {
        let weights = Weights::read(dir)?;
        let mut model = config.init_masked_lm(device);
        weights.load_into(&mut model, config, true, "bert.")?;
        Ok(model)
    }
}

/// `config.json` and `tokenizer.json` of a Hugging Face BERT folder.
fn config_and_tokenizer(dir: &Path) -> Result<(BertConfig, Tokenizer)> {
    let config = BertConfig::from_hf_file(dir.join("config.json"))?;
    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
    Ok((config, tokenizer))
}

/// One safetensors file, held in memory, and its header.
struct Shard {
    path: PathBuf,
    bytes: Vec<u8>,
    tensors: BTreeMap<String, (Dtype, Vec<usize>)>,
}

/// All weight files of a folder.
struct Weights {
    source: String,
    shards: Vec<Shard>,
}

/// A tensor the config implies: its Hugging Face names (the first is the canonical one) and
/// its shape in the file (PyTorch `[out, in]` for linear weights).
struct Expected {
    names: Vec<String>,
    shape: Vec<usize>,
}

impl Weights {
    fn read(dir: &Path) -> Result<Self> {
        let files = crate::hf_folder::weight_files(dir)?;
        let mut shards = Vec::with_capacity(files.len());
        for path in files {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let (_, meta) =
                SafeTensors::read_metadata(&bytes).map_err(|source| Error::Safetensors {
                    path: path.clone(),
                    source,
                })?;
            let tensors = meta
                .tensors()
                .into_iter()
                .map(|(name, info)| (name, (info.dtype, info.shape.clone())))
                .collect();
            shards.push(Shard {
                path,
                bytes,
                tensors,
            });
        }
        Ok(Self {
            source: dir.display().to_string(),
            shards,
        })
    }

    fn find(&self, name: &str) -> Option<(usize, &(Dtype, Vec<usize>))> {
        self.shards
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.tensors.get(name).map(|t| (i, t)))
    }

    fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Checks every expected tensor, then loads all shards into `module` through burn-store.
    fn load_into<M: ModuleSnapshot>(
        mut self,
        module: &mut M,
        config: &BertConfig,
        mlm: bool,
        target_prefix: &str,
    ) -> Result<()> {
        let any_prefixed = self
            .shards
            .iter()
            .any(|s| s.tensors.keys().any(|k| k.starts_with("bert.")));
        let file_prefix = if any_prefixed { "bert." } else { "" };
        let expected = expected_tensors(config, file_prefix, mlm);
        self.check(&expected)?;

        let remapper = self.remapper(target_prefix, mlm)?;
        let mut applied = BTreeSet::new();
        let mut missing = BTreeSet::new();
        for i in 0..self.shards.len() {
            // The checks are done: hand the bytes to burn-store instead of copying them.
            let bytes = std::mem::take(&mut self.shards[i].bytes);
            let shard = &self.shards[i];
            let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
            let mut store = SafetensorsStore::from_bytes(Some(bytes))
                .with_from_adapter(adapter)
                .remap(remapper.clone())
                .allow_partial(true)
                .validate(false);
            let result = module.load_from(&mut store).map_err(|e| Error::BadInput {
                path: shard.path.clone(),
                reason: format!("burn-store could not read the weights: {e}"),
            })?;
            if let Some(error) = result.errors.first() {
                return Err(self.apply_error(error));
            }
            applied.extend(result.applied);
            missing.extend(result.missing.into_iter().map(|(path, _)| path));
        }
        match missing.difference(&applied).next() {
            Some(path) => Err(Error::MissingTensor {
                source_name: self.source.clone(),
                name: path.clone(),
            }),
            None => Ok(()),
        }
    }

    fn apply_error(&self, error: &ApplyError) -> Error {
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => Error::TensorShape {
                source_name: self.source.clone(),
                name: path.clone(),
                expected: expected.iter().copied().collect(),
                found: found.iter().copied().collect(),
            },
            other => Error::TensorData {
                source_name: self.source.clone(),
                name: match other {
                    ApplyError::DTypeMismatch { path, .. }
                    | ApplyError::AdapterError { path, .. }
                    | ApplyError::LoadError { path, .. }
                    | ApplyError::ShapeMismatch { path, .. } => path.clone(),
                },
                reason: other.to_string(),
            },
        }
    }

    /// Presence, shape, dtype and finiteness of every expected tensor, by its file name.
    fn check(&self, expected: &[Expected]) -> Result<()> {
        let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); self.shards.len()];
        for e in expected {
            let Some((name, (shard, (dtype, shape)))) = e
                .names
                .iter()
                .find_map(|n| self.find(n).map(|found| (n, found)))
            else {
                return Err(Error::MissingTensor {
                    source_name: self.source.clone(),
                    name: e.names.join("` or `"),
                });
            };
            if shape != &e.shape {
                return Err(Error::TensorShape {
                    source_name: self.source.clone(),
                    name: name.clone(),
                    expected: e.shape.clone(),
                    found: shape.clone(),
                });
            }
            if !matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64) {
                return Err(Error::TensorData {
                    source_name: self.source.clone(),
                    name: name.clone(),
                    reason: format!("dtype {dtype:?} is not a float type (F16, BF16, F32, F64)"),
                });
            }
            by_shard[shard].push(name.clone());
        }
        for (shard, names) in self.shards.iter().zip(by_shard) {
            let st =
                SafeTensors::deserialize(&shard.bytes).map_err(|source| Error::Safetensors {
                    path: shard.path.clone(),
                    source,
                })?;
            for name in names {
                let view = st.tensor(&name).map_err(|source| Error::Safetensors {
                    path: shard.path.clone(),
                    source,
                })?;
                if let Some(index) = first_non_finite(view.dtype(), view.data()) {
                    return Err(Error::TensorData {
                        source_name: self.source.clone(),
                        name,
                        reason: format!("non-finite value at flat index {index}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Hugging Face names (with or without `bert.`) → module paths under `target_prefix`.
    fn remapper(&self, target_prefix: &str, mlm: bool) -> Result<KeyRemapper> {
        let p = target_prefix;
        let src = r"^(?:bert\.)?";
        let layer = r"encoder\.layer\.([0-9]+)\.";
        let mut patterns: Vec<(String, String)> = [
            (r"embeddings\.word_embeddings\.(.+)$", "embed.word.${1}"),
            (
                r"embeddings\.position_embeddings\.(.+)$",
                "embed.position.${1}",
            ),
            (
                r"embeddings\.token_type_embeddings\.(.+)$",
                "embed.token_type.${1}",
            ),
            (r"embeddings\.LayerNorm\.(.+)$", "embed.ln.${1}"),
        ]
        .iter()
        .map(|(from, to)| (format!("{src}{from}"), format!("{p}{to}")))
        .collect();
        for (from, to) in [
            (r"attention\.self\.query\.(.+)$", "attn.q"),
            (r"attention\.self\.key\.(.+)$", "attn.k"),
            (r"attention\.self\.value\.(.+)$", "attn.v"),
            (r"attention\.output\.dense\.(.+)$", "attn.o"),
            (r"attention\.output\.LayerNorm\.(.+)$", "ln1"),
            (r"intermediate\.dense\.(.+)$", "mlp.w_in"),
            (r"output\.dense\.(.+)$", "mlp.w_out"),
            (r"output\.LayerNorm\.(.+)$", "ln2"),
        ] {
            patterns.push((
                format!("{src}{layer}{from}"),
                format!("{p}blocks.${{1}}.{to}.${{2}}"),
            ));
        }
        if mlm {
            patterns.push((
                r"^cls\.predictions\.transform\.dense\.(.+)$".into(),
                "head.dense.${1}".into(),
            ));
            patterns.push((
                r"^cls\.predictions\.transform\.LayerNorm\.(.+)$".into(),
                "head.ln.${1}".into(),
            ));
            let bias = if self.has("cls.predictions.bias") {
                r"^cls\.predictions\.bias$"
            } else {
                r"^cls\.predictions\.decoder\.bias$"
            };
            patterns.push((bias.into(), "head.bias".into()));
        }
        KeyRemapper::from_patterns(patterns)
            .map_err(|e| Error::config(&self.source, format!("internal key pattern: {e}")))
    }
}

/// The tensors a BERT (with `mlm`, a `BertForMaskedLM`) of this config has, in Hugging Face
/// naming and shapes, under `prefix` (`bert.` or nothing).
fn expected_tensors(c: &BertConfig, prefix: &str, mlm: bool) -> Vec<Expected> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let mut v = Vec::new();
    let mut one = |name: String, shape: Vec<usize>| {
        v.push(Expected {
            names: vec![name],
            shape,
        })
    };
    one(
        format!("{prefix}embeddings.word_embeddings.weight"),
        vec![c.vocab_size, d],
    );
    one(
        format!("{prefix}embeddings.position_embeddings.weight"),
        vec![c.max_position_embeddings, d],
    );
    one(
        format!("{prefix}embeddings.token_type_embeddings.weight"),
        vec![c.type_vocab_size, d],
    );
    let mut linears = Vec::new();
    let mut norms = vec![format!("{prefix}embeddings.LayerNorm")];
    for l in 0..c.num_hidden_layers {
        let b = format!("{prefix}encoder.layer.{l}.");
        for name in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            linears.push((format!("{b}{name}"), d, d));
        }
        linears.push((format!("{b}intermediate.dense"), d, f));
        linears.push((format!("{b}output.dense"), f, d));
        norms.push(format!("{b}attention.output.LayerNorm"));
        norms.push(format!("{b}output.LayerNorm"));
    }
    if mlm {
        linears.push(("cls.predictions.transform.dense".into(), d, d));
        norms.push("cls.predictions.transform.LayerNorm".into());
        v.push(Expected {
            names: vec![
                "cls.predictions.bias".into(),
                "cls.predictions.decoder.bias".into(),
            ],
            shape: vec![c.vocab_size],
        });
    }
    for (name, d_in, d_out) in linears {
        v.push(Expected {
            names: vec![format!("{name}.weight")],
            shape: vec![d_out, d_in],
        });
        v.push(Expected {
            names: vec![format!("{name}.bias")],
            shape: vec![d_out],
        });
    }
    for name in norms {
        v.push(Expected {
            names: vec![format!("{name}.weight"), format!("{name}.gamma")],
            shape: vec![d],
        });
        v.push(Expected {
            names: vec![format!("{name}.bias"), format!("{name}.beta")],
            shape: vec![d],
        });
    }
    v
}

/// The flat index of the first NaN or infinity in little-endian float data.
fn first_non_finite(dtype: Dtype, data: &[u8]) -> Option<usize> {
    match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
        Dtype::F64 => data.chunks_exact(8).position(|b| {
            !f64::from_le_bytes(b.try_into().expect("chunks of 8 bytes")).is_finite()
        }),
        Dtype::F16 => data
            .chunks_exact(2)
            .position(|b| !half::f16::from_le_bytes([b[0], b[1]]).is_finite()),
        Dtype::BF16 => data
            .chunks_exact(2)
            .position(|b| !half::bf16::from_le_bytes([b[0], b[1]]).is_finite()),
        _ => None,
    }
}
