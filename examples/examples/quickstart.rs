//! Quickstart: the first command of the README.
//!
//! Until the trainer lands (the sae-train issue), this lists the workspace's crates and checks
//! that the example backend runs a tensor operation.

use burn::prelude::*;

const CRATES: [(&str, &str); 6] = [
    (
        "sae-core",
        "sparse-autoencoder layers, SAELens files, metrics",
    ),
    (
        "sae-train",
        "resumable SAE training, synthetic ground truth",
    ),
    (
        "sparse-index",
        "exact and Seismic-style approximate sparse retrieval",
    ),
    ("sparse-attn", "top-k and block-sparse attention"),
    (
        "pruning",
        "magnitude and N:M sparsity, masked training, sparse kernels",
    ),
    ("interp-eval", "LLM-free evaluation of latents"),
];

fn main() {
    let device = examples::device();
    let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
    let gram: f32 = x.clone().matmul(x.transpose()).sum().into_scalar();
    println!("sparseland workspace (backend check: sum of X·Xᵀ = {gram})");
    for (name, what) in CRATES {
        println!("  {name:<13} {what}");
    }
}
