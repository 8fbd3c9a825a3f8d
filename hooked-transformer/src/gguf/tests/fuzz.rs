//! Property tests on damaged files: whatever the damage, parsing and reading every tensor
//! return `Ok` or `Err`, never panic (a panic fails the test), and never allocate beyond what
//! the file's size allows.

use proptest::prelude::*;

use super::sample_writer;
use crate::gguf::GgufFile;

/// Parses `bytes` and, if that succeeds, reads every listed tensor; returns whether parsing
/// succeeded.
fn parse_and_read_all(bytes: Vec<u8>) -> bool {
    let len = bytes.len();
    match GgufFile::from_bytes(bytes) {
        Ok(file) => {
            for info in file.tensors() {
                assert!(
                    info.n_bytes() <= len as u64,
                    "{info:?} larger than the file"
                );
                if let Ok(Some((shape, values))) = file.tensor_f32(&info.name) {
                    assert_eq!(
                        shape.iter().product::<usize>(),
                        values.len(),
                        "{}",
                        info.name
                    );
                }
            }
            true
        }
        Err(e) => {
            // Every error renders a message.
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

proptest! {
    /// Truncation at any length.
    #[test]
    fn truncated_files_never_panic(at in any::<prop::sample::Index>()) {
        let bytes = sample_writer().to_bytes();
        let cut = at.index(bytes.len() + 1);
        parse_and_read_all(bytes[..cut].to_vec());
    }

    /// Flipped bits and overwritten bytes anywhere (header, lengths, counts, type tags, dims,
    /// offsets, data).
    #[test]
    fn corrupted_bytes_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..6),
    ) {
        let mut bytes = sample_writer().to_bytes();
        for (at, byte, overwrite) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = if *overwrite { *byte } else { bytes[i] ^ (1 << (byte % 8)) };
        }
        parse_and_read_all(bytes);
    }

    /// Overwriting an aligned 8-byte word with an extreme value (lengths, counts, dims and
    /// offsets are u64s) never panics either.
    #[test]
    fn extreme_words_never_panic(
        at in any::<prop::sample::Index>(),
        word in prop_oneof![
            Just(u64::MAX), Just(u64::MAX / 2), Just(1u64 << 32), Just(1u64 << 40),
            Just(0u64), Just(u64::from(u32::MAX)), any::<u64>(),
        ],
        shift in 0usize..8,
    ) {
        let mut bytes = sample_writer().to_bytes();
        let i = at.index(bytes.len() - 8 - shift) + shift;
        bytes[i..i + 8].copy_from_slice(&word.to_le_bytes());
        parse_and_read_all(bytes);
    }
}

#[test]
fn the_undamaged_sample_parses() {
    assert!(parse_and_read_all(sample_writer().to_bytes()));
}
