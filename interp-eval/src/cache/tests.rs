//! Cache round trips, the builder's input checks and every malformed-file error.

use burn::prelude::*;
use half::f16;
use proptest::prelude::*;
use sae_core::SparseCodes;

use crate::{CacheBuilder, CacheConfig, CodeEntry, Error, LatentCache};

fn entry(row: u32, pos: u32, latent: u32, value: f32) -> CodeEntry {
    CodeEntry {
        row,
        pos,
        latent,
        value,
    }
}

fn small_cache() -> LatentCache {
    let mut b = CacheBuilder::new(CacheConfig::new(4, 3));
    b.push_entries(
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[
            entry(0, 1, 0, 2.0),
            entry(1, 3, 0, 0.5),
            entry(1, 0, 2, 1.25),
        ],
    )
    .unwrap();
    b.finish()
}

/// Rewrites both checksums of a tampered image, so that only the structural checks can object.
fn reseal(bytes: &mut [u8]) {
    let payload = crc32fast::hash(&bytes[48..]);
    bytes[40..44].copy_from_slice(&payload.to_le_bytes());
    let header = crc32fast::hash(&bytes[..44]);
    bytes[44..48].copy_from_slice(&header.to_le_bytes());
}

proptest! {
    #[test]
    fn postings_match_a_dense_reference_and_survive_the_file(
        rows in 1usize..4,
        cells in proptest::collection::vec((0u32..24, 0u32..5, -4.0f32..4.0), 0..80),
    ) {
        let ctx = 6;
        let n_tokens = rows * ctx;
        let mut dense = vec![0f32; n_tokens * 5];
        let mut entries = Vec::new();
        for &(t, j, v) in &cells {
            let t = t % n_tokens as u32;
            dense[t as usize * 5 + j as usize] += v;
            entries.push(entry(t / ctx as u32, t % ctx as u32, j, v));
        }
        let tokens: Vec<u32> = (0..n_tokens as u32).map(|t| 100 + t).collect();
        let mut b = CacheBuilder::new(CacheConfig::new(ctx, 5));
        b.push_entries(&tokens, &entries).unwrap();
        let cache = b.finish();
        let mut from_dense = CacheBuilder::new(CacheConfig::new(ctx, 5));
        from_dense.push_dense(&tokens, &dense).unwrap();
        let from_dense = from_dense.finish();
        prop_assert_eq!(from_dense.as_bytes(), cache.as_bytes());
        for j in 0..5 {
            let expected: Vec<(u32, f32)> = (0..n_tokens)
                .filter(|&t| dense[t * 5 + j].abs() > 1e-5)
                .map(|t| (t as u32, f16::from_f32(dense[t * 5 + j]).to_f32()))
                .collect();
            let (t, v) = cache.latent_entries(j);
            prop_assert_eq!(t.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>(), expected.clone());
            let max = expected.iter().map(|e| e.1).fold(None, |m: Option<f32>, v| Some(m.map_or(v, |m| m.max(v))));
            prop_assert_eq!(cache.max_activation(j), max.unwrap_or(0.0));
            prop_assert_eq!(cache.firing_count(j), expected.len() as u64);
        }
        prop_assert_eq!(cache.tokens(0, n_tokens), tokens);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        cache.save(&path).unwrap();
        let mapped = LatentCache::open(&path).unwrap();
        prop_assert!(mapped.is_mapped());
        prop_assert_eq!(mapped.as_bytes(), cache.as_bytes());
        let read = LatentCache::read(&path).unwrap();
        prop_assert_eq!(read.as_bytes(), cache.as_bytes());
    }
}

