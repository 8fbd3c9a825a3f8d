//! saprmarks/dictionary_learning trainer folders, once `ae.pt` is converted to safetensors (read
//! only).

use std::path::Path;

use burn::prelude::*;

use super::convert::parts_to_sae;
use super::json::{Fields, read_json_object};
use super::layout::{Dim, Shape, check_tensors};
use super::saelens_config::SaeLensConfig;
use super::sparsify::transpose;
use super::tensors::{HostTensor, TensorSet, read_safetensors};
use crate::{AnySae, Architecture, Error, Result};

/// The weights file this reader expects: dictionary_learning's `ae.pt` state dict saved with
/// safetensors, keys unchanged.
pub const DICTIONARY_LEARNING_WEIGHTS_FILENAME: &str = "ae.safetensors";

/// The dictionary classes this reader maps.
const DICT_CLASSES: [&str; 6] = [
    "AutoEncoder",
    "AutoEncoderTopK",
    "BatchTopKSAE",
    "MatryoshkaBatchTopKSAE",
    "JumpReluAutoEncoder",
    "GatedAutoEncoder",
];

/// An SAE read from a dictionary_learning trainer folder.
#[derive(Debug)]
pub struct DictionaryLearningSae {
    /// The module.
    pub sae: AnySae,
    /// The `trainer.dict_class` it came from.
    pub dict_class: String,
}

