//! Bad files give the typed error that names the problem: one test per error variant (and per
//! way of producing it), starting from a valid folder and breaking one thing.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use sae_core::io::{
    NormalizeActivations, SaeLensFolder, SaeLensSaveOptions, SaveMode, load_dictionary_learning,
    load_saelens, load_sparsify, save_saelens,
};
use sae_core::{
    AbsTopKSaeConfig, AnySae, BatchTopKSaeConfig, Error, JumpReluSaeConfig, JumpReluSparsityLoss,
    MatryoshkaSaeConfig, ReluSaeConfig, SparseAutoencoder, TopKSaeConfig,
};
use safetensors::Dtype;
use serde_json::{Value, json};

use super::device;

/// A valid TopK folder (d_in 4, d_sae 8, k 2).
fn valid_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    device().seed(3);
    let sae: AnySae = TopKSaeConfig::new(4, 8, 2).init(&device()).into();
    save_saelens(&sae, dir.path(), &SaeLensSaveOptions::new()).unwrap();
    dir
}

fn cfg_path(dir: &Path) -> PathBuf {
    dir.join("cfg.json")
}

fn weights_path(dir: &Path) -> PathBuf {
    dir.join("sae_weights.safetensors")
}

fn edit_cfg(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(cfg_path(dir)).unwrap()).unwrap();
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(cfg_path(dir), cfg.to_string()).unwrap();
}

/// One raw tensor for [`write_raw`]: name, dtype, shape, little-endian bytes.
type Raw = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_raw(name: &str, shape: Vec<usize>, values: &[f32]) -> Raw {
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    (name.into(), Dtype::F32, shape, bytes)
}

/// Reads a safetensors file's tensors as raw entries (so tests can break one and write back).
fn read_raw(path: &Path) -> Vec<Raw> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.dtype(),
                v.shape().to_vec(),
                v.data().to_vec(),
            )
        })
        .collect()
}

