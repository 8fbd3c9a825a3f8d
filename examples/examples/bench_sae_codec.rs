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
//! Figures are medians over repetitions. The operations run round-robin within each repetition,
//! so a change in the load of this shared machine affects all of them alike; the load
//! (`/proc/loadavg`) is printed first and last, because absolute times move with it while the
//! ratios hold.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::{Distribution, IndexingUpdateOp};
use sae_core::kernels::{
    ComputePath, Rank, sparse_decode, sparse_decode_tensor, top_k, top_k_rows,
};
use sae_core::{AnySae, SparseAutoencoder, SparseCodes, TopKSae, TopKSaeConfig};

const D_IN: usize = 576;
const BATCH: usize = 4096;
const K: usize = 32;

/// One measured operation.
struct Case<'a> {
    name: &'static str,
    flops: Option<f64>,
    run: Box<dyn FnMut() + 'a>,
    times: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(name: &'static str, flops: Option<f64>, run: impl FnMut() + 'a) -> Self {
        Self {
            name,
            flops,
            run: Box::new(run),
            times: Vec::new(),
        }
    }

    fn median(&self) -> f64 {
        examples::median(self.times.clone())
    }
}

/// Runs every case once per round, round-robin (so a load change on this shared machine hits all
/// of them alike), `reps` timed rounds after one warm-up round; returns the median milliseconds.
fn measure(cases: &mut [Case<'_>], reps: usize) -> Vec<f64> {
    for round in 0..=reps {
        for case in cases.iter_mut() {
            let start = Instant::now();
            (case.run)();
            if round > 0 {
                case.times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    cases.iter().map(Case::median).collect()
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
        examples::load_average()
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
        let b_dec = sae.b_dec.val();
        let pre = x.clone().matmul(w_enc.clone());
        let codes: SparseCodes = sae.encode_sparse(x.clone()).unwrap();
        let dense_codes = codes.to_dense(d_sae);
        // Kernels that consume their input get a private copy per round (a shared buffer would be
        // copied inside the timed region).
        let fresh =
            |n: usize| -> Vec<Tensor<2>> { (0..n).map(|_| pre.clone().mul_scalar(1.0)).collect() };
        let mut for_host_topk = fresh(reps + 1);
        let pre_host: Vec<f32> = pre.clone().into_data().try_to_vec::<f32>().unwrap();
        let (idx_host, val_host) = top_k_rows(&pre_host, d_sae, K, Rank::Value);
        let w_host: Vec<f32> = w_dec.clone().into_data().try_to_vec::<f32>().unwrap();

        let mut cases = vec![
            Case::new("dense encoder matmul x·W_enc", Some(dense_flops), || {
                drop(x.clone().matmul(w_enc.clone()))
            }),
            Case::new("dense decoder matmul f·W_dec", Some(dense_flops), || {
                drop(dense_codes.clone().matmul(w_dec.clone()))
            }),
            Case::new("burn topk_with_indices", None, || {
                drop(pre.clone().topk_with_indices(K, 1))
            }),
            Case::new(
                "burn gather decode (select+mul+sum)",
                Some(sparse_flops),
                || {
                    drop(sparse_decode_tensor(
                        &codes,
                        w_dec.clone(),
                        Some(b_dec.clone()),
                        ComputePath::TensorOps,
                    ))
                },
            ),
            Case::new(
                "burn-ops forward (matmul+topk+scatter+matmul)",
                Some(2.0 * dense_flops),
                || drop(burn_ops_forward(&sae, x.clone())),
            ),
            Case::new("host top-k, tensor in/out", None, || {
                let input = for_host_topk.pop().expect("one input per round");
                drop(top_k(input, K, Rank::Value, ComputePath::HostKernels))
            }),
            Case::new("  kernel alone: top_k_rows on a slice", None, || {
                drop(top_k_rows(&pre_host, d_sae, K, Rank::Value))
            }),
            Case::new(
                "sparse decode (decode_sparse, k-row gather)",
                Some(sparse_flops),
                || drop(sae.decode_sparse(&codes)),
            ),
            Case::new(
                "  kernel alone: sparse_decode on slices",
                Some(sparse_flops),
                || drop(sparse_decode(&idx_host, &val_host, K, &w_host, D_IN, None)),
            ),
            Case::new(
                "encode_sparse (matmul + bias + top-k)",
                Some(dense_flops),
                || drop(sae.encode_sparse(x.clone())),
            ),
            Case::new(
                "forward = encode_sparse + decode_sparse",
                Some(dense_flops + sparse_flops),
                || {
                    let c = sae.encode_sparse(x.clone()).unwrap();
                    drop(sae.decode_sparse(&c))
                },
            ),
        ];
        let ms = measure(&mut cases, reps);
        println!("  burn flex ops (baselines) and sae-core, interleaved rounds:");
        for (case, &t) in cases.iter().zip(&ms) {
            row(case.name, t, case.flops);
        }
        let [
            enc_mm,
            dec_mm,
            burn_topk,
            gather_tensor,
            burn_forward,
            host_topk,
            _,
            sparse_dec,
            _,
            _,
            forward,
        ] = ms[..]
        else {
            unreachable!("eleven cases")
        };

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
                let dense_codes_k = codes_k.to_dense(d_sae);
                let w_k = sae_k.W_dec.val();
                let mut cases = vec![
                    Case::new("sparse", None, || drop(sae_k.decode_sparse(&codes_k))),
                    Case::new("dense", None, || {
                        drop(dense_codes_k.clone().matmul(w_k.clone()))
                    }),
                ];
                let ms = measure(&mut cases, reps);
                println!(
                    "    k {k:>3}: sparse {:>7.1} ms, dense {:>7.1} ms, sparse/dense {:.3}",
                    ms[0],
                    ms[1],
                    ms[0] / ms[1]
                );
            }
        }
    }
    println!("\nload (1/5/15 min) at end: {}", examples::load_average());
}
