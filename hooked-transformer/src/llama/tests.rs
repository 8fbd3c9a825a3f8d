//! Tests of the Llama decoder on small random models: hook shapes and semantics, padding, the
//! KV cache, attention overrides, and HF-folder loading.

use burn::prelude::*;
use burn::tensor::Tolerance;
use proptest::prelude::*;

use super::*;
use crate::hooks::{Activation, Hooks, names};
use crate::{AttentionInputs, dense_attention};

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

fn dev() -> Device {
    Device::flex()
}

fn ids(rows: &[&[u32]], device: &Device) -> Tensor<2, Int> {
    let b = rows.len();
    let p = rows[0].len();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().map(|&t| i64::from(t)))
        .collect();
    Tensor::from_data(TensorData::new(flat, [b, p]), device)
}

fn close(a: Tensor<3>, b: Tensor<3>, tol: f32) {
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::rel_abs(tol, tol));
}

#[test]
fn every_hook_point_fires_with_transformer_lens_shapes() {
    let d = dev();
    let c = tiny();
    let model = Llama::random(&c, 1, &d);
    let mut hooks = Hooks::new().cache_all();
    let out = model.run(ids(&[&[1, 2, 3, 4, 5]], &d), &mut hooks).unwrap();
    let points = model.hook_points();
    assert_eq!(out.cache.len(), points.len(), "every listed point fired");
    let shape = |n: &str| out.cache.get(n).unwrap().dims();
    assert_eq!(shape(names::EMBED), vec![1, 5, 32]);
    assert_eq!(shape(&names::attn(1, "q")), vec![1, 5, 4, 8]);
    assert_eq!(shape(&names::attn(1, "k")), vec![1, 5, 2, 8]);
    assert_eq!(shape(&names::attn(1, "rot_k")), vec![1, 5, 2, 8]);
    assert_eq!(shape(&names::attn(1, "pattern")), vec![1, 4, 5, 5]);
    assert_eq!(shape(&names::attn(1, "z")), vec![1, 5, 4, 8]);
    assert_eq!(shape(&names::ln(2, "ln2", "scale")), vec![1, 5, 1]);
    assert_eq!(shape(&names::mlp(0, "post")), vec![1, 5, 48]);
    assert_eq!(shape(names::LOGITS), vec![1, 5, 61]);
    // resid_mid = resid_pre + attn_out; resid_post = resid_mid + mlp_out.
    let g = |n: String| out.cache.get3(&n).unwrap();
    close(
        g(names::resid_mid(1)),
        g(names::resid_pre(1)) + g(names::attn_out(1)),
        1e-6,
    );
    close(
        g(names::resid_post(1)),
        g(names::resid_mid(1)) + g(names::mlp_out(1)),
        1e-6,
    );
    close(g(names::resid_pre(2)), g(names::resid_post(1)), 0.0);
    // Pattern rows sum to 1 and are causal.
    let pattern = out.cache.get4(&names::attn(0, "pattern")).unwrap();
    let sums: Vec<f32> = pattern.clone().sum_dim(3).into_data().try_to_vec().unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
    let upper: f32 = pattern
        .slice(burn::tensor::s![.., .., 0..1, 1..5])
        .abs()
        .sum()
        .into_scalar();
    assert_eq!(upper, 0.0);
    // The logits with every hook cached equal the plain forward.
    close(
        out.logits.unwrap(),
        model.forward(ids(&[&[1, 2, 3, 4, 5]], &d)).unwrap(),
        1e-5,
    );
}

#[test]
fn stop_at_layer_returns_that_residual() {
    let d = dev();
    let model = Llama::random(&tiny(), 2, &d);
    let t = ids(&[&[7, 8, 9]], &d);
    let full = model
        .run(t.clone(), &mut Hooks::new().cache([names::resid_post(1)]))
        .unwrap();
    let stopped = model
        .run(t.clone(), &mut Hooks::new().stop_at_layer(2))
        .unwrap();
    assert!(stopped.logits.is_none());
    close(
        stopped.residual,
        full.cache.get3(&names::resid_post(1)).unwrap(),
        0.0,
    );
    let embed_only = model.run(t, &mut Hooks::new().stop_at_layer(0)).unwrap();
    assert_eq!(embed_only.residual.dims(), [1, 3, 32]);
}