/// Writes raw tensors with the plain safetensors crate, bypassing every check of this crate.
fn write_raw(path: &Path, tensors: &[Raw]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn edit_weights(dir: &Path, edit: impl FnOnce(&mut Vec<Raw>)) {
    let mut raw = read_raw(&weights_path(dir));
    edit(&mut raw);
    write_raw(&weights_path(dir), &raw);
}

fn load(dir: &Path) -> Error {
    load_saelens(dir, &device()).expect_err("the folder is broken")
}

#[test]
fn the_valid_folder_loads() {
    let dir = valid_folder();
    assert!(load_saelens(dir.path(), &device()).is_ok());
}

#[test]
fn missing_files_are_io_errors_with_the_path() {
    let dir = valid_folder();
    std::fs::remove_file(weights_path(dir.path())).unwrap();
    match load(dir.path()) {
        Error::Io { path, .. } => assert_eq!(path, weights_path(dir.path())),
        e => panic!("expected Io, got {e}"),
    }
    let e = load(Path::new("/no/such/sae/folder"));
    assert!(
        matches!(e, Error::Io { ref path, .. } if path.ends_with("cfg.json")),
        "{e}"
    );
}

#[test]
fn truncated_and_corrupt_weights() {
    let dir = valid_folder();
    let bytes = std::fs::read(weights_path(dir.path())).unwrap();
    // Truncated data: the header's offsets run past the end of the file.
    std::fs::write(weights_path(dir.path()), &bytes[..bytes.len() - 10]).unwrap();
    let e = load(dir.path());
    assert!(matches!(e, Error::Safetensors { .. }), "{e}");
    assert!(e.to_string().contains("sae_weights.safetensors"));
    // Truncated header.
    std::fs::write(weights_path(dir.path()), &bytes[..30]).unwrap();
    assert!(matches!(load(dir.path()), Error::Safetensors { .. }));
    // Empty file.
    std::fs::write(weights_path(dir.path()), b"").unwrap();
    assert!(matches!(load(dir.path()), Error::Safetensors { .. }));
    // A header that is not JSON.
    let mut corrupt = bytes.clone();
    corrupt[8..16].copy_from_slice(b"\xff\xfe garbo");
    std::fs::write(weights_path(dir.path()), &corrupt).unwrap();
    assert!(matches!(load(dir.path()), Error::Safetensors { .. }));
    // An absurd header length.
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(weights_path(dir.path()), &huge).unwrap();
    assert!(matches!(load(dir.path()), Error::Safetensors { .. }));
}

#[test]
fn invalid_json_and_wrong_json_types() {
    let dir = valid_folder();
    let text = std::fs::read_to_string(cfg_path(dir.path())).unwrap();
    std::fs::write(cfg_path(dir.path()), &text[..text.len() / 2]).unwrap();
    assert!(matches!(load(dir.path()), Error::Json { .. }));

    for (key, value, expected) in [
        ("d_sae", json!("8"), "a non-negative integer"),
        ("d_in", json!(4.5), "a non-negative integer"),
        ("apply_b_dec_to_input", json!("yes"), "a boolean"),
        ("k", json!([2]), "a number"),
        ("metadata", json!("gpt2"), "a JSON object"),
        ("architecture", json!(null), "missing"),
    ] {
        let dir = valid_folder();
        edit_cfg(dir.path(), |c| {
            c.insert(key.into(), value.clone());
        });
        match load(dir.path()) {
            Error::ConfigType {
                key: k,
                expected: e,
                ..
            } => {
                assert_eq!((k.as_str(), e), (key, expected));
            }
            Error::MissingConfigKey { key: k, .. } => {
                assert_eq!((k.as_str(), "missing"), (key, expected));
            }
            e => panic!("{key}: expected a type error, got {e}"),
        }
    }
    let dir = valid_folder();
    std::fs::write(cfg_path(dir.path()), "[1, 2, 3]").unwrap();
    assert!(matches!(load(dir.path()), Error::ConfigType { .. }));
}

#[test]
fn missing_keys_invalid_values_and_unknown_architectures() {
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c.remove("d_in");
    });
    assert!(matches!(load(dir.path()), Error::MissingConfigKey { ref key, .. } if key == "d_in"));

    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c.insert("architecture".into(), json!("crosscoder"));
    });
    let e = load(dir.path());
    assert!(matches!(e, Error::UnknownArchitecture { ref name, .. } if name == "crosscoder"));
    assert!(e.to_string().contains("known: standard, topk"), "{e}");

    for (key, value) in [
        ("k", json!(9)),
        ("k", json!(2.5)),
        ("k", json!(0)),
        ("dtype", json!("int4")),
    ] {
        let dir = valid_folder();
        edit_cfg(dir.path(), |c| {
            c.insert(key.into(), value.clone());
        });
        let e = load(dir.path());
        assert!(
            matches!(e, Error::InvalidConfigValue { key: ref k, .. } if k == key),
            "{key}={value}: {e}"
        );
    }

    // A sparseland config that does not parse, or names another architecture.
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c["sparseland"]["config"]["k"] = json!("two");
    });
    assert!(
        matches!(load(dir.path()), Error::InvalidConfigValue { ref key, .. } if key == "sparseland.config")
    );
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c["sparseland"]["architecture"] = json!("gated");
    });
    assert!(
        matches!(load(dir.path()), Error::InvalidConfigValue { ref key, .. } if key == "sparseland.architecture")
    );

    // Normalisations SAELens applies inside its forward pass are refused, not silently dropped.
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c.insert("normalize_activations".into(), json!("layer_norm"));
    });
    let folder = SaeLensFolder::read(dir.path()).unwrap();
    let e = folder.to_sae(&device()).unwrap_err();
    assert!(
        matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "normalize_activations")
    );
    let mut folder = folder;
    folder.config.normalize_activations = NormalizeActivations::None;
    assert!(
        folder.to_sae(&device()).is_ok(),
        "the documented escape hatch"
    );
}

