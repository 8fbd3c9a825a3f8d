//! Why a compressed format refused its input.

/// Everything that can be wrong with data handed to a compressed format: a dense weight and its
/// mask, or the raw arrays of a format read from elsewhere (`try_from_parts`).
///
/// Every variant names the array and the first offending position, so that a corrupt file or a
/// mismatched mask can be traced to its source. It converts into the crate's
/// [`Error`](crate::Error) with `?`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// An array has the wrong number of elements for the declared shape.
    #[error("{format}: `{array}` has {found} elements, expected {expected}")]
    Length {
        /// The format being built (`"CSR"`, `"N:M"`, ...).
        format: &'static str,
        /// The array (`"values"`, `"indptr"`, `"mask"`, ...).
        array: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length found.
        found: usize,
    },

    /// A value is NaN or ±Inf.
    #[error("{format}: `{array}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// The format being built.
        format: &'static str,
        /// The array holding the value.
        array: &'static str,
        /// The flat (row-major) index of the first offending element.
        index: usize,
        /// The value.
        value: f32,
    },

    /// A shape or pattern parameter is unusable: a block of size zero, `N > M`, `M == 0`, or a
    /// shape that a layout cannot hold (CUTLASS needs `rows % 32 == 0`, ...).
    #[error("{format}: {reason}")]
    Shape {
        /// The format being built.
        format: &'static str,
        /// What is wrong, with the expected and found values.
        reason: String,
    },

    /// A row pointer array is not a valid prefix sum: it must start at 0, never decrease and end
    /// at the number of stored entries.
    #[error("{format}: `{array}` is not a valid row pointer at position {position}: {reason}")]
    RowPointer {
        /// The format being built.
        format: &'static str,
        /// The pointer array (`"indptr"`, `"block_indptr"`).
        array: &'static str,
        /// The first offending position in the pointer array.
        position: usize,
        /// What is wrong there.
        reason: String,
    },

    /// A column (or block column, or in-group) index is out of range.
    #[error("{format}: `{array}` index {index} in row {row} is out of range (must be < {bound})")]
    IndexOutOfRange {
        /// The format being built.
        format: &'static str,
        /// The index array.
        array: &'static str,
        /// The row (or block row) it belongs to.
        row: usize,
        /// The offending index.
        index: usize,
        /// The exclusive upper bound.
        bound: usize,
    },

    /// Indices within a row (or an N:M group) are not strictly increasing: unsorted or duplicated.
    #[error("{format}: `{array}` is not strictly increasing in row {row} at entry {position}")]
    Unsorted {
        /// The format being built.
        format: &'static str,
        /// The index array.
        array: &'static str,
        /// The row (or block row) concerned.
        row: usize,
        /// The position within the row of the first index that is not larger than its
        /// predecessor.
        position: usize,
    },

    /// A mask keeps more entries in an N:M group than the pattern allows. Converting would drop
    /// kept weights, so it is refused (PyTorch's 2:4 conversion truncates silently instead).
    #[error(
        "{format}: row {row}, group {group} keeps {kept} entries but the pattern allows {allowed}"
    )]
    PatternViolation {
        /// The format being built.
        format: &'static str,
        /// The row.
        row: usize,
        /// The group index along the row (group `g` covers columns `g*M .. g*M + M`).
        group: usize,
        /// How many entries the mask keeps there.
        kept: usize,
        /// How many the pattern allows (`N`).
        allowed: usize,
    },

    /// An entry that a layout defines as zero is not: a padding column of an N:M matrix whose
    /// width is not a multiple of `M`.
    #[error("{format}: `{array}` holds {value} at flat index {index}, where the layout requires 0")]
    NonZeroPadding {
        /// The format being built.
        format: &'static str,
        /// The array.
        array: &'static str,
        /// The flat index of the entry.
        index: usize,
        /// The value found.
        value: f32,
    },

    /// A metadata code of the CUTLASS 2:4 layout that no conversion produces.
    #[error(
        "{format}: metadata code {code:#06b} for row {row}, group {group} is not a valid \
         pair of ascending indices"
    )]
    InvalidMetadata {
        /// The format being read.
        format: &'static str,
        /// The row of the dense matrix.
        row: usize,
        /// The group (4 columns, or 2 for `f32`) along the row.
        group: usize,
        /// The 4-bit code found.
        code: u8,
    },
}

/// `Result` with a [`FormatError`].
pub type FormatResult<T> = Result<T, FormatError>;

/// Checks that every value is finite, naming the array in the error.
pub(crate) fn check_finite(
    format: &'static str,
    array: &'static str,
    values: &[f32],
) -> FormatResult<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(FormatError::NonFinite {
            format,
            array,
            index,
            value: values[index],
        }),
    }
}

/// Checks an array's length against what the shape requires.
pub(crate) fn check_len(
    format: &'static str,
    array: &'static str,
    expected: usize,
    found: usize,
) -> FormatResult<()> {
    if expected == found {
        Ok(())
    } else {
        Err(FormatError::Length {
            format,
            array,
            expected,
            found,
        })
    }
}

/// `rows * cols`, or a shape error when it overflows `usize`.
pub(crate) fn checked_area(format: &'static str, rows: usize, cols: usize) -> FormatResult<usize> {
    rows.checked_mul(cols).ok_or_else(|| FormatError::Shape {
        format,
        reason: format!("{rows} x {cols} elements overflow usize"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_finite_names_array_and_first_bad_index() {
        assert!(check_finite("CSR", "values", &[1.0, -2.0]).is_ok());
        let err = check_finite("CSR", "values", &[1.0, f32::INFINITY, f32::NAN]).unwrap_err();
        assert_eq!(
            err,
            FormatError::NonFinite {
                format: "CSR",
                array: "values",
                index: 1,
                value: f32::INFINITY
            }
        );
        assert!(err.to_string().contains("`values`"));
    }

    #[test]
    fn length_errors_name_expected_and_found() {
        let err = check_len("N:M", "indices", 8, 7).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("N:M") && msg.contains('8') && msg.contains('7'),
            "{msg}"
        );
    }

    #[test]
    fn area_overflow_is_an_error() {
        assert_eq!(checked_area("CSR", 3, 4), Ok(12));
        assert!(checked_area("CSR", usize::MAX, 2).is_err());
    }
}
