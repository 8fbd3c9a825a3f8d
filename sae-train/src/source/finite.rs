//! The checks sources run on the rows they hand out: a float tensor's values on the host, and
//! no NaN or infinity.

use burn::prelude::*;

use crate::{Error, Result};

/// The values of a `[rows, d_in]` tensor on the host as row-major `f32`.
///
/// # Errors
/// [`Error::UnsupportedDtype`] naming `source` when the tensor's values are not floats.
pub(crate) fn host_rows(tensor: Tensor<2>, source: &str) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::UnsupportedDtype {
            source_name: source.to_string(),
            found: format!("{e:?}"),
            expected: "a float tensor".into(),
        })
}

/// Checks that every value of `rows` (row-major, `d_in` wide, the first row being row
/// `first_row` of the source) is finite.
///
/// # Errors
/// [`Error::NonFinite`] naming the first offending row and column.
pub(crate) fn check_finite(source: &str, rows: &[f32], d_in: usize, first_row: u64) -> Result<()> {
    // One pass in the common case; find the position only on failure.
    if rows.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let at = rows.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(Error::NonFinite {
        source_name: source.to_string(),
        row: first_row + (at / d_in.max(1)) as u64,
        column: at % d_in.max(1),
        value: rows[at],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_row_and_column_of_the_first_bad_value() {
        let rows = [1.0, 2.0, 3.0, f32::NAN, 5.0, f32::INFINITY];
        match check_finite("x", &rows, 3, 10) {
            Err(Error::NonFinite { row, column, .. }) => assert_eq!((row, column), (11, 0)),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        assert!(check_finite("x", &rows[..3], 3, 0).is_ok());
    }
}
