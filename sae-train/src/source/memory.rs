//! Activations already in memory: a host buffer or a burn tensor.

use std::ops::Range;

use burn::prelude::*;

use super::rows::RowWindow;
use crate::{ActivationSource, Error, Result, SourcePosition, check_finite, host_rows};

/// Activations held in memory, `[rows, d_in]` row-major `f32`.
///
/// Every value is checked when the source is built, so reading never fails.
///
/// ```
/// use sae_train::{ActivationSource, InMemorySource};
/// let mut source = InMemorySource::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)?;
/// let (mut values, mut tokens) = (Vec::new(), Vec::new());
/// assert_eq!(source.read(10, &mut values, &mut tokens)?, 2);
/// assert_eq!(tokens, vec![0, 1]);
/// # Ok::<(), sae_train::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct InMemorySource {
    values: Vec<f32>,
    d_in: usize,
    window: RowWindow,
}

impl InMemorySource {
    /// Wraps `values` (row-major, `d_in` per row).
    ///
    /// # Errors
    /// [`Error::Empty`] for no rows, [`Error::WidthMismatch`] if the length is not a multiple of
    /// `d_in`, [`Error::NonFinite`] for NaN or infinite values.
    pub fn new(values: Vec<f32>, d_in: usize) -> Result<Self> {
        let name = "in-memory activations";
        if values.is_empty() || d_in == 0 {
            return Err(Error::Empty {
                source_name: name.into(),
            });
        }
        if !values.len().is_multiple_of(d_in) {
            return Err(Error::WidthMismatch {
                source_name: name.into(),
                expected: d_in,
                found: values.len() % d_in,
            });
        }
        check_finite(name, &values, d_in, 0)?;
        let rows = (values.len() / d_in) as u64;
        Ok(Self {
            values,
            d_in,
            window: RowWindow::full(rows),
        })
    }

    /// Copies a `[rows, d_in]` tensor to the host and wraps it.
    ///
    /// # Errors
    /// As [`InMemorySource::new`].
    pub fn from_tensor(activations: Tensor<2>) -> Result<Self> {
        let [_, d_in] = activations.dims();
        Self::new(host_rows(activations, "in-memory tensor")?, d_in)
    }

    /// Restricts the source to rows `range` (e.g. a held-out split); positions and token
    /// indices stay those of the whole buffer.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Empty`] for a range outside the rows or an empty one.
    pub fn with_rows(mut self, range: Range<u64>) -> Result<Self> {
        let total = (self.values.len() / self.d_in) as u64;
        self.window = RowWindow::select(total, range, &self.name())?;
        Ok(self)
    }
}

impl ActivationSource for InMemorySource {
    fn d_in(&self) -> usize {
        self.d_in
    }
    fn num_rows(&self) -> Option<u64> {
        Some(self.window.len())
    }
    fn name(&self) -> String {
        "in-memory activations".into()
    }
    fn position(&self) -> SourcePosition {
        self.window.position()
    }
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let name = self.name();
        self.window.seek(position, &name)
    }
    fn read(
        &mut self,
        max_rows: usize,
        values: &mut Vec<f32>,
        tokens: &mut Vec<u64>,
    ) -> Result<usize> {
        let (d, buffer) = (self.d_in, &self.values);
        self.window.read(max_rows, tokens, |range| {
            values.extend_from_slice(&buffer[range.start as usize * d..range.end as usize * d]);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_buffers() {
        assert!(matches!(
            InMemorySource::new(vec![], 4),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            InMemorySource::new(vec![1.0; 7], 4),
            Err(Error::WidthMismatch { .. })
        ));
        assert!(matches!(
            InMemorySource::new(vec![1.0, f32::NAN], 2),
            Err(Error::NonFinite { .. })
        ));
    }

    #[test]
    fn reads_a_window_and_seeks() {
        let values: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let mut s = InMemorySource::new(values, 2)
            .unwrap()
            .with_rows(3..7)
            .unwrap();
        let (mut v, mut t) = (vec![], vec![]);
        assert_eq!(s.read(3, &mut v, &mut t).unwrap(), 3);
        assert_eq!(t, vec![3, 4, 5]);
        assert_eq!(v[0], 6.0);
        assert_eq!(s.read(3, &mut v, &mut t).unwrap(), 1);
        assert_eq!(s.read(3, &mut v, &mut t).unwrap(), 0);
        s.seek(SourcePosition { chunk: 0, row: 2 }).unwrap();
        let (mut v, mut t) = (vec![], vec![]);
        s.read(1, &mut v, &mut t).unwrap();
        assert_eq!((t[0], v[0]), (5, 10.0));
        assert!(s.seek(SourcePosition { chunk: 0, row: 5 }).is_err());
    }

    #[test]
    fn from_tensor_round_trips() {
        let device = crate::test_device();
        let t = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
        let mut s = InMemorySource::from_tensor(t).unwrap();
        let (mut v, mut tk) = (vec![], vec![]);
        s.read(5, &mut v, &mut tk).unwrap();
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
    }
}
