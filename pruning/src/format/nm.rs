//! Generic N:M compressed storage: `N` values and `N` packed in-group indices per `M` columns.

use super::csr::{CsrMatrix, CsrParts};
use super::dense_input::{Keep, check_dense};
use super::error::{FormatError, FormatResult, check_finite, check_len, checked_area};

const FORMAT: &str = "N:M";

/// A matrix with at most `N` kept entries in every group of `M` consecutive columns, stored as
/// `N` values plus `N` bit-packed in-group indices per group.
///
/// `N` is the number **kept** per group and `M` the group size (NVIDIA's "2:4", apex `m4n2`).
/// Rows are output channels and groups run along the columns, the **input (reduction)
/// dimension**, as every N:M reference groups them.
///
/// # Layout
///
/// With `G = ceil(cols / M)` groups per row and `b = ceil(log2 M)` bits per index:
/// - `values[rows · G · N]`, row-major: row `r`, group `g`, slot `s` at `(r·G + g)·N + s`. The
///   `N` slots of a group hold the kept values in ascending column order;
/// - `indices`: for each row, `ceil(G·N·b / 8)` bytes holding the `G·N` in-group indices
///   (`0 .. M`) as one little-endian bit stream — slot `t = g·N + s` occupies bits
///   `t·b .. t·b + b`, least significant bit first — ascending within each group; the unused
///   high bits of a row's last byte are zero. Rows start on a byte boundary.
///
/// For 2:4 the byte of two groups is `idx0 | idx1 << 2 | idx0' << 4 | idx1' << 6`: for groups
/// that keep exactly two entries these are the nibbles of the PyTorch/CUTLASS metadata before
/// its tensor-core reordering (see [`SemiStructured`](super::SemiStructured), which also fixes
/// CUTLASS's own filler codes).
///
/// **Fewer than `N` kept in a group**: the free slots are filled with the lowest column indices
/// of the group that are not kept, holding `0.0`, and the `N` indices are then sorted.
///
/// **`cols % M != 0` (padding rule)**: the row is treated as padded with zero columns up to
/// `G·M`. The last group is partial; a filler slot may point into the padding, and a padding
/// slot must hold `0.0` (checked by [`try_from_parts`](Self::try_from_parts)).
///
/// **More than `N` kept in a group** is refused with [`FormatError::PatternViolation`]: this is
/// a storage format, not a pruning rule, and it never drops a kept weight.
///
/// # Example
///
/// ```
/// use pruning::format::NmMatrix;
///
/// // One row, two 2:4 groups.
/// let dense = [0.0, 5.0, 0.0, 6.0,   7.0, 0.0, 0.0, 0.0];
/// let nm = NmMatrix::from_dense(&dense, 1, 8, 2, 4)?;
/// assert_eq!(nm.values(), &[5.0, 6.0, 7.0, 0.0]);
/// // indices (1, 3) and (0, 1): 1 | 3 << 2 | 0 << 4 | 1 << 6
/// assert_eq!(nm.packed_indices(), &[0b0100_1101]);
/// assert_eq!(nm.to_dense(), dense);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NmMatrix {
    rows: usize,
    cols: usize,
    n: usize,
    m: usize,
    values: Vec<f32>,
    indices: Vec<u8>,
}

/// The raw arrays of an [`NmMatrix`].
#[derive(Debug, Clone, PartialEq)]
pub struct NmParts {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns (before padding to a multiple of `m`).
    pub cols: usize,
    /// Entries kept per group, `N`.
    pub n: usize,
    /// Group size, `M`.
    pub m: usize,
    /// `N` values per group, row-major.
    pub values: Vec<f32>,
    /// The bit-packed in-group indices, row by row.
    pub indices: Vec<u8>,
}

