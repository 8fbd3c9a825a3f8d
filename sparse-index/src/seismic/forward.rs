//! The compact forward index that re-scores candidates exactly, and its dot-product kernels.
//!
//! Component ids are stored as `u16` when the index has at most 65,536 components (BERT-sized
//! vocabularies) and as `u32` otherwise; values as `f16` (default, half the memory) or `f32`.
//! The kernels gather from the query scattered into a dense array.

use bytemuck::Pod;

use crate::seismic::config::ValuePrecision;

/// A component id width (`u16` or `u32`).
pub(crate) trait Component: Pod + Copy + Send + Sync + Ord + 'static {
    /// Whether every id below `dim` fits this width.
    fn fits(dim: u64) -> bool;
    /// Narrows an id known to fit.
    fn from_u32(c: u32) -> Self;
    /// Widens to an index.
    fn idx(self) -> usize;
    /// The length of the dense query array the kernels index (`65_536` for `u16`, so that no
    /// bounds check is needed; `dim` for `u32`).
    fn dense_len(dim: usize) -> usize;
    /// `Σ q[c_i] · decode(v_i)`, with four independent accumulators (faster than one; the
    /// summation order differs from a sequential sum only in rounding).
    fn dot<V: ValueCodec>(q: &[f32], comps: &[Self], vals: &[V::Stored]) -> f32;
    /// `Σ q[c_i] · codes_i`.
    fn dot_codes(q: &[f32], comps: &[Self], codes: &[u8]) -> f32;
    /// The width tag stored in files (2 or 4 bytes).
    const WIDTH: u32;
}

/// How forward-index values are stored and decoded.
pub(crate) trait ValueCodec: Send + Sync + 'static {
    /// The stored type.
    type Stored: Pod + Copy + Send + Sync;
    /// Decodes one stored value (before the index-wide scale).
    fn decode(s: Self::Stored) -> f32;
    /// Encodes one value already divided by the index-wide scale.
    fn encode(v: f32) -> Self::Stored;
    /// The index-wide scale for values whose largest magnitude is `max_abs`.
    fn scale_for(max_abs: f32) -> f32;
    /// Whether a stored value decodes to a finite number (checked when loading files).
    fn is_valid(s: Self::Stored) -> bool;
    /// The precision tag of this codec.
    const PRECISION: ValuePrecision;
}

/// Values stored as IEEE `f16` bits.
pub(crate) struct F16Codec;
/// Values stored as `f32`.
pub(crate) struct F32Codec;

impl ValueCodec for F16Codec {
    type Stored = u16;

