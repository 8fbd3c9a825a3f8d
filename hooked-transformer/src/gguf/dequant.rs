//! Dequantisation of ggml tensor bytes to `f32`: F32, F16, BF16, Q8_0, Q4_0 and Q4_1.
//!
//! Values are decoded block by block straight into one preallocated `Vec<f32>` (no per-element
//! allocation), with the formulas of ggml's `dequantize_row_*` reference code:
//!
//! | type | block | value of element `j` |
//! |---|---|---|
//! | Q8_0 | f16 `d`, 32 × i8 `qs` | `qs[j] · d` |
//! | Q4_0 | f16 `d`, 16 × u8 `qs` | `(lo(qs[j]) − 8) · d`, element `j + 16`: `(hi(qs[j]) − 8) · d` |
//! | Q4_1 | f16 `d`, f16 `m`, 16 × u8 `qs` | `lo(qs[j]) · d + m`, element `j + 16`: `hi(qs[j]) · d + m` |
//!
//! (low nibble of byte `j` = element `j`, high nibble = element `j + 16`, not adjacent pairs.)
//! Other types give [`GgufError::UnsupportedType`].

use half::{bf16, f16};

use super::error::GgufError;
use super::types::GgmlType;

/// The f16 at `b[i..i + 2]` as `f32`.
#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Converts the bytes of a tensor of type `ty` to `f32`, in storage order (ggml's `ne[0]`
/// fastest, which is PyTorch's row-major order).
///
/// `tensor` names the tensor in errors. The number of elements is
/// `bytes.len() / ty.type_size() * ty.block_size()`.
///
/// # Errors
/// [`GgufError::UnsupportedType`] for a type other than F32, F16, BF16, Q8_0, Q4_0 and Q4_1;
/// [`GgufError::LengthMismatch`] if `bytes` is not a whole number of blocks.
///
/// ```
/// use hooked_transformer::gguf::{GgmlType, dequantize};
///
/// // One Q8_0 block: scale 0.5 (f16 0x3800), codes 0, 1, ..., 31.
/// let mut block = vec![0x00, 0x38];
/// block.extend((0..32).map(|q: i8| q as u8));
/// let values = dequantize("w", GgmlType::Q8_0, &block).unwrap();
/// assert_eq!(values[3], 1.5);
/// ```
pub fn dequantize(tensor: &str, ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, GgufError> {
    if !ty.is_supported() {
        return Err(GgufError::UnsupportedType {
            tensor: tensor.to_owned(),
            ty,
        });
    }
    // Supported types have block and type sizes of at most 34, so these casts are exact.
    let type_size = ty.type_size() as usize;
    let block = ty.block_size() as usize;
    if !bytes.len().is_multiple_of(type_size) {
        return Err(GgufError::LengthMismatch {
            tensor: tensor.to_owned(),
            what: "byte count",
            expected: (bytes.len() / type_size * type_size) as u64,
            found: bytes.len() as u64,
        });
    }
    let mut out = vec![0f32; bytes.len() / type_size * block];
    let blocks = bytes.chunks_exact(type_size);
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(blocks) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(blocks) {
                *o = f16_at(b, 0);
            }
        }
        GgmlType::BF16 => {
            for (o, b) in out.iter_mut().zip(blocks) {
                *o = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks) {
                let d = f16_at(b, 0);
                for (y, &q) in o.iter_mut().zip(&b[2..34]) {
                    *y = f32::from(q as i8) * d;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks) {
                let d = f16_at(b, 0);
                let (lo, hi) = o.split_at_mut(16);
                for ((y0, y1), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[2..18]) {
                    *y0 = (i32::from(q & 0x0F) - 8) as f32 * d;
                    *y1 = (i32::from(q >> 4) - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks) {
                let d = f16_at(b, 0);
                let m = f16_at(b, 2);
                let (lo, hi) = o.split_at_mut(16);
                for ((y0, y1), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[4..20]) {
                    *y0 = f32::from(q & 0x0F) * d + m;
                    *y1 = f32::from(q >> 4) * d + m;
                }
            }
        }
        // `is_supported` returned early for every other type.
        _ => {
            return Err(GgufError::UnsupportedType {
                tensor: tensor.to_owned(),
                ty,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_types_decode_little_endian() {
        let bytes: Vec<u8> = [1.5f32, -0.0, f32::INFINITY]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let out = dequantize("t", GgmlType::F32, &bytes).unwrap();
        assert_eq!(out[0], 1.5);
        assert!(out[1] == 0.0 && out[1].is_sign_negative());
        assert_eq!(out[2], f32::INFINITY);
        // f16 1.0 = 0x3C00, bf16 1.0 = 0x3F80, bf16 -2.0 = 0xC000.
        assert_eq!(
            dequantize("t", GgmlType::F16, &[0x00, 0x3C]).unwrap(),
            [1.0]
        );
        assert_eq!(
            dequantize("t", GgmlType::BF16, &[0x80, 0x3F, 0x00, 0xC0]).unwrap(),
            [1.0, -2.0]
        );
    }

    #[test]
    fn q4_nibbles_are_j_and_j_plus_16() {
        // Q4_0, d = 1: byte j = lo 0x1, hi 0xF → element j = 1 − 8, element j + 16 = 15 − 8.
        let mut b = vec![0x00, 0x3C];
        b.extend([0xF1u8; 16]);
        let out = dequantize("t", GgmlType::Q4_0, &b).unwrap();
        assert!(out[..16].iter().all(|&v| v == -7.0));
        assert!(out[16..].iter().all(|&v| v == 7.0));
        // Q4_1, d = 2, m = −1: byte 0 = lo 3, hi 4 → 5 and 7; other bytes 0 → −1.
        let mut b = vec![0x00, 0x40, 0x00, 0xBC, 0x43];
        b.extend([0u8; 15]);
        let out = dequantize("t", GgmlType::Q4_1, &b).unwrap();
        assert_eq!((out[0], out[16], out[1], out[31]), (5.0, 7.0, -1.0, -1.0));
    }

    #[test]
    fn q8_codes_are_signed() {
        let mut b = vec![0x00, 0x3C];
        b.extend((0..32).map(|j| if j == 0 { 0x80 } else { 0x7F }));
        let out = dequantize("t", GgmlType::Q8_0, &b).unwrap();
        assert_eq!((out[0], out[1]), (-128.0, 127.0));
    }

    #[test]
    fn other_types_and_partial_blocks_are_errors() {
        assert_eq!(
            dequantize("w", GgmlType::Q4_K, &[0; 144]).unwrap_err(),
            GgufError::UnsupportedType {
                tensor: "w".into(),
                ty: GgmlType::Q4_K
            }
        );
        assert!(matches!(
            dequantize("w", GgmlType::Q8_0, &[0; 35]).unwrap_err(),
            GgufError::LengthMismatch {
                expected: 34,
                found: 35,
                ..
            }
        ));
        assert_eq!(
            dequantize("w", GgmlType::Q4_1, &[]).unwrap(),
            Vec::<f32>::new()
        );
    }
}
