//! Speed of sparse attention against dense attention on the CPU, in one run.
//!
//! For each length L (causal prefill, batch 1, `--heads` heads of dim `--d`, seeded normal q/k/v):
//! - **burn dense**: `sparse_attn::dense_attention` = burn's own `attention` with `is_causal`
//!   (flex's tiled online-softmax kernel) — what a burn user runs;
//! - **torch SDPA** (with `--python`): `scaled_dot_product_attention(is_causal=True)` on the same
//!   q/k/v (written to a safetensors file), 2 threads, through `examples/python/bench_sdpa_anchor.py`;
//! - **block gather**: block top-k masks (`BlockTopK::for_density`, block `--block`) at each
//!   `--densities` value, run by `gather_attention` (the estimator's own time reported apart);
//! - **element gather** (L ≤ `--element-max-len`): random per-row key columns at each
//!   `--element-densities` value (of the valid keys of the row), by `gather_attention` (portable)
//!   and by `host_gather_attention` (the CPU kernel);
//! - **dispatch**: which kernel `sparse_attention` picks for each mask under the default
//!   crossover.
//!
//! Then **decode** at `--decode-context` keys (one query, all keys valid): dense decode against
//! Quest (pages of 16, each `--decode-budgets` token budget): its page selection from the cached
//! page bounds plus the gather over the kept pages, both timed (building the bounds is a
//! one-off per prefill plus an O(d) update per token, not timed).
//!
//! Times are medians of `--reps` after one warm-up; the output is forced to host memory inside
//! the timed region. Prints a markdown table, writes `results.json`,
//! `speedup_blocks.png` and `speedup_elements.png` under `--out` (`--replot results.json`
//! redraws them).
//!
//! ```text
//! cargo run --release -p examples --example bench_sparse_attn -- --python /work/venv-anchors/bin/python
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Parser;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, TensorView};
use sparse_attn::{
    AttentionLayout, AttentionProblem, BlockSize, BlockTopK, Crossover, KernelChoice, PageBounds,
    Quest, SparseMask, choose_kernel, dense_attention, gather_attention, host_gather_attention,
};

use examples::plot::{Axes, Series, line_plot};
use examples::{exit_on_error, load_average, median};

#[derive(Parser, Debug)]
struct Args {
    /// Sequence lengths (causal prefill).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1024,2048,4096,8192,16384"
    )]
    lengths: Vec<usize>,
    /// Attention heads (query = KV heads, as torch's SDPA takes them).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Head dimension.
    #[arg(long, default_value_t = 64)]
    d: usize,
    /// Block size of the block masks.
    #[arg(long, default_value_t = 64)]
    block: usize,
    /// Target densities of the block masks.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.05,0.1,0.2,0.3,0.5,0.7"
    )]
    densities: Vec<f64>,
    /// Densities of the element (per-row column) masks.
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.02,0.05,0.1,0.2")]
    element_densities: Vec<f64>,
    /// Longest length the element masks run at.
    #[arg(long, default_value_t = 4096)]
    element_max_len: usize,
    /// Keys of the decode comparison.
    #[arg(long, default_value_t = 8192)]
    decode_context: usize,
    /// Quest token budgets of the decode comparison (pages of 16 keys).
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024,2048")]
    decode_budgets: Vec<usize>,
    /// Timed repetitions per measurement (after one warm-up).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Seed of the inputs and the element masks.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Python with torch + safetensors for the SDPA anchor (skipped without it).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Run torch with OMP_WAIT_POLICY=PASSIVE (a loaded machine; see examples/python/README.md).
    #[arg(long)]
    omp_passive: bool,
    /// Output folder.
    #[arg(long, default_value = "target/bench_sparse_attn")]
    out: PathBuf,
    /// Only redraw the plots of an earlier run's results.json into --out.
    #[arg(long)]
    replot: Option<PathBuf>,
}

/// One timed row of the results.
struct Row {
    len: usize,
    method: String,
    density: f64,
    seconds: f64,
    dense_seconds: f64,
    torch_seconds: Option<f64>,
    extra: String,
}

