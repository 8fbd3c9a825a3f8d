//! Hostile and malformed files: each case gives its own typed error, never a panic.

use super::sample_writer;
use crate::gguf::{GgmlType, GgufError, GgufFile, GgufWriter, MAX_ARRAY_NESTING, ValueType};

/// A hand-built GGUF byte stream, for files the writer refuses to produce.
struct Raw(Vec<u8>);

impl Raw {
    /// Magic, `version`, tensor count and metadata count.
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        Raw(b"GGUF".to_vec()).u32(version).u64(n_tensors).u64(n_kv)
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn raw_str(self, s: &[u8]) -> Self {
        let mut r = self.u64(s.len() as u64);
        r.0.extend_from_slice(s);
        r
    }
    fn str(self, s: &str) -> Self {
        self.raw_str(s.as_bytes())
    }
    /// A metadata entry `key: UINT32 = v`.
    fn kv_u32(self, key: &str, v: u32) -> Self {
        self.str(key).u32(ValueType::U32.tag()).u32(v)
    }
    /// A tensor info.
    fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut r = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    /// Zero padding to `align`, then `n` zero bytes of tensor data.
    fn data(mut self, align: usize, n: usize) -> Self {
        let padded = self.0.len().next_multiple_of(align);
        self.0.resize(padded + n, 0);
        self
    }
    fn parse(self) -> Result<GgufFile, GgufError> {
        GgufFile::from_bytes(self.0)
    }
}

const F32: u32 = 0;

#[test]
fn a_minimal_raw_file_parses() {
    // Guards the builder: the hostile cases below differ from this in one field each.
    let file = Raw::header(3, 1, 1)
        .kv_u32("general.alignment", 32)
        .tensor("t", &[4, 2], F32, 0)
        .data(32, 32)
        .parse()
        .unwrap();
    assert_eq!(file.tensor("t").unwrap().shape(), [2, 4]);
    assert_eq!(file.tensor_f32("t").unwrap().unwrap().1, [0.0; 8]);
}

#[test]
fn truncated_files_are_errors() {
    assert_eq!(
        GgufFile::from_bytes(Vec::new()).unwrap_err(),
        GgufError::Truncated {
            what: "magic".into(),
            offset: 0,
            needed: 4,
            available: 0
        }
    );
    assert_eq!(
        GgufFile::from_bytes(b"GGUF\x03\x00\x00\x00\x01\x00".to_vec()).unwrap_err(),
        GgufError::Truncated {
            what: "tensor count".into(),
            offset: 8,
            needed: 8,
            available: 2
        }
    );
    // Every cut before the end of the last tensor's data fails (the padding after it is
    // optional).
    let bytes = sample_writer().to_bytes();
    let file = GgufFile::from_bytes(bytes.clone()).unwrap();
    let last = file.tensors().last().unwrap();
    let end = (file.data_start() + last.offset + last.n_bytes()) as usize;
    for cut in 0..end {
        assert!(
            GgufFile::from_bytes(bytes[..cut].to_vec()).is_err(),
            "cut at {cut}"
        );
    }
    assert!(GgufFile::from_bytes(bytes[..end].to_vec()).is_ok());
    assert!(matches!(
        GgufFile::from_bytes(bytes[..end - 1].to_vec()).unwrap_err(),
        GgufError::DataOutOfBounds { .. }
    ));
}

#[test]
fn wrong_magic() {
    let mut bytes = sample_writer().to_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    assert_eq!(
        GgufFile::from_bytes(bytes).unwrap_err(),
        GgufError::Magic { found: *b"GGML" }
    );
}

#[test]
fn versions_other_than_2_and_3_are_refused() {
    let mut bytes = sample_writer().to_bytes();
    for version in [0u32, 1, 4, 0xFFFF] {
        bytes[4..8].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            GgufFile::from_bytes(bytes.clone()).unwrap_err(),
            GgufError::UnsupportedVersion { version }
        );
    }
    // Version 2 has the same little-endian layout.
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(GgufFile::from_bytes(bytes).unwrap().version(), 2);
}

#[test]
fn big_endian_files_are_recognised_and_refused() {
    let mut bytes = sample_writer().to_bytes();
    bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
    let err = GgufFile::from_bytes(bytes).unwrap_err();
    assert_eq!(
        err,
        GgufError::BigEndian {
            version_bytes: [0, 0, 0, 3]
        }
    );
    assert!(err.to_string().contains("big-endian"), "{err}");
}

