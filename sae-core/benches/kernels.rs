//! Criterion benches of sae-core's hot kernels against burn's tensor ops on the same data.
//!
//! `cargo bench -p sae-core --bench kernels`. Shapes are a 1024-token slice of the issue's
//! benchmark (d_in 576, d_sae 4608, k 32) so a run stays short; `bench_sae_codec` in the examples
//! crate measures the full batch.

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};
use sae_core::SparseCodes;
use sae_core::kernels::{ComputePath, Rank, sparse_decode_tensor, top_k, top_k_rows};

const BATCH: usize = 1024;
const D_IN: usize = 576;
const D_SAE: usize = 4608;
const K: usize = 32;

fn bench_top_k(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let pre = Tensor::<2>::random([BATCH, D_SAE], Distribution::Normal(0.0, 1.0), &device);
    let host: Vec<f32> = pre.clone().into_data().try_to_vec::<f32>().unwrap();
    let mut group = c.benchmark_group("top_k 1024x4608 k32");
    group.sample_size(20);
    group.bench_function("host top_k_rows (slice)", |b| {
        b.iter(|| top_k_rows(&host, D_SAE, K, Rank::Value))
    });
    group.bench_function("host top_k (tensor in/out)", |b| {
        b.iter(|| top_k(pre.clone(), K, Rank::Value, ComputePath::HostKernels))
    });
    group.bench_function("burn topk_with_indices", |b| {
        b.iter(|| pre.clone().topk_with_indices(K, 1))
    });
    group.finish();
}

fn bench_sparse_decode(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(1);
    let pre = Tensor::<2>::random([BATCH, D_SAE], Distribution::Normal(0.0, 1.0), &device);
    let (indices, values) = top_k(pre, K, Rank::Value, ComputePath::HostKernels);
    let codes = SparseCodes::new(indices, values);
    let dense = codes.to_dense(D_SAE);
    let w_dec = Tensor::<2>::random([D_SAE, D_IN], Distribution::Normal(0.0, 0.05), &device);
    let b_dec = Tensor::<1>::zeros([D_IN], &device);
    let mut group = c.benchmark_group("decode 1024x4608->576 k32");
    group.sample_size(20);
    group.bench_function("host sparse decode", |b| {
        b.iter(|| {
            sparse_decode_tensor(
                &codes,
                w_dec.clone(),
                Some(b_dec.clone()),
                ComputePath::HostKernels,
            )
        })
    });
    group.bench_function("burn gather decode (select+mul+sum)", |b| {
        b.iter(|| {
            sparse_decode_tensor(
                &codes,
                w_dec.clone(),
                Some(b_dec.clone()),
                ComputePath::TensorOps,
            )
        })
    });
    group.bench_function("burn dense matmul", |b| {
        b.iter(|| dense.clone().matmul(w_dec.clone()))
    });
    group.finish();
}

criterion_group!(benches, bench_top_k, bench_sparse_decode);
criterion_main!(benches);
