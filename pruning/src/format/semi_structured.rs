//! The 2:4 "semi-structured" layout of PyTorch's CUTLASS backend: compressed values plus
//! tensor-core-ordered metadata, bit-exact with `torch.sparse.to_sparse_semi_structured`.

use std::fmt::Debug;

use half::{bf16, f16};

use super::error::{FormatError, FormatResult, check_len, checked_area};

const FORMAT: &str = "CUTLASS 2:4";

mod sealed {
    pub trait Sealed {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
    impl Sealed for f32 {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
    impl Sealed for i32 {}
}

/// A metadata word of the CUTLASS layout: `i16` (4 nibbles) or `i32` (8 nibbles).
pub trait MetaWord: sealed::Sealed + Copy + PartialEq + Debug + Send + Sync + 'static {
    /// 4-bit codes per word.
    const NIBBLES: usize;
    /// Rows per reordering group (`G`): 32 for `i16`, 16 for `i32`.
    const ROW_GROUP: usize;
    /// Row interleave factor (`I`): 4 for `i16`, 2 for `i32`.
    const INTERWEAVE: usize;
    /// The word whose bits are the low bits of `bits`.
    fn from_bits(bits: u32) -> Self;
    /// The word's bits.
    fn to_bits(self) -> u32;
}

impl MetaWord for i16 {
    const NIBBLES: usize = 4;
    const ROW_GROUP: usize = 32;
    const INTERWEAVE: usize = 4;
    fn from_bits(bits: u32) -> Self {
        bits as u16 as i16
    }
    fn to_bits(self) -> u32 {
        u32::from(self as u16)
    }
}

impl MetaWord for i32 {
    const NIBBLES: usize = 8;
    const ROW_GROUP: usize = 16;
    const INTERWEAVE: usize = 2;
    fn from_bits(bits: u32) -> Self {
        bits as i32
    }
    fn to_bits(self) -> u32 {
        self as u32
    }
}

/// An element type PyTorch's CUTLASS 2:4 conversion accepts: `f16`, `bf16` and `i8` (2:4), and
/// `f32`, which the hardware treats as **1:2** (one value kept per pair).
pub trait SemiStructuredElement:
    sealed::Sealed + Copy + PartialEq + Debug + Send + Sync + 'static
{
    /// The metadata word: `i16` for the floating-point types, `i32` for `i8`.
    type Meta: MetaWord;
    /// The dtype's name in messages.
    const NAME: &'static str;
    /// Dense columns described by one 4-bit code: 4 (2:4), or 2 for `f32` (1:2).
    const GROUP: usize;
    /// The zero of the type.
    const ZERO: Self;
    /// Whether the value counts as kept (PyTorch tests `dense != 0`).
    fn is_nonzero(self) -> bool;
    /// Whether the value is finite (always true for integers).
    fn is_finite(self) -> bool;
    /// The value as `f32`, for messages.
    fn to_f32(self) -> f32;
}

impl SemiStructuredElement for f16 {
    type Meta = i16;
    const NAME: &'static str = "f16";
    const GROUP: usize = 4;
    const ZERO: Self = f16::ZERO;
    fn is_nonzero(self) -> bool {
        self != f16::ZERO
    }
    fn is_finite(self) -> bool {
        f16::is_finite(self)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

impl SemiStructuredElement for bf16 {
    type Meta = i16;
    const NAME: &'static str = "bf16";
    const GROUP: usize = 4;
    const ZERO: Self = bf16::ZERO;
    fn is_nonzero(self) -> bool {
        self != bf16::ZERO
    }
    fn is_finite(self) -> bool {
        bf16::is_finite(self)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

impl SemiStructuredElement for f32 {
    type Meta = i16;
    const NAME: &'static str = "f32";
    const GROUP: usize = 2;
    const ZERO: Self = 0.0;
    fn is_nonzero(self) -> bool {
        self != 0.0
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl SemiStructuredElement for i8 {
    type Meta = i32;
    const NAME: &'static str = "i8";
    const GROUP: usize = 4;
    const ZERO: Self = 0;
    fn is_nonzero(self) -> bool {
        self != 0
    }
    fn is_finite(self) -> bool {
        true
    }
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
}

/// The 4-bit code of every 4-entry keep pattern, indexed by `m0 | m1 << 1 | m2 << 2 | m3 << 3`
/// (`mi` = entry `i` kept). The low two bits are the first stored position, the high two bits
/// the second. These are the codes PyTorch documents in `_semi_structured_conversions.py`,
/// including its choices for groups keeping fewer than two entries (for example all-zero →
/// `0b1110` = positions 2 and 3, `[T, F, F, F]` → `0b1000` = positions 0 and 2). Patterns with
/// three or four entries kept never reach this table: they are refused rather than truncated.
const CODE_OF_PATTERN: [u8; 16] = [
    0b1110, // F F F F
    0b1000, // T F F F
    0b1001, // F T F F
    0b0100, // T T F F
    0b1110, // F F T F
    0b1000, // T F T F
    0b1001, // F T T F
    0b0100, // T T T F (PyTorch truncates; refused here)
    0b1110, // F F F T
    0b1100, // T F F T
    0b1101, // F T F T
    0b0100, // T T F T (PyTorch truncates; refused here)
    0b1110, // F F T T
    0b1100, // T F T T (PyTorch truncates; refused here)
    0b1101, // F T T T (PyTorch truncates; refused here)
    0b0100, // T T T T (PyTorch truncates; refused here)
];

/// A matrix in the 2:4 layout of PyTorch's CUTLASS backend (`SparseSemiStructuredTensorCUTLASS`):
/// the compressed values plus the metadata reordered for sparse tensor cores.
///
/// Built by [`from_dense`](Self::from_dense) it gives, bit for bit, the `(sparse, meta)` pair of
/// PyTorch's `sparse_semi_structured_from_dense_cutlass(dense)` — for every input that PyTorch
/// converts without dropping a non-zero. It exists to hand pruned weights to GPU 2:4 kernels
/// (export) and to read them back; the CPU kernel of this crate runs on [`CsrMatrix`].
///
/// # Layout (`rows = m`, `cols = k`, row-major throughout)
///
/// 1. Values `[m, k/2]`: for each group of 4 columns, the entries at the two positions of its
///    code, in ascending order. `f32` is 1:2: one value per pair, `k/2` per row as well.
/// 2. Codes: `idx0 | idx1 << 2` per group (`idx0 < idx1`, positions in the group). For `f32`
///    a pair is encoded as if it were four 16-bit halves: `0b0100` (first element kept) or
///    `0b1110` (second element, or none).
/// 3. Metadata words: `Q` consecutive codes of a row packed little-endian into one word
///    (`i16`, `Q = 4`, for `f16`/`bf16`/`f32`; `i32`, `Q = 8`, for `i8`), giving
///    `meta[m, k / (GROUP · Q)]`.
/// 4. Reordering for tensor cores (CUTLASS `ColumnMajorInterleaved<2>`): word `(r, c)` goes to
///    row `r' = r/G·G + (r%8)·I + (r%G)/8` (`G = 32, I = 4` for `i16`; `G = 16, I = 2` for
///    `i32`), then `(r', c)` pairs with even `r'` and odd `c` swap with odd `r'` and even `c`
///    (`r' ± 1`, `c ∓ 1`), and the word lands at flat offset `(c/2)·2m + 2r' + c%2`.
///
/// Shape constraints: `m % 32 == 0` (`m % 16` for `i8`), and an even number of metadata
/// columns, i.e. `k % 32 == 0` for `f16`/`bf16`, `k % 16` for `f32`, `k % 64` for `i8`
/// (PyTorch's `SparseSemiStructuredTensor` pads further, to 64 / 32 / 128 columns).
///
/// Differences from PyTorch, both refusals rather than changes of output: a group with more
/// than two non-zeros (more than one per `f32` pair) gives [`FormatError::PatternViolation`]
/// where PyTorch silently drops the excess, and [`try_from_parts`](Self::try_from_parts) checks
/// every metadata code.
///
/// # Example
///
/// ```
/// use half::f16;
/// use pruning::format::SemiStructured;
///
/// // 32 × 32, each row keeps its columns 1 and 3 of the first group only.
/// let mut dense = vec![f16::ZERO; 32 * 32];
/// for r in 0..32 {
///     dense[r * 32 + 1] = f16::from_f32(1.0 + r as f32);
///     dense[r * 32 + 3] = f16::from_f32(-1.0);
/// }
/// let s = SemiStructured::from_dense(&dense, 32, 32)?;
/// assert_eq!(s.values().len(), 32 * 16);
/// assert_eq!(s.values()[..2], [f16::from_f32(1.0), f16::from_f32(-1.0)]);
/// // Row 0's first word: code 0b1101 (positions 1, 3), then three all-zero groups 0b1110.
/// assert_eq!(s.meta_row_major()[0] as u16, 0b1110_1110_1110_1101);
/// assert_eq!(s.to_dense(), dense);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
///
/// [`CsrMatrix`]: super::CsrMatrix
#[derive(Debug, Clone, PartialEq)]
pub struct SemiStructured<T: SemiStructuredElement> {
    rows: usize,
    cols: usize,
    values: Vec<T>,
    meta: Vec<T::Meta>,
}

impl<T: SemiStructuredElement> SemiStructured<T> {
    /// Converts a row-major dense matrix as PyTorch does: an entry is kept when it is non-zero.
    ///
    /// # Errors
    ///
    /// [`FormatError::Shape`] for a shape outside the layout's constraints,
    /// [`FormatError::Length`] for a wrong `dense` length, [`FormatError::NonFinite`] for a NaN or
    /// infinite value, [`FormatError::PatternViolation`] for a group with more than two
    /// non-zeros (one per pair for `f32`).
    pub fn from_dense(dense: &[T], rows: usize, cols: usize) -> FormatResult<Self> {
        check_shape::<T>(rows, cols)?;
        check_len(FORMAT, "dense", rows * cols, dense.len())?;
        check_finite_elements(dense, "dense")?;
        let per_code = T::GROUP;
        let groups = cols / per_code;
        let mut values = Vec::with_capacity(rows * cols / 2);
        let mut codes = Vec::with_capacity(rows * groups);
        for r in 0..rows {
            for g in 0..groups {
                let group = &dense[r * cols + g * per_code..r * cols + (g + 1) * per_code];
                let kept = group.iter().filter(|v| v.is_nonzero()).count();
                let allowed = per_code / 2;
                if kept > allowed {
                    return Err(FormatError::PatternViolation {
                        format: FORMAT,
                        row: r,
                        group: g,
                        kept,
                        allowed,
                    });
                }
                let code = if per_code == 4 {
                    let pattern = group
                        .iter()
                        .enumerate()
                        .fold(0, |acc, (i, v)| acc | (usize::from(v.is_nonzero()) << i));
                    let code = CODE_OF_PATTERN[pattern];
                    values.push(group[usize::from(code & 0b11)]);
                    values.push(group[usize::from(code >> 2)]);
                    code
                } else {
                    // A pair (p0, p1) is encoded as the halves (p0, p0, p1, p1).
                    let (p0, p1) = (group[0].is_nonzero(), group[1].is_nonzero());
                    let pattern = usize::from(p0) * 0b0011 + usize::from(p1) * 0b1100;
                    let code = CODE_OF_PATTERN[pattern];
                    values.push(group[usize::from(code & 0b11) / 2]);
                    code
                };
                codes.push(code);
            }
        }
        let meta = reorder::<T::Meta>(&pack_codes::<T::Meta>(&codes), rows);
        Ok(Self {
            rows,
            cols,
            values,
            meta,
        })
    }

    /// Converts the masked-in entries of a row-major dense matrix. The mask must keep at most two
    /// entries per group of four columns (one per pair for `f32`); entries it drops are zeroed
    /// and the result is then exactly [`from_dense`](Self::from_dense) of `dense ⊙ mask`, so a
    /// kept weight that is itself zero is encoded as PyTorch would encode that zero.
    ///
    /// # Errors
    ///
    /// As [`from_dense`](Self::from_dense), with the pattern checked on the mask, and
    /// [`FormatError::Length`] for a wrong mask length.
    pub fn from_masked(dense: &[T], mask: &[bool], rows: usize, cols: usize) -> FormatResult<Self> {
        check_shape::<T>(rows, cols)?;
        check_len(FORMAT, "dense", rows * cols, dense.len())?;
        check_len(FORMAT, "mask", rows * cols, mask.len())?;
        let per_code = T::GROUP;
        for r in 0..rows {
            for g in 0..cols / per_code {
                let start = r * cols + g * per_code;
                let kept = mask[start..start + per_code].iter().filter(|&&m| m).count();
                if kept > per_code / 2 {
                    return Err(FormatError::PatternViolation {
                        format: FORMAT,
                        row: r,
                        group: g,
                        kept,
                        allowed: per_code / 2,
                    });
                }
            }
        }
        let masked: Vec<T> = dense
            .iter()
            .zip(mask)
            .map(|(&v, &m)| if m { v } else { T::ZERO })
            .collect();
        Self::from_dense(&masked, rows, cols)
    }

    /// Reads the `(values, meta)` pair of another tool (e.g. a PyTorch
    /// `SparseSemiStructuredTensorCUTLASS`'s `packed` values and `meta`), checking every
    /// invariant.
    ///
    /// `values` is `[rows, cols/2]` row-major; `meta` is the reordered metadata, `rows · cols /
    /// (GROUP · Q)` words in memory order.
    ///
    /// # Errors
    ///
    /// [`FormatError::Shape`] for a shape outside the layout, [`FormatError::Length`] for arrays
    /// of the wrong length, [`FormatError::NonFinite`] for a NaN or infinite value,
    /// [`FormatError::InvalidMetadata`] for a code whose positions are not ascending (for `f32`,
    /// any code but `0b0100` and `0b1110`).
    pub fn try_from_parts(
        rows: usize,
        cols: usize,
        values: Vec<T>,
        meta: Vec<T::Meta>,
    ) -> FormatResult<Self> {
        check_shape::<T>(rows, cols)?;
        check_len(FORMAT, "values", rows * cols / 2, values.len())?;
        check_len(FORMAT, "meta", meta_len::<T>(rows, cols), meta.len())?;
        check_finite_elements(&values, "values")?;
        let matrix = Self {
            rows,
            cols,
            values,
            meta,
        };
        let groups = cols / T::GROUP;
        for (i, &code) in matrix.codes().iter().enumerate() {
            let valid = if T::GROUP == 4 {
                (code & 0b11) < (code >> 2)
            } else {
                code == 0b0100 || code == 0b1110
            };
            if !valid {
                return Err(FormatError::InvalidMetadata {
                    format: FORMAT,
                    row: i / groups,
                    group: i % groups,
                    code,
                });
            }
        }
        Ok(matrix)
    }

    /// Gives back `(rows, cols, values, meta)`.
    pub fn into_parts(self) -> (usize, usize, Vec<T>, Vec<T::Meta>) {
        (self.rows, self.cols, self.values, self.meta)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns of the dense matrix.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The compressed values, `[rows, cols/2]` row-major.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The metadata in PyTorch's / CUTLASS's reordered memory order (`[rows, cols / (GROUP·Q)]`
    /// as PyTorch shapes it).
    pub fn meta(&self) -> &[T::Meta] {
        &self.meta
    }

    /// The metadata before reordering: row `r`'s words at `r · meta_cols ..`.
    pub fn meta_row_major(&self) -> Vec<T::Meta> {
        let meta_cols = meta_len::<T>(self.rows, self.cols) / self.rows.max(1);
        let mut out = vec![T::Meta::from_bits(0); self.meta.len()];
        for r in 0..self.rows {
            for c in 0..meta_cols {
                out[r * meta_cols + c] = self.meta[reordered_offset::<T::Meta>(r, c, self.rows)];
            }
        }
        out
    }

    /// The 4-bit code of every group, row-major.
    fn codes(&self) -> Vec<u8> {
        self.meta_row_major()
            .iter()
            .flat_map(|w| {
                let bits = w.to_bits();
                (0..T::Meta::NIBBLES).map(move |q| ((bits >> (4 * q)) & 0xF) as u8)
            })
            .collect()
    }

    /// The dense matrix, row-major.
    pub fn to_dense(&self) -> Vec<T> {
        let mut dense = vec![T::ZERO; self.rows * self.cols];
        let values_per_code = if T::GROUP == 4 { 2 } else { 1 };
        for (i, &code) in self.codes().iter().enumerate() {
            let base = i * T::GROUP;
            let v = &self.values[i * values_per_code..(i + 1) * values_per_code];
            if T::GROUP == 4 {
                dense[base + usize::from(code & 0b11)] = v[0];
                dense[base + usize::from(code >> 2)] = v[1];
            } else {
                dense[base + usize::from(code & 0b11) / 2] = v[0];
            }
        }
        dense
    }

    /// The keep pattern (`true` where the dense matrix is non-zero), row-major.
    pub fn nonzero_mask(&self) -> Vec<bool> {
        self.to_dense().iter().map(|v| v.is_nonzero()).collect()
    }
}

fn check_shape<T: SemiStructuredElement>(rows: usize, cols: usize) -> FormatResult<()> {
    let row_multiple = T::Meta::ROW_GROUP;
    let col_multiple = T::GROUP * T::Meta::NIBBLES * 2;
    if !rows.is_multiple_of(row_multiple) || !cols.is_multiple_of(col_multiple) {
        return Err(FormatError::Shape {
            format: FORMAT,
            reason: format!(
                "a {} matrix needs rows % {row_multiple} == 0 and cols % {col_multiple} == 0, \
                 found {rows} x {cols}",
                T::NAME
            ),
        });
    }
    checked_area(FORMAT, rows, cols)?;
    Ok(())
}

fn check_finite_elements<T: SemiStructuredElement>(
    values: &[T],
    array: &'static str,
) -> FormatResult<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(FormatError::NonFinite {
            format: FORMAT,
            array,
            index,
            value: values[index].to_f32(),
        }),
    }
}

fn meta_len<T: SemiStructuredElement>(rows: usize, cols: usize) -> usize {
    rows * cols / (T::GROUP * T::Meta::NIBBLES)
}

/// Packs `Q` consecutive codes, little-endian, into each word.
fn pack_codes<W: MetaWord>(codes: &[u8]) -> Vec<W> {
    codes
        .chunks(W::NIBBLES)
        .map(|chunk| {
            W::from_bits(
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (q, &code)| acc | (u32::from(code) << (4 * q))),
            )
        })
        .collect()
}

/// Flat offset in the reordered metadata of word `(r, c)` of the row-major metadata.
fn reordered_offset<W: MetaWord>(r: usize, c: usize, rows: usize) -> usize {
    let (group, interweave) = (W::ROW_GROUP, W::INTERWEAVE);
    let mut dst_row = r / group * group + (r % 8) * interweave + (r % group) / 8;
    let mut dst_col = c;
    if dst_row.is_multiple_of(2) && !c.is_multiple_of(2) {
        dst_row += 1;
        dst_col -= 1;
    } else if !dst_row.is_multiple_of(2) && c.is_multiple_of(2) {
        dst_row -= 1;
        dst_col += 1;
    }
    (dst_col / 2) * rows * 2 + dst_row * 2 + dst_col % 2
}

/// Scatters row-major metadata words into the tensor-core order.
fn reorder<W: MetaWord>(row_major: &[W], rows: usize) -> Vec<W> {
    let meta_cols = row_major.len() / rows.max(1);
    let mut out = vec![W::from_bits(0); row_major.len()];
    for r in 0..rows {
        for c in 0..meta_cols {
            out[reordered_offset::<W>(r, c, rows)] = row_major[r * meta_cols + c];
        }
    }
    out
}

#[cfg(test)]
#[path = "semi_structured_golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Converts `dense` and checks values and reordered metadata bit for bit against PyTorch's.
    fn check_golden<T: SemiStructuredElement>(
        dense: &[i8],
        values: &[i8],
        meta: &[u32],
        rows: usize,
        cols: usize,
        from_i8: impl Fn(i8) -> T,
    ) {
        let dense: Vec<T> = dense.iter().map(|&v| from_i8(v)).collect();
        let s = SemiStructured::from_dense(&dense, rows, cols).unwrap();
        let expected_values: Vec<T> = values.iter().map(|&v| from_i8(v)).collect();
        assert_eq!(s.values(), expected_values.as_slice(), "{} values", T::NAME);
        let found_meta: Vec<u32> = s.meta().iter().map(|w| w.to_bits()).collect();
        assert_eq!(found_meta, meta, "{} metadata", T::NAME);
        assert_eq!(s.to_dense(), dense);
        let (r, c, v, m) = s.clone().into_parts();
        assert_eq!(SemiStructured::try_from_parts(r, c, v, m).unwrap(), s);
    }

    fn widen(meta: &[u16]) -> Vec<u32> {
        meta.iter().map(|&w| u32::from(w)).collect()
    }

    #[test]
    fn bit_exact_with_pytorch_f16_bf16() {
        use super::golden::*;
        let f16_of = |v: i8| f16::from_f32(f32::from(v));
        let bf16_of = |v: i8| bf16::from_f32(f32::from(v));
        let meta = widen(&F16_32X32_META);
        check_golden(&F16_32X32_DENSE, &F16_32X32_VALUES, &meta, 32, 32, f16_of);
        check_golden(&F16_32X32_DENSE, &F16_32X32_VALUES, &meta, 32, 32, bf16_of);
        let meta = widen(&F16_64X64_META);
        check_golden(&F16_64X64_DENSE, &F16_64X64_VALUES, &meta, 64, 64, f16_of);
    }

    #[test]
    fn bit_exact_with_pytorch_f32_pairs() {
        use super::golden::*;
        let meta = widen(&F32_32X16_META);
        check_golden(
            &F32_32X16_DENSE,
            &F32_32X16_VALUES,
            &meta,
            32,
            16,
            f32::from,
        );
    }

    #[test]
    fn bit_exact_with_pytorch_i8() {
        use super::golden::*;
        check_golden(
            &I8_16X64_DENSE,
            &I8_16X64_VALUES,
            &I8_16X64_META,
            16,
            64,
            |v| v,
        );
    }

    #[test]
    fn codes_of_the_documented_patterns() {
        // The exact encodings listed in PyTorch's `_semi_structured_conversions.py`.
        let documented: [([bool; 4], u8); 11] = [
            ([true, true, false, false], 0b0100),
            ([true, false, true, false], 0b1000),
            ([false, true, true, false], 0b1001),
            ([true, false, false, true], 0b1100),
            ([false, true, false, true], 0b1101),
            ([false, false, true, true], 0b1110),
            ([false, false, false, false], 0b1110),
            ([false, false, false, true], 0b1110),
            ([false, false, true, false], 0b1110),
            ([false, true, false, false], 0b1001),
            ([true, false, false, false], 0b1000),
        ];
        for (pattern, code) in documented {
            let index = pattern
                .iter()
                .enumerate()
                .fold(0, |acc, (i, &m)| acc | (usize::from(m) << i));
            assert_eq!(CODE_OF_PATTERN[index], code, "{pattern:?}");
            // Every kept position is one of the two encoded positions.
            for (i, &m) in pattern.iter().enumerate() {
                if m {
                    assert!(i == usize::from(code & 3) || i == usize::from(code >> 2));
                }
            }
        }
    }

    #[test]
    fn reordering_is_a_permutation() {
        for rows in [32, 64] {
            for meta_cols in [2, 4] {
                let mut seen = vec![false; rows * meta_cols];
                for r in 0..rows {
                    for c in 0..meta_cols {
                        let o = reordered_offset::<i16>(r, c, rows);
                        assert!(!seen[o], "offset {o} hit twice");
                        seen[o] = true;
                    }
                }
            }
        }
        let mut seen = [false; 16 * 2];
        for r in 0..16 {
            for c in 0..2 {
                let o = reordered_offset::<i32>(r, c, 16);
                assert!(!seen[o]);
                seen[o] = true;
            }
        }
    }

    #[test]
    fn shapes_outside_the_layout_and_dense_groups_are_refused() {
        assert!(matches!(
            SemiStructured::<f16>::from_dense(&vec![f16::ZERO; 16 * 32], 16, 32),
            Err(FormatError::Shape { .. })
        ));
        assert!(matches!(
            SemiStructured::<f16>::from_dense(&vec![f16::ZERO; 32 * 16], 32, 16),
            Err(FormatError::Shape { .. })
        ));
        assert!(SemiStructured::<i8>::from_dense(&[0; 16 * 64], 16, 64).is_ok());
        let mut dense = vec![1.0f32; 32 * 16];
        dense[1] = 0.0;
        // f32 is 1:2: the pair (2, 3) of row 0 keeps both entries.
        assert!(matches!(
            SemiStructured::<f32>::from_dense(&dense, 32, 16),
            Err(FormatError::PatternViolation {
                row: 0,
                group: 1,
                kept: 2,
                allowed: 1,
                ..
            })
        ));
    }

    #[test]
    fn invalid_metadata_codes_are_refused() {
        let s = SemiStructured::<f16>::from_dense(&vec![f16::ZERO; 32 * 32], 32, 32).unwrap();
        let (rows, cols, values, mut meta) = s.into_parts();
        // Every code of an all-zero matrix is 0b1110; write (3, 2) = 0b1011 into word 0.
        meta[0] = ((meta[0] as u16 & 0xFFF0) | 0b1011) as i16;
        assert!(matches!(
            SemiStructured::<f16>::try_from_parts(rows, cols, values, meta),
            Err(FormatError::InvalidMetadata { code: 0b1011, .. })
        ));
        let s = SemiStructured::<f32>::from_dense(&[0.0; 32 * 16], 32, 16).unwrap();
        let (rows, cols, values, mut meta) = s.into_parts();
        meta[0] = ((meta[0] as u16 & 0xFFF0) | 0b1000) as i16;
        assert!(matches!(
            SemiStructured::<f32>::try_from_parts(rows, cols, values, meta),
            Err(FormatError::InvalidMetadata { code: 0b1000, .. })
        ));
    }

    #[test]
    fn two_four_masks_from_nm_mask_export_exactly() {
        use crate::{HostTensor, NmPattern, Remainder, nm_mask};
        let (rows, cols) = (32, 64);
        let weights: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 263) as f32 - 131.0) / 16.0)
            .collect();
        let scores = HostTensor::new(weights.clone(), &[rows, cols], "weights")
            .unwrap()
            .abs();
        let mask = nm_mask(
            &scores,
            NmPattern::new(2, 4).unwrap(),
            1,
            Remainder::Error,
            None,
        )
        .unwrap();
        let halves: Vec<f16> = weights.iter().map(|&w| f16::from_f32(w)).collect();
        let s = SemiStructured::<f16>::from_masked(&halves, mask.as_slice(), rows, cols).unwrap();
        let expected: Vec<f16> = halves
            .iter()
            .zip(mask.as_slice())
            .map(|(&w, &k)| if k { w } else { f16::ZERO })
            .collect();
        assert_eq!(s.to_dense(), expected);
        // 1:2 for f32.
        let mask = nm_mask(
            &scores,
            NmPattern::new(1, 2).unwrap(),
            1,
            Remainder::Error,
            None,
        )
        .unwrap();
        let s = SemiStructured::<f32>::from_masked(&weights, mask.as_slice(), rows, cols).unwrap();
        let expected: Vec<f32> = weights
            .iter()
            .zip(mask.as_slice())
            .map(|(&w, &k)| if k { w } else { 0.0 })
            .collect();
        assert_eq!(s.to_dense(), expected);
    }

    fn two_four_f16(rows: usize, cols: usize) -> impl Strategy<Value = Vec<f16>> {
        let group = proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..=2);
        (
            proptest::collection::vec(group, rows * cols / 4),
            proptest::collection::vec(-8.0f32..8.0, rows * cols),
        )
            .prop_map(move |(groups, values)| {
                let mut dense = vec![f16::ZERO; rows * cols];
                for (g, keep) in groups.iter().enumerate() {
                    for &j in keep {
                        dense[g * 4 + j] = f16::from_f32(values[g * 4 + j]);
                    }
                }
                dense
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn f16_round_trip(dense in two_four_f16(64, 64)) {
            let s = SemiStructured::from_dense(&dense, 64, 64).unwrap();
            prop_assert_eq!(s.to_dense(), dense.clone());
            let (rows, cols, values, meta) = s.clone().into_parts();
            prop_assert_eq!(SemiStructured::try_from_parts(rows, cols, values, meta).unwrap(), s);
        }

        #[test]
        fn f32_pairs_round_trip(keep in proptest::collection::vec(0u8..3, 32 * 16 / 2),
                                values in proptest::collection::vec(-4.0f32..4.0, 32 * 16)) {
            let mut dense = vec![0.0f32; 32 * 16];
            for (p, &k) in keep.iter().enumerate() {
                if k < 2 {
                    dense[2 * p + usize::from(k)] = values[2 * p + usize::from(k)];
                }
            }
            let s = SemiStructured::from_dense(&dense, 32, 16).unwrap();
            prop_assert_eq!(s.to_dense(), dense);
            let (rows, cols, v, meta) = s.clone().into_parts();
            prop_assert_eq!(SemiStructured::try_from_parts(rows, cols, v, meta).unwrap(), s);
        }
    }
}
