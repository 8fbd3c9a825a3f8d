//! Tests of the BERT modules together: Hugging Face round trips, typed load errors, padding
//! invariance, hook points and attention overrides.

use std::path::Path;

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::{Distribution, Tolerance};
use proptest::prelude::*;

use super::save::{HfTensor, write_safetensors};
use super::*;
use crate::{
    AttentionInputs, Error, Hooks, Tokenizer, apply_pattern, attention_pattern, attention_scores,
    dense_attention, names,
};

const VOCAB: usize = 40;
const D: usize = 16;
const HEADS: usize = 4;
const LAYERS: usize = 2;
const MLP: usize = 32;
const MAX_POS: usize = 12;

fn config() -> BertConfig {
    BertConfig::new(VOCAB, D, LAYERS, HEADS, MLP, MAX_POS)
}

/// Replaces every float parameter by random normal values, so LayerNorm γ/β and biases are
/// not the identity (a swapped γ and β would otherwise go unnoticed).
struct Randomise;

impl ModuleMapper for Randomise {
    fn map_float<const N: usize>(&mut self, p: Param<Tensor<N>>) -> Param<Tensor<N>> {
        p.map(|t| t.random_like(Distribution::Normal(0.0, 0.5)))
    }
}

fn model(seed: u64) -> BertForMaskedLm {
    let device = crate::test_device();
    device.seed(seed);
    config().init_masked_lm(&device).map(&mut Randomise)
}

