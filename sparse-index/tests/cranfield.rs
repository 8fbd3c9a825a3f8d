//! Real vectors: SPLADE-tiny encodings of the Cranfield collection (`shared/data/cranfield`).
//! Approximate search must give the nDCG@10 of exact search (0.351) within 0.005.
//!
//! Skips, saying why, when the shared data is absent (a crates.io checkout has none). Set
//! `SPARSELAND_SHARED` to the `shared` folder when it is not beside the repository root.

use std::collections::HashMap;
use std::path::PathBuf;

use sparse_index::metrics::{mean, ndcg_at_k};
use sparse_index::{
    ExactIndex, RecordId, ScoredDoc, SearchParams, SeismicConfig, SeismicIndex, SparseCollection,
    read_jsonl, read_jsonl_with_vocabulary,
};

fn shared_dir() -> PathBuf {
    std::env::var_os("SPARSELAND_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn ndcg10(
    results: &[Vec<ScoredDoc>],
    query_ids: &[i64],
    doc_ids: &[i64],
    qrels: &HashMap<i64, HashMap<i64, i32>>,
) -> f64 {
    let empty = HashMap::new();
    mean(results.iter().zip(query_ids).map(|(hits, q)| {
        let ranking: Vec<i64> = hits.iter().map(|h| doc_ids[h.doc as usize]).collect();
        ndcg_at_k(&ranking, qrels.get(q).unwrap_or(&empty), 10)
    }))
}

#[test]
fn approximate_ndcg_matches_exact_on_cranfield() {
    let dir = shared_dir().join("data/cranfield");
    if !dir.join("splade-tiny-docs.jsonl").exists() {
        eprintln!(
            "skipping: {} not found (set SPARSELAND_SHARED to the shared folder)",
            dir.display()
        );
        return;
    }
    let t = std::time::Instant::now();
    let (docs, vocab) = read_jsonl(dir.join("splade-tiny-docs.jsonl")).unwrap();
    eprintln!("read {:?}", t.elapsed());
    let (queries, _) =
        read_jsonl_with_vocabulary(dir.join("splade-tiny-queries.jsonl"), &vocab).unwrap();
    let int = |id: &RecordId| match id {
        RecordId::Int(i) => *i,
        RecordId::Str(s) => panic!("unexpected string id {s}"),
    };
    let doc_ids: Vec<i64> = docs.iter().map(|r| int(&r.id)).collect();
    let query_ids: Vec<i64> = queries.iter().map(|r| int(&r.id)).collect();
    let qrels_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cranfield-qrels.json")).unwrap())
            .unwrap();
    let mut qrels: HashMap<i64, HashMap<i64, i32>> = HashMap::new();
    for j in qrels_json.as_array().unwrap() {
        qrels
            .entry(j["queryId"].as_i64().unwrap())
            .or_default()
            .insert(
                j["docId"].as_i64().unwrap(),
                j["relevance"].as_i64().unwrap() as i32,
            );
    }

    let collection: SparseCollection = docs.iter().map(|r| &r.vector).collect();
    let exact = ExactIndex::new(collection.clone()).unwrap();
    let exact_results: Vec<Vec<ScoredDoc>> = queries
        .iter()
        .map(|q| exact.search(&q.vector, 10))
        .collect::<Result<_, _>>()
        .unwrap();
    let exact_ndcg = ndcg10(&exact_results, &query_ids, &doc_ids, &qrels);
    assert!(
        (exact_ndcg - 0.351).abs() < 0.001,
        "exact nDCG@10 {exact_ndcg} (the data's README gives 0.351)"
    );

    eprintln!("exact {:?}", t.elapsed());
    let index = SeismicIndex::build(&collection, &SeismicConfig::default()).unwrap();
    eprintln!("built {:?}", t.elapsed());
    let approx_results: Vec<Vec<ScoredDoc>> = queries
        .iter()
        .map(|q| index.search(&q.vector, 10, &SearchParams::default()))
        .collect::<Result<_, _>>()
        .unwrap();
    let approx_ndcg = ndcg10(&approx_results, &query_ids, &doc_ids, &qrels);
    eprintln!("Cranfield nDCG@10: exact {exact_ndcg:.4}, approximate {approx_ndcg:.4}");
    assert!(
        (approx_ndcg - exact_ndcg).abs() <= 0.005,
        "approximate nDCG@10 {approx_ndcg} vs exact {exact_ndcg}"
    );
}
