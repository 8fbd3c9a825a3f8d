//! Build a sparse-index from a JSONL file of SPLADE vectors and answer the queries of another
//! JSONL file; optionally score the answers against graded relevance judgements.
//!
//! Steps: read the documents and build the vocabulary (terms sorted) → build the Seismic-style
//! index with a progress bar → save it → map the queries through the vocabulary → answer them
//! approximately and exactly → print the first answers, nDCG@10 and MRR@10 of both when
//! judgements are given, and write the results TSV.
//!
//! ```text
//! cargo run --release -p examples --example sparse_index_jsonl -- \
//!     --docs ../shared/data/cranfield/splade-tiny-docs.jsonl \
//!     --queries ../shared/data/cranfield/splade-tiny-queries.jsonl \
//!     --qrels ../shared/data/cranfield/cranfield-qrels.json
//! ```
//! Judgements are a JSON array of `{"queryId", "docId", "relevance"}` (the Cranfield files).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use sparse_index::metrics::{mean, mrr_at_k, ndcg_at_k};
use sparse_index::{
    BuildStage, ExactIndex, RecordId, ScoredDoc, SearchParams, SeismicConfig, SeismicIndex,
    SparseCollection, read_jsonl, read_jsonl_with_vocabulary, write_results_tsv,
};

#[derive(Parser)]
#[command(about = "Build a sparse index from JSONL and answer JSONL queries")]
struct Args {
    /// Documents: one `{"id", "vector": {"term": weight}}` per line.
    #[arg(long)]
    docs: PathBuf,
    /// Queries, same format.
    #[arg(long)]
    queries: PathBuf,
    /// Graded judgements (JSON array of {"queryId", "docId", "relevance"}).
    #[arg(long)]
    qrels: Option<PathBuf>,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Lists walked per query (the query's largest components).
    #[arg(long, default_value_t = SearchParams::default().query_cut)]
    query_cut: usize,
    /// Block-skipping aggressiveness.
    #[arg(long, default_value_t = SearchParams::default().heap_factor)]
    heap_factor: f32,
    /// Where to save the index.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Where to write the results TSV (query position, document position, rank, score).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How many queries to print.
    #[arg(long, default_value_t = 3)]
    show: usize,
}

/// A per-query metric of a ranking against its judgements.
type Metric = dyn Fn(&[String], &HashMap<String, i32>) -> f64;

fn main() {
    // Errors print with their Display message, not Debug.
    examples::exit_on_error(run());
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let t = Instant::now();
    let (docs, vocab) = read_jsonl(&args.docs)?;
    let collection: SparseCollection = docs.iter().map(|r| &r.vector).collect();
    println!(
        "{} documents, {} terms, {} postings read in {:.2} s",
        docs.len(),
        vocab.len(),
        collection.nnz(),
        t.elapsed().as_secs_f64()
    );

    let bar = ProgressBar::new(1);
    bar.set_style(ProgressStyle::with_template(
        "{msg:>12} [{bar:40}] {pos}/{len} lists ({elapsed})",
    )?);
    let t = Instant::now();
    let config = SeismicConfig::default();
    let index = SeismicIndex::build_with_progress(&collection, &config, |p| match p.stage {
        BuildStage::Blocking => {
            bar.set_message("blocking");
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        }
        other => bar.set_message(format!("{other:?}").to_lowercase()),
    })?;
    bar.finish();
    let mem = index.memory();
    println!(
        "index built in {:.2} s: {} postings kept in {} blocks, {:.1} MB",
        t.elapsed().as_secs_f64(),
        index.n_postings(),
        index.n_blocks(),
        mem.total() as f64 / 1e6
    );
    if let Some(path) = &args.save {
        index.save(path)?;
        println!("saved to {}", path.display());
    }

    let (queries, dropped) = read_jsonl_with_vocabulary(&args.queries, &vocab)?;
    println!(
        "{} queries ({} query terms unknown to the documents, dropped)",
        queries.len(),
        dropped
    );
    let params = SearchParams::default()
        .with_query_cut(args.query_cut)
        .with_heap_factor(args.heap_factor);
    let t = Instant::now();
    let approx: Vec<Vec<ScoredDoc>> = queries
        .iter()
        .map(|q| index.search(&q.vector, args.k, &params))
        .collect::<Result<_, _>>()?;
    let approx_s = t.elapsed().as_secs_f64();
    let exact_index = ExactIndex::new(collection)?;
    let t = Instant::now();
    let exact: Vec<Vec<ScoredDoc>> = queries
        .iter()
        .map(|q| exact_index.search(&q.vector, args.k))
        .collect::<Result<_, _>>()?;
    let exact_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for q in &queries {
        std::hint::black_box(exact_index.search_maxscore(&q.vector, args.k)?);
    }
    let maxscore_s = t.elapsed().as_secs_f64();
    let nq = queries.len().max(1) as f64;
    println!(
        "approximate: {:.1} µs/query; exact term at a time: {:.1} µs/query; exact MaxScore: {:.1} µs/query",
        approx_s / nq * 1e6,
        exact_s / nq * 1e6,
        maxscore_s / nq * 1e6
    );

    for (q, hits) in queries.iter().zip(&approx).take(args.show) {
        println!("\nquery {}: {}", q.id, q.content.as_deref().unwrap_or(""));
        for (rank, h) in hits.iter().take(3).enumerate() {
            let d = &docs[h.doc as usize];
            let text: String = d
                .content
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(70)
                .collect();
            println!("  {}. doc {} ({:.3}) {text}", rank + 1, d.id, h.score);
        }
    }

    if let Some(path) = &args.qrels {
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let mut qrels: HashMap<String, HashMap<String, i32>> = HashMap::new();
        for j in json.as_array().ok_or("judgements must be a JSON array")? {
            let key = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            qrels.entry(key(&j["queryId"])).or_default().insert(
                key(&j["docId"]),
                j["relevance"].as_i64().unwrap_or(0) as i32,
            );
        }
        let empty = HashMap::new();
        let id = |r: &RecordId| r.to_string();
        let score = |results: &[Vec<ScoredDoc>], metric: &Metric| {
            mean(queries.iter().zip(results).map(|(q, hits)| {
                let ranking: Vec<String> =
                    hits.iter().map(|h| id(&docs[h.doc as usize].id)).collect();
                metric(&ranking, qrels.get(&id(&q.id)).unwrap_or(&empty))
            }))
        };
        let ndcg = |r: &[String], j: &HashMap<String, i32>| ndcg_at_k(r, j, 10);
        let mrr = |r: &[String], j: &HashMap<String, i32>| mrr_at_k(r, j, 10);
        println!(
            "\nnDCG@10: approximate {:.4}, exact {:.4}; MRR@10: approximate {:.4}, exact {:.4}",
            score(&approx, &ndcg),
            score(&exact, &ndcg),
            score(&approx, &mrr),
            score(&exact, &mrr)
        );
    }
    if let Some(path) = &args.out {
        write_results_tsv(path, &approx)?;
        println!("results written to {}", path.display());
    }
    Ok(())
}