/// A word-level tokenizer over `t0 … t39` (whitespace-separated), `[PAD]` = 0.
fn tokenizer() -> Tokenizer {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[PAD]".into(), 0.into());
    vocab.insert("[UNK]".into(), 1.into());
    for i in 2..VOCAB {
        vocab.insert(format!("t{i}"), i.into());
    }
    let json = serde_json::json!({
        "version": "1.0", "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "truncation": null, "padding": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap()
}

fn input(seqs: &[Vec<u32>]) -> BertInput {
    BertInput::from_sequences(seqs, None, 0, &crate::test_device())
}

fn batch() -> BertInput {
    input(&[vec![2, 7, 9, 3, 11], vec![5, 6, 8]])
}

fn assert_close<const N: usize>(a: Tensor<N>, b: Tensor<N>, tol: f32) {
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(tol));
}

/// Writes `tensors` (Hugging Face names) and the model's config and tokenizer into `dir`.
fn write_folder(m: &BertForMaskedLm, tensors: &[HfTensor], dir: &Path) {
    m.save_hf_folder(dir, &tokenizer()).unwrap();
    write_safetensors(tensors, &dir.join("model.safetensors")).unwrap();
}

#[test]
fn hf_folder_round_trip_gives_the_same_outputs() {
    let m = model(1);
    let dir = tempfile::tempdir().unwrap();
    m.save_hf_folder(dir.path(), &tokenizer()).unwrap();
    let device = crate::test_device();
    let (loaded, tok) = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap();
    assert_eq!(loaded.config(), m.config());
    assert_eq!(tok.encode("t5 t6", false).unwrap(), vec![5, 6]);
    let x = batch();
    assert_close(m.forward(&x).unwrap(), loaded.forward(&x).unwrap(), 1e-6);
    // The encoder alone loads from the same folder (the MLM head is ignored).
    let (encoder, _) = Bert::from_hf_folder(dir.path(), &device).unwrap();
    assert_close(
        m.bert.forward(&x).unwrap(),
        encoder.forward(&x).unwrap(),
        1e-6,
    );
}

#[test]
fn old_layer_norm_names_no_prefix_decoder_bias_and_shards_load_alike() {
    let m = model(2);
    let x = batch();
    let want = m.forward(&x).unwrap();
    // gamma/beta, no `bert.` prefix, the bias stored as `cls.predictions.decoder.bias`.
    let renamed: Vec<HfTensor> = m
        .hf_tensors()
        .into_iter()
        .map(|(n, s, d)| {
            let n = n.strip_prefix("bert.").unwrap_or(&n).to_string();
            let n = if n.contains("LayerNorm") {
                n.replace(".weight", ".gamma").replace(".bias", ".beta")
            } else {
                n.replace("cls.predictions.bias", "cls.predictions.decoder.bias")
            };
            (n, s, d)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_folder(&m, &renamed, dir.path());
    let device = crate::test_device();
    let (loaded, _) = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap();
    assert_close(want.clone(), loaded.forward(&x).unwrap(), 1e-6);

    // Two shards and an index.
    let dir = tempfile::tempdir().unwrap();
    m.save_hf_folder(dir.path(), &tokenizer()).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let all = m.hf_tensors();
    let (a, b) = all.split_at(all.len() / 2);
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        write_safetensors(part, &dir.path().join(file)).unwrap();
        for (n, _, _) in part {
            map.insert(n.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let (loaded, _) = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap();
    assert_close(want, loaded.forward(&x).unwrap(), 1e-6);
}

fn load_err(tensors: Vec<HfTensor>) -> Error {
    let m = model(3);
    let dir = tempfile::tempdir().unwrap();
    write_folder(&m, &tensors, dir.path());
    BertForMaskedLm::from_hf_folder(dir.path(), &crate::test_device()).unwrap_err()
}

#[test]
fn missing_tensor_is_a_typed_error_naming_it() {
    let name = "bert.encoder.layer.1.output.dense.weight";
    let tensors = model(3)
        .hf_tensors()
        .into_iter()
        .filter(|t| t.0 != name)
        .collect();
    match load_err(tensors) {
        Error::MissingTensor { name: n, .. } => assert_eq!(n, name),
        e => panic!("expected MissingTensor, found {e}"),
    }
}

#[test]
fn wrong_shape_is_a_typed_error_with_both_shapes() {
    let name = "bert.encoder.layer.0.intermediate.dense.weight";
    let tensors = model(3)
        .hf_tensors()
        .into_iter()
        .map(|(n, s, d)| {
            if n == name {
                (n, vec![s[1], s[0]], d)
            } else {
                (n, s, d)
            }
        })
        .collect();
    match load_err(tensors) {
        Error::TensorShape {
            name: n,
            expected,
            found,
            ..
        } => {
            assert_eq!(n, name);
            assert_eq!(expected, vec![MLP, D]);
            assert_eq!(found, vec![D, MLP]);
        }
        e => panic!("expected TensorShape, found {e}"),
    }
}

#[test]
fn non_finite_weights_and_corrupt_files_are_typed_errors() {
    let tensors = model(3)
        .hf_tensors()
        .into_iter()
        .map(|(n, s, mut d)| {
            if n == "cls.predictions.bias" {
                d[3] = f32::NAN;
            }
            (n, s, d)
        })
        .collect();
    assert!(matches!(load_err(tensors), Error::TensorData { .. }));

    let m = model(3);
    let dir = tempfile::tempdir().unwrap();
    m.save_hf_folder(dir.path(), &tokenizer()).unwrap();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let e = BertForMaskedLm::from_hf_folder(dir.path(), &crate::test_device()).unwrap_err();
    assert!(matches!(e, Error::Safetensors { .. }), "{e}");
}

#[test]
fn bad_config_missing_tokenizer_and_config_weight_mismatch_are_typed_errors() {
    let m = model(4);
    let device = crate::test_device();
    let dir = tempfile::tempdir().unwrap();
    m.save_hf_folder(dir.path(), &tokenizer()).unwrap();
    let cfg_path = dir.path().join("config.json");
    let original = std::fs::read_to_string(&cfg_path).unwrap();

    // A config whose vocabulary disagrees with the tensors.
    let mut cfg: serde_json::Value = serde_json::from_str(&original).unwrap();
    cfg["vocab_size"] = (VOCAB + 1).into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap_err();
    assert!(
        matches!(&e, Error::TensorShape { expected, found, .. } if expected[0] == VOCAB + 1 && found[0] == VOCAB),
        "{e}"
    );

    // hidden_size not divisible by the heads.
    cfg["vocab_size"] = VOCAB.into();
    cfg["num_attention_heads"] = 3.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");

    // Not JSON.
    std::fs::write(&cfg_path, "{").unwrap();
    let e = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap_err();
    assert!(matches!(e, Error::Json { .. }), "{e}");

    // No tokenizer.
    std::fs::write(&cfg_path, original).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let e = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap_err();
    assert!(
        matches!(&e, Error::Tokenizer { path, .. } if path.ends_with("tokenizer.json")),
        "{e}"
    );

    // No weights.
    m.save_hf_folder(dir.path(), &tokenizer()).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = BertForMaskedLm::from_hf_folder(dir.path(), &device).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn hooks_fire_in_order_with_transformer_lens_shapes() {
    let m = model(5);
    let x = batch();
    let [b, p] = x.dims();
    let fired = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = fired.clone();
    let mut hooks = Hooks::new().cache_all().hook_where(
        |_| true,
        move |name, a| {
            log.lock().unwrap().push(name.to_string());
            a
        },
    );
    let (logits, cache) = m.run(&x, &mut hooks).unwrap();
    assert_eq!(*fired.lock().unwrap(), m.hook_points());
    let dh = D / HEADS;
    for l in 0..LAYERS {
        for point in ["q", "k", "v", "z"] {
            assert_eq!(
                cache.get(&names::attn(l, point)).unwrap().dims(),
                vec![b, p, HEADS, dh]
            );
        }
        for point in ["attn_scores", "pattern"] {
            assert_eq!(
                cache.get(&names::attn(l, point)).unwrap().dims(),
                vec![b, HEADS, p, p]
            );
        }
        assert_eq!(
            cache.get(&names::mlp(l, "pre")).unwrap().dims(),
            vec![b, p, MLP]
        );
        assert_eq!(
            cache.get(&names::ln(l, "ln1", "scale")).unwrap().dims(),
            vec![b, p, 1]
        );
        for name in [
            names::resid_pre(l),
            names::resid_mid(l),
            names::resid_post(l),
        ] {
            assert_eq!(cache.get(&name).unwrap().dims(), vec![b, p, D]);
        }
    }
    assert_eq!(cache.get(names::LOGITS).unwrap().dims(), vec![b, p, VOCAB]);
    assert_close(cache.get3(names::LOGITS).unwrap(), logits, 0.0);
    // Block L's output is block L+1's input; hook_resid_post is before ln2, so it differs.
    let out0 = cache
        .get3(&names::block(0, "hook_normalized_resid_post"))
        .unwrap();
    assert_close(out0.clone(), cache.get3(&names::resid_pre(1)).unwrap(), 0.0);
    let diff: f32 = (out0 - cache.get3(&names::resid_post(0)).unwrap())
        .abs()
        .max()
        .into_scalar();
    assert!(
        diff > 1e-3,
        "hook_resid_post must be the pre-LayerNorm residual"
    );
    // The encoder's output is the last block's normalised residual.
    let last = cache
        .get3(&names::block(LAYERS - 1, "hook_normalized_resid_post"))
        .unwrap();
    assert_close(m.bert.forward(&x).unwrap(), last, 1e-6);
    // Padded keys get no attention: sequence 1 has 3 real tokens out of 5.
    let pattern = cache.get4(&names::attn(0, "pattern")).unwrap();
    let padded: f32 = pattern
        .slice(burn::tensor::s![1..2, .., .., 3..5])
        .abs()
        .sum()
        .into_scalar();
    assert_eq!(padded, 0.0);
}

#[test]
fn attention_override_with_dense_attention_gives_identical_outputs() {
    let m = model(6);
    let x = batch();
    let plain = m.forward(&x).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut hooks = Hooks::new();
    for l in 0..LAYERS {
        let seen = seen.clone();
        hooks = hooks.attention_override(l, move |inp: AttentionInputs| {
            assert!(!inp.causal && inp.key_padding.is_some());
            seen.lock().unwrap().push(inp.layer);
            dense_attention(&inp)
        });
    }
    let (overridden, _) = m.run(&x, &mut hooks).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![0, 1]);
    assert_close(plain.clone(), overridden, 0.0);
    // The explicit softmax path agrees with the fused one.
    let mut hooks = Hooks::new().attention_override(1, |inp: AttentionInputs| {
        apply_pattern(attention_pattern(attention_scores(&inp)), inp.v.clone())
    });
    assert_close(plain.clone(), m.run(&x, &mut hooks).unwrap().0, 1e-4);
    // A zero override changes the output.
    let mut hooks = Hooks::new().attention_override(0, |inp: AttentionInputs| inp.q.zeros_like());
    let changed: f32 = (plain - m.run(&x, &mut hooks).unwrap().0)
        .abs()
        .max()
        .into_scalar();
    assert!(changed > 1e-3);
}

#[test]
fn stop_at_layer_write_hooks_and_input_checks() {
    let m = model(7);
    let x = batch();
    let mut hooks = Hooks::new().cache_all().stop_at_layer(1);
    let (h, cache) = m.run(&x, &mut hooks).unwrap();
    assert_close(
        h,
        cache
            .get3(&names::block(0, "hook_normalized_resid_post"))
            .unwrap(),
        0.0,
    );
    assert!(cache.get(&names::resid_pre(1)).is_none());
    assert!(cache.get(names::LOGITS).is_none());
    let (h0, cache) = m
        .run(&x, &mut Hooks::new().cache_all().stop_at_layer(0))
        .unwrap();
    assert_close(h0, cache.get3("hook_full_embed").unwrap(), 0.0);

    // Zero-ablating the MLP output of block 1 makes its residual equal to ln1's output.
    let ln1 = names::ln(1, "ln1", "normalized");
    let mut hooks = Hooks::new()
        .zero_ablate(names::mlp_out(1))
        .cache([names::resid_post(1), ln1.clone()]);
    let (_, cache) = m.run(&x, &mut hooks).unwrap();
    let ln = &m.bert.blocks[1].ln1;
    let h = cache.get3(&ln1).unwrap() * ln.gamma.val().reshape([1, 1, D])
        + ln.beta.as_ref().unwrap().val().reshape([1, 1, D]);
    assert_close(cache.get3(&names::resid_post(1)).unwrap(), h, 1e-6);
    assert!(
        m.run(&x, &mut Hooks::new().cache(["blocks.0.hook_resid_pots"]))
            .is_err()
    );
    assert!(matches!(
        m.run(&x, &mut Hooks::new().stop_at_layer(LAYERS + 1)),
        Err(Error::UnknownHookPoint { .. })
    ));

    let device = crate::test_device();
    let bad = BertInput::new(Tensor::from_data([[1i64, VOCAB as i64]], &device));
    assert!(matches!(
        m.forward(&bad),
        Err(Error::TokenOutOfRange { id, position: 1, .. }) if id == VOCAB as i64
    ));
    let long = input(&[vec![2; MAX_POS + 1]]);
    assert!(matches!(
        m.forward(&long),
        Err(Error::SequenceTooLong { .. })
    ));
    let types = BertInput::new(Tensor::from_data([[1i64, 2]], &device))
        .with_type_ids(Tensor::from_data([[0i64, 2]], &device));
    assert!(matches!(
        m.forward(&types),
        Err(Error::TokenOutOfRange { .. })
    ));
}

#[test]
fn token_types_change_the_output() {
    let m = model(8);
    let device = crate::test_device();
    let a = BertInput::new(Tensor::from_data([[2i64, 3, 4]], &device));
    let b = a
        .clone()
        .with_type_ids(Tensor::from_data([[0i64, 1, 1]], &device));
    let zeros = a
        .clone()
        .with_type_ids(Tensor::from_data([[0i64, 0, 0]], &device));
    let out_a = m.forward(&a).unwrap();
    assert_close(out_a.clone(), m.forward(&zeros).unwrap(), 0.0);
    let diff: f32 = (out_a - m.forward(&b).unwrap()).abs().max().into_scalar();
    assert!(diff > 1e-3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// A padded batch gives, on every real token, the outputs of each sequence run alone.
    #[test]
    fn padding_never_changes_real_token_outputs(
        seqs in prop::collection::vec(prop::collection::vec(1u32..VOCAB as u32, 1..=8), 1..=4),
        seed in 0u64..1000,
    ) {
        let m = model(seed);
        let logits = m.forward(&input(&seqs)).unwrap();
        for (i, s) in seqs.iter().enumerate() {
            let alone = m.forward(&input(std::slice::from_ref(s))).unwrap();
            let row = logits.clone().slice(burn::tensor::s![i..i + 1, 0..s.len(), ..]);
            alone.into_data().assert_approx_eq::<f32>(&row.into_data(), Tolerance::absolute(1e-4));
        }
    }
}

/// all-MiniLM-L6-v2 (a `BertModel` folder fetched by `get_real_data.sh /work/extdata`) against
/// the last hidden states of the numpy oracle `shared/tools/real-data/bert_numpy.py`, written to
/// `/work/extdata/minilm-oracle/last_hidden.json` as a JSON array of
/// `{"text", "ids", "hidden": [pos][384]}` by:
///
/// ```text
/// m = Bert("/work/extdata/minilm"); m.tok.no_padding()
/// for s in sentences: ids = m.tok.encode(s).ids; h = m.forward(ids)[-1]   # float32
/// ```
#[test]
fn minilm_matches_the_numpy_oracle() {
    let ext = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../extdata"));
    let (dir, oracle) = (
        ext.join("minilm"),
        ext.join("minilm-oracle/last_hidden.json"),
    );
    if !dir.exists() || !oracle.exists() {
        println!(
            "skipping: {} or {} is absent (fetched outside the repository)",
            dir.display(),
            oracle.display()
        );
        return;
    }
    let device = crate::test_device();
    let (bert, tok) = Bert::from_hf_folder(&dir, &device).unwrap();
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&oracle).unwrap()).unwrap();
    let mut seqs = Vec::new();
    for case in &cases {
        let ids = tok.encode(case["text"].as_str().unwrap(), true).unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, want, "token ids agree with the Python tokenizers");
        seqs.push(ids);
    }
    let hidden = bert.forward(&input(&seqs)).unwrap();
    let mut worst = 0f32;
    for (i, (case, s)) in cases.iter().zip(&seqs).enumerate() {
        let ours: Vec<f32> = hidden
            .clone()
            .slice(burn::tensor::s![i..i + 1, 0..s.len(), ..])
            .into_data()
            .try_to_vec()
            .unwrap();
        let theirs: Vec<f32> = case["hidden"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((a - b).abs());
        }
    }
    println!(
        "all-MiniLM-L6-v2 vs numpy: max |Δ| of the last hidden state {worst:.2e} over {} sentences (padded batch)",
        cases.len()
    );
    assert!(worst < 1e-4, "max |Δ| {worst}");
}