#[test]
fn duplicate_keys() {
    let err = Raw::header(3, 0, 2)
        .kv_u32("a.b", 1)
        .kv_u32("a.b", 2)
        .parse()
        .unwrap_err();
    assert_eq!(err, GgufError::DuplicateKey { key: "a.b".into() });
}

#[test]
fn string_length_larger_than_the_file() {
    let err = Raw::header(3, 0, 1)
        .u64(u64::MAX)
        .u64(0)
        .u32(0)
        .parse()
        .unwrap_err();
    assert!(
        matches!(&err, GgufError::TooLarge { what, offset: 24, count: u64::MAX, available: 12, .. }
            if what == "string length of key of metadata entry 0"),
        "{err:?}"
    );
    let err = Raw::header(3, 0, 1)
        .str("k")
        .u32(ValueType::String.tag())
        .u64(1 << 40)
        .u32(0)
        .parse()
        .unwrap_err();
    assert!(
        matches!(
            err,
            GgufError::TooLarge {
                count: 1_099_511_627_776,
                available: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn array_count_larger_than_the_file() {
    // 2^40 UINT32 elements need 4 TiB; the file has 8 bytes left.
    let err = Raw::header(3, 0, 1)
        .str("k")
        .u32(ValueType::Array.tag())
        .u32(ValueType::U32.tag())
        .u64(1 << 40)
        .u64(0)
        .parse()
        .unwrap_err();
    assert!(
        matches!(&err, GgufError::TooLarge { what, min_bytes: 4_398_046_511_104, available: 8, .. }
            if what == "element count of array `k`"),
        "{err:?}"
    );
    // A count whose byte size overflows u64 saturates instead of wrapping to a small number.
    let err = Raw::header(3, 0, 1)
        .str("k")
        .u32(ValueType::Array.tag())
        .u32(ValueType::U64.tag())
        .u64((u64::MAX >> 3) + 2)
        .u64(0)
        .parse()
        .unwrap_err();
    assert!(
        matches!(
            err,
            GgufError::TooLarge {
                min_bytes: u64::MAX,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn entry_counts_larger_than_the_file() {
    let err = Raw::header(3, 0, u64::MAX).parse().unwrap_err();
    assert!(
        matches!(&err, GgufError::TooLarge { what, .. } if what == "metadata entry count"),
        "{err:?}"
    );
    let err = Raw::header(3, 1 << 50, 0).parse().unwrap_err();
    assert!(
        matches!(&err, GgufError::TooLarge { what, .. } if what == "tensor count"),
        "{err:?}"
    );
}

#[test]
fn more_than_four_dims() {
    let err = Raw::header(3, 1, 0)
        .tensor("t", &[1; 5], F32, 0)
        .data(32, 4)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::TooManyDims {
            tensor: "t".into(),
            n_dims: 5
        }
    );
}

#[test]
fn dims_product_overflow() {
    let dims = [1 << 32, 1 << 32, 2];
    let err = Raw::header(3, 1, 0)
        .tensor("t", &dims, F32, 0)
        .data(32, 4)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::DimsOverflow {
            tensor: "t".into(),
            ggml_dims: dims.to_vec()
        }
    );
    // Element count fine, byte count (× 4 bytes) overflows.
    let dims = [1 << 62, 1];
    let err = Raw::header(3, 1, 0)
        .tensor("t", &dims, F32, 0)
        .data(32, 4)
        .parse()
        .unwrap_err();
    assert!(matches!(err, GgufError::DimsOverflow { .. }), "{err:?}");
}

#[test]
fn ne0_not_a_multiple_of_the_block_size() {
    let err = Raw::header(3, 1, 0)
        .tensor("blk.0.attn_q.weight", &[31, 2], GgmlType::Q4_0.id(), 0)
        .data(32, 64)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::PartialBlock {
            tensor: "blk.0.attn_q.weight".into(),
            ty: GgmlType::Q4_0,
            ne0: 31,
            block_size: 32
        }
    );
}

#[test]
fn misaligned_offsets() {
    let err = Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, 8)
        .data(32, 64)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::MisalignedOffset {
            tensor: "t".into(),
            offset: 8,
            alignment: 32
        }
    );
    // A larger `general.alignment` is honoured.
    let err = Raw::header(3, 1, 1)
        .kv_u32("general.alignment", 64)
        .tensor("t", &[4], F32, 32)
        .data(64, 128)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::MisalignedOffset {
            tensor: "t".into(),
            offset: 32,
            alignment: 64
        }
    );
}

#[test]
fn offsets_past_the_end() {
    let err = Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, 1 << 40)
        .data(32, 16)
        .parse()
        .unwrap_err();
    assert!(
        matches!(&err, GgufError::DataOutOfBounds { tensor, n_bytes: 16, .. } if tensor == "t"),
        "{err:?}"
    );
    // An offset near u64::MAX saturates rather than wrapping around into the file.
    let err = Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, u64::MAX - 31)
        .data(32, 16)
        .parse()
        .unwrap_err();
    assert!(
        matches!(
            err,
            GgufError::DataOutOfBounds {
                start: u64::MAX,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tensor_data_past_the_end() {
    // 1024 F32 values need 4096 bytes; 64 are there.
    let raw = Raw::header(3, 1, 0)
        .tensor("t", &[1024], F32, 0)
        .data(32, 64);
    let len = raw.0.len() as u64;
    let err = raw.parse().unwrap_err();
    assert_eq!(
        err,
        GgufError::DataOutOfBounds {
            tensor: "t".into(),
            start: len - 64,
            n_bytes: 4096,
            file_len: len
        }
    );
}

#[test]
fn overlapping_tensors() {
    // 16 F32 values = 64 bytes at offset 0, another tensor at offset 32.
    let err = Raw::header(3, 2, 0)
        .tensor("a", &[16], F32, 0)
        .tensor("b", &[16], F32, 32)
        .data(32, 128)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::Overlap {
            first: "a".into(),
            first_end: 64,
            second: "b".into(),
            second_start: 32
        }
    );
    // Out-of-order but disjoint tensors, and empty tensors sharing an offset, are fine.
    let file = Raw::header(3, 3, 0)
        .tensor("a", &[16], F32, 64)
        .tensor("b", &[16], F32, 0)
        .tensor("empty", &[0, 3], F32, 0)
        .data(32, 128)
        .parse()
        .unwrap();
    assert_eq!(
        file.tensor_f32("empty").unwrap().unwrap(),
        (vec![3, 0], vec![])
    );
}

#[test]
fn duplicate_tensor_names() {
    let err = Raw::header(3, 2, 0)
        .tensor("a", &[8], F32, 0)
        .tensor("a", &[8], F32, 32)
        .data(32, 64)
        .parse()
        .unwrap_err();
    assert_eq!(err, GgufError::DuplicateTensor { tensor: "a".into() });
}

#[test]
fn alignment_must_be_a_u32_power_of_two() {
    let err = Raw::header(3, 0, 1)
        .str("general.alignment")
        .u32(ValueType::U64.tag())
        .u64(32)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::AlignmentType {
            found: ValueType::U64
        }
    );
    for alignment in [0u32, 24, 33] {
        let err = Raw::header(3, 0, 1)
            .kv_u32("general.alignment", alignment)
            .parse()
            .unwrap_err();
        assert_eq!(
            err,
            GgufError::Alignment {
                alignment: alignment.into()
            }
        );
    }
}

#[test]
fn non_utf8_strings() {
    let err = Raw::header(3, 0, 1)
        .raw_str(&[b'a', 0xFF])
        .u32(4)
        .u32(0)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::InvalidUtf8 {
            what: "key of metadata entry 0".into(),
            offset: 32
        }
    );
    let err = Raw::header(3, 0, 1)
        .str("general.name")
        .u32(ValueType::String.tag())
        .raw_str(&[0xC3, 0x28])
        .parse()
        .unwrap_err();
    assert!(
        matches!(&err, GgufError::InvalidUtf8 { what, .. } if what == "value of `general.name`"),
        "{err:?}"
    );
    let err = Raw::header(3, 1, 0)
        .raw_str(&[0x80])
        .u32(1)
        .u64(4)
        .u32(F32)
        .u64(0)
        .data(32, 16)
        .parse()
        .unwrap_err();
    assert!(
        matches!(&err, GgufError::InvalidUtf8 { what, .. } if what == "name of tensor 0"),
        "{err:?}"
    );
}

#[test]
fn bool_bytes_other_than_0_or_1() {
    let err = Raw::header(3, 0, 1)
        .str("b")
        .u32(ValueType::Bool.tag())
        .u8(2)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::InvalidBool {
            key: "b".into(),
            offset: 37,
            byte: 2
        }
    );
}