fn main() {
    exit_on_error(run());
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(results) = &args.replot {
        return replot(results, &args.out);
    }
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    std::fs::create_dir_all(&args.out)?;
    let device = examples::device();
    println!(
        "bench_sparse_attn: heads {} d {} block {} reps {} seed {}; load {}",
        args.heads,
        args.d,
        args.block,
        args.reps,
        args.seed,
        load_average()
    );
    let mut rows = Vec::new();
    for &len in &args.lengths {
        let layout = AttentionLayout::causal(len);
        let p = random_problem(&args, layout, len as u64, &device);
        let dense = time(args.reps, || host(dense_attention(&p)));
        let torch = torch_seconds(&args, &p, true, &format!("L{len}"))?;
        println!(
            "L {len}: burn dense {:.4} s, torch {}",
            dense,
            torch.map_or("-".into(), |t| format!("{t:.4} s"))
        );
        for &target in &args.densities {
            let est = BlockTopK::for_density(len, args.block, target);
            let t0 = Instant::now();
            let mask = est.mask(&p);
            let estimate_s = t0.elapsed().as_secs_f64();
            rows.push(measure(
                &args,
                &p,
                &mask,
                gather_attention,
                "block gather",
                dense,
                torch,
                format!("estimator {estimate_s:.4} s"),
            ));
        }
        if len <= args.element_max_len {
            for &target in &args.element_densities {
                let mask = random_columns(layout, args.heads, target, args.seed ^ len as u64)?;
                for (kernel, name) in [
                    (gather_attention as Kernel, "element gather"),
                    (host_gather_attention as Kernel, "element host kernel"),
                ] {
                    rows.push(measure(
                        &args,
                        &p,
                        &mask,
                        kernel,
                        name,
                        dense,
                        torch,
                        String::new(),
                    ));
                }
            }
        }
    }
    // Decode: one query against the whole cache.
    let len = args.decode_context;
    let layout = AttentionLayout::causal_suffix(1, len);
    let p = random_problem(&args, layout, 1 << 40, &device);
    let dense = time(args.reps, || host(dense_attention(&p)));
    let torch = torch_seconds(&args, &p, false, "decode")?;
    println!("decode {len}: burn dense {dense:.6} s");
    let bounds = PageBounds::from_keys(&p.k, 16);
    for &budget in &args.decode_budgets {
        let quest = Quest::new(16, budget);
        let estimate_s = time(args.reps, || {
            std::hint::black_box(quest.mask(&bounds, &p.q));
        });
        let mask = quest.mask(&bounds, &p.q);
        let seconds = time(args.reps, || host(gather_attention(&p, &mask)));
        let row = Row {
            len,
            method: "Quest decode".into(),
            density: mask.density().overall(),
            seconds: seconds + estimate_s,
            dense_seconds: dense,
            torch_seconds: torch,
            extra: format!(
                "token budget {budget}: page selection {estimate_s:.6} s + gather {seconds:.6} s"
            ),
        };
        println!(
            "  Quest budget {budget}: {:.6} s = {:.2}× burn dense decode ({})",
            row.seconds,
            dense / row.seconds,
            row.extra
        );
        rows.push(row);
    }
    report(&args, &rows)
}

fn random_problem(
    args: &Args,
    layout: AttentionLayout,
    salt: u64,
    device: &Device,
) -> AttentionProblem {
    device.seed(args.seed ^ salt);
    let n = Distribution::Normal(0.0, 1.0);
    let (h, d) = (args.heads, args.d);
    AttentionProblem::new(
        Tensor::random([1, h, layout.q_len, d], n, device),
        Tensor::random([1, h, layout.k_len, d], n, device),
        Tensor::random([1, h, layout.k_len, d], n, device),
        layout,
    )
}

/// The kernel a row times.
type Kernel = fn(&AttentionProblem, &SparseMask) -> Tensor<4>;

#[allow(clippy::too_many_arguments)]
fn measure(
    args: &Args,
    p: &AttentionProblem,
    mask: &SparseMask,
    kernel: Kernel,
    method: &str,
    dense: f64,
    torch: Option<f64>,
    extra: String,
) -> Row {
    let density = mask.density().overall();
    let seconds = time(args.reps, || host(kernel(p, mask)));
    let (choice, _) = choose_kernel(p, mask, Crossover::default());
    let picked = match choice {
        KernelChoice::Gather { work } => format!("dispatch: gather (work {work:.3})"),
        KernelChoice::Dense { work } => format!("dispatch: dense (work {work:.3})"),
        KernelChoice::Host { work } => format!("dispatch: host kernel (work {work:.3})"),
    };
    let extra = if extra.is_empty() {
        picked
    } else {
        format!("{extra}; {picked}")
    };
    println!(
        "  {method} density {density:.3}: {seconds:.4} s = {:.2}× burn dense{} ({extra})",
        dense / seconds,
        torch.map_or(String::new(), |t| format!(", {:.2}× torch", t / seconds))
    );
    Row {
        len: p.layout.k_len,
        method: method.into(),
        density,
        seconds,
        dense_seconds: dense,
        torch_seconds: torch,
        extra,
    }
}

/// Median seconds of `reps` calls after one warm-up.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Forces the computation and the copy to host memory.
fn host(t: Tensor<4>) {
    let v = t.into_data().try_into_vec::<f32>().expect("f32 output");
    std::hint::black_box(v);
}

/// Per row, `density` of its valid keys chosen uniformly (at least one).
fn random_columns(
    layout: AttentionLayout,
    heads: usize,
    density: f64,
    seed: u64,
) -> Result<SparseMask, Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows = (0..heads)
        .flat_map(|_| 0..layout.q_len)
        .map(|i| {
            let valid = layout.valid_keys(i);
            let k = ((valid as f64 * density).round() as usize).clamp(1, valid);
            rand::seq::index::sample(&mut rng, valid, k)
                .into_iter()
                .map(|j| j as u32)
                .collect()
        })
        .collect();
    Ok(SparseMask::from_rows(
        layout,
        BlockSize::square(64),
        1,
        heads,
        rows,
    )?)
}

