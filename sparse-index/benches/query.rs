//! Criterion benches of the query path: Seismic-style approximate search at two operating
//! points, exact term-at-a-time and MaxScore search, on a seeded synthetic collection with
//! skewed term popularity (20,000 documents × ~100 non-zeros, 200 queries × ~30).
//!
//! `cargo bench -p sparse-index --bench query`

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_index::{
    ExactIndex, SearchParams, SeismicConfig, SeismicIndex, SparseCollection, SparseVector,
};

const DIM: u32 = 30_522;

/// A vector of about `nnz` components: popular ids (small after the power law) more often,
/// weights log-normal-ish and lower for popular ids.
fn random_vector(rng: &mut ChaCha8Rng, nnz: usize, topic: u32) -> SparseVector {
    let mut pairs = std::collections::BTreeMap::new();
    while pairs.len() < nnz {
        let id = if rng.random::<f32>() < 0.5 {
            // Topic terms: a band of 300 ids per topic.
            (topic * 300 + rng.random_range(0..300)) % DIM
        } else {
            ((rng.random::<f64>().powi(3)) * f64::from(DIM)) as u32 % DIM
        };
        let rarity = 0.4 + 1.2 * (id as f32 / DIM as f32);
        let w = (rng.random::<f32>() * 1.5 - 0.9).exp() * rarity;
        pairs.insert(id, w);
    }
    SparseVector::from_pairs(pairs).expect("valid")
}

fn bench_query(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let docs: SparseCollection = (0..20_000)
        .map(|_| {
            let topic = rng.random_range(0..100);
            random_vector(&mut rng, 100, topic)
        })
        .collect();
    let queries: Vec<SparseVector> = (0..200)
        .map(|_| {
            let topic = rng.random_range(0..100);
            random_vector(&mut rng, 30, topic)
        })
        .collect();
    let index = SeismicIndex::build(&docs, &SeismicConfig::default()).expect("build");
    let exact = ExactIndex::new(docs.clone()).expect("exact index");

    let mut group = c.benchmark_group("query_200");
    for (name, params) in [
        ("seismic_default", SearchParams::default()),
        (
            "seismic_qc4_hf0.9",
            SearchParams::default()
                .with_query_cut(4)
                .with_heap_factor(0.9),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for q in &queries {
                    std::hint::black_box(index.search(q, 10, &params).expect("query"));
                }
            })
        });
    }
    group.bench_function("exact_taat", |b| {
        b.iter(|| {
            for q in &queries {
                std::hint::black_box(exact.search_taat(q, 10).expect("query"));
            }
        })
    });
    group.bench_function("exact_maxscore", |b| {
        b.iter(|| {
            for q in &queries {
                std::hint::black_box(exact.search_maxscore(q, 10).expect("query"));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_query
}
criterion_main!(benches);
