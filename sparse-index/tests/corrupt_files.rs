//! A truncated or corrupted index file is an error, never a panic or undefined behaviour.

use proptest::prelude::*;
use sparse_index::{
    Error, SearchParams, SeismicConfig, SeismicIndex, SparseCollection, SparseVector,
};

fn small_index() -> SeismicIndex {
    let docs: SparseCollection = (0..60u32)
        .map(|d| {
            SparseVector::new(
                vec![d % 5, 5 + d % 11, 20 + d % 3],
                vec![1.0 + (d % 4) as f32, 0.5, 0.25 * (d % 7) as f32],
            )
            .unwrap()
        })
        .collect();
    let mut index = SeismicIndex::build(&docs, &SeismicConfig::default()).unwrap();
    index
        .add(&SparseVector::new(vec![1, 40], vec![2.0, 1.0]).unwrap())
        .unwrap();
    index
}

fn queries() -> Vec<SparseVector> {
    vec![
        SparseVector::new(vec![0, 5, 21], vec![1.0, 0.5, 2.0]).unwrap(),
        SparseVector::new(vec![1, 40], vec![1.0, 1.0]).unwrap(),
    ]
}

#[test]
fn every_truncation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.splx");
    small_index().save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    for cut in (0..good.len()).step_by(13).chain([good.len() - 1]) {
        std::fs::write(&path, &good[..cut]).unwrap();
        match SeismicIndex::load(&path) {
            Err(Error::Truncated { .. } | Error::Corrupt { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn wrong_version_and_magic_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.splx");
    small_index().save(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 99;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        SeismicIndex::load(&path),
        Err(Error::UnsupportedVersion { found: 99, .. })
    ));
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        SeismicIndex::load(&path),
        Err(Error::Corrupt { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random byte changes: loading fails, or (only for bytes no checksum covers: padding and
    /// the reserved header word) the index behaves exactly as the original.
    #[test]
    fn corrupted_bytes_are_caught(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let index = small_index();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.splx");
        index.save(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(loaded) = SeismicIndex::load(&path) {
            for q in queries() {
                for p in [SearchParams::default(), SearchParams::exhaustive()] {
                    prop_assert_eq!(loaded.search(&q, 10, &p).unwrap(), index.search(&q, 10, &p).unwrap());
                }
            }
        }
    }
}