#[test]
fn missing_extra_and_misshaped_tensors() {
    let dir = valid_folder();
    edit_weights(dir.path(), |t| t.retain(|(n, ..)| n != "b_enc"));
    let e = load(dir.path());
    assert!(
        matches!(e, Error::MissingTensor { ref name, ref architecture, .. }
        if name == "b_enc" && architecture == "topk"),
        "{e}"
    );

    let dir = valid_folder();
    edit_weights(dir.path(), |t| {
        t.push(f32_raw("W_skip", vec![4, 4], &[0.0; 16]))
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::UnexpectedTensor { ref name, .. } if name == "W_skip"),
        "{e}"
    );

    // W_dec stored transposed ([d_in, d_sae]).
    let dir = valid_folder();
    edit_weights(dir.path(), |t| {
        let w = t.iter_mut().find(|(n, ..)| n == "W_dec").unwrap();
        w.2 = vec![4, 8];
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::TensorShape { ref name, ref expected, ref found, .. }
        if name == "W_dec" && expected == &vec![8, 4] && found == &vec![4, 8]),
        "{e}"
    );

    // cfg.json says d_in 5 but the weights are d_in 4.
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c.insert("d_in".into(), json!(5));
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::InconsistentDim { dim: "d_in", expected: 5, found: 4, ref tensor, .. }
        if tensor == "W_enc"),
        "{e}"
    );

    // b_dec one element short.
    let dir = valid_folder();
    edit_weights(dir.path(), |t| {
        let b = t.iter_mut().find(|(n, ..)| n == "b_dec").unwrap();
        *b = f32_raw("b_dec", vec![3], &[0.0; 3]);
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::InconsistentDim { dim: "d_in", ref tensor, .. } if tensor == "b_dec"),
        "{e}"
    );

    // A sparsity file of the wrong width.
    let dir = valid_folder();
    write_raw(
        &dir.path().join("sparsity.safetensors"),
        &[f32_raw("sparsity", vec![7], &[-1.0; 7])],
    );
    let e = load(dir.path());
    assert!(
        matches!(e, Error::InconsistentDim { dim: "d_sae", ref tensor, .. } if tensor == "sparsity"),
        "{e}"
    );
}

