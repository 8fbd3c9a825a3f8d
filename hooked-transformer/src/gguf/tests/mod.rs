//! Tests of the GGUF reader and writer together: round trips, hostile files, fuzzing, the real
//! SmolLM2 file.

mod fuzz;
mod hostile;
mod real_file;
mod round_trip;

use super::{GgmlType, GgufWriter, MetadataArray, MetadataValue};

/// `n` deterministic values in about `[-2, 2]` (a sine of a scrambled index).
pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            2.0 * ((h as f32) * 0.001).sin()
        })
        .collect()
}

/// A small valid file: metadata of several types (nested array included) and four tensors of
/// different types and ranks.
pub(super) fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_metadata(
        "general.architecture",
        MetadataValue::String("llama".into()),
    )
    .unwrap();
    w.add_metadata("llama.block_count", MetadataValue::U32(2))
        .unwrap();
    w.add_metadata("llama.rope.freq_base", MetadataValue::F32(1e5))
        .unwrap();
    w.add_metadata("tokenizer.ggml.add_bos_token", MetadataValue::Bool(false))
        .unwrap();
    w.add_metadata(
        "tokenizer.ggml.tokens",
        MetadataValue::Array(MetadataArray::String(vec!["<s>".into(), "Ġthe".into()])),
    )
    .unwrap();
    w.add_metadata(
        "test.nested",
        MetadataValue::Array(MetadataArray::Array(vec![
            MetadataArray::I32(vec![1, -1]),
            MetadataArray::Bool(vec![true]),
        ])),
    )
    .unwrap();
    w.add_tensor("a.f32", &[3], GgmlType::F32, &values(3, 1))
        .unwrap();
    w.add_tensor("b.f16", &[2, 4], GgmlType::F16, &values(8, 2))
        .unwrap();
    w.add_tensor("c.q8_0", &[2, 32], GgmlType::Q8_0, &values(64, 3))
        .unwrap();
    w.add_tensor("d.q4_1", &[2, 1, 64], GgmlType::Q4_1, &values(128, 4))
        .unwrap();
    w
}
