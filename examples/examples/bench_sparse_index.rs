//! Benchmark of sparse-index on the synthetic SPLADE-like collection
//! (`shared/tools/sparse-bench/gen_splade_like.py`): build time, index bytes, and a
//! recall@10-vs-latency table over `query_cut` × `heap_factor`, with exact search (term at a
//! time and MaxScore) measured in the same run as the baseline.
//!
//! ```text
//! python3 gen_splade_like.py --out /work/data-index/synth
//! cargo run --release -p examples --example bench_sparse_index -- --data /work/data-index/synth
//! ```
//!
//! Queries run one at a time on one thread; each configuration is timed `--runs` times over
//! all queries and the median of the per-run means is reported (the machine is shared, so the
//! load average is printed before and after).

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use sparse_index::metrics::{mean, recall_at_k};
use sparse_index::{
    BlockOrder, ExactIndex, PostingBudget, SearchParams, SearchStats, SeismicConfig, SeismicIndex,
    SparseCollection, UnknownComponents, ValuePrecision, read_results_tsv, read_seismic_bin,
};

#[derive(Parser)]
#[command(about = "recall@10 vs latency of sparse-index on a Seismic-format collection")]
struct Args {
    /// Folder with documents.bin, queries.bin and groundtruth.tsv.
    #[arg(long)]
    data: PathBuf,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Timed passes over the queries per configuration.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// λ (mean postings per list); 0 = automatic (⌈1.3·√N⌉).
    #[arg(long, default_value_t = 0)]
    n_postings: usize,
    /// List cap as a multiple of λ.
    #[arg(long, default_value_t = 1.5)]
    max_fraction: f32,
    /// Blocks per list as a fraction of its length.
    #[arg(long, default_value_t = 0.15)]
    centroid_fraction: f32,
    /// Fraction of a summary's L1 mass kept.
    #[arg(long, default_value_t = 0.4)]
    summary_energy: f32,
    /// Cap on summary entries (0 = none).
    #[arg(long, default_value_t = 96)]
    summary_cap: usize,
    /// Keep documents in collection order in the forward index.
    #[arg(long)]
    no_reorder: bool,
    /// Store forward values as f32 instead of f16.
    #[arg(long)]
    f32_values: bool,
    /// query_cut values of the sweep.
    #[arg(long, value_delimiter = ',', default_value = "3,4,5,6,8,10,12")]
    query_cuts: Vec<usize>,
    /// heap_factor values of the sweep (down to 0.5: on a 200k-document set recall 0.995 needs
    /// about 0.6).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.6,0.7,0.8,0.9,1.0")]
    heap_factors: Vec<f32>,
    /// Also sweep Seismic's original block order.
    #[arg(long)]
    seismic_order: bool,
    /// Skip the exact baselines.
    #[arg(long)]
    no_exact: bool,
    /// Load the index from this file if it exists, else build it and save it there (the
    /// build figures then come from the run that built it).
    #[arg(long)]
    index_cache: Option<PathBuf>,
}

/// CPU seconds (user + system) of the whole process so far, from `/proc/self/stat`.
fn process_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU time of the calling thread in seconds (Linux `schedstat`), if available: unlike wall
/// time it does not count the time the thread waits while other jobs hold the cores.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Per-query (wall, thread CPU) seconds of `f` over all queries: medians over `runs` passes.
fn time_queries(runs: usize, n: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut wall = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let c = thread_cpu_seconds();
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        wall.push(t.elapsed().as_secs_f64() / n as f64);
        cpu.push(match (c, thread_cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) / n as f64,
            _ => f64::NAN,
        });
    }
    (examples::median(wall), examples::median(cpu))
}