impl NmMatrix {
    /// Compresses a row-major dense matrix whose non-zeros fit the N:M pattern.
    ///
    /// # Errors
    ///
    /// [`FormatError::Shape`] for `m == 0`, `n > m` or an `m` beyond `u32`;
    /// [`FormatError::PatternViolation`] if a group holds more than `n` non-zeros;
    /// [`FormatError::Length`] / [`FormatError::NonFinite`] for a malformed `dense`.
    pub fn from_dense(
        dense: &[f32],
        rows: usize,
        cols: usize,
        n: usize,
        m: usize,
    ) -> FormatResult<Self> {
        Self::build(dense, rows, cols, n, m, Keep::NonZero)
    }

    /// Compresses the masked-in entries of a row-major dense matrix; the mask must keep at most
    /// `n` entries per group of `m` columns.
    ///
    /// # Errors
    ///
    /// As [`from_dense`](Self::from_dense), with the pattern checked on the mask, and
    /// [`FormatError::Length`] for a wrong mask length.
    pub fn from_masked(
        dense: &[f32],
        mask: &[bool],
        rows: usize,
        cols: usize,
        n: usize,
        m: usize,
    ) -> FormatResult<Self> {
        Self::build(dense, rows, cols, n, m, Keep::Mask(mask))
    }

    fn build(
        dense: &[f32],
        rows: usize,
        cols: usize,
        n: usize,
        m: usize,
        keep: Keep<'_>,
    ) -> FormatResult<Self> {
        check_pattern(n, m)?;
        check_dense(FORMAT, rows, cols, dense, keep)?;
        let geometry = Geometry::new(rows, cols, n, m)?;
        let mut values = Vec::with_capacity(geometry.values_len);
        let mut indices = vec![0u8; geometry.indices_len];
        let mut slots = Vec::with_capacity(n);
        for r in 0..rows {
            let row_bytes = &mut indices[r * geometry.row_bytes..(r + 1) * geometry.row_bytes];
            for g in 0..geometry.groups {
                let start = g * m;
                let width = m.min(cols - start);
                slots.clear();
                for j in 0..width {
                    let flat = r * cols + start + j;
                    if keep.keeps(flat, dense[flat]) {
                        slots.push(j);
                    }
                }
                if slots.len() > n {
                    return Err(FormatError::PatternViolation {
                        format: FORMAT,
                        row: r,
                        group: g,
                        kept: slots.len(),
                        allowed: n,
                    });
                }
                let kept = slots.len();
                // Fillers: the lowest in-group positions (padding included) not kept.
                let mut j = 0;
                while slots.len() < n {
                    if !slots[..kept].contains(&j) {
                        slots.push(j);
                    }
                    j += 1;
                }
                slots.sort_unstable();
                for (s, &j) in slots.iter().enumerate() {
                    let is_kept =
                        j < width && keep.keeps(r * cols + start + j, dense[r * cols + start + j]);
                    values.push(if is_kept {
                        dense[r * cols + start + j]
                    } else {
                        0.0
                    });
                    write_bits(
                        row_bytes,
                        (g * n + s) * geometry.bits,
                        geometry.bits,
                        j as u32,
                    );
                }
            }
        }
        Ok(Self {
            rows,
            cols,
            n,
            m,
            values,
            indices,
        })
    }

