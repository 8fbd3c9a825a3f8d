//! SAE encode/decode throughput on CPU against burn's own dense matmul of the same shapes.
//!
//! ```sh
//! cargo run --release -p examples --example bench_sae_codec
//! cargo run --release -p examples --example bench_sae_codec -- --quick   # fewer repetitions
//! ```
//!
//! For d_in 576, d_sae 4608 and 16384, k 32, batch 4096 it measures, in one run:
//! - the baselines: burn's dense encoder matmul `x·W_enc` and dense decoder matmul `f·W_dec`
//!   (the practical ceiling), burn's `topk_with_indices`, burn's gather decode
//!   (`select` + multiply + sum) and a forward built from burn ops only;
//! - ours: the host top-k, the k-row sparse decode, `TopKSae::encode_sparse`, and the full
//!   forward `encode_sparse` + `decode_sparse`;
//! - a k sweep of sparse vs dense decode.
//!
//! Figures are medians over repetitions; the machine load (`/proc/loadavg`) is printed first and
//! last, because absolute times move with it while the ratios (measured in the same run) hold.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::{Distribution, IndexingUpdateOp};
use sae_core::kernels::{ComputePath, Rank, sparse_decode_tensor, top_k};
use sae_core::{AnySae, SparseAutoencoder, SparseCodes, TopKSae, TopKSaeConfig};

const D_IN: usize = 576;
const BATCH: usize = 4096;
const K: usize = 32;

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Median wall time in milliseconds of `reps` runs of `f` (after one warm-up run).
fn time_ms<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    drop(f());
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            let out = f();
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            drop(out);
            elapsed
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

fn gflops(flops: f64, ms: f64) -> f64 {
    flops / (ms * 1e-3) / 1e9
}

fn row(name: &str, ms: f64, flops: Option<f64>) {
    let tokens = BATCH as f64 / (ms * 1e-3);
    match flops {
        Some(f) => println!(
            "  {name:<44} {ms:>9.1} ms {tokens:>11.0} tok/s {:>8.1} GFLOP/s",
            gflops(f, ms)
        ),
        None => println!("  {name:<44} {ms:>9.1} ms {tokens:>11.0} tok/s"),
    }
}

/// The inference form of a freshly initialised TopK SAE (decoder norms folded, no rescale).
fn inference_sae(d_sae: usize, k: usize, device: &Device) -> TopKSae {
    let sae = TopKSaeConfig::new(D_IN, d_sae, k).init(device);
    match sae.into_inference() {
        AnySae::TopK(sae) => sae,
        _ => unreachable!("TopK exports as TopK"),
    }
}

