//! Compressed sparse rows: the format of unstructured sparsity and of the CPU kernel.

use super::dense_input::{Keep, check_dense};
use super::error::{FormatError, FormatResult, check_finite, check_len};

const FORMAT: &str = "CSR";

/// A sparse matrix in compressed sparse row (CSR) form, `f32` values and `u32` column indices.
///
/// Rows are **output channels** and columns the **input (reduction) dimension**, as in torch's
/// `Linear.weight` `[out, in]` — the transpose of burn's `Linear.weight` `[d_in, d_out]`.
///
/// # Layout
///
/// The SciPy / sprs / nalgebra-sparse layout:
/// - `indptr[rows + 1]`: `indptr[0] = 0`, non-decreasing, `indptr[rows] = nnz`; row `r` owns
///   entries `indptr[r] .. indptr[r + 1]`;
/// - `indices[nnz]`: column ids in `[0, cols)`, strictly increasing within a row;
/// - `values[nnz]`: the stored values, finite.
///
/// Storage is `8·nnz + 8·(rows + 1)` bytes (`usize` row pointers), below a dense `f32` matrix's
/// `4·rows·cols` once density falls under about one half.
///
/// A matrix built from a mask stores exactly the masked-in entries, including those whose value
/// is zero: the mask, not the values, defines the structure, so `mask()` gives it back.
///
/// # Example
///
/// ```
/// use pruning::format::CsrMatrix;
///
/// let dense = [1.0, 0.0, 2.0,
///              0.0, 0.0, 0.0];
/// let csr = CsrMatrix::from_dense(&dense, 2, 3)?;
/// assert_eq!(csr.indptr(), &[0, 2, 2]);
/// assert_eq!(csr.indices(), &[0, 2]);
/// assert_eq!(csr.values(), &[1.0, 2.0]);
/// assert_eq!(csr.to_dense(), dense);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// The raw arrays of a [`CsrMatrix`], as read from or written to another tool.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrParts {
    /// Number of rows (output channels).
    pub rows: usize,
    /// Number of columns (input dimension).
    pub cols: usize,
    /// Row pointers, `rows + 1` entries.
    pub indptr: Vec<usize>,
    /// Column index of every stored entry, row by row.
    pub indices: Vec<u32>,
    /// Value of every stored entry, row by row.
    pub values: Vec<f32>,
}

impl CsrMatrix {
    /// Compresses the non-zero entries of a row-major `rows × cols` dense matrix.
    ///
    /// # Errors
    ///
    /// [`FormatError::Length`] if `dense.len() != rows * cols`, [`FormatError::NonFinite`] for a
    /// NaN or infinite value, [`FormatError::Shape`] if `cols` exceeds the `u32` index range.
    pub fn from_dense(dense: &[f32], rows: usize, cols: usize) -> FormatResult<Self> {
        Self::build(dense, rows, cols, Keep::NonZero)
    }

    /// Compresses the entries of a row-major dense matrix where `mask` is `true` (zeros included).
    ///
    /// # Errors
    ///
    /// As [`from_dense`](Self::from_dense), and [`FormatError::Length`] if the mask's length is
    /// not `rows * cols`.
    pub fn from_masked(
        dense: &[f32],
        mask: &[bool],
        rows: usize,
        cols: usize,
    ) -> FormatResult<Self> {
        Self::build(dense, rows, cols, Keep::Mask(mask))
    }

