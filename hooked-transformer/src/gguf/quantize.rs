//! ggml's reference quantisers (`quantize_row_*_ref`): `f32` values to the bytes of F32, F16,
//! BF16, Q8_0, Q4_0 and Q4_1 tensors, as the [`GgufWriter`](super::GgufWriter) writes them.
//!
//! Per block of 32 values `x`:
//! - Q8_0: `d = max|x| / 127`, `q = round(x / d)` (half away from zero), stored `f16(d)`, `q`.
//! - Q4_0: `v` = the value of largest magnitude (with its sign), `d = v / −8`,
//!   `q = min(15, trunc(x / d + 8.5))`, stored `f16(d)`, nibbles.
//! - Q4_1: `d = (max − min) / 15`, `m = min`, `q = min(15, trunc((x − min) / d + 0.5))`, stored
//!   `f16(d)`, `f16(m)`, nibbles.
//!
//! A zero scale uses an inverse of 0, so an all-zero block has all-zero codes. The scale is
//! rounded to f16 only when stored; codes come from the `f32` scale, exactly as in ggml.

use half::{bf16, f16};

use super::error::GgufError;
use super::types::GgmlType;

/// `1 / d`, or 0 for `d == 0`.
fn inverse(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

/// Packs 32 codes (each `< 16`) into ggml's nibble order: byte `j` = `q[j] | q[j + 16] << 4`.
fn pack_nibbles(q: &[u8; 32], out: &mut Vec<u8>) {
    for j in 0..16 {
        out.push(q[j] | (q[j + 16] << 4));
    }
}

/// Quantises `data` (in storage order, a multiple of `ty`'s block size long) to the bytes of a
/// `ty` tensor with ggml's reference quantisers.
///
/// `tensor` names the tensor in errors.
///
/// # Errors
/// [`GgufError::UnsupportedType`] for a type other than F32, F16, BF16, Q8_0, Q4_0 and Q4_1;
/// [`GgufError::LengthMismatch`] if `data.len()` is not a multiple of the block size;
/// [`GgufError::NonFinite`] for a NaN or infinite value in a quantised (block) type. F32, F16
/// and BF16 store non-finite values as they are.
///
/// ```
/// use hooked_transformer::gguf::{GgmlType, dequantize, quantize};
///
/// let x: Vec<f32> = (0..32).map(|i| i as f32 / 8.0 - 2.0).collect();
/// let bytes = quantize("w", GgmlType::Q4_1, &x).unwrap();
/// assert_eq!(bytes.len(), 20);
/// let y = dequantize("w", GgmlType::Q4_1, &bytes).unwrap();
/// let d = (x[31] - x[0]) / 15.0;
/// assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 0.51 * d + 1e-3));
/// ```
pub fn quantize(tensor: &str, ty: GgmlType, data: &[f32]) -> Result<Vec<u8>, GgufError> {
    if !ty.is_supported() {
        return Err(GgufError::UnsupportedType {
            tensor: tensor.to_owned(),
            ty,
        });
    }
    // Supported types have block and type sizes of at most 34, so these casts are exact.
    let block = ty.block_size() as usize;
    if !data.len().is_multiple_of(block) {
        return Err(GgufError::LengthMismatch {
            tensor: tensor.to_owned(),
            what: "element count (a multiple of the block size)",
            expected: (data.len() / block * block + block) as u64,
            found: data.len() as u64,
        });
    }
    if block > 1
        && let Some(index) = data.iter().position(|v| !v.is_finite())
    {
        return Err(GgufError::NonFinite {
            tensor: tensor.to_owned(),
            ty,
            index,
            value: data[index],
        });
    }
    let mut out = Vec::with_capacity(data.len() / block * ty.type_size() as usize);
    match ty {
        GgmlType::F32 => data.iter().for_each(|v| out.extend(v.to_le_bytes())),
        GgmlType::F16 => data
            .iter()
            .for_each(|&v| out.extend(f16::from_f32(v).to_le_bytes())),
        GgmlType::BF16 => data
            .iter()
            .for_each(|&v| out.extend(bf16::from_f32(v).to_le_bytes())),
        GgmlType::Q8_0 => {
            for x in data.chunks_exact(32) {
                let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = inverse(d);
                out.extend(f16::from_f32(d).to_le_bytes());
                // |x · id| <= 127, so the rounded code fits an i8.
                out.extend(x.iter().map(|&v| ((v * id).round() as i8) as u8));
            }
        }
        GgmlType::Q4_0 => {
            for x in data.chunks_exact(32) {
                let (mut amax, mut max) = (0f32, 0f32);
                for &v in x {
                    if v.abs() > amax {
                        amax = v.abs();
                        max = v;
                    }
                }
                let d = max / -8.0;
                let id = inverse(d);
                out.extend(f16::from_f32(d).to_le_bytes());
                let mut q = [0u8; 32];
                for (q, &v) in q.iter_mut().zip(x) {
                    // x · id ∈ [−8, 8], so the sum is in [0.5, 16.5] and trunc fits a u8.
                    *q = ((v * id + 8.5) as u8).min(15);
                }
                pack_nibbles(&q, &mut out);
            }
        }
        GgmlType::Q4_1 => {
            for x in data.chunks_exact(32) {
                let min = x.iter().fold(f32::INFINITY, |a, &v| a.min(v));
                let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                let d = (max - min) / 15.0;
                let id = inverse(d);
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                let mut q = [0u8; 32];
                for (q, &v) in q.iter_mut().zip(x) {
                    *q = (((v - min) * id + 0.5) as u8).min(15);
                }
                pack_nibbles(&q, &mut out);
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
    fn q4_0_uses_the_signed_extreme_and_clamps_at_15() {
        // v = −8 (largest magnitude) → d = 1; +8 would be code 16.5 → clamped to 15.
        let mut x = [0f32; 32];
        x[0] = -8.0;
        x[1] = 7.9;
        x[16] = 3.0;
        let b = quantize("t", GgmlType::Q4_0, &x).unwrap();
        assert_eq!(f16::from_le_bytes([b[0], b[1]]).to_f32(), 1.0);
        assert_eq!(b[2] & 0x0F, 0); // −8 / 1 + 8.5 = 0.5 → 0
        assert_eq!(b[3] & 0x0F, 15); // 7.9 + 8.5 = 16.4 → clamped
        assert_eq!(b[2] >> 4, 11); // element 16: 3 + 8.5 → 11
        assert_eq!(b[4], 8 | (8 << 4)); // zeros → 8
    }

    #[test]
    fn zero_blocks_have_zero_scale_and_codes() {
        let x = [0f32; 32];
        assert!(
            quantize("t", GgmlType::Q8_0, &x)
                .unwrap()
                .iter()
                .all(|&b| b == 0)
        );
        let q41 = quantize("t", GgmlType::Q4_1, &x).unwrap();
        assert!(q41.iter().all(|&b| b == 0));
        let q40 = quantize("t", GgmlType::Q4_0, &x).unwrap();
        // d = 0 / −8 = −0.0, stored as is (as ggml does); codes 8.
        assert_eq!(f16::from_le_bytes([q40[0], q40[1]]).to_f32(), 0.0);
        assert!(q40[2..].iter().all(|&b| b == 0x88));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(
            quantize("t", GgmlType::Q8_0, &[0.0; 33]).unwrap_err(),
            GgufError::LengthMismatch { found: 33, .. }
        ));
        let mut x = [1f32; 32];
        x[5] = f32::NAN;
        assert!(matches!(
            quantize("t", GgmlType::Q4_1, &x).unwrap_err(),
            GgufError::NonFinite {
                index: 5,
                ty: GgmlType::Q4_1,
                ..
            }
        ));
        assert_eq!(quantize("t", GgmlType::F32, &x).unwrap().len(), 128);
        assert!(matches!(
            quantize("t", GgmlType::Q6_K, &[0.0; 256]).unwrap_err(),
            GgufError::UnsupportedType {
                ty: GgmlType::Q6_K,
                ..
            }
        ));
    }
}
