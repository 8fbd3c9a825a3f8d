//! SmolLM2 loaded from a Hugging Face folder (written by `examples/python/gguf_to_hf.py`)
//! against the logits and layer-12 residual that Hugging Face transformers computed from the same
//! folder (`reference_first2.safetensors`). The folder is not shipped: set
//! `SPARSELAND_HF_SMOLLM2` to it; the test skips with a message otherwise.

use burn::prelude::*;
use hooked_transformer::llama::Llama;
use hooked_transformer::{Hooks, names};

fn read_f32(st: &safetensors::SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), v)
}

#[test]
fn smollm2_hf_folder_matches_transformers() {
    let Ok(dir) = std::env::var("SPARSELAND_HF_SMOLLM2") else {
        eprintln!(
            "skipped: set SPARSELAND_HF_SMOLLM2 to a folder written by examples/python/gguf_to_hf.py"
        );
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let device = Device::flex();
    let model = Llama::from_hf_folder(&dir, &device).unwrap();
    let bytes = std::fs::read(dir.join("reference_first2.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tokens = st.tensor("tokens").unwrap();
    let ids: Vec<i64> = tokens
        .data()
        .chunks_exact(4)
        .map(|b| i64::from(i32::from_le_bytes(b.try_into().unwrap())))
        .collect();
    // The first 32 positions of both sequences (causality makes a prefix comparable).
    let p = 32;
    let ids: Vec<i64> = ids
        .chunks_exact(256)
        .flat_map(|s| s[..p].to_vec())
        .collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, p]), &device);
    let out = model
        .run(t, &mut Hooks::new().cache([names::resid_post(11)]))
        .unwrap();
    let (_, want_h) = read_f32(&st, "hidden12");
    let got_h: Vec<f32> = out
        .cache
        .get3(&names::resid_post(11))
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let d = 576;
    let mut worst = 0f64;
    for s in 0..2 {
        for pos in 0..p {
            let g = &got_h[(s * p + pos) * d..(s * p + pos + 1) * d];
            let w = &want_h[(s * 256 + pos) * d..(s * 256 + pos + 1) * d];
            let num: f64 = g.iter().zip(w).map(|(a, b)| f64::from(a - b).powi(2)).sum();
            let den: f64 = w.iter().map(|b| f64::from(*b).powi(2)).sum();
            worst = worst.max((num / den).sqrt());
        }
    }
    eprintln!("hidden12 max per-token relative L2 error vs transformers: {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
    let (_, want_l) = read_f32(&st, "logits_first8");
    let got_l: Vec<f32> = out.logits.unwrap().into_data().try_to_vec().unwrap();
    let v = 49152;
    let mut max_abs = 0f32;
    for s in 0..2 {
        for pos in 0..8 {
            let g = &got_l[(s * p + pos) * v..(s * p + pos + 1) * v];
            let w = &want_l[(s * 8 + pos) * v..(s * 8 + pos + 1) * v];
            max_abs = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(max_abs, f32::max);
        }
    }
    eprintln!("logits (first 8 positions) max |Δ| vs transformers: {max_abs:.2e}");
    assert!(max_abs < 1e-2, "{max_abs}");
}
