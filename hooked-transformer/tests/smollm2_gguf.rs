//! SmolLM2-135M-Instruct from its GGUF file against the shipped oracle: the layer-12 residual
//! stream that the numpy reference computed from this very file (`../shared/data/smollm2-sotu`).
//! Causality makes a prefix of each sequence comparable, so CI checks the first positions of a
//! few sequences; `bench_lm --oracle` checks all 16,384 rows and the perplexity.

use std::path::PathBuf;

use burn::prelude::*;
use hooked_transformer::Hooks;
use hooked_transformer::llama::Llama;

fn shared() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    dir.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        .exists()
        .then_some(dir)
}

#[test]
fn gguf_reproduces_the_layer12_oracle_on_prefixes() {
    let Some(data) = shared() else {
        eprintln!("skipped: ../shared/data (SmolLM2 GGUF and its oracle) is absent");
        return;
    };
    let device = Device::flex();
    let model = Llama::from_gguf(
        data.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"),
        &device,
    )
    .unwrap();
    assert_eq!(model.config().n_layers, 30);
    let bytes = std::fs::read(data.join("smollm2-sotu/smollm2-135m-layer12.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tokens: Vec<i32> = st
        .tensor("tokens")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let acts = st.tensor("activations").unwrap();
    let oracle: Vec<f32> = acts
        .data()
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f32())
        .collect();
    let (n_seq, prefix, d) = (4, 48, 576);
    let seqs = [0usize, 17, 40, 63];
    let ids: Vec<i64> = seqs
        .iter()
        .flat_map(|&s| {
            tokens[s * 256..s * 256 + prefix]
                .iter()
                .map(|&t| i64::from(t))
        })
        .collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids, [n_seq, prefix]), &device);
    // The oracle's "layer 12" is the residual after 12 blocks: resid_post of block 11.
    let out = model.run(t, &mut Hooks::new().stop_at_layer(12)).unwrap();
    let got: Vec<f32> = out.residual.into_data().try_to_vec().unwrap();
    let mut errs = Vec::new();
    let mut min_cos = 1f64;
    for (i, &s) in seqs.iter().enumerate() {
        for pos in 0..prefix {
            let g = &got[(i * prefix + pos) * d..][..d];
            let w = &oracle[(s * 256 + pos) * d..][..d];
            let (mut num, mut den, mut dot, mut gg) = (0f64, 0f64, 0f64, 0f64);
            for (&a, &b) in g.iter().zip(w) {
                let (a, b) = (f64::from(a), f64::from(b));
                num += (a - b).powi(2);
                den += b * b;
                dot += a * b;
                gg += a * a;
            }
            errs.push((num / den).sqrt());
            min_cos = min_cos.min(dot / (gg.sqrt() * den.sqrt()));
        }
    }
    errs.sort_by(f64::total_cmp);
    let median = errs[errs.len() / 2];
    let max = *errs.last().unwrap();
    eprintln!(
        "layer-12 residual vs oracle over {} rows: median rel L2 {median:.2e}, max {max:.2e}, min cosine {min_cos:.7}",
        errs.len()
    );
    assert!(median <= 2e-3 && max <= 1e-2, "median {median}, max {max}");
}

#[test]
fn greedy_chat_answers_paris() {
    use hooked_transformer::Tokenizer;
    use hooked_transformer::chat::{ChatMessage, IM_END, smollm2_chat_prompt};
    use hooked_transformer::llama::GenerateConfig;
    let Some(data) = shared() else {
        eprintln!("skipped: ../shared/data (SmolLM2 GGUF and tokenizer) is absent");
        return;
    };
    let dir = data.join("models/smollm2-135m-instruct");
    let device = Device::flex();
    let model = Llama::from_gguf(dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"), &device).unwrap();
    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let prompt = smollm2_chat_prompt(&[ChatMessage::user("What is the capital of France?")], true);
    let ids = tokenizer.encode(&prompt, false).unwrap();
    let im_end = tokenizer.token_to_id(IM_END).unwrap();
    assert_eq!(
        tokenizer.token_to_id("<|im_start|>"),
        Some(ids[0]),
        "control tokens are single ids"
    );
    let out = model
        .generate(&ids, &GenerateConfig::greedy(24, vec![im_end]), &device)
        .unwrap();
    let answer = tokenizer.decode(&out.tokens, true).unwrap();
    eprintln!("answer: {answer:?}");
    assert!(answer.contains("Paris"), "{answer}");
}
