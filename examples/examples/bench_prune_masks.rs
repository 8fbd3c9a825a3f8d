//! Mask computation throughput on a 4096×4096 weight: `pruning`'s host masks against burn's own
//! tensor-op implementations of the same masks (`topk` / `sort`), measured in the same run.
//!
//! ```text
//! cargo run --release -p examples --example bench_prune_masks -- [--size 4096] [--repeats 5]
//! ```
//!
//! Prints the median time per mask, throughput in GB/s of f32 weights read, and the ratio to
//! the burn baseline. The masks of both sides are compared for equality where the baseline's
//! tie handling allows (random normal weights have no ties).

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::{Distribution, IndexingUpdateOp};
use clap::Parser;
use pruning::{Amount, HostTensor, Mask, NmPattern, Remainder, magnitude, nm_mask, nm_mask_tensor};

#[derive(Parser)]
struct Args {
    /// Rows and columns of the square weight.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Timed repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

fn median_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    examples::median(times)
}

/// burn baseline, magnitude: the k-th largest |w| via `topk`, then `|w| ≥ kth`.
fn burn_magnitude_topk(w: &Tensor<2>, keep: usize) -> Tensor<2, Bool> {
    let n = w.shape().num_elements();
    let abs = w.clone().abs();
    let kth = abs
        .clone()
        .reshape([n])
        .topk(keep, 0)
        .min()
        .into_scalar::<f32>();
    abs.greater_equal_elem(kth)
}

/// burn baseline, magnitude: the same threshold via a full `sort`.
fn burn_magnitude_sort(w: &Tensor<2>, keep: usize) -> Tensor<2, Bool> {
    let n = w.shape().num_elements();
    let abs = w.clone().abs();
    let sorted = abs.clone().reshape([n]).sort(0);
    let kth = sorted.narrow(0, n - keep, 1).into_scalar::<f32>();
    abs.greater_equal_elem(kth)
}

/// burn baseline, N:M along the input dimension of a burn `Linear` weight `[d_in, d_out]`
/// (dim 0): transpose so groups are contiguous, `topk_with_indices` per group of M, scatter ones.
fn burn_nm_topk(w: &Tensor<2>, n: usize, m: usize) -> Tensor<2, Bool> {
    let [d_in, d_out] = w.dims();
    let groups = w.clone().abs().transpose().reshape([d_out * d_in / m, m]);
    let (_, idx) = groups.clone().topk_with_indices(n, 1);
    let ones = Tensor::<2>::ones([d_out * d_in / m, n], &w.device());
    let keep = groups
        .zeros_like()
        .scatter(1, idx, ones, IndexingUpdateOp::Assign);
    keep.reshape([d_out, d_in]).transpose().greater_elem(0.5)
}

fn main() {
    let args = Args::parse();
    let device = examples::device();
    let size = args.size;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "# bench_prune_masks: W {size}x{size} f32, median of {} runs",
        args.repeats
    );
    println!(
        "# device: {device:?}; load average at start: {}",
        load.trim()
    );
    device.seed(0);
    let w = Tensor::<2>::random([size, size], Distribution::Normal(0.0, 1.0), &device);
    let gb = (size * size * 4) as f64 / 1e9;
    let t_read = median_ms(args.repeats, || {
        HostTensor::from_tensor(&w, "w").unwrap();
    });
    let host = HostTensor::from_tensor(&w, "w").unwrap();
    println!("# copying the weight to the host (HostTensor::from_tensor): {t_read:.1} ms");
    println!(
        "{:<44} {:>10} {:>8} {:>12}",
        "mask", "ms", "GB/s", "vs burn"
    );
    let row = |name: &str, ms: f64, base: f64| {
        println!(
            "{name:<44} {ms:>10.1} {:>8.2} {:>11.2}x",
            gb / (ms / 1e3),
            base / ms
        );
    };

    // Magnitude, 50 % per tensor.
    let keep = size * size / 2;
    let t_topk = median_ms(args.repeats, || {
        burn_magnitude_topk(&w, keep).into_data();
    });
    let t_sort = median_ms(args.repeats, || {
        burn_magnitude_sort(&w, keep).into_data();
    });
    let base = t_topk.min(t_sort);
    let t_ours = median_ms(args.repeats, || {
        magnitude(&host, Amount::Fraction(0.5), None).unwrap();
    });
    let t_ours_tensor = median_ms(args.repeats, || {
        let h = HostTensor::from_tensor(&w, "w").unwrap();
        magnitude(&h, Amount::Fraction(0.5), None)
            .unwrap()
            .to_tensor::<2>(&device);
    });
    row("magnitude 50%: burn topk (baseline)", t_topk, base);
    row("magnitude 50%: burn sort", t_sort, base);
    row("magnitude 50%: pruning (host)", t_ours, base);
    row(
        "magnitude 50%: pruning incl. transfers",
        t_ours_tensor,
        base,
    );
    let ours = magnitude(&host, Amount::Fraction(0.5), None).unwrap();
    let theirs = Mask::from_tensor(&burn_magnitude_sort(&w, keep)).unwrap();
    println!("#   masks equal: {}", ours == theirs);

    // 2:4 along the input dimension (burn Linear layout, dim 0).
    let p = NmPattern::new(2, 4).unwrap();
    let t_nm_burn = median_ms(args.repeats, || {
        burn_nm_topk(&w, 2, 4).into_data();
    });
    let t_nm_ours = median_ms(args.repeats, || {
        nm_mask(&host.abs(), p, 0, Remainder::Error, None).unwrap();
    });
    let t_nm_ours_contig = median_ms(args.repeats, || {
        nm_mask(&host.abs(), p, 1, Remainder::Error, None).unwrap();
    });
    let t_nm_tensor = median_ms(args.repeats, || {
        nm_mask_tensor(w.clone().abs(), p, 0).unwrap().into_data();
    });
    row(
        "2:4 (dim 0): burn transpose+topk+scatter",
        t_nm_burn,
        t_nm_burn,
    );
    row("2:4 (dim 0): pruning (host)", t_nm_ours, t_nm_burn);
    row(
        "2:4 (dim 1, contiguous): pruning (host)",
        t_nm_ours_contig,
        t_nm_burn,
    );
    row(
        "2:4 (dim 0): pruning nm_mask_tensor (device)",
        t_nm_tensor,
        t_nm_burn,
    );
    let ours = nm_mask(&host.abs(), p, 0, Remainder::Error, None).unwrap();
    let theirs = Mask::from_tensor(&burn_nm_topk(&w, 2, 4)).unwrap();
    println!("#   masks equal: {}", ours == theirs);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("# load average at end: {}", load.trim());
}