#[test]
fn write_hooks_change_downstream_values() {
    let d = dev();
    let model = Llama::random(&tiny(), 3, &d);
    let t = ids(&[&[3, 1, 4, 1, 5]], &d);
    let clean = model.forward(t.clone()).unwrap();
    // Zero-ablating every MLP output changes the logits; replacing a point by itself does not.
    let ablated = model
        .run(
            t.clone(),
            &mut Hooks::new().hook_where(
                |n| n.ends_with("hook_mlp_out"),
                |_, a| match a {
                    Activation::Rank3(x) => Activation::Rank3(x.zeros_like()),
                    other => other,
                },
            ),
        )
        .unwrap()
        .logits
        .unwrap();
    let diff: f32 = (ablated - clean.clone()).abs().max().into_scalar();
    assert!(diff > 1e-4, "{diff}");
    let identity = model
        .run(
            t.clone(),
            &mut Hooks::new().replace3(names::resid_post(1), |x| x),
        )
        .unwrap()
        .logits
        .unwrap();
    close(identity, clean.clone(), 0.0);
    // A steering vector at resid_post(L) is seen by resid_pre(L+1).
    let v = Tensor::<1>::ones([32], &d);
    let steered = model
        .run(
            t,
            &mut Hooks::new()
                .add_vector(names::resid_post(0), v)
                .cache([names::resid_pre(1), names::resid_post(0)]),
        )
        .unwrap();
    close(
        steered.cache.get3(&names::resid_pre(1)).unwrap(),
        steered.cache.get3(&names::resid_post(0)).unwrap(),
        0.0,
    );
}

#[test]
fn kv_cache_decoding_equals_the_full_forward() {
    let d = dev();
    let model = Llama::random(&tiny(), 4, &d);
    let seq: Vec<u32> = vec![5, 9, 2, 33, 14, 8, 60, 1];
    let full = model.forward(ids(&[&seq], &d)).unwrap();
    let mut kv = model.new_kv_cache();
    let mut pieces = Vec::new();
    // Prompt of 3, then one token at a time.
    pieces.push(
        model
            .run_cached(ids(&[&seq[..3]], &d), None, &mut kv, &mut Hooks::new())
            .unwrap()
            .logits
            .unwrap(),
    );
    for t in &seq[3..] {
        pieces.push(
            model
                .run_cached(ids(&[&[*t]], &d), None, &mut kv, &mut Hooks::new())
                .unwrap()
                .logits
                .unwrap(),
        );
    }
    assert_eq!(kv.len(), seq.len());
    close(Tensor::cat(pieces, 1), full, 1e-4);
}

#[test]
fn attention_override_with_dense_attention_changes_nothing() {
    let d = dev();
    let model = Llama::random(&tiny(), 5, &d);
    let t = ids(&[&[1, 2, 3, 4], &[4, 3, 2, 1]], &d);
    let clean = model.forward(t.clone()).unwrap();
    let mut calls = 0usize;
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = counter.clone();
    let mut hooks = Hooks::new().attention_override(1, move |inputs: AttentionInputs| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(inputs.layer, 1);
        assert_eq!(inputs.k.dims()[1], 2, "KV heads are not expanded");
        dense_attention(&inputs)
    });
    let out = model.run(t.clone(), &mut hooks).unwrap().logits.unwrap();
    calls += counter.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(calls, 1);
    close(out, clean.clone(), 1e-5);
    // An override that attends nowhere (zero output) does change the result.
    let mut zero =
        Hooks::new().attention_override(0, |inputs: AttentionInputs| inputs.q.zeros_like());
    let changed = model.run(t, &mut zero).unwrap().logits.unwrap();
    assert!((changed - clean).abs().max().into_scalar::<f32>() > 1e-5);
}

