//! Criterion benches of the mask hot paths: magnitude (per tensor, 50 %) and 2:4 N:M on square
//! weights, grouped along the strided input dimension of a burn `Linear` (dim 0) and along a
//! contiguous one (dim 1). `cargo bench -p pruning`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pruning::{Amount, HostTensor, NmPattern, Remainder, magnitude, nm_mask};

fn weights(size: usize) -> HostTensor {
    // A fixed pseudo-random fill (no ties in practice), the same on every run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let values = (0..size * size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    HostTensor::new(values, &[size, size], "w").expect("finite")
}

fn masks(c: &mut Criterion) {
    let mut group = c.benchmark_group("masks");
    group.sample_size(10);
    let pattern = NmPattern::new(2, 4).expect("valid");
    for size in [1024usize, 4096] {
        let w = weights(size);
        let abs = w.abs();
        group.throughput(Throughput::Bytes((size * size * 4) as u64));
        group.bench_with_input(BenchmarkId::new("magnitude_50pct", size), &w, |b, w| {
            b.iter(|| magnitude(w, Amount::Fraction(0.5), None).expect("mask"))
        });
        group.bench_with_input(BenchmarkId::new("nm_2_4_dim0", size), &abs, |b, s| {
            b.iter(|| nm_mask(s, pattern, 0, Remainder::Error, None).expect("mask"))
        });
        group.bench_with_input(BenchmarkId::new("nm_2_4_dim1", size), &abs, |b, s| {
            b.iter(|| nm_mask(s, pattern, 1, Remainder::Error, None).expect("mask"))
        });
    }
    group.finish();
}

criterion_group!(benches, masks);
criterion_main!(benches);
