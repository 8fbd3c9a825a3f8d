//! Folders written by `tests/fixtures/make_fixtures.py` (Python `json` + `numpy` +
//! `safetensors`, following each tool's documented layout) load and give the outputs numpy
//! computed.

use std::path::{Path, PathBuf};

use approx::assert_abs_diff_eq;
use burn::prelude::*;
use sae_core::io::{
    HostTensor, NormalizeActivations, SaeLensFolder, TensorSet, load_dictionary_learning,
    load_saelens, load_sparsify,
};
use sae_core::{AnySae, Architecture, SparseAutoencoder};

use super::device;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `expected.safetensors`, read through the crate's own public reader of SAELens folders'
/// tensors would need a config; read it with the safetensors crate directly.
fn expected(name: &str) -> TensorSet {
    let bytes = std::fs::read(fixture(name).join("expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.iter()
        .map(|(n, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (n.to_string(), HostTensor::new(v.shape().to_vec(), data))
        })
        .collect()
}

fn assert_close(found: Tensor<2>, expected: &HostTensor, what: &str) {
    let found = HostTensor::from_tensor(found);
    assert_eq!(found.shape(), expected.shape(), "{what}: shape");
    for (i, (a, b)) in found.data().iter().zip(expected.data()).enumerate() {
        assert_abs_diff_eq!(*a, *b, epsilon = 1e-5 * (1.0 + b.abs()));
        // Exact zeros (inactive latents) must match exactly.
        assert_eq!(*a == 0.0, *b == 0.0, "{what}[{i}]: {a} vs {b}");
    }
}

/// Encodes and decodes the fixture's `x` and compares with numpy's codes and reconstruction.
fn check_outputs(sae: &AnySae, exp: &TensorSet, what: &str) {
    let x = exp["x"].to_tensor::<2>(&device());
    assert_close(
        sae.encode(x.clone()),
        &exp["codes"],
        &format!("{what} codes"),
    );
    assert_close(sae.forward(x), &exp["x_hat"], &format!("{what} x_hat"));
}

fn assert_bits(found: HostTensor, expected: &HostTensor, what: &str) {
    assert_eq!(found.shape(), expected.shape(), "{what}");
    let b = |t: &HostTensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(b(&found), b(expected), "{what}: values differ");
}

#[test]
fn saelens_v6_jumprelu_in_bfloat16() {
    let name = "saelens_jumprelu_bf16";
    let exp = expected(name);
    // bf16 → f32 widening is exact: the folder's tensors equal numpy's widened values bit for bit.
    let folder = SaeLensFolder::read(fixture(name)).unwrap();
    for t in ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"] {
        assert_bits(folder.tensors[t].clone(), &exp[&format!("stored.{t}")], t);
    }
    let loaded = load_saelens(fixture(name), &device()).unwrap();
    let cfg = &loaded.config;
    assert_eq!(cfg.architecture, Architecture::JumpRelu);
    assert_eq!(cfg.dtype, "bfloat16");
    assert!(!cfg.apply_b_dec_to_input);
    assert!(!cfg.upgraded_from_pre_6);
    assert_eq!(cfg.metadata["hook_name"], "blocks.12.hook_resid_post");
    assert!(
        cfg.extra.contains_key("a_key_from_the_future"),
        "unknown keys are kept"
    );
    assert_eq!(loaded.log10_sparsity.as_ref().map(Vec::len), Some(12));
    let AnySae::JumpRelu(ref sae) = loaded.sae else {
        panic!("expected JumpReLU, got {:?}", loaded.sae.architecture());
    };
    assert_bits(
        HostTensor::from_tensor(sae.W_enc.val()),
        &exp["stored.W_enc"],
        "W_enc",
    );
    check_outputs(&loaded.sae, &exp, name);
}

#[test]
fn saelens_pre_6_topk_in_float16() {
    let name = "saelens_topk_pre6_f16";
    let exp = expected(name);
    let loaded = load_saelens(fixture(name), &device()).unwrap();
    let cfg = &loaded.config;
    assert!(cfg.upgraded_from_pre_6);
    assert_eq!(cfg.architecture, Architecture::TopK);
    assert_eq!(cfg.k, Some(3.0));
    assert_eq!(cfg.normalize_activations, NormalizeActivations::None);
    assert_eq!(cfg.metadata["hook_name"], "blocks.0.hook_resid_pre");
    assert!(loaded.log10_sparsity.is_none());
    let AnySae::TopK(ref sae) = loaded.sae else {
        panic!("expected TopK");
    };
    assert_eq!(sae.k, 3);
    assert!(
        !sae.rescale_acts_by_decoder_norm,
        "SAELens inference TopK default"
    );
    assert_bits(
        HostTensor::from_tensor(sae.W_dec.val()),
        &exp["stored.W_dec"],
        "W_dec",
    );
    check_outputs(&loaded.sae, &exp, name);
}

#[test]
fn sparsify_topk_folder() {
    let name = "sparsify_topk";
    let exp = expected(name);
    let loaded = load_sparsify(fixture(name), &device()).unwrap();
    assert!(!loaded.transcoder);
    assert!(
        !loaded.w_dec_transposed,
        "sparsify's current layout is [num_latents, d_in]"
    );
    let AnySae::TopK(ref sae) = loaded.sae else {
        panic!("expected TopK");
    };
    assert!(sae.unit_norm_decoder, "normalize_decoder: true");
    assert_bits(
        HostTensor::from_tensor(sae.W_dec.val()),
        &exp["stored.W_dec"],
        "W_dec",
    );
    check_outputs(&loaded.sae, &exp, name);
}

#[test]
fn sparsify_decoder_stored_transposed_is_detected_by_shape() {
    // Rewrite the fixture with W_dec as [d_in, num_latents]: same SAE, detected and transposed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("sparsify_topk/cfg.json"),
        dir.path().join("cfg.json"),
    )
    .unwrap();
    let bytes = std::fs::read(fixture("sparsify_topk/sae.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, v) in st.iter() {
        if n == "W_dec" {
            let (r, c) = (v.shape()[0], v.shape()[1]);
            let mut out = vec![0u8; v.data().len()];
            for i in 0..r {
                for j in 0..c {
                    let src = (i * c + j) * 4;
                    let dst = (j * r + i) * 4;
                    out[dst..dst + 4].copy_from_slice(&v.data()[src..src + 4]);
                }
            }
            owned.push((n.to_string(), vec![c, r], out));
        } else {
            owned.push((n.to_string(), v.shape().to_vec(), v.data().to_vec()));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                .unwrap();
            (n.clone(), view)
        })
        .collect();
    std::fs::write(
        dir.path().join("sae.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let loaded = load_sparsify(dir.path(), &device()).unwrap();
    assert!(loaded.w_dec_transposed);
    check_outputs(
        &loaded.sae,
        &expected("sparsify_topk"),
        "transposed sparsify",
    );
}

#[test]
fn dictionary_learning_batch_topk_reads_as_jumprelu() {
    let name = "dictionary_learning_batchtopk";
    let exp = expected(name);
    let loaded = load_dictionary_learning(fixture(name), &device()).unwrap();
    assert_eq!(loaded.dict_class, "BatchTopKSAE");
    assert_eq!(loaded.sae.architecture(), Architecture::JumpRelu);
    check_outputs(&loaded.sae, &exp, name);
}

#[test]
fn dictionary_learning_gated() {
    let name = "dictionary_learning_gated";
    let exp = expected(name);
    let loaded = load_dictionary_learning(fixture(name), &device()).unwrap();
    assert_eq!(loaded.sae.architecture(), Architecture::Gated);
    check_outputs(&loaded.sae, &exp, name);
}

#[test]
fn fixture_folders_write_back_bit_exactly() {
    // File → folder → file → folder: same tensors (bit for bit) and config; the pre-6.0 config
    // comes back in the v6 layout, so its recorded version becomes a v6 one.
    let bits = |t: &TensorSet| -> Vec<(String, Vec<usize>, Vec<u32>)> {
        t.iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    v.shape().to_vec(),
                    v.data().iter().map(|x| x.to_bits()).collect(),
                )
            })
            .collect()
    };
    for name in ["saelens_jumprelu_bf16", "saelens_topk_pre6_f16"] {
        let folder = SaeLensFolder::read(fixture(name)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        folder.write(dir.path()).unwrap();
        let again = SaeLensFolder::read(dir.path()).unwrap();
        assert_eq!(bits(&again.tensors), bits(&folder.tensors), "{name}");
        assert_eq!(again.sparsity, folder.sparsity, "{name}");
        let mut cfg = folder.config.clone();
        if cfg.upgraded_from_pre_6 {
            cfg.upgraded_from_pre_6 = false;
            cfg.metadata
                .insert("sae_lens_version".into(), sae_lens_format_version());
        }
        assert_eq!(again.config, cfg, "{name}");
    }
}

fn sae_lens_format_version() -> serde_json::Value {
    serde_json::Value::String(sae_core::io::SAELENS_FORMAT_VERSION.into())
}
