//! From the compressed width `T_M` back to full length (the reference's `resize_from_m_to_t`):
//! nearest-neighbour, each query row stretched over its own keys.
//!
//! Key `j` of a row with `len` valid keys reads compressed column
//! `c(j) = ⌈(2j + 1)·T_M / (2·len)⌉ − 1`, the exact-integer form of the reference's
//! `⌊(j + ½)/len · T_M − 10⁻⁴⌋` (the two agree whenever `len < 5000`, where `10⁻⁴` is below the
//! spacing `1/(2·len)` of the fractional parts; beyond it the integer form keeps the
//! reference's intent — a key exactly on a cell boundary goes to the left cell — where `f32`
//! could not). Causal rows stretch over their prefix `len_t = t + 1`, so a compressed column
//! means "the same relative position" in every row. The training-time position jitter of the
//! reference (±0.75 on 10% of the calls) is not reproduced: it is a regulariser, not part of
//! the mask.
//!
//! With `k_oversample > 1` the stretched runs are thinned: key `j` survives when
//! `|x − round(x)| ≤ ½/o + 10⁻⁴` with `x = (j + 1)/len · p`, `p = max(round(len / os), 1)`,
//! `o = clamp(len, round(k), round(k·os)) / k`.

use burn::prelude::*;

use super::topk::{CompressedMask, SeaBudget, row_len};
use crate::layout::AttentionLayout;
use crate::mask::{BlockSize, SparseMask};

/// The compressed column key `j` of a row with `len` keys reads.
///
/// # Panics
/// If `j ≥ len` or `width` is zero.
pub fn compressed_column(j: usize, len: usize, width: usize) -> usize {
    assert!(
        j < len && width > 0,
        "compressed_column: key {j} must be below the row length {len} and width {width} positive"
    );
    ((2 * j + 1) * width).div_ceil(2 * len) - 1
}

/// The keys `lo..hi` of a row with `len` keys that read compressed column `c` (empty when the
/// row is shorter than the width and skips `c`).
pub fn column_keys(c: usize, len: usize, width: usize) -> std::ops::Range<usize> {
    // Key j reads c exactly when 2·len·c < (2j + 1)·T_M ≤ 2·len·(c + 1).
    let first = |c: usize| (2 * len * c / width).div_ceil(2);
    first(c).min(len)..first(c + 1).min(len)
}

/// Whether oversampling thinning keeps key `j` of a row with `len` keys (always with
/// `k_oversample = 1`).
pub fn oversample_keeps(j: usize, len: usize, budget: &SeaBudget) -> bool {
    if budget.k_oversample == 1.0 {
        return true;
    }
    let os = budget.k_oversample;
    let pixels = (len as f64 / os).round_ties_even().max(1.0);
    let (lo, hi) = (
        budget.k.round_ties_even(),
        (budget.k * os).round_ties_even(),
    );
    let o = (len as f64).max(lo).min(hi) / budget.k;
    let x = (j + 1) as f64 / len as f64 * pixels;
    (x - x.round_ties_even()).abs() <= 0.5 / o + 1e-4
}

/// The full-length mask of a compressed mask: per (batch, head, query) the keys whose compressed
/// column is kept, as per-row columns of a [`SparseMask`] with block size `block` (re-block it
/// for a block kernel with [`SparseMask::reblock`]).
///
/// # Panics
/// If the layout's `q_len` differs from the compressed mask's, or `lengths` is inconsistent.
pub fn interpolate_mask(
    compressed: &CompressedMask,
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
    budget: &SeaBudget,
    block: BlockSize,
) -> SparseMask {
    let CompressedMask {
        batch,
        heads,
        q_len,
        width,
        ..
    } = *compressed;
    assert!(
        layout.q_len == q_len,
        "interpolate_mask: layout q_len expected {q_len}, found {}",
        layout.q_len
    );
    let mut rows = Vec::with_capacity(batch * heads * q_len);
    for b in 0..batch {
        for h in 0..heads {
            for t in 0..q_len {
                let len = row_len(layout, lengths, b, t).min(layout.k_len);
                let mut keys = Vec::new();
                if len > 0 {
                    for c in 0..width {
                        if compressed.is_kept(b, h, t, c) {
                            keys.extend(
                                column_keys(c, len, width)
                                    .filter(|&j| oversample_keeps(j, len, budget))
                                    .map(|j| j as u32),
                            );
                        }
                    }
                }
                rows.push(keys);
            }
        }
    }
    SparseMask::from_rows(*layout, block, batch, heads, rows)
        .unwrap_or_else(|e| panic!("interpolate_mask: keys are in range by construction: {e}"))
}