/// The forward pass written with burn tensor ops only, as a user would without this crate.
fn burn_ops_forward(sae: &TopKSae, x: Tensor<2>) -> Tensor<2> {
    let pre = (x - sae.b_dec.val().unsqueeze::<2>()).matmul(sae.W_enc.val())
        + sae.b_enc.val().unsqueeze::<2>();
    let (values, indices) = pre.clone().topk_with_indices(sae.k, 1);
    let codes = pre.zeros_like().scatter(
        1,
        indices,
        burn::tensor::activation::relu(values),
        IndexingUpdateOp::Assign,
    );
    codes.matmul(sae.W_dec.val()) + sae.b_dec.val().unsqueeze::<2>()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 7 };
    let device = examples::device();
    device.seed(0);
    println!("bench_sae_codec: d_in {D_IN}, k {K}, batch {BATCH}, device {device:?}");
    println!(
        "threads: {} (rayon), load (1/5/15 min) at start: {}",
        rayon::current_num_threads(),
        load()
    );

    for d_sae in [4608usize, 16384] {
        let reps = if d_sae > 8192 { reps.min(5) } else { reps };
        println!("\n== d_sae {d_sae} ({reps} repetitions, median)");
        let sae = inference_sae(d_sae, K, &device);
        let x = Tensor::<2>::random([BATCH, D_IN], Distribution::Normal(0.0, 1.0), &device);
        let dense_flops = 2.0 * (BATCH * D_IN * d_sae) as f64;
        let sparse_flops = 2.0 * (BATCH * K * D_IN) as f64;

        let w_enc = sae.W_enc.val();
        let w_dec = sae.W_dec.val();
        let pre = x.clone().matmul(w_enc.clone());
        let codes: SparseCodes = sae.encode_sparse(x.clone()).unwrap();
        let dense_codes = codes.to_dense(d_sae);

        println!("  baselines (burn {} ops):", "flex");
        let enc_mm = time_ms(reps, || x.clone().matmul(w_enc.clone()));
        row("dense encoder matmul x·W_enc", enc_mm, Some(dense_flops));
        let dec_mm = time_ms(reps, || dense_codes.clone().matmul(w_dec.clone()));
        row("dense decoder matmul f·W_dec", dec_mm, Some(dense_flops));
        let burn_topk = time_ms(reps, || pre.clone().topk_with_indices(K, 1));
        row("burn topk_with_indices", burn_topk, None);
        let gather_tensor = time_ms(reps, || {
            sparse_decode_tensor(
                &codes,
                w_dec.clone(),
                Some(sae.b_dec.val()),
                ComputePath::TensorOps,
            )
        });
        row(
            "burn gather decode (select+mul+sum)",
            gather_tensor,
            Some(sparse_flops),
        );
        let burn_forward = time_ms(reps, || burn_ops_forward(&sae, x.clone()));
        row(
            "burn-ops forward (matmul+topk+scatter+matmul)",
            burn_forward,
            Some(2.0 * dense_flops),
        );

        println!("  sae-core:");
        let host_topk = time_ms(reps, || {
            top_k(pre.clone(), K, Rank::Value, ComputePath::HostKernels)
        });
        row("host top-k (partial selection)", host_topk, None);
        let sparse_dec = time_ms(reps, || sae.decode_sparse(&codes));
        row(
            "sparse decode (k-row gather kernel)",
            sparse_dec,
            Some(sparse_flops),
        );
        let encode = time_ms(reps, || sae.encode_sparse(x.clone()).unwrap());
        row(
            "encode_sparse (matmul + bias + top-k)",
            encode,
            Some(dense_flops),
        );
        let forward = time_ms(reps, || {
            let c = sae.encode_sparse(x.clone()).unwrap();
            sae.decode_sparse(&c)
        });
        row(
            "forward = encode_sparse + decode_sparse",
            forward,
            Some(dense_flops + sparse_flops),
        );

        println!("  ratios:");
        println!(
            "    forward / (dense encoder + dense decoder matmul) = {:.2}   (goal <= 1.3)",
            forward / (enc_mm + dec_mm)
        );
        println!(
            "    forward / dense encoder matmul alone             = {:.2}",
            forward / enc_mm
        );
        println!(
            "    forward speed-up over the burn-ops forward        = {:.2}x",
            burn_forward / forward
        );
        println!(
            "    top-k: burn / host                               = {:.1}x",
            burn_topk / host_topk
        );
        println!(
            "    sparse decode / dense decoder matmul             = {:.3}   (goal < 1)",
            sparse_dec / dec_mm
        );
        println!(
            "    sparse decode / burn gather decode               = {:.3}",
            sparse_dec / gather_tensor
        );

        if d_sae == 4608 {
            println!("  k sweep (d_sae {d_sae}): sparse decode vs dense decoder matmul");
            for k in [8usize, 16, 32, 64, 128, 256] {
                let sae_k = inference_sae(d_sae, k, &device);
                let codes_k = sae_k.encode_sparse(x.clone()).unwrap();
                let sparse = time_ms(reps, || sae_k.decode_sparse(&codes_k));
                let dense_codes_k = codes_k.to_dense(d_sae);
                let dense = time_ms(reps, || dense_codes_k.clone().matmul(sae_k.W_dec.val()));
                println!(
                    "    k {k:>3}: sparse {sparse:>7.1} ms, dense {dense:>7.1} ms, sparse/dense {:.3}",
                    sparse / dense
                );
            }
        }
    }
    println!("\nload (1/5/15 min) at end: {}", load());
}