#[test]
fn sparse_codes_drop_padding_and_add_duplicates_like_to_dense() {
    let device = Device::flex();
    // 2 rows of 2 tokens, k = 3; token 1 repeats latent 2 (summed), token 3 is padded.
    let codes = SparseCodes::new(
        Tensor::<2, Int>::from_data([[0, 1, 2], [2, 2, 0], [1, 0, 0], [3, 3, 3]], &device),
        Tensor::<2>::from_floats(
            [
                [1.0, 0.5, 0.25],
                [1.0, 2.0, 0.0],
                [4.0, 0.0, 0.0],
                [0.75, 0.0, 0.0],
            ],
            &device,
        ),
    );
    let mut b = CacheBuilder::new(CacheConfig::new(2, 4));
    b.push_sparse_codes(&[7, 8, 9, 10], &codes).unwrap();
    let from_codes = b.finish();
    let mut dense = CacheBuilder::new(CacheConfig::new(2, 4));
    let d = codes.to_dense(4).into_data().try_into_vec::<f32>().unwrap();
    dense.push_dense(&[7, 8, 9, 10], &d).unwrap();
    assert_eq!(from_codes.as_bytes(), dense.finish().as_bytes());
    assert_eq!(from_codes.latent_entries(2), (vec![0, 1], vec![0.25, 3.0]));
    assert_eq!(from_codes.firing_counts(), vec![1, 2, 2, 1]);
}

#[test]
fn batches_accumulate_and_a_rejected_batch_changes_nothing() {
    let mut b = CacheBuilder::new(CacheConfig::new(2, 2));
    b.push_entries(&[1, 2], &[entry(0, 1, 1, 1.0)]).unwrap();
    let before = b.clone().finish();
    let bad_batches: Vec<(Vec<u32>, Vec<CodeEntry>)> = vec![
        (vec![1, 2, 3], vec![]),
        (vec![1, 2], vec![entry(1, 0, 0, 1.0)]),
        (vec![1, 2], vec![entry(0, 2, 0, 1.0)]),
        (vec![1, 2], vec![entry(0, 0, 2, 1.0)]),
        (
            vec![1, 2],
            vec![entry(0, 0, 0, 1.0), entry(0, 1, 0, f32::NAN)],
        ),
        (vec![1, 2], vec![entry(0, 0, 0, 70_000.0)]),
        (
            vec![1, 2],
            vec![entry(0, 0, 0, 40_000.0), entry(0, 0, 0, 40_000.0)],
        ),
    ];
    for (tokens, entries) in &bad_batches {
        let err = b.push_entries(tokens, entries).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PartialRow { .. }
                    | Error::EntryOutOfRange { .. }
                    | Error::BadCodeValue { .. }
            ),
            "{err}"
        );
    }
    assert!(matches!(
        b.push_dense(&[1, 2], &[0.0; 3]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(b.clone().finish().as_bytes(), before.as_bytes());
    b.push_entries(&[3, 4], &[entry(0, 0, 1, 2.0)]).unwrap();
    let cache = b.finish();
    assert_eq!(cache.n_rows(), 2);
    assert_eq!(cache.latent_entries(1), (vec![1, 2], vec![1.0, 2.0]));
    let msg = CacheBuilder::new(CacheConfig::new(2, 2))
        .push_entries(&[1, 2], &[entry(0, 5, 0, 1.0)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("pos = 5") && msg.contains("< 2"), "{msg}");
}

#[test]
fn every_malformed_file_is_a_typed_error() {
    let good = small_cache().as_bytes().to_vec();
    let open = |bytes: Vec<u8>| LatentCache::from_bytes(bytes, "test.cache");
    assert!(open(good.clone()).is_ok());

    let mut b = good.clone();
    b[0] = b'X';
    assert!(matches!(open(b), Err(Error::BadMagic { .. })));
    assert!(matches!(
        open(good[..5].to_vec()),
        Err(Error::BadMagic { .. })
    ));

    let mut b = good.clone();
    b[8] = 9;
    assert!(matches!(
        open(b),
        Err(Error::UnsupportedVersion { found: 9, .. })
    ));

    let mut b = good.clone();
    b[13] ^= 1;
    assert!(matches!(
        open(b),
        Err(Error::ChecksumMismatch { what: "header", .. })
    ));

    assert!(matches!(
        open(good[..good.len() - 1].to_vec()),
        Err(Error::SizeMismatch { .. })
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(open(longer), Err(Error::SizeMismatch { .. })));

    // A header announcing an absurd size is refused before anything is allocated.
    let mut b = good.clone();
    b[32..40].copy_from_slice(&(u64::MAX / 3).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open(b),
        Err(Error::BadHeader { .. } | Error::SizeMismatch { .. })
    ));
    let mut b = good.clone();
    b[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open(b),
        Err(Error::BadHeader {
            field: "n_rows",
            ..
        })
    ));

    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    assert!(matches!(
        open(b),
        Err(Error::ChecksumMismatch {
            what: "payload",
            ..
        })
    ));

    // Layout: header 48, tokens 8·4, offsets 4·8, maxima 3·4, entry tokens 3·4, values 3·2.
    let entry_tokens = 48 + 32 + 32 + 12;
    let mut b = good.clone();
    b[entry_tokens..entry_tokens + 4].copy_from_slice(&99u32.to_le_bytes());
    reseal(&mut b);
    let err = open(b).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                section: "entry_tokens",
                ..
            }
        ),
        "{err}"
    );
    let offsets = 48 + 32;
    let mut b = good.clone();
    b[offsets + 8..offsets + 16].copy_from_slice(&1u64.to_le_bytes());
    b[offsets + 16..offsets + 24].copy_from_slice(&0u64.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open(b),
        Err(Error::Corrupt {
            section: "offsets",
            ..
        })
    ));
    let maxima = 48 + 32 + 32;
    let mut b = good.clone();
    b[maxima..maxima + 4].copy_from_slice(&7.0f32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open(b),
        Err(Error::Corrupt {
            section: "max_activation",
            ..
        })
    ));
    let values = entry_tokens + 12;
    let mut b = good.clone();
    b[values..values + 2].copy_from_slice(&f16::NAN.to_bits().to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open(b),
        Err(Error::Corrupt {
            section: "entry_values",
            ..
        })
    ));

    let missing = LatentCache::open("/nonexistent/dir/c.cache").unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
    assert!(missing.to_string().contains("/nonexistent/dir/c.cache"));
}