#[test]
fn non_finite_values_and_unsupported_dtypes() {
    let dir = valid_folder();
    edit_weights(dir.path(), |t| {
        let b = t.iter_mut().find(|(n, ..)| n == "b_enc").unwrap();
        let mut v = [0.5f32; 8];
        v[5] = f32::NAN;
        *b = f32_raw("b_enc", vec![8], &v);
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::NonFinite { ref name, index: 5, .. } if name == "b_enc"),
        "{e}"
    );

    // An F64 value beyond the f32 range becomes infinite and is reported.
    let dir = valid_folder();
    edit_weights(dir.path(), |t| {
        let b = t.iter_mut().find(|(n, ..)| n == "b_dec").unwrap();
        let v = [0.0f64, 1e300, 0.0, 0.0];
        *b = (
            "b_dec".into(),
            Dtype::F64,
            vec![4],
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::NonFinite { ref name, index: 1, value, .. }
        if name == "b_dec" && value == f32::INFINITY),
        "{e}"
    );

    let dir = valid_folder();
    edit_weights(dir.path(), |t| {
        let b = t.iter_mut().find(|(n, ..)| n == "b_enc").unwrap();
        *b = ("b_enc".into(), Dtype::I32, vec![8], vec![0u8; 32]);
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::UnsupportedDtype { ref name, ref dtype, .. }
        if name == "b_enc" && dtype == "I32"),
        "{e}"
    );

    // In-memory data is checked before writing too.
    let dir = valid_folder();
    let mut folder = SaeLensFolder::read(dir.path()).unwrap();
    let w = folder.tensors.get_mut("W_enc").unwrap();
    let mut data = w.data().to_vec();
    data[0] = f32::NEG_INFINITY;
    *w = sae_core::io::HostTensor::new(w.shape().to_vec(), data);
    assert!(matches!(
        folder.write(dir.path()),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn negative_thresholds_are_invalid_values() {
    device().seed(5);
    let sae: AnySae = sae_core::JumpReluSaeConfig::new(4, 8)
        .init(&device())
        .into();
    let dir = tempfile::tempdir().unwrap();
    save_saelens(&sae, dir.path(), &SaeLensSaveOptions::new()).unwrap();
    edit_weights(dir.path(), |t| {
        let b = t.iter_mut().find(|(n, ..)| n == "threshold").unwrap();
        *b = f32_raw(
            "threshold",
            vec![8],
            &[0.1, 0.1, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1],
        );
    });
    let e = load(dir.path());
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
    assert!(e.to_string().contains("-0.2 at index 2"), "{e}");
}

#[test]
fn unrepresentable_architectures_are_refused_when_saelens_must_load_them() {
    let sae: AnySae = sae_core::TopAfaSaeConfig::new(4, 8).init(&device()).into();
    let strict = SaeLensSaveOptions::new().require_saelens_loadable(true);
    let e = SaeLensFolder::from_sae(&sae, &strict).unwrap_err();
    assert!(
        matches!(e, Error::Unrepresentable { ref architecture, format: "SAELens", .. }
        if architecture == "top_afa"),
        "{e}"
    );
    // Without the flag it is written under its own name, which SAELens refuses rather than misreads.
    let folder = SaeLensFolder::from_sae(&sae, &SaeLensSaveOptions::new()).unwrap();
    assert_eq!(folder.config.to_json()["architecture"], "top_afa");
    // AbsTopK is SAELens' own `abstopk` (≥ 6.54): written under that name, loadable.
    let abs: AnySae = AbsTopKSaeConfig::new(4, 8, 2).init(&device()).into();
    let folder = SaeLensFolder::from_sae(&abs, &strict).unwrap();
    assert_eq!(folder.config.to_json()["architecture"], "abstopk");
    // A BatchTopK checkpoint is a training-only SAELens architecture.
    let b: AnySae = sae_core::BatchTopKSaeConfig::new(4, 8, 2.0)
        .init(&device())
        .into();
    let e =
        SaeLensFolder::from_sae(&b, &strict.clone().with_mode(SaveMode::Checkpoint)).unwrap_err();
    assert!(matches!(e, Error::Unrepresentable { .. }));
    assert!(
        SaeLensFolder::from_sae(&b, &strict).is_ok(),
        "its inference export is jumprelu"
    );
}

#[test]
fn scaling_factor_follows_saelens() {
    // All ones: dropped. Otherwise: an error unless finetuning_scaling_factor, then folded.
    let dir = valid_folder();
    let before = load_saelens(dir.path(), &device()).unwrap().sae;
    edit_weights(dir.path(), |t| {
        t.push(f32_raw("scaling_factor", vec![8], &[1.0; 8]))
    });
    assert!(load_saelens(dir.path(), &device()).is_ok());
    edit_weights(dir.path(), |t| {
        t.retain(|(n, ..)| n != "scaling_factor");
        t.push(f32_raw("scaling_factor", vec![8], &[2.0; 8]));
    });
    let e = load(dir.path());
    assert!(
        matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "finetuning_scaling_factor"),
        "{e}"
    );
    edit_cfg(dir.path(), |c| {
        c.insert("finetuning_scaling_factor".into(), json!(true));
    });
    let after = load_saelens(dir.path(), &device()).unwrap().sae;
    let x = Tensor::<2>::ones([1, 4], &device());
    // Codes are unchanged; the decoder rows were doubled.
    let (AnySae::TopK(a), AnySae::TopK(b)) = (&after, &before) else {
        unreachable!()
    };
    let doubled = b.W_dec.val() * 2.0;
    assert_eq!(super::bits(a.W_dec.val()), super::bits(doubled));
    assert_eq!(
        super::bits(after.encode(x.clone())),
        super::bits(before.encode(x))
    );
}

#[test]
fn corrupt_integer_buffers_in_dictionary_learning_files() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dictionary_learning_batchtopk");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut raw = read_raw(&fixture.join("ae.safetensors"));
    let k = raw.iter_mut().find(|(n, ..)| n == "k").unwrap();
    *k = (
        "k".into(),
        Dtype::F32,
        vec![],
        2.5f32.to_le_bytes().to_vec(),
    );
    write_raw(&dir.path().join("ae.safetensors"), &raw);
    let e = load_dictionary_learning(dir.path(), &device()).unwrap_err();
    assert!(matches!(e, Error::CorruptFile { .. }), "{e}");
    assert!(e.to_string().contains("`k`"), "{e}");

    // A threshold never estimated (dictionary_learning's −1 placeholder).
    let mut raw = read_raw(&fixture.join("ae.safetensors"));
    let th = raw.iter_mut().find(|(n, ..)| n == "threshold").unwrap();
    *th = f32_raw("threshold", vec![], &[-1.0]);
    write_raw(&dir.path().join("ae.safetensors"), &raw);
    let e = load_dictionary_learning(dir.path(), &device()).unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");

    // trainer.k disagreeing with the k buffer.
    write_raw(
        &dir.path().join("ae.safetensors"),
        &read_raw(&fixture.join("ae.safetensors")),
    );
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    cfg["trainer"]["k"] = json!(4);
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let e = load_dictionary_learning(dir.path(), &device()).unwrap_err();
    assert!(
        matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "trainer.k"),
        "{e}"
    );
}

#[test]
fn sparsify_shape_errors() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sparsify_topk");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture.join("cfg.json"), dir.path().join("cfg.json")).unwrap();
    let mut raw = read_raw(&fixture.join("sae.safetensors"));
    raw.retain(|(n, ..)| n != "W_dec");
    write_raw(&dir.path().join("sae.safetensors"), &raw);
    let e = load_sparsify(dir.path(), &device()).unwrap_err();
    assert!(
        matches!(e, Error::MissingTensor { ref name, .. } if name == "W_dec"),
        "{e}"
    );
    // encoder.weight stored the wrong way round.
    let mut raw = read_raw(&fixture.join("sae.safetensors"));
    let w = raw
        .iter_mut()
        .find(|(n, ..)| n == "encoder.weight")
        .unwrap();
    w.2 = vec![6, 12];
    write_raw(&dir.path().join("sae.safetensors"), &raw);
    let e = load_sparsify(dir.path(), &device()).unwrap_err();
    assert!(
        matches!(e, Error::TensorShape { ref name, .. } if name == "encoder.weight"),
        "{e}"
    );
}