    /// Builds a matrix from raw arrays after checking every invariant of the layout.
    ///
    /// # Errors
    ///
    /// [`FormatError::Shape`] for a bad `n`/`m`, [`FormatError::Length`] for arrays of the wrong
    /// length, [`FormatError::IndexOutOfRange`] for an in-group index `>= m`,
    /// [`FormatError::Unsorted`] for indices not strictly increasing within a group,
    /// [`FormatError::NonZeroPadding`] for a value stored in a padding column or set bits after
    /// a row's last index, [`FormatError::NonFinite`] for a NaN or infinite value.
    pub fn try_from_parts(parts: NmParts) -> FormatResult<Self> {
        let NmParts {
            rows,
            cols,
            n,
            m,
            values,
            indices,
        } = parts;
        check_pattern(n, m)?;
        let geometry = Geometry::new(rows, cols, n, m)?;
        check_len(FORMAT, "values", geometry.values_len, values.len())?;
        check_len(FORMAT, "indices", geometry.indices_len, indices.len())?;
        check_finite(FORMAT, "values", &values)?;
        let used_bits = geometry.groups * n * geometry.bits;
        for r in 0..rows {
            let row_bytes = &indices[r * geometry.row_bytes..(r + 1) * geometry.row_bytes];
            for g in 0..geometry.groups {
                let width = m.min(cols - g * m);
                let mut previous = None;
                for s in 0..n {
                    let j =
                        read_bits(row_bytes, (g * n + s) * geometry.bits, geometry.bits) as usize;
                    if j >= m {
                        return Err(FormatError::IndexOutOfRange {
                            format: FORMAT,
                            array: "indices",
                            row: r,
                            index: j,
                            bound: m,
                        });
                    }
                    if previous.is_some_and(|p| j <= p) {
                        return Err(FormatError::Unsorted {
                            format: FORMAT,
                            array: "indices",
                            row: r,
                            position: g * n + s,
                        });
                    }
                    previous = Some(j);
                    let flat = (r * geometry.groups + g) * n + s;
                    if j >= width && values[flat] != 0.0 {
                        return Err(FormatError::NonZeroPadding {
                            format: FORMAT,
                            array: "values",
                            index: flat,
                            value: values[flat],
                        });
                    }
                }
            }
            if used_bits % 8 != 0 {
                let last = row_bytes[geometry.row_bytes - 1];
                if last >> (used_bits % 8) != 0 {
                    return Err(FormatError::NonZeroPadding {
                        format: FORMAT,
                        array: "indices",
                        index: (r + 1) * geometry.row_bytes - 1,
                        value: f32::from(last),
                    });
                }
            }
        }
        Ok(Self {
            rows,
            cols,
            n,
            m,
            values,
            indices,
        })
    }

    /// Gives back the raw arrays.
    pub fn into_parts(self) -> NmParts {
        NmParts {
            rows: self.rows,
            cols: self.cols,
            n: self.n,
            m: self.m,
            values: self.values,
            indices: self.indices,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (before padding).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The pattern `(N, M)`.
    pub fn pattern(&self) -> (usize, usize) {
        (self.n, self.m)
    }

    /// Groups per row, `ceil(cols / M)`.
    pub fn groups_per_row(&self) -> usize {
        self.cols.div_ceil(self.m)
    }

    /// Bits per packed index, `ceil(log2 M)`.
    pub fn index_bits(&self) -> usize {
        index_bits(self.m)
    }

    /// The `N` values of every group, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The bit-packed indices, row by row.
    pub fn packed_indices(&self) -> &[u8] {
        &self.indices
    }

    /// The in-group index (`0 .. M`) of slot `s` of group `g` in row `r`.
    ///
    /// # Panics
    ///
    /// If `r`, `g` or `s` is out of range.
    pub fn index(&self, r: usize, g: usize, s: usize) -> usize {
        let groups = self.groups_per_row();
        assert!(
            r < self.rows && g < groups && s < self.n,
            "slot ({r}, {g}, {s}) out of range for {} rows, {groups} groups, N = {}",
            self.rows,
            self.n
        );
        let row_bytes = row_bytes(groups, self.n, self.index_bits());
        let bits = self.index_bits();
        read_bits(
            &self.indices[r * row_bytes..(r + 1) * row_bytes],
            (g * self.n + s) * bits,
            bits,
        ) as usize
    }

    /// Bytes held by the values and the packed indices.
    pub fn storage_bytes(&self) -> usize {
        self.values.len() * size_of::<f32>() + self.indices.len()
    }

    /// Calls `f(row, column, value)` for every stored slot that is not a padding column, in
    /// row-major order.
    fn for_each_slot(&self, mut f: impl FnMut(usize, usize, f32)) {
        let groups = self.groups_per_row();
        for r in 0..self.rows {
            for g in 0..groups {
                for s in 0..self.n {
                    let c = g * self.m + self.index(r, g, s);
                    if c < self.cols {
                        f(r, c, self.values[(r * groups + g) * self.n + s]);
                    }
                }
            }
        }
    }

    /// The row-major dense matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.rows * self.cols];
        self.for_each_slot(|r, c, v| dense[r * self.cols + c] = v);
        dense
    }

    /// The stored slots as a row-major mask (fillers included, padding excluded). It equals the
    /// mask the matrix was built from whenever that mask kept exactly `N` per group.
    pub fn mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.rows * self.cols];
        self.for_each_slot(|r, c, _| mask[r * self.cols + c] = true);
        mask
    }

    /// The same slots in CSR form (fillers kept as explicit zeros), e.g. to run the CPU kernel.
    pub fn to_csr(&self) -> CsrMatrix {
        let mut indptr = vec![0usize; self.rows + 1];
        let mut indices = Vec::with_capacity(self.values.len());
        let mut values = Vec::with_capacity(self.values.len());
        self.for_each_slot(|r, c, v| {
            indptr[r + 1] += 1;
            indices.push(c as u32);
            values.push(v);
        });
        for r in 0..self.rows {
            indptr[r + 1] += indptr[r];
        }
        CsrMatrix::try_from_parts(CsrParts {
            rows: self.rows,
            cols: self.cols,
            indptr,
            indices,
            values,
        })
        .expect("an N:M matrix always yields a valid CSR matrix")
    }
}