/// torch SDPA's median seconds on the same q/k/v, or `None` without `--python`.
fn torch_seconds(
    args: &Args,
    p: &AttentionProblem,
    causal: bool,
    tag: &str,
) -> Result<Option<f64>, Box<dyn std::error::Error>> {
    let Some(python) = &args.python else {
        return Ok(None);
    };
    let path = args.out.join(format!("inputs_{tag}.safetensors"));
    write_inputs(&path, p)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bench_sdpa_anchor.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg("--inputs")
        .arg(&path)
        .args(["--threads", "2", "--reps"])
        .arg(args.reps.to_string());
    if causal {
        cmd.arg("--causal");
    }
    if args.omp_passive {
        cmd.arg("--omp-passive");
    }
    let out = cmd.output()?;
    std::fs::remove_file(&path)?;
    if !out.status.success() {
        return Err(format!(
            "torch anchor failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let seconds: Vec<f64> = json["seconds"]
        .as_array()
        .ok_or("torch anchor: no seconds in its reply")?
        .iter()
        .filter_map(|s| s.as_f64())
        .collect();
    if seconds.is_empty() {
        return Err("torch anchor: empty seconds".into());
    }
    Ok(Some(median(seconds)))
}

fn write_inputs(path: &Path, p: &AttentionProblem) -> Result<(), Box<dyn std::error::Error>> {
    let parts = [("q", &p.q), ("k", &p.k), ("v", &p.v)].map(|(name, t)| {
        let dims = t.dims().to_vec();
        let values = t.to_data().try_into_vec::<f32>().expect("f32 inputs");
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        (name, dims, bytes)
    });
    let views = parts
        .iter()
        .map(|(name, dims, bytes)| Ok((*name, TensorView::new(Dtype::F32, dims.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    safetensors::serialize_to_file(views, None, path)?;
    Ok(())
}

fn report(args: &Args, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n| L | method | density | seconds | × burn dense | × torch SDPA | notes |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.3} | {:.4} | {:.2} | {} | {} |",
            r.len,
            r.method,
            r.density,
            r.seconds,
            r.dense_seconds / r.seconds,
            r.torch_seconds
                .map_or("-".into(), |t| format!("{:.2}", t / r.seconds)),
            r.extra
        );
    }
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "len": r.len, "method": r.method, "density": r.density, "seconds": r.seconds,
                "burn_dense_seconds": r.dense_seconds, "torch_sdpa_seconds": r.torch_seconds,
                "notes": r.extra,
            })
        })
        .collect();
    let meta = serde_json::json!({
        "heads": args.heads, "d": args.d, "block": args.block, "reps": args.reps,
        "seed": args.seed, "load_end": load_average(), "rows": json,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&meta)?,
    )?;
    let plots = plot(&args.out, rows)?;
    println!(
        "wrote {} and {}",
        args.out.join("results.json").display(),
        plots.join(", ")
    );
    Ok(())
}

/// Two plots: block masks per length, element masks (portable and host kernel) per length.
fn plot(out: &Path, rows: &[Row]) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut lengths: Vec<usize> = rows.iter().map(|r| r.len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut written = Vec::new();
    for (file, title, methods) in [
        (
            "speedup_blocks.png",
            "Block gather (block top-k masks) on the CPU: speed-up over burn's dense attention",
            &["block gather"][..],
        ),
        (
            "speedup_elements.png",
            "Element masks on the CPU: portable gather and host kernel vs burn's dense attention",
            &["element gather", "element host kernel"][..],
        ),
    ] {
        let mut series = Vec::new();
        for method in methods {
            for &len in &lengths {
                let points: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| r.method == *method && r.len == len)
                    .map(|r| (r.density * 100.0, r.dense_seconds / r.seconds))
                    .collect();
                if !points.is_empty() {
                    series.push(Series::line(format!("{method}, L {len}"), points));
                }
            }
        }
        series.push(Series::reference("dense (1×)", 1.0));
        let path = out.join(file);
        line_plot(
            &path,
            &Axes {
                title,
                x: "density (% of causal cells)",
                y: "speed-up over burn dense (×)",
                log_y: true,
            },
            &series,
        )?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// Redraws the plots of an earlier run from its `results.json`.
fn replot(results: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(results)?)?;
    let bad = || {
        format!(
            "{}: not a bench_sparse_attn results file",
            results.display()
        )
    };
    let rows = json["rows"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|r| {
            Ok(Row {
                len: r["len"].as_u64().ok_or_else(bad)? as usize,
                method: r["method"].as_str().ok_or_else(bad)?.to_string(),
                density: r["density"].as_f64().ok_or_else(bad)?,
                seconds: r["seconds"].as_f64().ok_or_else(bad)?,
                dense_seconds: r["burn_dense_seconds"].as_f64().ok_or_else(bad)?,
                torch_seconds: r["torch_sdpa_seconds"].as_f64(),
                extra: String::new(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    std::fs::create_dir_all(out)?;
    println!("wrote {}", plot(out, &rows)?.join(", "));
    Ok(())
}
