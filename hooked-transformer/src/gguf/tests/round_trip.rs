//! Writer → reader round trips: every metadata type, every supported tensor type.

use std::collections::BTreeMap;

use half::{bf16, f16};
use proptest::prelude::*;

use crate::gguf::{GgmlType, GgufFile, GgufWriter, MetadataArray, MetadataValue};

#[test]
fn every_metadata_type_round_trips() {
    let entries: Vec<(&str, MetadataValue)> = vec![
        ("t.u8", MetadataValue::U8(u8::MAX)),
        ("t.i8", MetadataValue::I8(i8::MIN)),
        ("t.u16", MetadataValue::U16(u16::MAX)),
        ("t.i16", MetadataValue::I16(i16::MIN)),
        ("t.u32", MetadataValue::U32(u32::MAX)),
        ("t.i32", MetadataValue::I32(i32::MIN)),
        ("t.f32", MetadataValue::F32(-3.5e-20)),
        ("t.bool.true", MetadataValue::Bool(true)),
        ("t.bool.false", MetadataValue::Bool(false)),
        ("t.string", MetadataValue::String("Ġthe — ünïcode".into())),
        ("t.string.empty", MetadataValue::String(String::new())),
        ("t.u64", MetadataValue::U64(u64::MAX)),
        ("t.i64", MetadataValue::I64(i64::MIN)),
        ("t.f64", MetadataValue::F64(-std::f64::consts::E)),
        (
            "a.u8",
            MetadataValue::Array(MetadataArray::U8(vec![0, 255])),
        ),
        (
            "a.i8",
            MetadataValue::Array(MetadataArray::I8(vec![-128, 127])),
        ),
        (
            "a.u16",
            MetadataValue::Array(MetadataArray::U16(vec![1, 65535])),
        ),
        (
            "a.i16",
            MetadataValue::Array(MetadataArray::I16(vec![-1, 2])),
        ),
        (
            "a.u32",
            MetadataValue::Array(MetadataArray::U32(vec![3, 4, 5])),
        ),
        (
            "a.i32",
            MetadataValue::Array(MetadataArray::I32(vec![1, 3, 6])),
        ),
        (
            "a.f32",
            MetadataValue::Array(MetadataArray::F32(vec![0.5, -0.0])),
        ),
        (
            "a.bool",
            MetadataValue::Array(MetadataArray::Bool(vec![true, false, true])),
        ),
        (
            "a.string",
            MetadataValue::Array(MetadataArray::String(vec![
                "Ġa b".into(),
                String::new(),
                "é".into(),
            ])),
        ),
        (
            "a.u64",
            MetadataValue::Array(MetadataArray::U64(vec![u64::MAX])),
        ),
        (
            "a.i64",
            MetadataValue::Array(MetadataArray::I64(vec![i64::MIN, 0])),
        ),
        (
            "a.f64",
            MetadataValue::Array(MetadataArray::F64(vec![1e300])),
        ),
        ("a.empty", MetadataValue::Array(MetadataArray::F64(vec![]))),
        (
            "a.nested",
            MetadataValue::Array(MetadataArray::Array(vec![
                MetadataArray::U32(vec![1, 2]),
                MetadataArray::String(vec!["x".into()]),
                MetadataArray::Array(vec![
                    MetadataArray::Bool(vec![]),
                    MetadataArray::I8(vec![-1]),
                ]),
                MetadataArray::Array(vec![]),
            ])),
        ),
    ];
    let mut w = GgufWriter::new();
    for (k, v) in &entries {
        w.add_metadata(*k, v.clone()).unwrap();
    }
    let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let expected: BTreeMap<String, MetadataValue> = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(file.metadata(), &expected);
    assert_eq!(file.version(), 3);
    assert!(file.tensors().is_empty());
    assert_eq!(
        file.get("a.u32")
            .and_then(MetadataValue::as_array)
            .and_then(MetadataArray::to_u64s),
        Some(vec![3, 4, 5])
    );
    assert_eq!(
        file.get("a.string")
            .and_then(MetadataValue::as_string_array)
            .map(<[String]>::len),
        Some(3)
    );
    assert_eq!(file.get("missing"), None);
}

/// The reference dequantisation of one block, written independently of `dequant.rs` straight
/// from the layout table of the research note (§2.3).
fn reference_block(ty: GgmlType, b: &[u8]) -> Vec<f32> {
    let h = |i: usize| f16::from_bits(u16::from(b[i]) | (u16::from(b[i + 1]) << 8)).to_f32();
    (0..32)
        .map(|j| match ty {
            GgmlType::Q8_0 => f32::from(b[2 + j] as i8) * h(0),
            GgmlType::Q4_0 => {
                let q = if j < 16 {
                    b[2 + j] & 15
                } else {
                    b[2 + j - 16] >> 4
                };
                (f32::from(q) - 8.0) * h(0)
            }
            GgmlType::Q4_1 => {
                let q = if j < 16 {
                    b[4 + j] & 15
                } else {
                    b[4 + j - 16] >> 4
                };
                f32::from(q) * h(0) + h(2)
            }
            other => panic!("not a block type in this test: {other}"),
        })
        .collect()
}

