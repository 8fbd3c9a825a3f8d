//! Benchmark: the sparse CPU kernel against burn's own dense matmul, same shapes, same run.
//!
//! `Y[batch, 2048] = X[batch, 2048] · W` with `W` 2048 × 2048 under a random unstructured mask,
//! for several batch sizes, sparsities and thread counts. Three timings per configuration:
//! - `dense`: burn's `x.matmul(w)` on the flex backend (gemm crate, SIMD, rayon) — what a user
//!   runs without this crate (the baseline);
//! - `kernel`: `pruning::kernel::csr_linear` on host slices (the kernel alone);
//! - `layer`: `SparseLinear::forward` on burn tensors (kernel + the copies in and out of burn).
//!
//! A second table (`--blocks`) compares dense, the CSR kernel and the block-sparse kernel
//! `bsr_linear` on block-structured masks.
//!
//! Thread counts are set with a dedicated rayon pool per column (`ThreadPool::install`): burn's
//! flex matmul asks gemm for `Parallelism::Rayon(0)`, which gemm resolves to
//! `rayon::current_num_threads()` — the installed pool's size — so the dense baseline and the
//! kernel get the same threads (with one thread everything runs inline on the pool's worker).
//!
//! The machine this was written on is shared by several engineers compiling at once, so two
//! clocks are read: the wall clock, and the CPU clock (`CLOCK_THREAD_CPUTIME_ID`) of every worker
//! of the pool, of which the largest is reported — the critical path of the call without the time
//! its threads spent preempted. Runs of dense and sparse alternate and each figure is a median, so
//! both see the same load; the load average is printed before and after.
//!
//! `cargo run --release -p examples --example bench_sparse_kernel -- --help`

use std::time::{Duration, Instant};

use burn::prelude::*;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use pruning::format::{BlockSparseMatrix, CsrMatrix};
use pruning::kernel::{Isa, bsr_linear, csr_linear};
use pruning::{Amount, SparseLinear, random_unstructured};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser, Debug)]
#[command(about = "Sparse CPU kernel vs burn's dense matmul (W 2048 x 2048)")]
struct Args {
    /// Rows and columns of the square weight.
    #[arg(long, default_value_t = 2048)]
    dim: usize,
    /// Batch sizes (rows of X).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 128])]
    batches: Vec<usize>,
    /// Fractions of weights pruned.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95])]
    sparsities: Vec<f64>,
    /// Thread counts (one rayon pool each).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    threads: Vec<usize>,
    /// Minimum timed repetitions per measurement (more are run for fast cases).
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Minimum time spent per measurement, in milliseconds.
    #[arg(long, default_value_t = 300)]
    min_ms: u64,
    /// Seed of the weights, masks and inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Block shapes `RxC` for the block-sparse table (dense vs CSR kernel vs BSR kernel on the
    /// same block-structured mask, batch 128); empty to skip it.
    #[arg(long, value_delimiter = ',', default_values_t = ["4x1".to_string(), "4x4".to_string()])]
    blocks: Vec<String>,
    /// Batch size of the block-sparse table.
    #[arg(long, default_value_t = 128)]
    block_batch: usize,
}

/// CPU time consumed by the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Seconds of one timed closure: median and best wall clock, median CPU critical path.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: f64,
    best: f64,
    cpu: f64,
}

