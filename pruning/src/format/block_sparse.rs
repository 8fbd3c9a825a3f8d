//! Block compressed sparse rows (BSR): structured sparsity in dense `R × C` tiles.

use super::csr::{check_row_pointer, check_sorted_rows};
use super::dense_input::{Keep, check_dense};
use super::error::{FormatError, FormatResult, check_finite, check_len, checked_area};

const FORMAT: &str = "BSR";

/// A sparse matrix stored as dense `R × C` blocks in block compressed sparse row (BSR) form.
///
/// Rows are output channels and columns the input dimension, as for
/// [`CsrMatrix`](super::CsrMatrix). The shape must be a whole number of blocks
/// (`rows % R == 0`, `cols % C == 0`): a layer whose shape does not fit is refused rather than
/// silently padded.
///
/// # Layout
///
/// The SciPy / torch `sparse_bsr` layout:
/// - `block_indptr[rows / R + 1]`: a row pointer over block rows (starts at 0, non-decreasing,
///   ends at the number of stored blocks `nnzb`);
/// - `block_indices[nnzb]`: block-column ids in `[0, cols / C)`, strictly increasing within a
///   block row;
/// - `blocks[nnzb · R · C]`: the stored blocks in the same order, each block row-major
///   (`blocks[b·R·C + i·C + j]` is entry `(i, j)` of block `b`).
///
/// A block is stored when any of its entries is kept (any mask entry `true`, or any non-zero
/// value); inside a stored block, entries that are not kept hold `0.0`. `to_dense` therefore
/// gives back `dense ⊙ mask` exactly.
///
/// # Example
///
/// ```
/// use pruning::format::BlockSparseMatrix;
///
/// // 2 × 4 with 1 × 2 blocks: only the block at (0, 1) and the one at (1, 0) hold values.
/// let dense = [0.0, 0.0, 1.0, 2.0,
///              3.0, 0.0, 0.0, 0.0];
/// let bsr = BlockSparseMatrix::from_dense(&dense, 2, 4, 1, 2)?;
/// assert_eq!(bsr.block_indptr(), &[0, 1, 2]);
/// assert_eq!(bsr.block_indices(), &[1, 0]);
/// assert_eq!(bsr.blocks(), &[1.0, 2.0, 3.0, 0.0]);
/// assert_eq!(bsr.to_dense(), dense);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSparseMatrix {
    rows: usize,
    cols: usize,
    block_rows: usize,
    block_cols: usize,
    block_indptr: Vec<usize>,
    block_indices: Vec<u32>,
    blocks: Vec<f32>,
}

/// The raw arrays of a [`BlockSparseMatrix`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSparseParts {
    /// Number of rows of the whole matrix.
    pub rows: usize,
    /// Number of columns of the whole matrix.
    pub cols: usize,
    /// Rows per block, `R`.
    pub block_rows: usize,
    /// Columns per block, `C`.
    pub block_cols: usize,
    /// Row pointer over block rows, `rows / R + 1` entries.
    pub block_indptr: Vec<usize>,
    /// Block-column index of every stored block.
    pub block_indices: Vec<u32>,
    /// The stored blocks, each `R × C` row-major.
    pub blocks: Vec<f32>,
}

impl BlockSparseMatrix {
    /// Compresses a row-major dense matrix into `R × C` blocks, storing each block that holds a
    /// non-zero value.
    ///
    /// # Errors
    ///
    /// [`FormatError::Shape`] for a zero block size or a shape that is not a whole number of
    /// blocks, [`FormatError::Length`] for a wrong `dense` length, [`FormatError::NonFinite`]
    /// for a NaN or infinite value.
    pub fn from_dense(
        dense: &[f32],
        rows: usize,
        cols: usize,
        block_rows: usize,
        block_cols: usize,
    ) -> FormatResult<Self> {
        Self::build(dense, rows, cols, block_rows, block_cols, Keep::NonZero)
    }

    /// Compresses the masked-in entries of a row-major dense matrix into `R × C` blocks, storing
    /// each block where the mask keeps at least one entry.
    ///
    /// # Errors
    ///
    /// As [`from_dense`](Self::from_dense), and [`FormatError::Length`] for a wrong mask length.
    pub fn from_masked(
        dense: &[f32],
        mask: &[bool],
        rows: usize,
        cols: usize,
        block_rows: usize,
        block_cols: usize,
    ) -> FormatResult<Self> {
        Self::build(dense, rows, cols, block_rows, block_cols, Keep::Mask(mask))
    }