/// Reads a dictionary_learning trainer folder (`trainer_<i>/`): `config.json` (its `trainer`
/// object gives `dict_class`, `activation_dim`, `dict_size`) and `ae.safetensors`, the `ae.pt`
/// state dict converted with its keys unchanged, e.g. in Python
/// `safetensors.torch.save_file(torch.load("ae.pt"), "ae.safetensors")` (a Rust program
/// cannot read torch's pickle format safely, so the conversion is a one-time offline step).
///
/// Mapping (`dictionary.py`, `trainers/*.py`; SAELens' `dictionary_learning_sae_huggingface_loader_1`
/// and PR #608 for BatchTopK):
///
/// | `dict_class` | becomes | tensors |
/// |---|---|---|
/// | `AutoEncoder` | ReLU SAE | `W_enc = encoder.weightᵀ`, `b_enc = encoder.bias`, `W_dec = decoder.weightᵀ`, `b_dec = bias` |
/// | `AutoEncoderTopK` | TopK SAE (`k` buffer, no rescaling) | as above, `b_dec = b_dec`; the `threshold` buffer (used only by `encode(use_threshold=True)`) is not carried over |
/// | `BatchTopKSAE` | JumpReLU SAE with `θ·1` | as TopK; its `encode` thresholds by default |
/// | `MatryoshkaBatchTopKSAE` | JumpReLU SAE with `θ·1` | `W_enc`, `b_enc`, `W_dec`, `b_dec` as stored |
/// | `JumpReluAutoEncoder` | JumpReLU SAE | as stored; `apply_b_dec_to_input` from the trainer config, else false |
/// | `GatedAutoEncoder` | Gated SAE | `W_enc = encoder.weightᵀ`, `b_gate = gate_bias`, `r_mag`, `b_mag = mag_bias`, `W_dec = decoder.weightᵀ`, `b_dec = decoder_bias` |
///
/// Files written with `normalize_activations` already have the norm factor folded into the
/// biases and thresholds by dictionary_learning (`scale_biases`), so they work on raw
/// activations; the factor itself is not needed.
///
/// # Errors
/// [`Error::Io`]; [`Error::Json`], [`Error::MissingConfigKey`], [`Error::ConfigType`];
/// [`Error::UnknownArchitecture`] for another `dict_class`; the tensor errors of
/// [`SaeLensFolder::read`](super::SaeLensFolder::read); [`Error::InvalidValue`] for a
/// BatchTopK threshold that was never estimated (negative).
pub fn load_dictionary_learning(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<DictionaryLearningSae> {
    let dir = dir.as_ref();
    let cfg_path = dir.join("config.json");
    let weights_path = dir.join(DICTIONARY_LEARNING_WEIGHTS_FILENAME);
    let map = read_json_object(&cfg_path)?;
    let top = Fields::new(&cfg_path, &map);
    let trainer = top
        .opt_object("trainer")?
        .ok_or_else(|| Error::MissingConfigKey {
            path: cfg_path.clone(),
            key: "trainer".into(),
        })?;
    let dict_class = trainer.str("dict_class")?.to_string();
    let d_in = trainer.usize("activation_dim")?;
    let d_sae = trainer.usize("dict_size")?;
    if !DICT_CLASSES.contains(&dict_class.as_str()) {
        return Err(Error::UnknownArchitecture {
            path: cfg_path,
            name: dict_class,
            known: DICT_CLASSES.join(", "),
        });
    }
    let read = read_safetensors(&weights_path, &["k", "group_sizes"])?;
    let mut raw = read.floats;
    let integers = read.integers;

    use Dim::{In, Sae};
    let d = |dims: &[Dim]| Shape::Dims(dims.to_vec());
    let torch_linear = [
        ("encoder.weight", d(&[Sae, In])),
        ("encoder.bias", d(&[Sae])),
        ("decoder.weight", d(&[In, Sae])),
    ];
    let stored = [
        ("W_enc", d(&[In, Sae])),
        ("b_enc", d(&[Sae])),
        ("W_dec", d(&[Sae, In])),
        ("b_dec", d(&[In])),
    ];
    let expected: Vec<(&str, Shape)> = match dict_class.as_str() {
        "AutoEncoder" => [&torch_linear[..], &[("bias", d(&[In]))][..]].concat(),
        "AutoEncoderTopK" | "BatchTopKSAE" => [
            &torch_linear[..],
            &[("b_dec", d(&[In])), ("threshold", Shape::Scalar)][..],
        ]
        .concat(),
        "MatryoshkaBatchTopKSAE" => [&stored[..], &[("threshold", Shape::Scalar)][..]].concat(),
        "JumpReluAutoEncoder" => [&stored[..], &[("threshold", d(&[Sae]))][..]].concat(),
        _ => vec![
            ("encoder.weight", d(&[Sae, In])),
            ("gate_bias", d(&[Sae])),
            ("r_mag", d(&[Sae])),
            ("mag_bias", d(&[Sae])),
            ("decoder.weight", d(&[In, Sae])),
            ("decoder_bias", d(&[In])),
        ],
    };
    let owner = format!("dictionary_learning {dict_class}");
    // The integer buffers (`k`, `group_sizes`) are checked here; everything else by layout.
    let wants_k = matches!(
        dict_class.as_str(),
        "AutoEncoderTopK" | "BatchTopKSAE" | "MatryoshkaBatchTopKSAE"
    );
    let k_buffer = match integers.get("k") {
        Some((shape, values)) if wants_k && values.len() == 1 && shape.len() <= 1 => {
            Some(values[0])
        }
        Some((shape, _)) if wants_k => {
            return Err(Error::TensorShape {
                path: weights_path,
                name: "k".into(),
                expected: Vec::new(),
                found: shape.clone(),
            });
        }
        Some(_) => {
            return Err(Error::UnexpectedTensor {
                path: weights_path,
                name: "k".into(),
                architecture: owner,
            });
        }
        None if wants_k => {
            return Err(Error::MissingTensor {
                path: weights_path,
                name: "k".into(),
                architecture: owner,
            });
        }
        None => None,
    };
    if integers.contains_key("group_sizes") && dict_class != "MatryoshkaBatchTopKSAE" {
        return Err(Error::UnexpectedTensor {
            path: weights_path,
            name: "group_sizes".into(),
            architecture: owner,
        });
    }
    check_tensors(
        &weights_path,
        &expected,
        &owner,
        d_in,
        d_sae,
        "config.json",
        &raw,
    )?;
    if let (Some(k), Some(cfg_k)) = (k_buffer, trainer.opt_usize("k")?)
        && k as usize != cfg_k
    {
        return Err(Error::InvalidConfigValue {
            path: cfg_path,
            key: "trainer.k".into(),
            value: cfg_k.to_string(),
            reason: format!(
                "differs from the `k` buffer in {} ({k})",
                weights_path.display()
            ),
        });
    }

    let mut take = |name: &str| raw.remove(name).expect("checked by the layout");
    let mut t = TensorSet::new();
    let (architecture, apply_b_dec) = match dict_class.as_str() {
        "AutoEncoder" | "AutoEncoderTopK" | "BatchTopKSAE" => {
            t.insert("W_enc".into(), transpose(&take("encoder.weight")));
            t.insert("b_enc".into(), take("encoder.bias"));
            t.insert("W_dec".into(), transpose(&take("decoder.weight")));
            let b_dec = if dict_class == "AutoEncoder" {
                "bias"
            } else {
                "b_dec"
            };
            t.insert("b_dec".into(), take(b_dec));
            match dict_class.as_str() {
                "AutoEncoder" => (Architecture::Relu, true),
                "AutoEncoderTopK" => (Architecture::TopK, true),
                _ => {
                    let theta = threshold_scalar(&weights_path, &take("threshold"))?;
                    t.insert(
                        "threshold".into(),
                        HostTensor::new(vec![d_sae], vec![theta; d_sae]),
                    );
                    (Architecture::JumpRelu, true)
                }
            }
        }
        "MatryoshkaBatchTopKSAE" | "JumpReluAutoEncoder" => {
            for name in ["W_enc", "b_enc", "W_dec", "b_dec"] {
                t.insert(name.into(), take(name));
            }
            if dict_class == "MatryoshkaBatchTopKSAE" {
                let theta = threshold_scalar(&weights_path, &take("threshold"))?;
                t.insert(
                    "threshold".into(),
                    HostTensor::new(vec![d_sae], vec![theta; d_sae]),
                );
                (Architecture::JumpRelu, true)
            } else {
                t.insert("threshold".into(), take("threshold"));
                let apply = trainer.opt_bool("apply_b_dec_to_input")?.unwrap_or(false);
                (Architecture::JumpRelu, apply)
            }
        }
        _ => {
            t.insert("W_enc".into(), transpose(&take("encoder.weight")));
            t.insert("b_gate".into(), take("gate_bias"));
            t.insert("r_mag".into(), take("r_mag"));
            t.insert("b_mag".into(), take("mag_bias"));
            t.insert("W_dec".into(), transpose(&take("decoder.weight")));
            t.insert("b_dec".into(), take("decoder_bias"));
            (Architecture::Gated, true)
        }
    };
    let mut cfg = SaeLensConfig::new(architecture, d_in, d_sae);
    cfg.apply_b_dec_to_input = apply_b_dec;
    if architecture == Architecture::TopK {
        cfg.k = k_buffer.map(|k| k as f64);
        cfg.rescale_acts_by_decoder_norm = Some(false);
    }
    let sae = parts_to_sae(&cfg, &t, &weights_path, device)?;
    Ok(DictionaryLearningSae { sae, dict_class })
}

/// A BatchTopK scalar threshold; dictionary_learning initialises it to −1 until training has
/// estimated it.
fn threshold_scalar(path: &Path, t: &HostTensor) -> Result<f32> {
    let theta = t.data()[0];
    if theta < 0.0 {
        return Err(Error::InvalidValue {
            what: format!("tensor `threshold` in {}", path.display()),
            reason: format!(
                "{theta} is dictionary_learning's placeholder for a threshold never estimated \
                 (training stopped before threshold_start_step?)"
            ),
        });
    }
    Ok(theta)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn config_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let device = crate::test_device();
        let write =
            |v: Value| std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        write(serde_json::json!({"buffer": {}}));
        let e = load_dictionary_learning(dir.path(), &device).unwrap_err();
        assert!(matches!(e, Error::MissingConfigKey { ref key, .. } if key == "trainer"));
        write(
            serde_json::json!({"trainer": {"dict_class": "CrossCoder", "activation_dim": 4, "dict_size": 8}}),
        );
        let e = load_dictionary_learning(dir.path(), &device).unwrap_err();
        assert!(matches!(e, Error::UnknownArchitecture { ref name, .. } if name == "CrossCoder"));
        write(
            serde_json::json!({"trainer": {"dict_class": "AutoEncoder", "activation_dim": "4", "dict_size": 8}}),
        );
        let e = load_dictionary_learning(dir.path(), &device).unwrap_err();
        assert!(matches!(e, Error::ConfigType { ref key, .. } if key == "trainer.activation_dim"));
    }
}
