//! The checks every format runs on a dense weight and its mask before compressing them.

use super::error::{FormatResult, check_finite, check_len, checked_area};

/// Which entries of a dense matrix a format stores.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keep<'a> {
    /// Every entry that is not `0.0` (or `-0.0`).
    NonZero,
    /// Exactly the entries where the mask is `true`, zeros included: the mask, not the values,
    /// defines the sparsity structure.
    Mask(&'a [bool]),
}

impl Keep<'_> {
    /// Whether the entry at flat index `i` with value `v` is stored.
    #[inline]
    pub(crate) fn keeps(&self, i: usize, v: f32) -> bool {
        match self {
            Keep::NonZero => v != 0.0,
            Keep::Mask(mask) => mask[i],
        }
    }
}

/// Validates a row-major `rows × cols` dense matrix and its optional mask: lengths match the
/// shape and every value is finite.
pub(crate) fn check_dense(
    format: &'static str,
    rows: usize,
    cols: usize,
    dense: &[f32],
    keep: Keep<'_>,
) -> FormatResult<()> {
    let area = checked_area(format, rows, cols)?;
    check_len(format, "dense", area, dense.len())?;
    if let Keep::Mask(mask) = keep {
        check_len(format, "mask", area, mask.len())?;
    }
    check_finite(format, "dense", dense)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatError;

    #[test]
    fn mask_length_and_non_finite_values_are_rejected() {
        assert!(check_dense("CSR", 2, 2, &[1.0; 4], Keep::NonZero).is_ok());
        assert!(matches!(
            check_dense("CSR", 2, 2, &[1.0; 4], Keep::Mask(&[true; 3])),
            Err(FormatError::Length { array: "mask", .. })
        ));
        assert!(matches!(
            check_dense("CSR", 2, 2, &[1.0; 3], Keep::NonZero),
            Err(FormatError::Length { array: "dense", .. })
        ));
        assert!(matches!(
            check_dense("CSR", 1, 2, &[1.0, f32::NAN], Keep::NonZero),
            Err(FormatError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn keep_rules() {
        assert!(!Keep::NonZero.keeps(0, 0.0));
        assert!(!Keep::NonZero.keeps(0, -0.0));
        assert!(Keep::NonZero.keeps(0, 1e-30));
        let mask = [true, false];
        assert!(Keep::Mask(&mask).keeps(0, 0.0));
        assert!(!Keep::Mask(&mask).keeps(1, 5.0));
    }
}
