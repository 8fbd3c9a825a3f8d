//! The real SmolLM2-135M-Instruct Q4_1 GGUF from `shared/data` (skipped with a printed reason
//! when the folder is absent, as on a crates.io checkout).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::gguf::{GgmlType, GgufFile, MetadataValue};

fn smollm2_path() -> Option<PathBuf> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
    ));
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipping: {} is absent (no ../shared/data checkout)",
            path.display()
        );
        None
    }
}

#[test]
fn smollm2_q4_1_metadata_and_tensors() {
    let Some(path) = smollm2_path() else { return };
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.version(), 3);
    let u = |k: &str| file.get(k).and_then(MetadataValue::as_u64);
    assert_eq!(
        file.get("general.architecture")
            .and_then(MetadataValue::as_str),
        Some("llama")
    );
    assert_eq!(u("llama.block_count"), Some(30));
    assert_eq!(u("llama.embedding_length"), Some(576));
    assert_eq!(u("llama.attention.head_count"), Some(9));
    assert_eq!(u("llama.attention.head_count_kv"), Some(3));
    let tokens = file
        .get("tokenizer.ggml.tokens")
        .and_then(MetadataValue::as_string_array)
        .unwrap();
    assert_eq!(tokens.len(), 49152);

    assert_eq!(file.tensors().len(), 272);
    let mut counts: HashMap<GgmlType, usize> = HashMap::new();
    for t in file.tensors() {
        *counts.entry(t.ty).or_default() += 1;
    }
    assert_eq!(counts.get(&GgmlType::Q4_1), Some(&210));
    assert_eq!(counts.get(&GgmlType::Q8_0), Some(&1));
    assert_eq!(counts.get(&GgmlType::F32), Some(&61));
    // Tied embeddings: no separate output matrix.
    assert!(file.tensor("output.weight").is_none());
    assert_eq!(file.tensor("token_embd.weight").unwrap().ty, GgmlType::Q8_0);

    let (shape, emb) = file.tensor_f32("token_embd.weight").unwrap().unwrap();
    assert_eq!(shape, [49152, 576]);
    assert_eq!(emb.len(), 49152 * 576);
    assert!(emb.iter().all(|v| v.is_finite()));
    assert!(emb.iter().any(|&v| v != 0.0));

    let (shape, norm) = file.tensor_f32("blk.0.attn_norm.weight").unwrap().unwrap();
    assert_eq!(shape, [576]);
    assert!(norm.iter().all(|v| v.is_finite()));

    let q = file.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.ty, q.shape()), (GgmlType::Q4_1, vec![576, 576]));
    let k = file.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!(k.shape(), [192, 576]);
}
