//! Activations produced on demand by a closure, e.g. a forward hook in the user's burn model.

use burn::prelude::*;

use crate::{ActivationSource, Error, Result, SourcePosition, check_finite, host_rows};

/// Calls `produce(chunk_index)` for each new chunk of activations `[rows, d_in]`; `None` ends the
/// stream. The chunk index makes the stream resumable: after a restart the source asks for the
/// chunk it stopped in again, so a closure that is a deterministic function of its index (a model
/// run over batch `i` of a dataset) resumes exactly.
///
/// Each chunk is checked for its width and for NaN/Inf values.
///
/// ```
/// use burn::prelude::*;
/// use sae_train::{ActivationSource, ClosureSource};
/// let device = Device::flex();
/// let d = device.clone();
/// let mut source = ClosureSource::new(4, move |chunk| {
///     (chunk < 3).then(|| Tensor::<2>::ones([8, 4], &d) * (chunk as f32))
/// });
/// let (mut values, mut tokens) = (Vec::new(), Vec::new());
/// assert_eq!(source.read(10, &mut values, &mut tokens)?, 8); // one chunk at a time
/// # Ok::<(), sae_train::Error>(())
/// ```
pub struct ClosureSource<F> {
    produce: F,
    d_in: usize,
    chunk_index: u64,
    chunk: Vec<f32>,
    row: usize,
    loaded: bool,
    finished: bool,
}

impl<F: FnMut(u64) -> Option<Tensor<2>>> ClosureSource<F> {
    /// A source of width `d_in` fed by `produce`.
    pub fn new(d_in: usize, produce: F) -> Self {
        Self {
            produce,
            d_in,
            chunk_index: 0,
            chunk: Vec::new(),
            row: 0,
            loaded: false,
            finished: false,
        }
    }

    fn rows_in_chunk(&self) -> usize {
        self.chunk.len() / self.d_in.max(1)
    }

    /// Loads chunk `self.chunk_index`; false when the closure ends the stream.
    fn load(&mut self) -> Result<bool> {
        let Some(t) = (self.produce)(self.chunk_index) else {
            self.finished = true;
            self.chunk.clear();
            return Ok(false);
        };
        let name = format!("closure chunk {}", self.chunk_index);
        let [_, width] = t.dims();
        if width != self.d_in {
            return Err(Error::WidthMismatch {
                source_name: name,
                expected: self.d_in,
                found: width,
            });
        }
        let values = host_rows(t, &name)?;
        check_finite(&name, &values, self.d_in, 0)?;
        self.chunk = values;
        self.loaded = true;
        Ok(true)
    }
}

impl<F: FnMut(u64) -> Option<Tensor<2>>> ActivationSource for ClosureSource<F> {
    fn d_in(&self) -> usize {
        self.d_in
    }
    fn num_rows(&self) -> Option<u64> {
        None
    }
    fn name(&self) -> String {
        "closure source".into()
    }
    fn position(&self) -> SourcePosition {
        SourcePosition {
            chunk: self.chunk_index,
            row: self.row as u64,
        }
    }
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        self.chunk_index = position.chunk;
        self.finished = false;
        self.loaded = false;
        self.chunk.clear();
        self.row = 0;
        if position.row > 0 {
            if !self.load()? || position.row as usize > self.rows_in_chunk() {
                return Err(Error::OutOfRange {
                    source_name: self.name(),
                    what: format!("position {position:?} lies past the end of its chunk"),
                });
            }
            self.row = position.row as usize;
        }
        Ok(())
    }
    fn read(
        &mut self,
        max_rows: usize,
        values: &mut Vec<f32>,
        tokens: &mut Vec<u64>,
    ) -> Result<usize> {
        loop {
            if self.finished || max_rows == 0 {
                return Ok(0);
            }
            if !self.loaded {
                if !self.load()? {
                    return Ok(0);
                }
                continue;
            }
            let rows = self.rows_in_chunk();
            if self.row >= rows {
                // The chunk is spent: move on (an empty chunk is skipped, not an end).
                self.chunk_index += 1;
                self.loaded = false;
                self.row = 0;
                continue;
            }
            let take = max_rows.min(rows - self.row);
            let d = self.d_in;
            values.extend_from_slice(&self.chunk[self.row * d..(self.row + take) * d]);
            tokens.extend((self.row..self.row + take).map(|r| r as u64));
            self.row += take;
            return Ok(take);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(device: Device) -> ClosureSource<impl FnMut(u64) -> Option<Tensor<2>>> {
        ClosureSource::new(2, move |i| {
            (i < 3).then(|| Tensor::<2>::ones([3, 2], &device) * (i as f32))
        })
    }

    #[test]
    fn streams_chunks_and_resumes_mid_chunk() {
        let device = crate::test_device();
        let mut s = source(device.clone());
        let (mut v, mut t) = (vec![], vec![]);
        while s.read(2, &mut v, &mut t).unwrap() > 0 {}
        assert_eq!(v.len(), 18);
        assert_eq!(t, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
        let mut s = source(device);
        let (mut v, mut t) = (vec![], vec![]);
        s.read(3, &mut v, &mut t).unwrap();
        s.read(1, &mut v, &mut t).unwrap();
        let at = s.position();
        assert_eq!(at, SourcePosition { chunk: 1, row: 1 });
        let (mut a, mut b) = (vec![], vec![]);
        s.read(5, &mut a, &mut b).unwrap();
        s.seek(at).unwrap();
        let (mut c, mut d) = (vec![], vec![]);
        s.read(5, &mut c, &mut d).unwrap();
        assert_eq!((a, b), (c, d));
    }

    #[test]
    fn wrong_width_and_nan_are_errors() {
        let device = crate::test_device();
        let d = device.clone();
        let mut s = ClosureSource::new(3, move |_| Some(Tensor::<2>::ones([2, 2], &d)));
        let (mut v, mut t) = (vec![], vec![]);
        assert!(matches!(
            s.read(2, &mut v, &mut t),
            Err(Error::WidthMismatch { .. })
        ));
        let mut s = ClosureSource::new(2, move |_| {
            Some(Tensor::<2>::from_floats([[1.0, f32::NAN]], &device))
        });
        assert!(matches!(
            s.read(2, &mut v, &mut t),
            Err(Error::NonFinite { .. })
        ));
    }
}