    fn build(dense: &[f32], rows: usize, cols: usize, keep: Keep<'_>) -> FormatResult<Self> {
        check_dense(FORMAT, rows, cols, dense, keep)?;
        check_index_range(cols)?;
        let mut indptr = Vec::with_capacity(rows + 1);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        indptr.push(0);
        for r in 0..rows {
            let row = &dense[r * cols..(r + 1) * cols];
            for (c, &v) in row.iter().enumerate() {
                if keep.keeps(r * cols + c, v) {
                    indices.push(c as u32);
                    values.push(v);
                }
            }
            indptr.push(indices.len());
        }
        Ok(Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// Builds a matrix from raw arrays after checking every invariant of the layout.
    ///
    /// # Errors
    ///
    /// [`FormatError::Length`] for arrays of the wrong length, [`FormatError::RowPointer`] for a
    /// row pointer that does not start at 0, decreases, or does not end at `nnz`,
    /// [`FormatError::IndexOutOfRange`] for a column `>= cols`, [`FormatError::Unsorted`] for
    /// columns that are not strictly increasing within a row, [`FormatError::NonFinite`] for a
    /// NaN or infinite value.
    pub fn try_from_parts(parts: CsrParts) -> FormatResult<Self> {
        let CsrParts {
            rows,
            cols,
            indptr,
            indices,
            values,
        } = parts;
        check_index_range(cols)?;
        check_len(FORMAT, "indptr", rows + 1, indptr.len())?;
        check_len(FORMAT, "values", indices.len(), values.len())?;
        check_row_pointer(FORMAT, "indptr", &indptr, indices.len())?;
        check_sorted_rows(FORMAT, "indices", &indptr, &indices, cols)?;
        check_finite(FORMAT, "values", &values)?;
        Ok(Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// Gives back the raw arrays.
    pub fn into_parts(self) -> CsrParts {
        CsrParts {
            rows: self.rows,
            cols: self.cols,
            indptr: self.indptr,
            indices: self.indices,
            values: self.values,
        }
    }

    /// Number of rows (output channels).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (input dimension).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Stored entries over `rows · cols` (0 for an empty shape).
    pub fn density(&self) -> f64 {
        let area = self.rows * self.cols;
        if area == 0 {
            0.0
        } else {
            self.nnz() as f64 / area as f64
        }
    }

    /// Row pointers, `rows + 1` entries.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column indices of all stored entries, row by row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Values of all stored entries, row by row.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The column indices and values of row `r`.
    ///
    /// # Panics
    ///
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        assert!(r < self.rows, "row {r} out of range for {} rows", self.rows);
        let range = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Bytes held by the three arrays.
    pub fn storage_bytes(&self) -> usize {
        self.indptr.len() * size_of::<usize>()
            + self.indices.len() * size_of::<u32>()
            + self.values.len() * size_of::<f32>()
    }

    /// The row-major dense matrix, zeros where nothing is stored.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.rows * self.cols];
        for r in 0..self.rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                dense[r * self.cols + c as usize] = v;
            }
        }
        dense
    }

    /// The structure as a row-major mask: `true` where an entry is stored.
    pub fn mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.rows * self.cols];
        for r in 0..self.rows {
            for &c in self.row(r).0 {
                mask[r * self.cols + c as usize] = true;
            }
        }
        mask
    }
}

/// Column ids are `u32`; a wider matrix cannot be indexed.
fn check_index_range(cols: usize) -> FormatResult<()> {
    if cols as u64 > u64::from(u32::MAX) + 1 {
        return Err(FormatError::Shape {
            format: FORMAT,
            reason: format!("{cols} columns exceed the u32 index range"),
        });
    }
    Ok(())
}

/// A row pointer must start at 0, never decrease and end at `nnz`.
pub(crate) fn check_row_pointer(
    format: &'static str,
    array: &'static str,
    indptr: &[usize],
    nnz: usize,
) -> FormatResult<()> {
    let bad = |position: usize, reason: String| FormatError::RowPointer {
        format,
        array,
        position,
        reason,
    };
    if indptr[0] != 0 {
        return Err(bad(0, format!("starts at {}, expected 0", indptr[0])));
    }
    if let Some(p) = indptr.windows(2).position(|w| w[1] < w[0]) {
        return Err(bad(
            p + 1,
            format!("decreases from {} to {}", indptr[p], indptr[p + 1]),
        ));
    }
    let last = indptr.len() - 1;
    if indptr[last] != nnz {
        return Err(bad(
            last,
            format!("ends at {}, expected nnz = {nnz}", indptr[last]),
        ));
    }
    Ok(())
}

