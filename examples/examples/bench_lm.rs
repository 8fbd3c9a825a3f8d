//! Benchmark and oracle check of SmolLM2-135M-Instruct in Rust (hooked-transformer) against the
//! baselines, in the same run on the same tokens:
//! - the FLOP ceiling of the same shapes: the forward's matmuls alone, as burn matmuls on the
//!   same backend;
//! - Hugging Face `transformers` on torch CPU (what a TransformerLens user runs today) and the
//!   numpy reference forward, through `examples/python/bench_lm_anchors.py` (one subprocess per
//!   measurement; each times its own reps after a warm-up, so interpreter start-up is excluded).
//!
//! Rounds alternate ours and theirs so both see the same machine load; figures are medians.
//! Tasks: `prefill` (logits for batch × seq tokens), `extract12` (stop after block 12, the
//! activation-extraction path), decode with and without the KV cache.
//!
//! `--oracle` instead runs all 64 shipped SOTU sequences and reports the per-token relative L2
//! error of the layer-12 residual against the file the numpy reference wrote, the minimum
//! cosine and the perplexity.
//!
//! ```sh
//! cargo run --release -p examples --example bench_lm -- --python /work/venv-anchors/bin/python --hf /work/hf-smollm2
//! cargo run --release -p examples --example bench_lm -- --oracle
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Parser;
use examples::{load_average, median, shared_dir};
use hooked_transformer::Hooks;
use hooked_transformer::llama::{GenerateConfig, Llama, next_token_nll};

#[derive(Parser, Debug)]
#[command(about = "SmolLM2 in Rust vs transformers / numpy / the matmul ceiling, same run")]
struct Args {
    /// The SmolLM2 GGUF file (default: shared data).
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// The shipped layer-12 activations with token ids (default: shared data).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Python with torch + transformers + numpy + gguf (skip the anchors when absent).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The Hugging Face folder written by `examples/python/gguf_to_hf.py` (for transformers).
    #[arg(long, default_value = "/work/hf-smollm2")]
    hf: PathBuf,
    /// Sequences per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 256)]
    seq: usize,
    /// Interleaved rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// New tokens for the decode measurement.
    #[arg(long, default_value_t = 512)]
    decode_tokens: usize,
    /// Run the full oracle check instead of the benchmark.
    #[arg(long)]
    oracle: bool,
    /// Pass `--omp-passive` to the transformers driver (torch's spinning OpenMP threads collapse
    /// on a loaded 2-core machine).
    #[arg(long)]
    omp_passive: bool,
}

fn main() {
    examples::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let data = shared_dir().join("data");
    let gguf = args.gguf.clone().unwrap_or_else(examples::smollm2_gguf);
    let tokens_path = args
        .tokens
        .clone()
        .unwrap_or_else(|| data.join("smollm2-sotu/smollm2-135m-layer12.safetensors"));
    let device = examples::device();
    println!(
        "machine: {} threads, load average {}",
        rayon::current_num_threads(),
        load_average()
    );

    let rss_before = peak_rss_bytes();
    let t0 = Instant::now();
    let model = Llama::from_gguf(&gguf, &device)?;
    let load_s = t0.elapsed().as_secs_f64();
    let rss_after = peak_rss_bytes();
    let f32_bytes = model.config().n_params() as f64 * 4.0;
    println!(
        "loaded {} in {load_s:.2} s: {} parameters, f32 weights {:.0} MB; peak RSS {:.0} MB before, {:.0} MB after load ({:.2}× the f32 weights)",
        gguf.display(),
        model.config().n_params(),
        f32_bytes / 1e6,
        rss_before / 1e6,
        rss_after / 1e6,
        rss_after / f32_bytes
    );

    let bytes = std::fs::read(&tokens_path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let stream: Vec<u32> = st
        .tensor("tokens")?
        .data()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as u32)
        .collect();
    if args.oracle {
        return oracle(&model, &st, &stream, &device);
    }
    bench(args, &model, &stream, &gguf, &tokens_path, &device)
}