    fn build(
        dense: &[f32],
        rows: usize,
        cols: usize,
        block_rows: usize,
        block_cols: usize,
        keep: Keep<'_>,
    ) -> FormatResult<Self> {
        check_block_shape(rows, cols, block_rows, block_cols)?;
        check_dense(FORMAT, rows, cols, dense, keep)?;
        let (brows, bcols) = (rows / block_rows, cols / block_cols);
        let mut block_indptr = Vec::with_capacity(brows + 1);
        let mut block_indices = Vec::new();
        let mut blocks = Vec::new();
        block_indptr.push(0);
        let mut tile = vec![0.0f32; block_rows * block_cols];
        for br in 0..brows {
            for bc in 0..bcols {
                let mut any = false;
                for i in 0..block_rows {
                    for j in 0..block_cols {
                        let flat = (br * block_rows + i) * cols + bc * block_cols + j;
                        let kept = keep.keeps(flat, dense[flat]);
                        any |= kept;
                        tile[i * block_cols + j] = if kept { dense[flat] } else { 0.0 };
                    }
                }
                if any {
                    block_indices.push(bc as u32);
                    blocks.extend_from_slice(&tile);
                }
            }
            block_indptr.push(block_indices.len());
        }
        Ok(Self {
            rows,
            cols,
            block_rows,
            block_cols,
            block_indptr,
            block_indices,
            blocks,
        })
    }

    /// Builds a matrix from raw arrays after checking every invariant of the layout.
    ///
    /// # Errors
    ///
    /// [`FormatError::Shape`] for a zero block size or a shape that is not a whole number of
    /// blocks, [`FormatError::Length`], [`FormatError::RowPointer`],
    /// [`FormatError::IndexOutOfRange`], [`FormatError::Unsorted`] and
    /// [`FormatError::NonFinite`] as for [`CsrMatrix::try_from_parts`](super::CsrMatrix::try_from_parts).
    pub fn try_from_parts(parts: BlockSparseParts) -> FormatResult<Self> {
        let BlockSparseParts {
            rows,
            cols,
            block_rows,
            block_cols,
            block_indptr,
            block_indices,
            blocks,
        } = parts;
        check_block_shape(rows, cols, block_rows, block_cols)?;
        let (brows, bcols) = (rows / block_rows, cols / block_cols);
        check_len(FORMAT, "block_indptr", brows + 1, block_indptr.len())?;
        let block_area = block_rows * block_cols;
        let expected_values =
            block_indices
                .len()
                .checked_mul(block_area)
                .ok_or_else(|| FormatError::Shape {
                    format: FORMAT,
                    reason: format!("{} blocks overflow usize", block_indices.len()),
                })?;
        check_len(FORMAT, "blocks", expected_values, blocks.len())?;
        check_row_pointer(FORMAT, "block_indptr", &block_indptr, block_indices.len())?;
        check_sorted_rows(
            FORMAT,
            "block_indices",
            &block_indptr,
            &block_indices,
            bcols,
        )?;
        check_finite(FORMAT, "blocks", &blocks)?;
        Ok(Self {
            rows,
            cols,
            block_rows,
            block_cols,
            block_indptr,
            block_indices,
            blocks,
        })
    }