/// Indices within every row must be `< bound` and strictly increasing.
pub(crate) fn check_sorted_rows(
    format: &'static str,
    array: &'static str,
    indptr: &[usize],
    indices: &[u32],
    bound: usize,
) -> FormatResult<()> {
    for (row, w) in indptr.windows(2).enumerate() {
        let row_indices = &indices[w[0]..w[1]];
        for (position, &index) in row_indices.iter().enumerate() {
            if index as usize >= bound {
                return Err(FormatError::IndexOutOfRange {
                    format,
                    array,
                    row,
                    index: index as usize,
                    bound,
                });
            }
            if position > 0 && index <= row_indices[position - 1] {
                return Err(FormatError::Unsorted {
                    format,
                    array,
                    row,
                    position,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{dense_and_mask, masked};
    use proptest::prelude::*;

    #[test]
    fn explicit_zeros_under_a_mask_are_stored() {
        let dense = [0.0, 3.0, 0.0, 4.0];
        let csr = CsrMatrix::from_masked(&dense, &[true, true, false, false], 2, 2).unwrap();
        assert_eq!(csr.nnz(), 2);
        assert_eq!(csr.indices(), &[0, 1]);
        assert_eq!(csr.values(), &[0.0, 3.0]);
        assert_eq!(csr.mask(), vec![true, true, false, false]);
        assert_eq!(csr.to_dense(), vec![0.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn empty_shapes_and_all_zero_matrices() {
        let csr = CsrMatrix::from_dense(&[], 0, 5).unwrap();
        assert_eq!(csr.indptr(), &[0]);
        let csr = CsrMatrix::from_dense(&[0.0; 6], 3, 2).unwrap();
        assert_eq!(csr.indptr(), &[0, 0, 0, 0]);
        assert_eq!(csr.nnz(), 0);
        assert_eq!(csr.density(), 0.0);
    }

    fn parts() -> CsrParts {
        CsrParts {
            rows: 2,
            cols: 4,
            indptr: vec![0, 2, 3],
            indices: vec![1, 3, 0],
            values: vec![1.0, 2.0, 3.0],
        }
    }

    #[test]
    fn valid_parts_are_accepted() {
        let csr = CsrMatrix::try_from_parts(parts()).unwrap();
        assert_eq!(csr.to_dense(), vec![0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn every_broken_invariant_is_named() {
        type Expectation = fn(&FormatError) -> bool;
        let cases: Vec<(CsrParts, Expectation)> = vec![
            (
                CsrParts {
                    indptr: vec![0, 2],
                    ..parts()
                },
                |e| {
                    matches!(
                        e,
                        FormatError::Length {
                            array: "indptr",
                            ..
                        }
                    )
                },
            ),
            (
                CsrParts {
                    values: vec![1.0],
                    ..parts()
                },
                |e| {
                    matches!(
                        e,
                        FormatError::Length {
                            array: "values",
                            ..
                        }
                    )
                },
            ),
            (
                CsrParts {
                    indptr: vec![1, 2, 3],
                    ..parts()
                },
                |e| matches!(e, FormatError::RowPointer { position: 0, .. }),
            ),
            (
                CsrParts {
                    indptr: vec![0, 3, 2],
                    ..parts()
                },
                |e| matches!(e, FormatError::RowPointer { position: 2, .. }),
            ),
            (
                CsrParts {
                    indptr: vec![0, 1, 2],
                    ..parts()
                },
                |e| matches!(e, FormatError::RowPointer { position: 2, .. }),
            ),
            (
                CsrParts {
                    indices: vec![1, 4, 0],
                    ..parts()
                },
                |e| {
                    matches!(
                        e,
                        FormatError::IndexOutOfRange {
                            row: 0,
                            index: 4,
                            ..
                        }
                    )
                },
            ),
            (
                CsrParts {
                    indices: vec![3, 1, 0],
                    ..parts()
                },
                |e| {
                    matches!(
                        e,
                        FormatError::Unsorted {
                            row: 0,
                            position: 1,
                            ..
                        }
                    )
                },
            ),
            (
                CsrParts {
                    indices: vec![1, 1, 0],
                    ..parts()
                },
                |e| matches!(e, FormatError::Unsorted { .. }),
            ),
            (
                CsrParts {
                    values: vec![1.0, f32::NAN, 3.0],
                    ..parts()
                },
                |e| matches!(e, FormatError::NonFinite { index: 1, .. }),
            ),
        ];
        for (bad, is_expected) in cases {
            let err = CsrMatrix::try_from_parts(bad.clone()).unwrap_err();
            assert!(is_expected(&err), "{bad:?} gave {err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn masked_round_trip((rows, cols, dense, mask) in dense_and_mask(12, 12)) {
            let csr = CsrMatrix::from_masked(&dense, &mask, rows, cols).unwrap();
            prop_assert_eq!(csr.to_dense(), masked(&dense, &mask));
            prop_assert_eq!(csr.mask(), mask.clone());
            prop_assert_eq!(csr.nnz(), mask.iter().filter(|&&m| m).count());
            let again = CsrMatrix::try_from_parts(csr.clone().into_parts()).unwrap();
            prop_assert_eq!(again, csr);
        }

        #[test]
        fn dense_round_trip((rows, cols, dense, mask) in dense_and_mask(12, 12)) {
            let sparse = masked(&dense, &mask);
            let csr = CsrMatrix::from_dense(&sparse, rows, cols).unwrap();
            prop_assert_eq!(csr.to_dense(), sparse.clone());
            prop_assert!(csr.values().iter().all(|&v| v != 0.0));
        }
    }
}