#[test]
fn bad_tokens_and_hook_names_are_typed_errors() {
    let d = dev();
    let model = Llama::random(&tiny(), 6, &d);
    let err = model.forward(ids(&[&[1, 61]], &d)).unwrap_err();
    assert!(
        matches!(
            err,
            crate::Error::TokenOutOfRange {
                id: 61,
                position: 1,
                vocab_size: 61
            }
        ),
        "{err}"
    );
    let err = model
        .run(
            ids(&[&[1]], &d),
            &mut Hooks::new().cache(["blocks.3.hook_resid_post"]),
        )
        .unwrap_err();
    assert!(
        matches!(err, crate::Error::UnknownHookPoint { .. }),
        "{err}"
    );
    let long: Vec<u32> = vec![1; 65];
    let err = model.forward(ids(&[&long], &d)).unwrap_err();
    assert!(
        matches!(
            err,
            crate::Error::SequenceTooLong {
                len: 65,
                limit: 64,
                ..
            }
        ),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// A padded batch gives, at real positions, the logits of each sequence run alone — with
    /// padding on either side.
    #[test]
    fn padding_does_not_change_real_positions(
        a in proptest::collection::vec(0u32..61, 1..7),
        b in proptest::collection::vec(0u32..61, 1..7),
        left in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let d = dev();
        let model = Llama::random(&tiny(), seed, &d);
        let len = a.len().max(b.len());
        let pad = |s: &[u32]| -> (Vec<u32>, Vec<bool>) {
            let n = len - s.len();
            let mut t = s.to_vec();
            let mut m = vec![true; s.len()];
            if left {
                t.splice(0..0, std::iter::repeat_n(0, n));
                m.splice(0..0, std::iter::repeat_n(false, n));
            } else {
                t.extend(std::iter::repeat_n(0, n));
                m.extend(std::iter::repeat_n(false, n));
            }
            (t, m)
        };
        let (ta, ma) = pad(&a);
        let (tb, mb) = pad(&b);
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new([ma.clone(), mb.clone()].concat(), [2, len]), &d);
        let batch = model.run_masked(ids(&[&ta, &tb], &d), mask, &mut Hooks::new()).unwrap().logits.unwrap();
        for (row, (seq, m)) in [(&a, &ma), (&b, &mb)].into_iter().enumerate() {
            let alone = model.forward(ids(&[seq], &d)).unwrap();
            let start = m.iter().position(|&x| x).unwrap();
            let got = batch.clone().slice(burn::tensor::s![row..row + 1, start..start + seq.len(), ..]);
            got.into_data().assert_approx_eq::<f32>(&alone.into_data(), Tolerance::rel_abs(1e-4, 1e-4));
        }
    }
}

#[test]
fn hf_folder_round_trip_matches_the_in_memory_model() {
    let d = dev();
    let c = LlamaConfig {
        tie_word_embeddings: false,
        ..tiny()
    };
    let model = Llama::random(&c, 9, &d);
    let dir = tempfile::tempdir().unwrap();
    super::test_support::write_hf_folder(&model, dir.path());
    let loaded = Llama::from_hf_folder(dir.path(), &d).unwrap();
    let t = ids(&[&[1, 2, 3, 4, 5, 6]], &d);
    close(
        loaded.forward(t.clone()).unwrap(),
        model.forward(t).unwrap(),
        1e-6,
    );
}

#[test]
fn hf_folder_errors_name_the_tensor() {
    let d = dev();
    let model = Llama::random(&tiny(), 10, &d);
    let dir = tempfile::tempdir().unwrap();
    super::test_support::write_hf_folder_with(&model, dir.path(), |name, shape| {
        if name == "model.layers.1.mlp.up_proj.weight" {
            None
        } else {
            Some(shape)
        }
    });
    let err = Llama::from_hf_folder(dir.path(), &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.layers.1.mlp.up_proj.weight"), "{err}");
    super::test_support::write_hf_folder_with(&model, dir.path(), |name, mut shape| {
        if name == "model.layers.0.self_attn.k_proj.weight" {
            shape[0] += 1;
        }
        Some(shape)
    });
    let err = Llama::from_hf_folder(dir.path(), &d).unwrap_err();
    assert!(matches!(err, crate::Error::TensorShape { .. }), "{err}");
}

#[test]
fn perplexity_of_a_model_with_uniform_logits_is_the_vocabulary_size() {
    let d = dev();
    let c = tiny();
    // All-zero matrices: every residual is 0, so every logit is 0.
    let model = Llama::zeros(&c, &d);
    let seqs = vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10, 11, 12]];
    let p = model.perplexity(&seqs, 2, Hooks::new, &d).unwrap();
    assert_eq!(p.tokens, 9);
    approx::assert_relative_eq!(p.perplexity, c.vocab_size as f64, max_relative = 1e-5);
    // With hooks: zero-ablating the final norm's input changes nothing here, and the clean
    // perplexity of a random model equals exp(mean NLL) computed from the logits directly.
    let model = Llama::random(&c, 21, &d);
    let p = model.perplexity(&seqs, 3, Hooks::new, &d).unwrap();
    let ids: Vec<i64> = seqs.iter().flatten().map(|&t| i64::from(t)).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids, [3, 4]), &d);
    let nll = next_token_nll(model.forward(t.clone()).unwrap(), t);
    let mean = f64::from(nll.mean().into_scalar::<f32>());
    approx::assert_relative_eq!(p.mean_nll, mean, max_relative = 1e-5);
}