/// The quantiser's error bound for one block `x`, with the f16 rounding of the stored scale
/// and minimum accounted for.
fn error_bound(ty: GgmlType, x: &[f32]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let r = |v: f32| f16::from_f32(v).to_f32();
    let slack = 1e-6 * amax + 1e-30;
    match ty {
        GgmlType::Q8_0 => {
            let d = amax / 127.0;
            d * 0.5 * (1.0 + 1e-5) + 127.0 * (d - r(d)).abs() + slack
        }
        GgmlType::Q4_0 => {
            // Codes round to nearest, except that x / d in (7.5, 8] clamps to 7: error ≤ |d|.
            let d = amax / 8.0;
            d * (1.0 + 1e-5) + 8.0 * (d - r(d)).abs() + slack
        }
        GgmlType::Q4_1 => {
            let min = x.iter().fold(f32::INFINITY, |a, &v| a.min(v));
            let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
            let d = (max - min) / 15.0;
            d * 0.5 * (1.0 + 1e-5) + 15.0 * (d - r(d)).abs() + (min - r(min)).abs() + slack
        }
        other => panic!("not a block type in this test: {other}"),
    }
}

fn block_type() -> impl Strategy<Value = GgmlType> {
    prop_oneof![
        Just(GgmlType::Q8_0),
        Just(GgmlType::Q4_0),
        Just(GgmlType::Q4_1)
    ]
}

fn scalar_type() -> impl Strategy<Value = GgmlType> {
    prop_oneof![
        Just(GgmlType::F32),
        Just(GgmlType::F16),
        Just(GgmlType::BF16)
    ]
}

proptest! {
    /// F32 is bit-exact for every value (NaN, infinities, subnormals included); F16 and BF16
    /// give exactly the value rounded to that type.
    #[test]
    fn scalar_types_round_trip_exactly(
        ty in scalar_type(),
        rows in 1usize..4,
        cols in 1usize..20,
        bits in proptest::collection::vec(any::<u32>(), 80),
    ) {
        let x: Vec<f32> = bits[..rows * cols].iter().map(|&b| f32::from_bits(b)).collect();
        let mut w = GgufWriter::new();
        w.add_tensor("w", &[rows, cols], ty, &x).unwrap();
        let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
        let info = file.tensor("w").unwrap();
        prop_assert_eq!(&info.ggml_dims, &vec![cols as u64, rows as u64]);
        prop_assert_eq!(info.n_elements(), (rows * cols) as u64);
        prop_assert_eq!(info.n_bytes(), file.tensor_bytes(info).len() as u64);
        let (shape, y) = file.tensor_f32("w").unwrap().unwrap();
        prop_assert_eq!(shape, vec![rows, cols]);
        for (a, b) in x.iter().zip(&y) {
            let expected = match ty {
                GgmlType::F32 => *a,
                GgmlType::F16 => f16::from_f32(*a).to_f32(),
                _ => bf16::from_f32(*a).to_f32(),
            };
            prop_assert!(
                expected.to_bits() == b.to_bits() || (expected.is_nan() && b.is_nan()),
                "{ty}: {a} read back as {b}, expected {expected}"
            );
        }
    }

    /// Quantised types: the reader's value is exactly the reference dequantisation of the
    /// written codes, and within the quantiser's error bound of the original value.
    #[test]
    fn quantised_types_match_the_reference_and_the_bound(
        ty in block_type(),
        rows in 1usize..4,
        blocks in 1usize..3,
        scale in prop_oneof![Just(1e-3f32), Just(1.0f32), Just(300.0f32)],
        unit in proptest::collection::vec(-1.0f32..1.0, 6 * 32),
    ) {
        let cols = blocks * 32;
        let x: Vec<f32> = unit[..rows * cols].iter().map(|v| v * scale).collect();
        let mut w = GgufWriter::new();
        w.add_tensor("q", &[rows, cols], ty, &x).unwrap();
        let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
        let info = file.tensor("q").unwrap();
        prop_assert_eq!(info.ty, ty);
        let bytes = file.tensor_bytes(info);
        prop_assert_eq!(bytes.len() as u64, (rows * blocks) as u64 * ty.type_size());
        let (shape, y) = file.tensor_f32("q").unwrap().unwrap();
        prop_assert_eq!(shape, vec![rows, cols]);
        for (i, (block_bytes, (xb, yb))) in bytes
            .chunks_exact(ty.type_size() as usize)
            .zip(x.chunks_exact(32).zip(y.chunks_exact(32)))
            .enumerate()
        {
            let reference = reference_block(ty, block_bytes);
            prop_assert!(reference.iter().zip(yb).all(|(r, v)| r.to_bits() == v.to_bits()), "block {i}");
            let bound = error_bound(ty, xb);
            for (a, b) in xb.iter().zip(yb) {
                prop_assert!((a - b).abs() <= bound, "{ty} block {i}: {a} → {b}, bound {bound}");
            }
        }
    }
}