/// Runs the closures in turn on a fresh rayon pool of `threads` threads, each once per round,
/// until `reps` rounds and `min` time have passed; returns the median wall and CPU seconds of
/// each. Every timed run directly follows an untimed run of the same closure, so all are
/// measured with their own data in cache (the state of a layer called repeatedly) rather than
/// after another closure evicted it.
///
/// CPU time is the largest CPU time any worker of the pool spent during the run (read with
/// `ThreadPool::broadcast` before and after): the critical path of the parallel run, without the
/// time its threads spent preempted by other processes.
fn alternate(
    threads: usize,
    reps: usize,
    min: Duration,
    fs: &mut [&mut (dyn FnMut() + Send)],
) -> Vec<Timing> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let mut walls = vec![Vec::new(); fs.len()];
    let mut cpus = vec![Vec::new(); fs.len()];
    let start = Instant::now();
    while walls[0].len() < reps || start.elapsed() < min {
        for (i, f) in fs.iter_mut().enumerate() {
            pool.install(&mut *f);
            let before = pool.broadcast(|_| thread_cpu_seconds());
            let t0 = Instant::now();
            pool.install(&mut *f);
            walls[i].push(t0.elapsed().as_secs_f64());
            let after = pool.broadcast(|_| thread_cpu_seconds());
            let cpu = before
                .iter()
                .zip(&after)
                .map(|(b, a)| a - b)
                .fold(0.0, f64::max);
            cpus[i].push(cpu);
        }
        if walls[0].len() >= 200 {
            break;
        }
    }
    walls
        .into_iter()
        .zip(cpus)
        .map(|(w, c)| Timing {
            best: w.iter().copied().fold(f64::INFINITY, f64::min),
            wall: examples::median(w),
            cpu: examples::median(c),
        })
        .collect()
}

/// A `rows × cols` matrix of values drawn uniformly from `[-0.5, 0.5)`, row-major on the host and
/// as a burn tensor.
fn random_matrix(
    rng: &mut ChaCha8Rng,
    rows: usize,
    cols: usize,
    device: &Device,
) -> (Vec<f32>, Tensor<2>) {
    let host: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random::<f32>() - 0.5)
        .collect();
    let tensor = Tensor::<2>::from_data(TensorData::new(host.clone(), [rows, cols]), device);
    (host, tensor)
}