fn bench(
    args: &Args,
    model: &Llama,
    stream: &[u32],
    gguf: &std::path::Path,
    tokens_path: &std::path::Path,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    // Row b starts at tokens[256·b] and reads on (the Python driver's rule).
    let batch_tokens = |batch: usize, seq: usize| -> Tensor<2, Int> {
        let ids: Vec<i64> = (0..batch)
            .flat_map(|b| stream[b * 256..b * 256 + seq].iter().map(|&t| i64::from(t)))
            .collect();
        Tensor::from_data(TensorData::new(ids, [batch, seq]), device)
    };
    let (b, s) = (args.batch, args.seq);
    let n_tokens = (b * s) as f64;
    let tokens = batch_tokens(b, s);
    let c = model.config().clone();

    // Warm-up.
    let _ = model.run(tokens.clone(), &mut Hooks::new().stop_at_layer(12))?;

    let mut ours_prefill = Vec::new();
    let mut ours_extract = Vec::new();
    let mut ceiling_prefill = Vec::new();
    let mut ceiling_extract = Vec::new();
    let mut hf_prefill = Vec::new();
    let mut hf_extract = Vec::new();
    let mut np_extract = Vec::new();
    for round in 0..args.rounds {
        let t = Instant::now();
        let logits = model.forward(tokens.clone())?;
        let _ = logits.slice(burn::tensor::s![0..1, 0..1, 0..1]).into_data();
        ours_prefill.push(n_tokens / t.elapsed().as_secs_f64());

        let t = Instant::now();
        let out = model.run(tokens.clone(), &mut Hooks::new().stop_at_layer(12))?;
        let _ = out
            .residual
            .slice(burn::tensor::s![0..1, 0..1, 0..1])
            .into_data();
        ours_extract.push(n_tokens / t.elapsed().as_secs_f64());

        let (full, twelve) = matmul_ceiling(&c, b * s, device);
        ceiling_prefill.push(n_tokens / full);
        ceiling_extract.push(n_tokens / twelve);

        if let Some(py) = &args.python {
            let anchor = |imp: &str, task: &str, batch: usize, reps: usize| {
                python_anchor(py, args, imp, task, batch, reps, gguf, tokens_path)
            };
            hf_prefill.push(anchor("transformers", "prefill", b, 1)?);
            hf_extract.push(anchor("transformers", "extract12", b, 1)?);
            if round == 0 {
                np_extract.push(anchor("numpy", "extract12", 1, 1)?);
            }
        }
        println!("round {round} done (load average {})", load_average());
    }

    println!(
        "\n## prompt processing, batch {b} × {s} tokens, tokens/s (median of {} rounds)",
        args.rounds
    );
    let row = |name: &str, v: &[f64]| {
        if v.is_empty() {
            println!("| {name} | not run |");
        } else {
            println!("| {name} | {:.0} |", median(v.to_vec()));
        }
    };
    println!("| implementation | tokens/s |\n|---|---|");
    row("ours, full forward (logits)", &ours_prefill);
    row("ours, extraction (stop after block 12)", &ours_extract);
    row("matmul ceiling, full forward", &ceiling_prefill);
    row("matmul ceiling, 12 blocks", &ceiling_extract);
    row("transformers (torch CPU), full forward", &hf_prefill);
    row("transformers (torch CPU), 12 blocks", &hf_extract);
    row("numpy reference, 12 blocks (batch 1)", &np_extract);
    let m = |v: &[f64]| median(v.to_vec());
    println!(
        "\nextraction / ceiling {:.2}, full / ceiling {:.2}",
        m(&ours_extract) / m(&ceiling_extract),
        m(&ours_prefill) / m(&ceiling_prefill)
    );
    if !hf_prefill.is_empty() {
        println!(
            "ours / transformers: full {:.2}×, extraction {:.2}×; ours extraction / numpy {:.1}×",
            m(&ours_prefill) / m(&hf_prefill),
            m(&ours_extract) / m(&hf_extract),
            m(&ours_extract) / m(&np_extract)
        );
    }

    // Decode, batch 1, from a 16-token prompt.
    let prompt: Vec<u32> = stream[..16].to_vec();
    let n_new = args.decode_tokens;
    let config = GenerateConfig {
        max_new_tokens: n_new,
        ..GenerateConfig::greedy(n_new, vec![])
    };
    let t = Instant::now();
    let generated = model.generate(&prompt, &config, device)?;
    let cached_s = t.elapsed().as_secs_f64();
    let cached_tps = generated.tokens.len() as f64 / cached_s;
    // Without the cache a step re-runs the whole context: time single steps at contexts spread
    // over the run and integrate (a full 512-step run takes minutes).
    let contexts: Vec<usize> = (0..8).map(|i| 16 + (i * 2 + 1) * n_new / 16).collect();
    let mut step_s = Vec::new();
    for &ctx in &contexts {
        let mut ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
        ids.extend(
            generated
                .tokens
                .iter()
                .take(ctx - 16)
                .map(|&t| i64::from(t)),
        );
        let n = ids.len();
        let t_ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device);
        let t = Instant::now();
        let logits = model.forward(t_ids)?;
        let _ = logits
            .slice(burn::tensor::s![0..1, n - 1..n, 0..1])
            .into_data();
        step_s.push(t.elapsed().as_secs_f64());
    }
    let mean_step = step_s.iter().sum::<f64>() / step_s.len() as f64;
    let nocache_full_s = mean_step * n_new as f64;
    let last_ctx_step = *step_s.last().expect("steps");
    // With the cache, the time of one step at the end of the run.
    let mut kv = model.new_kv_cache();
    let mut ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
    ids.extend(
        generated
            .tokens
            .iter()
            .take(n_new - 1)
            .map(|&t| i64::from(t)),
    );
    let n = ids.len();
    let _ = model.run_cached(
        Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device),
        None,
        &mut kv,
        &mut Hooks::new(),
    )?;
    let t = Instant::now();
    let last = Tensor::<2, Int>::from_data([[i64::from(generated.tokens[n_new - 1])]], device);
    let out = model.run_cached(last, None, &mut kv, &mut Hooks::new())?;
    let _ = out.logits.expect("logits").into_data();
    let cached_step_at_end = t.elapsed().as_secs_f64();
    println!("\n## decode, batch 1, {n_new} new tokens after a 16-token prompt");
    println!("| | value |\n|---|---|");
    println!("| KV cache: whole run | {cached_s:.2} s ({cached_tps:.1} tokens/s) |");
    println!(
        "| no cache: whole run (estimated from {} steps at contexts {:?}) | {nocache_full_s:.1} s ({:.1} tokens/s) |",
        contexts.len(),
        contexts,
        n_new as f64 / nocache_full_s
    );
    println!(
        "| whole-run speed-up of the cache | {:.1}× |",
        nocache_full_s / cached_s
    );
    println!(
        "| one step at context {}: cache {:.1} ms, no cache {:.1} ms ({:.1}×) |",
        contexts.last().expect("contexts"),
        cached_step_at_end * 1e3,
        last_ctx_step * 1e3,
        last_ctx_step / cached_step_at_end
    );
    if let Some(py) = &args.python {
        let hf_decode = python_anchor(
            py,
            args,
            "transformers",
            "decode_cache",
            1,
            1,
            gguf,
            tokens_path,
        )?;
        println!("| transformers decode with cache, batch 1 | {hf_decode:.1} tokens/s |");
    }
    println!("\nload average at the end: {}", load_average());
    Ok(())
}