#[test]
fn unknown_value_types() {
    let err = Raw::header(3, 0, 1)
        .str("k")
        .u32(13)
        .u32(0)
        .parse()
        .unwrap_err();
    assert_eq!(
        err,
        GgufError::UnknownValueType {
            key: "k".into(),
            offset: 33,
            tag: 13
        }
    );
    let err = Raw::header(3, 0, 1)
        .str("k")
        .u32(ValueType::Array.tag())
        .u32(99)
        .u64(0)
        .parse()
        .unwrap_err();
    assert!(
        matches!(err, GgufError::UnknownValueType { tag: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn arrays_nested_too_deep() {
    // An array of one array of one array ...: 12 bytes a level, far past the limit.
    let mut raw = Raw::header(3, 0, 1).str("deep").u32(ValueType::Array.tag());
    for _ in 0..1000 {
        raw = raw.u32(ValueType::Array.tag()).u64(1);
    }
    let err = raw.parse().unwrap_err();
    assert!(
        matches!(&err, GgufError::NestingTooDeep { key, limit: MAX_ARRAY_NESTING, .. } if key == "deep"),
        "{err:?}"
    );
}

#[test]
fn unknown_ggml_type_ids() {
    for id in [4, 5, 31, 40, u32::MAX] {
        let err = Raw::header(3, 1, 0)
            .tensor("t", &[32], id, 0)
            .data(32, 64)
            .parse()
            .unwrap_err();
        assert_eq!(
            err,
            GgufError::UnknownGgmlType {
                tensor: "t".into(),
                id
            }
        );
    }
}

#[test]
fn known_but_unsupported_types_fail_when_read_not_when_parsed() {
    let mut w = GgufWriter::new();
    w.add_tensor_bytes("k", &[256, 2], GgmlType::Q4_K, vec![7; 288])
        .unwrap();
    w.add_tensor_bytes("i", &[3], GgmlType::I32, vec![0; 12])
        .unwrap();
    w.add_tensor("ok", &[32], GgmlType::Q4_0, &[0.25; 32])
        .unwrap();
    let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(file.tensor("k").unwrap().n_bytes(), 288);
    assert_eq!(file.tensor_bytes(file.tensor("k").unwrap()), &[7; 288][..]);
    assert_eq!(
        file.tensor_f32("k").unwrap_err(),
        GgufError::UnsupportedType {
            tensor: "k".into(),
            ty: GgmlType::Q4_K
        }
    );
    assert!(matches!(
        file.tensor_f32("i"),
        Err(GgufError::UnsupportedType {
            ty: GgmlType::I32,
            ..
        })
    ));
    assert!(file.tensor_f32("ok").unwrap().is_some());
    assert_eq!(file.tensor_f32("absent").unwrap(), None);
}

#[test]
fn foreign_tensor_infos_never_panic() {
    let file = GgufFile::from_bytes(sample_writer().to_bytes()).unwrap();
    let mut info = file.tensors()[0].clone();
    info.offset = u64::MAX;
    assert!(file.tensor_bytes(&info).is_empty());
    info.ggml_dims = vec![u64::MAX, u64::MAX];
    info.offset = 0;
    assert_eq!((info.n_elements(), info.n_bytes()), (u64::MAX, u64::MAX));
    assert!(!file.tensor_bytes(&info).is_empty());
}

#[test]
fn open_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    assert!(
        matches!(GgufFile::open(&missing), Err(crate::Error::Io { path, .. }) if path == missing)
    );
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x01\x00\x00\x00").unwrap();
    let err = GgufFile::open(&bad).unwrap_err();
    assert!(
        matches!(&err, crate::Error::Gguf { path, source: GgufError::UnsupportedVersion { version: 1 } } if *path == bad),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad.gguf"), "{err}");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open(&empty),
        Err(crate::Error::Gguf {
            source: GgufError::Truncated { .. },
            ..
        })
    ));
}