#[test]
fn the_older_abs_topk_name_still_reads() {
    device().seed(9);
    let sae: AnySae = AbsTopKSaeConfig::new(4, 8, 2).init(&device()).into();
    let dir = tempfile::tempdir().unwrap();
    save_saelens(&sae, dir.path(), &SaeLensSaveOptions::new()).unwrap();
    edit_cfg(dir.path(), |cfg| {
        assert_eq!(cfg["architecture"], "abstopk");
        cfg.insert("architecture".into(), json!("abs_topk"));
    });
    let back = load_saelens(dir.path(), &device()).unwrap();
    assert_eq!(back.sae.architecture(), sae_core::Architecture::AbsTopK);
}

/// Loads `dir`, failing the test if loading panics (a config from a file must never reach
/// one of the architectures' `# Panics` contracts).
fn load_without_panic(dir: &Path) -> Error {
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        load_saelens(dir, &device())
    }))
    .unwrap_or_else(|_| {
        panic!(
            "loading {} panicked instead of returning an error",
            dir.display()
        )
    });
    loaded.expect_err("the folder is broken")
}

/// Sets every `key` inside `value` (at any depth) to `to`; returns how many were set.
fn set_everywhere(value: &mut Value, key: &str, to: &Value) -> usize {
    match value {
        Value::Object(m) => {
            let mut n = 0;
            for (k, v) in m.iter_mut() {
                if k == key {
                    *v = to.clone();
                    n += 1;
                } else {
                    n += set_everywhere(v, key, to);
                }
            }
            n
        }
        Value::Array(a) => a.iter_mut().map(|v| set_everywhere(v, key, to)).sum(),
        _ => 0,
    }
}

fn saved(sae: AnySae) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = SaeLensSaveOptions::new().with_mode(SaveMode::Checkpoint);
    save_saelens(&sae, dir.path(), &options).unwrap();
    dir
}