/// Seconds of the forward's matmuls alone (full model; first 12 blocks) for `n` tokens, as burn
/// matmuls of the same shapes on the same device.
fn matmul_ceiling(
    c: &hooked_transformer::llama::LlamaConfig,
    n: usize,
    device: &Device,
) -> (f64, f64) {
    let shapes = [
        (c.d_model, c.n_heads * c.d_head),
        (c.d_model, c.n_kv_heads * c.d_head),
        (c.d_model, c.n_kv_heads * c.d_head),
        (c.n_heads * c.d_head, c.d_model),
        (c.d_model, c.d_mlp),
        (c.d_model, c.d_mlp),
        (c.d_mlp, c.d_model),
    ];
    let time = |k: usize, m: usize| {
        let x = Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), device);
        let w = Tensor::<2>::random([k, m], Distribution::Normal(0.0, 1.0), device);
        let _ = x
            .clone()
            .matmul(w.clone())
            .slice(burn::tensor::s![0..1, 0..1])
            .into_data();
        let t = Instant::now();
        let y = x.matmul(w);
        let _ = y.slice(burn::tensor::s![0..1, 0..1]).into_data();
        t.elapsed().as_secs_f64()
    };
    let block: f64 = shapes.iter().map(|&(k, m)| time(k, m)).sum();
    let unembed = time(c.d_model, c.vocab_size);
    (block * c.n_layers as f64 + unembed, block * 12.0)
}