/// Bits per in-group index: `ceil(log2 m)`, 0 for `m == 1`.
fn index_bits(m: usize) -> usize {
    (usize::BITS - (m - 1).leading_zeros()) as usize
}

fn row_bytes(groups: usize, n: usize, bits: usize) -> usize {
    (groups * n * bits).div_ceil(8)
}

fn check_pattern(n: usize, m: usize) -> FormatResult<()> {
    if m == 0 || n > m || m as u64 > u64::from(u32::MAX) {
        return Err(FormatError::Shape {
            format: FORMAT,
            reason: format!("pattern {n}:{m} needs 0 <= N <= M and 1 <= M <= 2^32 - 1"),
        });
    }
    Ok(())
}

/// Sizes derived from the shape and the pattern, overflow-checked.
struct Geometry {
    groups: usize,
    bits: usize,
    row_bytes: usize,
    values_len: usize,
    indices_len: usize,
}

impl Geometry {
    fn new(rows: usize, cols: usize, n: usize, m: usize) -> FormatResult<Self> {
        let groups = cols.div_ceil(m);
        let bits = index_bits(m);
        let slots = checked_area(FORMAT, groups, n)?;
        let row_bytes = checked_area(FORMAT, slots, bits)?.div_ceil(8);
        Ok(Self {
            groups,
            bits,
            row_bytes,
            values_len: checked_area(FORMAT, rows, slots)?,
            indices_len: checked_area(FORMAT, rows, row_bytes)?,
        })
    }
}

/// Writes the low `width` bits of `value` at bit `offset` of a little-endian bit stream.
fn write_bits(bytes: &mut [u8], offset: usize, width: usize, value: u32) {
    for bit in 0..width {
        if (value >> bit) & 1 == 1 {
            let at = offset + bit;
            bytes[at / 8] |= 1 << (at % 8);
        }
    }
}