    /// Exact for every finite `f16` (normal, subnormal, zero): the exponent is re-biased by a
    /// multiplication with 2^112, which also normalises subnormals. Branch-free, so the kernel
    /// vectorises; `half`'s conversion checks the CPU per call.
    #[inline(always)]
    fn decode(h: u16) -> f32 {
        let magnitude = f32::from_bits(u32::from(h & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
        f32::from_bits(magnitude.to_bits() | (u32::from(h & 0x8000) << 16))
    }

    fn encode(v: f32) -> u16 {
        half::f16::from_f32(v).to_bits()
    }

    /// A power of two that brings the largest magnitude into `[2^14, 2^15)`: far from the f16
    /// overflow at 65,504, and with full relative precision down to `max_abs · 2⁻²⁹`. A power of
    /// two, so scaling itself adds no rounding.
    fn scale_for(max_abs: f32) -> f32 {
        if max_abs.is_nan() || max_abs <= 0.0 || !max_abs.is_finite() {
            return 1.0;
        }
        let exponent = max_abs.log2().floor() as i32 - 14;
        2f32.powi(exponent.clamp(-126, 127))
    }

    fn is_valid(h: u16) -> bool {
        h & 0x7c00 != 0x7c00
    }

    const PRECISION: ValuePrecision = ValuePrecision::F16;
}

impl ValueCodec for F32Codec {
    type Stored = f32;

    #[inline(always)]
    fn decode(s: f32) -> f32 {
        s
    }

    fn encode(v: f32) -> f32 {
        v
    }

    fn scale_for(_max_abs: f32) -> f32 {
        1.0
    }

    fn is_valid(v: f32) -> bool {
        v.is_finite()
    }

    const PRECISION: ValuePrecision = ValuePrecision::F32;
}

/// `Σ term(c_i, v_i)` over four independent accumulators.
#[inline(always)]
fn four_lanes<C: Copy, S: Copy>(comps: &[C], vals: &[S], term: impl Fn(C, S) -> f32) -> f32 {
    let n = comps.len().min(vals.len());
    let (comps, vals) = (&comps[..n], &vals[..n]);
    let mut acc = [0.0f32; 4];
    let mut cc = comps.chunks_exact(4);
    let mut vc = vals.chunks_exact(4);
    for (c4, v4) in (&mut cc).zip(&mut vc) {
        acc[0] += term(c4[0], v4[0]);
        acc[1] += term(c4[1], v4[1]);
        acc[2] += term(c4[2], v4[2]);
        acc[3] += term(c4[3], v4[3]);
    }
    for (&c, &v) in cc.remainder().iter().zip(vc.remainder()) {
        acc[0] += term(c, v);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

impl Component for u16 {
    fn fits(dim: u64) -> bool {
        dim <= 1 << 16
    }

    #[inline(always)]
    fn from_u32(c: u32) -> Self {
        c as u16
    }

    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }

    fn dense_len(_dim: usize) -> usize {
        1 << 16
    }

    const WIDTH: u32 = 2;

    #[inline]
    fn dot<V: ValueCodec>(q: &[f32], comps: &[u16], vals: &[V::Stored]) -> f32 {
        // A fixed-size array indexed by a u16 needs no bounds check.
        let q: &[f32; 1 << 16] = q.try_into().expect("dense query has 65,536 entries");
        four_lanes(comps, vals, |c, v| q[c as usize] * V::decode(v))
    }

    #[inline]
    fn dot_codes(q: &[f32], comps: &[u16], codes: &[u8]) -> f32 {
        let q: &[f32; 1 << 16] = q.try_into().expect("dense query has 65,536 entries");
        four_lanes(comps, codes, |c, k| q[c as usize] * f32::from(k))
    }
}

impl Component for u32 {
    fn fits(dim: u64) -> bool {
        dim <= 1 << 32
    }

    #[inline(always)]
    fn from_u32(c: u32) -> Self {
        c
    }

    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }

    fn dense_len(dim: usize) -> usize {
        dim
    }

    const WIDTH: u32 = 4;

    #[inline]
    fn dot<V: ValueCodec>(q: &[f32], comps: &[u32], vals: &[V::Stored]) -> f32 {
        four_lanes(comps, vals, |c, v| q[c as usize] * V::decode(v))
    }

    #[inline]
    fn dot_codes(q: &[f32], comps: &[u32], codes: &[u8]) -> f32 {
        four_lanes(comps, codes, |c, k| q[c as usize] * f32::from(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_decode_matches_half_for_every_finite_pattern() {
        for bits in 0..=u16::MAX {
            let h = half::f16::from_bits(bits);
            if h.is_finite() {
                assert_eq!(
                    F16Codec::decode(bits).to_bits(),
                    h.to_f32().to_bits(),
                    "{bits:#x}"
                );
            }
        }
    }

    #[test]
    fn f16_scale_keeps_large_and_small_values() {
        for max in [1e-6f32, 0.3, 4.0, 65504.0, 1e9, 3e38] {
            let scale = F16Codec::scale_for(max);
            let back = F16Codec::decode(F16Codec::encode(max / scale)) * scale;
            assert!((back - max).abs() <= max * 1e-3, "{max}: {back}");
            assert!(F16Codec::is_valid(F16Codec::encode(max / scale)));
        }
        // The scale is an exact power of two.
        assert_eq!(F16Codec::scale_for(3.5), 2f32.powi(-13));
    }

    #[test]
    fn kernels_agree_with_a_plain_sum() {
        let mut q = vec![0.0f32; 1 << 16];
        q[3] = 0.5;
        q[9] = 2.0;
        q[70] = -1.0;
        let comps16: Vec<u16> = vec![1, 3, 9, 10, 70, 71, 80];
        let comps32: Vec<u32> = comps16.iter().map(|&c| u32::from(c)).collect();
        let vals: Vec<f32> = vec![1.0, 4.0, 0.25, 9.0, 3.0, 1.0, 2.0];
        let expect = 0.5 * 4.0 + 2.0 * 0.25 - 3.0;
        assert_eq!(u16::dot::<F32Codec>(&q, &comps16, &vals), expect);
        assert_eq!(u32::dot::<F32Codec>(&q[..100], &comps32, &vals), expect);
        let halves: Vec<u16> = vals.iter().map(|&v| F16Codec::encode(v)).collect();
        assert_eq!(u16::dot::<F16Codec>(&q, &comps16, &halves), expect);
        let codes: Vec<u8> = vec![1, 4, 2, 9, 3, 1, 2];
        assert_eq!(
            u16::dot_codes(&q, &comps16, &codes),
            0.5 * 4.0 + 2.0 * 2.0 - 3.0
        );
        assert_eq!(
            u32::dot_codes(&q[..100], &comps32, &codes),
            0.5 * 4.0 + 2.0 * 2.0 - 3.0
        );
    }
}