fn main() {
    let args = Args::parse();
    let device = Device::flex();
    let dim = args.dim;
    println!("# bench_sparse_kernel");
    println!(
        "W {dim}x{dim} f32, random unstructured masks; kernel ISA {:?}; seed {}",
        Isa::detect(),
        args.seed
    );
    println!(
        "load average (1/5/15 min) at start: {}",
        examples::load_average()
    );

    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    // burn's layout [d_in, d_out]; the kernel's [d_out, d_in] is its transpose.
    let (dense, w_burn) = random_matrix(&mut rng, dim, dim, &device);

    let total = args.batches.len() * args.sparsities.len() * args.threads.len();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("valid template"),
    );
    let mut rows = Vec::new();
    for &batch in &args.batches {
        let (x, x_burn) = random_matrix(&mut rng, batch, dim, &device);
        for &sparsity in &args.sparsities {
            // A random unstructured mask (torch's `random_unstructured`), same seed for all.
            let mask =
                random_unstructured(&[dim, dim], Amount::Fraction(sparsity), None, args.seed)
                    .expect("valid amount");
            let mask_tensor = mask.to_tensor::<2>(&device);
            let layer = SparseLinear::from_weight(w_burn.clone(), Some(mask_tensor), None)
                .expect("finite weights");
            let csr: &CsrMatrix = layer.csr();
            let mut y = vec![0.0f32; batch * dim];
            for &threads in &args.threads {
                bar.set_message(format!("batch {batch}, sparsity {sparsity}, {threads} thr"));
                let times = alternate(
                    threads,
                    args.reps,
                    Duration::from_millis(args.min_ms),
                    &mut [
                        &mut || {
                            let out = x_burn.clone().matmul(w_burn.clone());
                            std::hint::black_box(out);
                        },
                        &mut || csr_linear(csr, &x, batch, &mut y),
                        &mut || {
                            std::hint::black_box(layer.forward(x_burn.clone()));
                        },
                    ],
                );
                rows.push((batch, sparsity, csr.density(), threads, times));
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    println!();
    println!(
        "`clock`: `cpu` = median of the largest CPU time of any worker thread during the call (the \
         critical path without time spent preempted; with several threads on a loaded machine a \
         worker may also steal a preempted worker's share), `wall` = median elapsed time, `best` = \
         shortest elapsed time."
    );
    println!();
    println!(
        "| batch | sparsity | threads | clock | dense burn (ms) | kernel (ms) | kernel speed-up | SparseLinear (ms) | layer speed-up |"
    );
    println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for (batch, sparsity, density, threads, t) in &rows {
        let clocks = [
            ("cpu", t[0].cpu, t[1].cpu, t[2].cpu),
            ("wall", t[0].wall, t[1].wall, t[2].wall),
            ("best", t[0].best, t[1].best, t[2].best),
        ];
        for (clock, dense, kernel, layer) in clocks {
            println!(
                "| {batch} | {sparsity:.2} ({:.3}) | {threads} | {clock} | {:.3} | {:.3} | {:.2}x | {:.3} | {:.2}x |",
                1.0 - density,
                dense * 1e3,
                kernel * 1e3,
                dense / kernel,
                layer * 1e3,
                dense / layer,
            );
        }
    }
    if !args.blocks.is_empty() {
        block_table(&args, &dense, &w_burn, &device, &mut rng);
    }
    println!();
    println!(
        "load average (1/5/15 min) at end: {}",
        examples::load_average()
    );
}

/// Dense vs the CSR kernel vs the BSR kernel on one block-structured mask per block shape and
/// sparsity (a random mask over the block grid, each block kept or pruned whole).
fn block_table(
    args: &Args,
    dense: &[f32],
    w_burn: &Tensor<2>,
    device: &Device,
    rng: &mut ChaCha8Rng,
) {
    let (dim, batch) = (args.dim, args.block_batch);
    let (x, x_burn) = random_matrix(rng, batch, dim, device);
    println!();
    println!("Block-sparse weights, batch {batch} (kernel layout [out, in], blocks R x C):");
    println!();
    println!(
        "| block | sparsity | threads | clock | dense burn (ms) | CSR kernel (ms) | CSR speed-up | BSR kernel (ms) | BSR speed-up |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for shape in &args.blocks {
        let (r, c) = shape
            .split_once('x')
            .and_then(|(r, c)| Some((r.parse::<usize>().ok()?, c.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("--blocks: `{shape}` is not RxC"));
        for &sparsity in &args.sparsities {
            let grid = random_unstructured(
                &[dim / r, dim / c],
                Amount::Fraction(sparsity),
                None,
                args.seed,
            )
            .expect("valid amount");
            let mask: Vec<bool> = (0..dim * dim)
                .map(|i| grid.as_slice()[(i / dim / r) * (dim / c) + (i % dim) / c])
                .collect();
            let csr = CsrMatrix::from_masked(dense, &mask, dim, dim).expect("finite weights");
            let bsr = BlockSparseMatrix::from_masked(dense, &mask, dim, dim, r, c)
                .expect("shape is a whole number of blocks");
            let mut y = vec![0.0f32; batch * dim];
            let mut y2 = vec![0.0f32; batch * dim];
            for &threads in &args.threads {
                let t = alternate(
                    threads,
                    args.reps,
                    Duration::from_millis(args.min_ms),
                    &mut [
                        &mut || {
                            std::hint::black_box(x_burn.clone().matmul(w_burn.clone()));
                        },
                        &mut || csr_linear(&csr, &x, batch, &mut y),
                        &mut || bsr_linear(&bsr, &x, batch, &mut y2),
                    ],
                );
                for (clock, d, k1, k2) in [
                    ("cpu", t[0].cpu, t[1].cpu, t[2].cpu),
                    ("best", t[0].best, t[1].best, t[2].best),
                ] {
                    println!(
                        "| {r}x{c} | {sparsity:.2} | {threads} | {clock} | {:.3} | {:.3} | {:.2}x | {:.3} | {:.2}x |",
                        d * 1e3,
                        k1 * 1e3,
                        d / k1,
                        k2 * 1e3,
                        d / k2
                    );
                }
            }
        }
    }
}