/// Reads `width` bits at bit `offset` of a little-endian bit stream.
fn read_bits(bytes: &[u8], offset: usize, width: usize) -> u32 {
    let mut value = 0u32;
    for bit in 0..width {
        let at = offset + bit;
        value |= u32::from((bytes[at / 8] >> (at % 8)) & 1) << bit;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{masked, weight};
    use proptest::prelude::*;

    #[test]
    fn index_bits_are_ceil_log2() {
        let expected = [
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (8, 3),
            (9, 4),
            (32, 5),
            (33, 6),
        ];
        for (m, bits) in expected {
            assert_eq!(index_bits(m), bits, "M = {m}");
        }
    }

    #[test]
    fn fillers_take_the_lowest_free_positions() {
        // 2:4, group keeps only column 2: filler is column 0 → indices (0, 2).
        let nm = NmMatrix::from_masked(
            &[9.0, 8.0, 7.0, 6.0],
            &[false, false, true, false],
            1,
            4,
            2,
            4,
        )
        .unwrap();
        assert_eq!(nm.values(), &[0.0, 7.0]);
        assert_eq!((nm.index(0, 0, 0), nm.index(0, 0, 1)), (0, 2));
        // All-zero group: (0, 1).
        let nm = NmMatrix::from_dense(&[0.0; 4], 1, 4, 2, 4).unwrap();
        assert_eq!((nm.index(0, 0, 0), nm.index(0, 0, 1)), (0, 1));
    }

    #[test]
    fn partial_last_group_is_padded_with_zero_columns() {
        // cols = 5 with 2:4: second group has one real column (4) and padding 5, 6, 7.
        let dense = [1.0, 0.0, 0.0, 2.0, 3.0];
        let nm = NmMatrix::from_dense(&dense, 1, 5, 2, 4).unwrap();
        assert_eq!(nm.groups_per_row(), 2);
        assert_eq!(nm.values(), &[1.0, 2.0, 3.0, 0.0]);
        assert_eq!((nm.index(0, 1, 0), nm.index(0, 1, 1)), (0, 1));
        assert_eq!(nm.to_dense(), dense);
        assert_eq!(nm.mask(), vec![true, false, false, true, true]);
        // A value in the padding is refused when read from outside.
        let mut parts = nm.into_parts();
        parts.values[3] = 1.0;
        assert!(matches!(
            NmMatrix::try_from_parts(parts),
            Err(FormatError::NonZeroPadding { index: 3, .. })
        ));
    }

    #[test]
    fn more_than_n_kept_is_refused() {
        let err = NmMatrix::from_dense(&[1.0, 1.0, 1.0, 0.0], 1, 4, 2, 4).unwrap_err();
        assert_eq!(
            err,
            FormatError::PatternViolation {
                format: FORMAT,
                row: 0,
                group: 0,
                kept: 3,
                allowed: 2
            }
        );
    }

    #[test]
    fn bad_patterns_and_indices_are_refused() {
        assert!(matches!(
            NmMatrix::from_dense(&[0.0; 4], 1, 4, 0, 0),
            Err(FormatError::Shape { .. })
        ));
        // 0:M keeps nothing and stores nothing.
        let empty = NmMatrix::from_dense(&[0.0; 8], 2, 4, 0, 4).unwrap();
        assert!(empty.values().is_empty() && empty.packed_indices().is_empty());
        assert_eq!(empty.to_dense(), vec![0.0; 8]);
        assert!(matches!(
            NmMatrix::from_dense(&[0.0; 4], 1, 4, 5, 4),
            Err(FormatError::Shape { .. })
        ));
        let good = NmMatrix::from_dense(&[1.0, 0.0, 0.0, 0.0, 0.0, 3.0], 1, 6, 1, 3).unwrap();
        assert_eq!(good.index_bits(), 2);
        // Index 3 is out of range for M = 3.
        let mut parts = good.clone().into_parts();
        parts.indices[0] = 0b11;
        assert!(matches!(
            NmMatrix::try_from_parts(parts),
            Err(FormatError::IndexOutOfRange {
                index: 3,
                bound: 3,
                ..
            })
        ));
        // Set bits after the last index.
        let mut parts = good.clone().into_parts();
        parts.indices[0] |= 0b1000_0000;
        assert!(matches!(
            NmMatrix::try_from_parts(parts),
            Err(FormatError::NonZeroPadding {
                array: "indices",
                ..
            })
        ));
        // Unsorted group (2:4 with indices 2, 1).
        let two_four = NmMatrix::from_dense(&[0.0, 1.0, 2.0, 0.0], 1, 4, 2, 4).unwrap();
        let mut parts = two_four.into_parts();
        parts.indices[0] = 2 | (1 << 2);
        assert!(matches!(
            NmMatrix::try_from_parts(parts),
            Err(FormatError::Unsorted { .. })
        ));
        let mut parts = good.into_parts();
        parts.values.pop();
        assert!(matches!(
            NmMatrix::try_from_parts(parts),
            Err(FormatError::Length {
                array: "values",
                ..
            })
        ));
    }

    /// A dense matrix and a mask that keeps at most `n` per group (any count from 0 to `n`).
    fn nm_input() -> impl Strategy<Value = (usize, usize, usize, usize, Vec<f32>, Vec<bool>)> {
        (1usize..=9)
            .prop_flat_map(|m| (1..=m, Just(m), 0usize..=5, 0usize..=20))
            .prop_flat_map(|(n, m, rows, cols)| {
                let groups = cols.div_ceil(m);
                let keep_sets = proptest::collection::vec(
                    proptest::sample::subsequence((0..m).collect::<Vec<_>>(), 0..=n),
                    rows * groups,
                );
                (
                    Just(n),
                    Just(m),
                    Just(rows),
                    Just(cols),
                    proptest::collection::vec(weight(), rows * cols),
                    keep_sets,
                )
            })
            .prop_map(|(n, m, rows, cols, dense, keep_sets)| {
                let groups = cols.div_ceil(m);
                let mut mask = vec![false; rows * cols];
                for r in 0..rows {
                    for g in 0..groups {
                        for &j in &keep_sets[r * groups + g] {
                            if g * m + j < cols {
                                mask[r * cols + g * m + j] = true;
                            }
                        }
                    }
                }
                (rows, cols, n, m, dense, mask)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Masks from the crate's own N:M mask function (padding rule `PadWithZeros`) compress
        /// exactly: same slots, same dense matrix.
        #[test]
        fn masks_from_nm_mask_compress_exactly(
            (n, m) in (1usize..=4).prop_flat_map(|n| (Just(n), n..=8)),
            (rows, cols) in (1usize..=4, 1usize..=19),
            seed in any::<u64>(),
        ) {
            use crate::{HostTensor, NmPattern, Remainder, nm_mask};
            let weights: Vec<f32> = (0..rows * cols)
                .map(|i| (((i as u64 + 1).wrapping_mul(seed | 1) >> 40) % 2001) as f32 / 250.0 - 4.0)
                .collect();
            let scores = HostTensor::new(weights.clone(), &[rows, cols], "weights").unwrap().abs();
            let pattern = NmPattern::new(n, m).unwrap();
            let mask = nm_mask(&scores, pattern, 1, Remainder::PadWithZeros, None).unwrap();
            let nm = NmMatrix::from_masked(&weights, mask.as_slice(), rows, cols, n, m).unwrap();
            prop_assert_eq!(nm.mask(), mask.as_slice().to_vec());
            prop_assert_eq!(nm.to_dense(), masked(&weights, mask.as_slice()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn round_trip((rows, cols, n, m, dense, mask) in nm_input()) {
            let nm = NmMatrix::from_masked(&dense, &mask, rows, cols, n, m).unwrap();
            let expected = masked(&dense, &mask);
            prop_assert_eq!(nm.to_dense(), expected.clone());
            prop_assert_eq!(nm.to_csr().to_dense(), expected);
            // Every kept entry is a stored slot; the slots per group are exactly N.
            let slots = nm.mask();
            prop_assert!(mask.iter().zip(&slots).all(|(&k, &s)| !k || s));
            prop_assert_eq!(nm.values().len(), rows * nm.groups_per_row() * n);
            for r in 0..rows {
                for g in 0..nm.groups_per_row() {
                    let idx: Vec<usize> = (0..n).map(|s| nm.index(r, g, s)).collect();
                    prop_assert!(idx.windows(2).all(|w| w[0] < w[1]));
                    prop_assert!(idx.iter().all(|&j| j < m));
                }
            }
            let again = NmMatrix::try_from_parts(nm.clone().into_parts()).unwrap();
            prop_assert_eq!(again, nm);
        }
    }
}