/// Stretches compressed values `x` `[B, H, T, T_M]` to full length `[B, H, T, k_len]` with the
/// same key → column map (differentiable: a gather), writing `fill` at the cells a row does not
/// attend (causal future, padding). The reference resizes the estimate this way before its
/// distillation losses.
///
/// # Panics
/// If `x`'s query count differs from the layout's or `lengths` is inconsistent.
pub fn stretch_to_full(
    x: Tensor<4>,
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
    fill: f32,
) -> Tensor<4> {
    let [b, h, t, width] = x.dims();
    assert!(
        t == layout.q_len,
        "stretch_to_full: x has {t} queries, the layout {}",
        layout.q_len
    );
    let tk = layout.k_len;
    let device = x.device();
    let mut index = vec![width as i64; b * t * tk];
    for bi in 0..b {
        for i in 0..t {
            let len = row_len(layout, lengths, bi, i).min(tk);
            for j in 0..len {
                index[(bi * t + i) * tk + j] = compressed_column(j, len, width) as i64;
            }
        }
    }
    let index = Tensor::<4, Int>::from_data(TensorData::new(index, [b, 1, t, tk]), &device)
        .expand([b, h, t, tk]);
    let padded = Tensor::cat(vec![x, Tensor::full([b, h, t, 1], fill, &device)], 3);
    padded.gather(3, index)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn columns_follow_the_reference_formula() {
        // len 8, T_M 4: pairs of keys per column.
        let cols: Vec<usize> = (0..8).map(|j| compressed_column(j, 8, 4)).collect();
        assert_eq!(cols, vec![0, 0, 1, 1, 2, 2, 3, 3]);
        // len 2, T_M 4: (j + ½)/2·4 = 1 and 3 lie on boundaries and go left.
        assert_eq!(
            (0..2)
                .map(|j| compressed_column(j, 2, 4))
                .collect::<Vec<_>>(),
            vec![0, 2]
        );
    }

    #[test]
    fn stretch_fills_the_causal_future() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
        let y = stretch_to_full(x, &AttentionLayout::causal(2), None, -9.0);
        // Row 0 (len 1): key 0 → column ⌈2/2⌉ − 1 = 0. Row 1 (len 2): keys → columns 0, 1.
        y.into_data()
            .assert_eq(&TensorData::from([[[[1.0f32, -9.0], [3.0, 4.0]]]]), false);
    }

    proptest! {
        #[test]
        fn integer_form_equals_the_reference_float_form(len in 1usize..5000, width in 1usize..300, pick in any::<u64>()) {
            let j = (pick % len as u64) as usize;
            let reference = (((j as f64 + 0.5) / len as f64 * width as f64) - 1e-4).floor() as usize;
            prop_assert_eq!(compressed_column(j, len, width), reference);
        }

        #[test]
        fn column_ranges_partition_the_row(len in 1usize..200, width in 1usize..70) {
            let mut next = 0;
            for c in 0..width {
                let r = column_keys(c, len, width);
                prop_assert_eq!(r.start, next.min(len));
                for j in r.clone() {
                    prop_assert_eq!(compressed_column(j, len, width), c);
                }
                next = r.end;
            }
            prop_assert_eq!(next, len);
        }

        #[test]
        fn oversampling_one_keeps_every_key(len in 1usize..100, j in 0usize..100, k in 1.0f64..20.0) {
            prop_assume!(j < len);
            prop_assert!(oversample_keeps(j, len, &SeaBudget::new(k)));
        }
    }
}