#[allow(clippy::too_many_arguments)]
fn python_anchor(
    python: &std::path::Path,
    args: &Args,
    imp: &str,
    task: &str,
    batch: usize,
    reps: usize,
    gguf: &std::path::Path,
    tokens: &std::path::Path,
) -> Result<f64, Box<dyn std::error::Error>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bench_lm_anchors.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--impl", imp, "--task", task, "--threads", "2"])
        .args([
            "--batch",
            &batch.to_string(),
            "--seq",
            &args.seq.to_string(),
        ])
        .args(["--reps", &reps.to_string()])
        .arg("--hf")
        .arg(&args.hf)
        .arg("--gguf")
        .arg(gguf)
        .arg("--tokens")
        .arg(tokens);
    if task.starts_with("decode") {
        cmd.args(["--new-tokens", &args.decode_tokens.to_string()]);
    }
    if args.omp_passive && imp == "transformers" {
        cmd.arg("--omp-passive");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{imp} {task} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )
        .into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or(""))?;
    let tps = json["tokens_per_s"]
        .as_f64()
        .ok_or("no tokens_per_s in the driver's output")?;
    println!("  {imp} {task} (batch {batch}): {tps:.1} tokens/s");
    Ok(tps)
}

/// All 64 × 256 shipped tokens: layer-12 residual against the oracle, and perplexity.
fn oracle(
    model: &Llama,
    st: &safetensors::SafeTensors<'_>,
    stream: &[u32],
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    let acts = st.tensor("activations")?;
    let want: Vec<f32> = acts
        .data()
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32())
        .collect();
    let d = model.config().d_model;
    let (n_seq, len, batch) = (stream.len() / 256, 256, 8);
    let mut errs = Vec::with_capacity(n_seq * len);
    let mut min_cos = f64::INFINITY;
    let mut nll_sum = 0f64;
    let mut nll_n = 0usize;
    let bar = indicatif::ProgressBar::new(n_seq as u64);
    for first in (0..n_seq).step_by(batch) {
        let rows = batch.min(n_seq - first);
        let ids: Vec<i64> = stream[first * len..(first + rows) * len]
            .iter()
            .map(|&t| i64::from(t))
            .collect();
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows, len]), device);
        let out = model.run(
            tokens.clone(),
            &mut Hooks::new().cache([hooked_transformer::names::resid_post(11)]),
        )?;
        let got: Vec<f32> = out
            .cache
            .get3(&hooked_transformer::names::resid_post(11))
            .expect("cached")
            .into_data()
            .try_to_vec()
            .map_err(|e| format!("{e:?}"))?;
        for r in 0..rows * len {
            let g = &got[r * d..(r + 1) * d];
            let w = &want[(first * len + r) * d..(first * len + r + 1) * d];
            let (mut num, mut den, mut dot, mut gg) = (0f64, 0f64, 0f64, 0f64);
            for (&a, &b) in g.iter().zip(w) {
                let (a, b) = (f64::from(a), f64::from(b));
                num += (a - b) * (a - b);
                den += b * b;
                dot += a * b;
                gg += a * a;
            }
            errs.push((num / den).sqrt());
            min_cos = min_cos.min(dot / (gg.sqrt() * den.sqrt()));
        }
        let nll = next_token_nll(out.logits.expect("logits"), tokens);
        nll_sum += f64::from(nll.sum().into_scalar::<f32>());
        nll_n += rows * (len - 1);
        bar.inc(rows as u64);
    }
    bar.finish();
    errs.sort_by(f64::total_cmp);
    println!(
        "layer-12 residual vs the numpy oracle over {} rows: median relative L2 {:.2e}, max {:.2e}, min cosine {:.7}",
        errs.len(),
        errs[errs.len() / 2],
        errs[errs.len() - 1],
        min_cos
    );
    println!(
        "perplexity over {n_seq} × {len} tokens: {:.3} (mean NLL {:.4} nats; the numpy reference's: 25.0)",
        (nll_sum / nll_n as f64).exp(),
        nll_sum / nll_n as f64
    );
    Ok(())
}

/// Peak resident set size of this process (`VmHWM`), in bytes; NaN where unavailable.
fn peak_rss_bytes() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb * 1024.0)
}