/// Zero widths with tensors that agree with them (so the layout check passes) and
/// hyperparameters that only the architecture's own check rejects: every one is an
/// `InvalidConfigValue` naming the key, where `d_in: 0` used to reach `init`'s panic.
#[test]
fn a_cfg_json_never_reaches_a_config_panic() {
    // d_in = 0: W_enc [0, 8], b_enc [8], W_dec [8, 0], b_dec [0].
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c.insert("d_in".into(), json!(0));
        c["sparseland"]["config"]["d_in"] = json!(0);
    });
    edit_weights(dir.path(), |t| {
        *t = vec![
            f32_raw("W_enc", vec![0, 8], &[]),
            f32_raw("b_enc", vec![8], &[0.0; 8]),
            f32_raw("W_dec", vec![8, 0], &[]),
            f32_raw("b_dec", vec![0], &[]),
        ];
    });
    let e = load_without_panic(dir.path());
    assert!(
        matches!(e, Error::InvalidConfigValue { ref key, ref value, .. } if key == "d_in" && value == "0"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("TopKSaeConfig.d_in must be at least 1"),
        "{e}"
    );

    // d_sae = 0 (and so k = 2 > d_sae): the first failed rule is named.
    let dir = valid_folder();
    edit_cfg(dir.path(), |c| {
        c.insert("d_sae".into(), json!(0));
        c["sparseland"]["config"]["d_sae"] = json!(0);
    });
    edit_weights(dir.path(), |t| {
        *t = vec![
            f32_raw("W_enc", vec![4, 0], &[]),
            f32_raw("b_enc", vec![0], &[]),
            f32_raw("W_dec", vec![0, 4], &[]),
            f32_raw("b_dec", vec![4], &[0.0; 4]),
        ];
    });
    let e = load_without_panic(dir.path());
    assert!(
        matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "d_sae"),
        "{e}"
    );

    // Values the readers' old copy of the rules never looked at.
    device().seed(4);
    let jumprelu = |loss| -> AnySae {
        JumpReluSaeConfig::new(4, 8)
            .with_sparsity_loss(loss)
            .with_pre_act_loss_coefficient(Some(3e-6))
            .init(&device())
            .into()
    };
    let cases: Vec<(AnySae, &str, Value, &str)> = vec![
        (
            jumprelu(JumpReluSparsityLoss::Step),
            "l0_coefficient",
            json!(-1.0),
            "sparseland.config.l0_coefficient",
        ),
        (
            jumprelu(JumpReluSparsityLoss::Tanh { tanh_scale: 4.0 }),
            "tanh_scale",
            json!(0.0),
            "sparseland.config.sparsity_loss.tanh_scale",
        ),
        (
            jumprelu(JumpReluSparsityLoss::Step),
            "pre_act_loss_coefficient",
            json!(-3e-6),
            "sparseland.config.pre_act_loss_coefficient",
        ),
        (
            jumprelu(JumpReluSparsityLoss::Step),
            "bandwidth",
            json!(0.0),
            "sparseland.config.bandwidth",
        ),
        (
            ReluSaeConfig::new(4, 8).init(&device()).into(),
            "lp_norm",
            json!(-2.0),
            "sparseland.config.lp_norm",
        ),
        (
            MatryoshkaSaeConfig::new(BatchTopKSaeConfig::new(4, 8, 2.0), vec![2, 4])
                .with_inner_level_weights(Some(vec![1.0, 1.0]))
                .init(&device())
                .into(),
            "inner_level_weights",
            json!([1.0, -1.0]),
            "sparseland.config.inner_level_weights[1]",
        ),
        (
            MatryoshkaSaeConfig::new(BatchTopKSaeConfig::new(4, 8, 2.0), vec![2, 4])
                .init(&device())
                .into(),
            "topk_threshold_lr",
            json!(2.0),
            "topk_threshold_lr",
        ),
    ];
    for (sae, field, bad, key) in cases {
        let dir = saved(sae);
        edit_cfg(dir.path(), |c| {
            let set = if c.contains_key(field) && key == field {
                c.insert(field.into(), bad.clone());
                1
            } else {
                set_everywhere(&mut c["sparseland"], field, &bad)
            };
            assert!(set > 0, "{field} is not in the saved cfg.json");
        });
        let e = load_without_panic(dir.path());
        assert!(
            matches!(e, Error::InvalidConfigValue { key: ref k, .. } if k == key),
            "{field}: expected InvalidConfigValue for `{key}`, got {e}"
        );
    }
}
