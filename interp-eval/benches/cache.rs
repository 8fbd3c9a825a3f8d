//! Criterion benches of the latent cache's hot paths on a seeded synthetic stream: building
//! from k-sparse entries (64 rows × 256 tokens, k = 32 of 4096 latents, ~524k entries),
//! opening the file (checksum + structure check), streaming every latent's postings, and
//! cutting one latent's activating examples.
//!
//! `cargo bench -p interp-eval --bench cache`

use criterion::{Criterion, criterion_group, criterion_main};
use interp_eval::examples::{ExampleConfig, activating_examples};
use interp_eval::{CacheBuilder, CacheConfig, CodeEntry, LatentCache};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: u32 = 64;
const CTX: u32 = 256;
const LATENTS: u32 = 4096;
const K: u32 = 32;

fn stream() -> (Vec<u32>, Vec<CodeEntry>) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let tokens: Vec<u32> = (0..ROWS * CTX)
        .map(|_| rng.random_range(0..50_000))
        .collect();
    let mut entries = Vec::with_capacity((ROWS * CTX * K) as usize);
    for row in 0..ROWS {
        for pos in 0..CTX {
            for _ in 0..K {
                // Skewed latent popularity, as trained dictionaries have.
                let latent = ((rng.random::<f64>().powi(2)) * f64::from(LATENTS)) as u32;
                entries.push(CodeEntry {
                    row,
                    pos,
                    latent,
                    value: rng.random_range(0.1..4.0),
                });
            }
        }
    }
    (tokens, entries)
}

fn bench_cache(c: &mut Criterion) {
    let (tokens, entries) = stream();
    let build = || {
        let mut b = CacheBuilder::new(CacheConfig::new(CTX as usize, LATENTS as usize));
        // Batches of 8 rows, as a stream delivers them.
        for start in (0..ROWS).step_by(8) {
            let lo = (start * CTX * K) as usize;
            let hi = ((start + 8) * CTX * K) as usize;
            let batch: Vec<CodeEntry> = entries[lo..hi]
                .iter()
                .map(|e| CodeEntry {
                    row: e.row - start,
                    ..*e
                })
                .collect();
            let t = &tokens[(start * CTX) as usize..((start + 8) * CTX) as usize];
            b.push_entries(t, &batch).expect("valid batch");
        }
        b.finish()
    };
    let mut group = c.benchmark_group("latent_cache");
    group.sample_size(10);
    group.bench_function("build_64x256_k32", |bench| bench.iter(build));
    let cache = build();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.cache");
    cache.save(&path).expect("save");
    group.bench_function("open_mapped_verified", |bench| {
        bench.iter(|| LatentCache::open(&path).expect("open"))
    });
    let mapped = LatentCache::open(&path).expect("open");
    group.bench_function("stream_all_postings", |bench| {
        bench.iter(|| {
            (0..LATENTS as usize)
                .map(|j| mapped.postings(j).map(|p| p.value).sum::<f32>())
                .sum::<f32>()
        })
    });
    let config = ExampleConfig {
        window_len: 32,
        centre: true,
        min_examples: 1,
    };
    group.bench_function("activating_examples_latent0", |bench| {
        bench.iter(|| activating_examples(&mapped, 0, &config).expect("fires"))
    });
    group.finish();
}

criterion_group!(benches, bench_cache);
criterion_main!(benches);
