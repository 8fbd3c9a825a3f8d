//! Criterion benches of the sparse CPU kernel against burn's dense matmul (flex, SIMD, rayon) on
//! the same shapes: `Y[batch, 2048] = X[batch, 2048] · Wᵀ`, `W` 2048 × 2048 with a random
//! unstructured mask.
//!
//! `cargo bench -p pruning --bench sparse_kernel`. The figures of record come from the benchmark
//! program `examples/examples/bench_sparse_kernel.rs`, which also measures one thread.

use burn::prelude::*;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pruning::format::CsrMatrix;
use pruning::kernel::csr_linear;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 2048;

fn weights(sparsity: f64, seed: u64) -> (Vec<f32>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dense: Vec<f32> = (0..DIM * DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    let mask: Vec<bool> = (0..DIM * DIM).map(|_| !rng.random_bool(sparsity)).collect();
    (dense, mask)
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("linear_2048");
    group.sample_size(10);
    for batch in [1usize, 16, 128] {
        let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
        let x: Vec<f32> = (0..batch * DIM)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        // Baseline: burn's own dense matmul, the weight in burn's [d_in, d_out] layout.
        let (dense, _) = weights(0.0, 1);
        let w = Tensor::<2>::from_data(TensorData::new(dense, [DIM, DIM]), &device);
        let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [batch, DIM]), &device);
        group.bench_function(BenchmarkId::new(format!("dense_burn/b{batch}"), 0), |b| {
            b.iter(|| xt.clone().matmul(w.clone()).into_data())
        });
        for sparsity in [0.7, 0.9, 0.95] {
            let (dense, mask) = weights(sparsity, 2);
            let csr = CsrMatrix::from_masked(&dense, &mask, DIM, DIM).expect("valid weights");
            let mut y = vec![0.0f32; batch * DIM];
            let id = BenchmarkId::new(format!("csr_kernel/b{batch}"), format!("s{sparsity}"));
            group.bench_function(id, |b| b.iter(|| csr_linear(&csr, &x, batch, &mut y)));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