fn main() {
    // Errors print with their Display message, not Debug.
    examples::exit_on_error(run());
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    println!("load average before: {}", examples::load_average());
    let docs: SparseCollection = read_seismic_bin(args.data.join("documents.bin"))?;
    let queries = read_seismic_bin(args.data.join("queries.bin"))?;
    let truth = read_results_tsv(args.data.join("groundtruth.tsv"))?;
    println!(
        "collection: {} docs, {} postings, dim {}; {} queries",
        docs.len(),
        docs.nnz(),
        docs.dim(),
        queries.len()
    );
    let k = args.k;
    let nq = queries.len();
    let recall = |results: &[Vec<u32>]| {
        mean((0..nq).map(|q| recall_at_k(&results[q], truth.get(q).map_or(&[][..], |t| t), k)))
    };

    let mut exact_us = None;
    if !args.no_exact {
        let t = Instant::now();
        let exact = ExactIndex::new(docs.clone())?;
        println!("exact index built in {:.2} s", t.elapsed().as_secs_f64());
        // Query terms no document has match nothing: drop them, as the approximate runs do.
        let known = |q: usize| exact.known_components(queries.get(q)).0;
        let taat = time_queries(args.runs, nq, |q| {
            std::hint::black_box(
                exact
                    .search_taat(known(q), k)
                    .expect("known components only"),
            );
        });
        let maxscore = time_queries(1, nq, |q| {
            std::hint::black_box(
                exact
                    .search_maxscore(known(q), k)
                    .expect("known components only"),
            );
        });
        let n_brute = nq.min(100);
        let brute = time_queries(1, n_brute, |q| {
            std::hint::black_box(sparse_index::brute_force_search(&docs, queries.get(q), k));
        });
        println!(
            "exact forward brute force (first {n_brute} queries, 1 run): {:.1} µs/query wall, {:.1} µs CPU",
            brute.0 * 1e6,
            brute.1 * 1e6
        );
        let res: Vec<Vec<u32>> = (0..nq)
            .map(|q| {
                exact
                    .search(known(q), k)
                    .expect("known components only")
                    .iter()
                    .map(|h| h.doc)
                    .collect()
            })
            .collect();
        println!(
            "exact term-at-a-time: {:.1} µs/query wall, {:.1} µs CPU; exact MaxScore (1 run): {:.1} µs wall, {:.1} µs CPU; recall@{k} {:.4}",
            taat.0 * 1e6,
            taat.1 * 1e6,
            maxscore.0 * 1e6,
            maxscore.1 * 1e6,
            recall(&res)
        );
        exact_us = Some(taat.0 * 1e6);
    }

    let budget = if args.n_postings == 0 {
        PostingBudget::Auto
    } else {
        PostingBudget::PerList(args.n_postings)
    };
    let config = SeismicConfig::default()
        .with_budget(budget)
        .with_max_fraction(args.max_fraction)
        .with_centroid_fraction(args.centroid_fraction)
        .with_summary_energy(args.summary_energy)
        .with_summary_max_components(args.summary_cap)
        .with_reorder_documents(!args.no_reorder)
        .with_precision(if args.f32_values {
            ValuePrecision::F32
        } else {
            ValuePrecision::F16
        });
    let cached = args.index_cache.as_ref().filter(|p| p.exists());
    let index = if let Some(path) = cached {
        let t = Instant::now();
        let index = SeismicIndex::load(path)?;
        println!(
            "index loaded from {} in {:.2} s (config {:?})",
            path.display(),
            t.elapsed().as_secs_f64(),
            index.config()
        );
        index
    } else {
        let t = Instant::now();
        let cpu0 = process_cpu_seconds();
        let stages = std::sync::Mutex::new(Vec::<(sparse_index::BuildStage, f64)>::new());
        let index = SeismicIndex::build_with_progress(&docs, &config, |p| {
            let mut s = stages.lock().unwrap();
            if s.last().is_none_or(|l| l.0 != p.stage) {
                s.push((p.stage, t.elapsed().as_secs_f64()));
            }
        })?;
        let build_s = t.elapsed().as_secs_f64();
        let cpu = match (cpu0, process_cpu_seconds()) {
            (Some(a), Some(b)) => format!("{:.1}", b - a),
            _ => "n/a".into(),
        };
        println!(
            "seismic build: {build_s:.2} s wall, {cpu} CPU-s ({} threads); stage start times (s): {:?}",
            rayon::current_num_threads(),
            stages.lock().unwrap()
        );
        if let Some(path) = &args.index_cache {
            index.save(path)?;
        }
        index
    };
    let mem = index.memory();
    println!(
        "λ {:?}; {} postings kept, {} blocks",
        index.config().budget.per_list(docs.len()),
        index.n_postings(),
        index.n_blocks()
    );
    println!(
        "index bytes: {:.1} MB (forward {:.1} MB, postings {:.1} MB, summaries {:.1} MB)",
        mem.total() as f64 / 1e6,
        mem.forward as f64 / 1e6,
        mem.postings as f64 / 1e6,
        mem.summaries as f64 / 1e6
    );

    let mut orders = vec![BlockOrder::BestFirst];
    if args.seismic_order {
        orders.push(BlockOrder::Seismic);
    }
    println!(
        "| order | query_cut | heap_factor | recall@{k} | mean µs/query (wall) | µs CPU | speed-up vs exact | docs scored | blocks scored | summaries scored |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &order in &orders {
        for &qc in &args.query_cuts {
            for &hf in &args.heap_factors {
                let params = SearchParams::default()
                    .with_query_cut(qc)
                    .with_heap_factor(hf)
                    .with_order(order)
                    .with_unknown_components(UnknownComponents::Drop);
                let mut stats = SearchStats::default();
                let res: Vec<Vec<u32>> = (0..nq)
                    .map(|q| {
                        let (hits, s) = index
                            .search_with_stats(queries.get(q), k, &params)
                            .expect("unknown components are dropped");
                        stats += s;
                        hits.iter().map(|h| h.doc).collect()
                    })
                    .collect();
                let (wall, cpu) = time_queries(args.runs, nq, |q| {
                    std::hint::black_box(
                        index
                            .search(queries.get(q), k, &params)
                            .expect("unknown components are dropped"),
                    );
                });
                let us = wall * 1e6;
                println!(
                    "| {order:?} | {qc} | {hf} | {:.4} | {us:.1} | {:.1} | {} | {:.0} | {:.0} | {:.0} |",
                    recall(&res),
                    cpu * 1e6,
                    exact_us.map_or("-".into(), |e| format!("{:.1}×", e / us)),
                    stats.docs_scored as f64 / nq as f64,
                    stats.blocks_visited as f64 / nq as f64,
                    stats.blocks_estimated as f64 / nq as f64,
                );
            }
        }
    }
    println!("load average after: {}", examples::load_average());
    Ok(())
}