    /// Gives back the raw arrays.
    pub fn into_parts(self) -> BlockSparseParts {
        BlockSparseParts {
            rows: self.rows,
            cols: self.cols,
            block_rows: self.block_rows,
            block_cols: self.block_cols,
            block_indptr: self.block_indptr,
            block_indices: self.block_indices,
            blocks: self.blocks,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The block shape `(R, C)`.
    pub fn block_shape(&self) -> (usize, usize) {
        (self.block_rows, self.block_cols)
    }

    /// Number of stored blocks.
    pub fn stored_blocks(&self) -> usize {
        self.block_indices.len()
    }

    /// Row pointer over block rows.
    pub fn block_indptr(&self) -> &[usize] {
        &self.block_indptr
    }

    /// Block-column index of every stored block.
    pub fn block_indices(&self) -> &[u32] {
        &self.block_indices
    }

    /// The stored blocks, each `R × C` row-major.
    pub fn blocks(&self) -> &[f32] {
        &self.blocks
    }

    /// Stored values (zeros inside stored blocks included) over `rows · cols`.
    pub fn density(&self) -> f64 {
        let area = self.rows * self.cols;
        if area == 0 {
            0.0
        } else {
            self.blocks.len() as f64 / area as f64
        }
    }

    /// Bytes held by the three arrays.
    pub fn storage_bytes(&self) -> usize {
        self.block_indptr.len() * size_of::<usize>()
            + self.block_indices.len() * size_of::<u32>()
            + self.blocks.len() * size_of::<f32>()
    }

    /// The row-major dense matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.rows * self.cols];
        let (r, c) = (self.block_rows, self.block_cols);
        for br in 0..self.block_indptr.len() - 1 {
            for b in self.block_indptr[br]..self.block_indptr[br + 1] {
                let bc = self.block_indices[b] as usize;
                for i in 0..r {
                    let src = &self.blocks[b * r * c + i * c..b * r * c + (i + 1) * c];
                    let start = (br * r + i) * self.cols + bc * c;
                    dense[start..start + c].copy_from_slice(src);
                }
            }
        }
        dense
    }

    /// Which blocks are stored, row-major over the `rows / R × cols / C` block grid.
    pub fn block_mask(&self) -> Vec<bool> {
        let bcols = self.cols.checked_div(self.block_cols).unwrap_or(0);
        let mut mask = vec![false; (self.block_indptr.len() - 1) * bcols];
        for br in 0..self.block_indptr.len() - 1 {
            for &bc in &self.block_indices[self.block_indptr[br]..self.block_indptr[br + 1]] {
                mask[br * bcols + bc as usize] = true;
            }
        }
        mask
    }
}

fn check_block_shape(
    rows: usize,
    cols: usize,
    block_rows: usize,
    block_cols: usize,
) -> FormatResult<()> {
    let shape = |reason: String| FormatError::Shape {
        format: FORMAT,
        reason,
    };
    if block_rows == 0 || block_cols == 0 {
        return Err(shape(format!(
            "block shape {block_rows} x {block_cols} must be at least 1 x 1"
        )));
    }
    if !rows.is_multiple_of(block_rows) || !cols.is_multiple_of(block_cols) {
        return Err(shape(format!(
            "shape {rows} x {cols} is not a whole number of {block_rows} x {block_cols} blocks"
        )));
    }
    checked_area(FORMAT, block_rows, block_cols)?;
    if (cols / block_cols) as u64 > u64::from(u32::MAX) + 1 {
        return Err(shape(format!(
            "{} block columns exceed the u32 index range",
            cols / block_cols
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{masked, weight};
    use proptest::prelude::*;

    #[test]
    fn shapes_that_do_not_tile_are_refused() {
        assert!(matches!(
            BlockSparseMatrix::from_dense(&[0.0; 6], 2, 3, 1, 2),
            Err(FormatError::Shape { .. })
        ));
        assert!(matches!(
            BlockSparseMatrix::from_dense(&[0.0; 6], 2, 3, 0, 1),
            Err(FormatError::Shape { .. })
        ));
    }

    #[test]
    fn a_block_is_stored_when_any_entry_is_kept() {
        let dense = [1.0, 2.0, 3.0, 4.0];
        let bsr = BlockSparseMatrix::from_masked(&dense, &[false, true, false, false], 2, 2, 2, 2)
            .unwrap();
        assert_eq!(bsr.stored_blocks(), 1);
        assert_eq!(bsr.blocks(), &[0.0, 2.0, 0.0, 0.0]);
        assert_eq!(bsr.block_mask(), vec![true]);
    }

    #[test]
    fn broken_parts_are_refused() {
        let good = BlockSparseParts {
            rows: 2,
            cols: 4,
            block_rows: 1,
            block_cols: 2,
            block_indptr: vec![0, 1, 2],
            block_indices: vec![1, 0],
            blocks: vec![1.0, 2.0, 3.0, 0.0],
        };
        assert!(BlockSparseMatrix::try_from_parts(good.clone()).is_ok());
        let bad_index = BlockSparseParts {
            block_indices: vec![2, 0],
            ..good.clone()
        };
        assert!(matches!(
            BlockSparseMatrix::try_from_parts(bad_index),
            Err(FormatError::IndexOutOfRange { bound: 2, .. })
        ));
        let short = BlockSparseParts {
            blocks: vec![1.0; 3],
            ..good.clone()
        };
        assert!(matches!(
            BlockSparseMatrix::try_from_parts(short),
            Err(FormatError::Length {
                array: "blocks",
                ..
            })
        ));
        let bad_ptr = BlockSparseParts {
            block_indptr: vec![0, 2, 1],
            ..good
        };
        assert!(matches!(
            BlockSparseMatrix::try_from_parts(bad_ptr),
            Err(FormatError::RowPointer { .. })
        ));
    }

    fn tiled() -> impl Strategy<Value = (usize, usize, usize, usize, Vec<f32>, Vec<bool>)> {
        (1usize..=4, 1usize..=4, 0usize..=4, 0usize..=4).prop_flat_map(|(r, c, br, bc)| {
            let len = r * br * c * bc;
            (
                Just(r * br),
                Just(c * bc),
                Just(r),
                Just(c),
                proptest::collection::vec(weight(), len),
                crate::format::testing::mask(len),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip((rows, cols, r, c, dense, mask) in tiled()) {
            let bsr = BlockSparseMatrix::from_masked(&dense, &mask, rows, cols, r, c).unwrap();
            prop_assert_eq!(bsr.to_dense(), masked(&dense, &mask));
            let again = BlockSparseMatrix::try_from_parts(bsr.clone().into_parts()).unwrap();
            prop_assert_eq!(&again, &bsr);
            // Every stored block holds a kept entry; every kept entry lies in a stored block.
            let blocks = bsr.block_mask();
            let bcols = cols / c;
            for (flat, &kept) in mask.iter().enumerate() {
                let (i, j) = (flat / cols, flat % cols);
                if kept {
                    prop_assert!(blocks[(i / r) * bcols + j / c]);
                }
            }
            for (b, &stored) in blocks.iter().enumerate() {
                let (bi, bj) = (b / bcols, b % bcols);
                let any_kept = (0..r).any(|i| (0..c).any(|j| mask[(bi * r + i) * cols + bj * c + j]));
                prop_assert_eq!(stored, any_kept, "block ({}, {})", bi, bj);
            }
            prop_assert_eq!(bsr.stored_blocks(), blocks.iter().filter(|&&b| b).count());
        }
    }
}