#[test]
fn extraction_writes_the_cached_values_and_resumes_after_a_crash() {
    let d = dev();
    let model = Llama::random(&tiny(), 22, &d);
    let seqs: Vec<Vec<u32>> = (0..7u32)
        .map(|i| (0..5).map(|j| (i * 5 + j) % 61).collect())
        .collect();
    let hooks = vec![names::resid_post(1), names::attn(0, "z")];
    let config = ExtractConfig {
        hooks: hooks.clone(),
        batch_size: 2,
        sequences_per_shard: 3,
        dtype: ShardDtype::F32,
        model_name: "tiny".into(),
        progress: false,
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = extract_activations(&model, &seqs, dir.path(), &config, &d).unwrap();
    assert_eq!(manifest.shards.len(), 3);
    assert_eq!(manifest.sequences_done, 7);
    assert_eq!(
        manifest.hooks[1].d,
        4 * 8,
        "hook_z is stored with heads flattened"
    );
    // Shard 1 holds sequences 3..6; its rows are what the cache holds for them.
    let bytes = std::fs::read(dir.path().join(&manifest.shards[1].file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids: Vec<i64> = seqs[3..6].iter().flatten().map(|&t| i64::from(t)).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids, [3, 5]), &d);
    let out = model
        .run(t, &mut Hooks::new().cache(hooks.clone()))
        .unwrap();
    let want: Vec<f32> = out
        .cache
        .get3(&names::resid_post(1))
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let got: Vec<f32> = st
        .tensor(&names::resid_post(1))
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(st.tensor(&names::resid_post(1)).unwrap().shape(), [15, 32]);
    for (a, b) in got.iter().zip(&want) {
        approx::assert_abs_diff_eq!(a, b, epsilon = 1e-5);
    }
    let tok: Vec<i32> = st
        .tensor("tokens")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(
        tok,
        seqs[3..6]
            .iter()
            .flatten()
            .map(|&t| t as i32)
            .collect::<Vec<_>>()
    );

    // A crash after shard 1: the manifest names two shards, shard 2's file may be missing.
    let last = dir.path().join(&manifest.shards[2].file);
    let last_bytes = std::fs::read(&last).unwrap();
    std::fs::remove_file(&last).unwrap();
    let mut crashed = manifest.clone();
    crashed.shards.pop();
    crashed.sequences_done = 6;
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&crashed).unwrap(),
    )
    .unwrap();
    let resumed = extract_activations(&model, &seqs, dir.path(), &config, &d).unwrap();
    assert_eq!(resumed, manifest);
    assert_eq!(
        std::fs::read(&last).unwrap(),
        last_bytes,
        "the redone shard is identical"
    );

    // Other settings are refused instead of mixing two runs in one folder.
    let other = ExtractConfig {
        hooks: vec![names::resid_post(0)],
        ..config.clone()
    };
    let err = extract_activations(&model, &seqs, dir.path(), &other, &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot resume"), "{err}");
    // A manifest naming a file outside the folder is refused.
    let mut evil = manifest.clone();
    evil.shards[0].file = "../x.safetensors".into();
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&evil).unwrap(),
    )
    .unwrap();
    assert!(ExtractManifest::read(dir.path()).is_err());
}