#[test]
fn save_replaces_atomically_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cache");
    std::fs::write(&path, b"old contents").unwrap();
    assert!(matches!(
        LatentCache::open(&path),
        Err(Error::BadMagic { .. })
    ));
    let cache = small_cache();
    cache.save(&path).unwrap();
    assert_eq!(
        LatentCache::open(&path).unwrap().as_bytes(),
        cache.as_bytes()
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("c.cache")]);
}

#[test]
fn codes_of_a_topk_sae_stream_into_the_cache() {
    use sae_core::{SparseAutoencoder, TopKSaeConfig};
    let device = Device::flex();
    device.seed(11);
    let (ctx, d_in, d_sae, k) = (8, 16, 64, 4);
    let sae = TopKSaeConfig::new(d_in, d_sae, k).init(&device);
    let mut from_codes = CacheBuilder::new(CacheConfig::new(ctx, d_sae));
    let mut from_dense = CacheBuilder::new(CacheConfig::new(ctx, d_sae));
    for batch in 0..3u32 {
        // Two rows of activations per batch, streamed.
        let x = Tensor::<2>::random(
            [2 * ctx, d_in],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let tokens: Vec<u32> = (0..2 * ctx as u32).map(|t| batch * 100 + t).collect();
        let codes = sae
            .encode_sparse(x.clone())
            .expect("TopK gives k-sparse codes");
        from_codes.push_sparse_codes(&tokens, &codes).unwrap();
        let dense = codes
            .to_dense(d_sae)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        from_dense.push_dense(&tokens, &dense).unwrap();
    }
    let (a, b) = (from_codes.finish(), from_dense.finish());
    assert_eq!(a.as_bytes(), b.as_bytes());
    assert_eq!(a.n_rows(), 6);
    // At most k latents per token, and every stored value is positive (ReLU after top-k).
    let total: u64 = a.firing_counts().iter().sum();
    assert!(total <= (6 * ctx * k) as u64 && total > 0);
    assert!((0..d_sae).all(|j| a.postings(j).all(|p| p.value > 0.0)));
    assert_eq!(a.token(5, 3), 200 + 8 + 3);
}
