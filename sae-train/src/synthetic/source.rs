//! A synthetic dataset as an activation source.

use burn::prelude::*;

use super::SyntheticDataset;
use crate::{ActivationSource, Result, SourcePosition};

/// Streams batches `0, 1, 2, …` of a [`SyntheticDataset`] (chunk `i` = batch `i` of
/// `chunk_rows` tokens), optionally ending after `num_chunks`. Positions are `(chunk, row)`, so a
/// resumed run regenerates the chunk it stopped in and continues exactly.
///
/// ```
/// use burn::prelude::*;
/// use sae_train::{ActivationSource, HierarchicalTree, HierarchicalTreeConfig, SyntheticSource};
/// let tree = HierarchicalTree::new(HierarchicalTreeConfig::default());
/// let mut source = SyntheticSource::new(tree, 256, Some(4), Device::flex());
/// assert_eq!(source.num_rows(), Some(1024));
/// # let (mut v, mut t) = (vec![], vec![]);
/// # assert_eq!(source.read(300, &mut v, &mut t)?, 256);
/// # Ok::<(), sae_train::Error>(())
/// ```
pub struct SyntheticSource<D> {
    data: D,
    chunk_rows: usize,
    num_chunks: Option<u64>,
    device: Device,
    first_chunk: u64,
    chunk: u64,
    row: usize,
    current: Option<Vec<f32>>,
}

impl<D: SyntheticDataset> SyntheticSource<D> {
    /// Streams `data` in chunks of `chunk_rows` tokens, `num_chunks` of them (`None`: endless).
    ///
    /// # Panics
    /// If `chunk_rows` is 0.
    pub fn new(data: D, chunk_rows: usize, num_chunks: Option<u64>, device: Device) -> Self {
        assert!(chunk_rows > 0, "chunk_rows must be positive, got 0");
        Self {
            data,
            chunk_rows,
            num_chunks,
            device,
            first_chunk: 0,
            chunk: 0,
            row: 0,
            current: None,
        }
    }

    /// Draws the dataset's batches from `first_chunk` on (chunk `i` of the stream is batch
    /// `first_chunk + i`), e.g. a held-out stream that never meets the training batches.
    pub fn with_first_chunk(mut self, first_chunk: u64) -> Self {
        self.first_chunk = first_chunk;
        self.current = None;
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.data
    }
}

impl<D: SyntheticDataset> ActivationSource for SyntheticSource<D> {
    fn d_in(&self) -> usize {
        self.data.d_in()
    }
    fn num_rows(&self) -> Option<u64> {
        self.num_chunks.map(|c| c * self.chunk_rows as u64)
    }
    fn name(&self) -> String {
        self.data.name()
    }
    fn position(&self) -> SourcePosition {
        SourcePosition {
            chunk: self.chunk,
            row: self.row as u64,
        }
    }
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let past_end = self
            .num_chunks
            .is_some_and(|n| position.chunk > n || (position.chunk == n && position.row > 0));
        if past_end || position.row as usize > self.chunk_rows {
            return Err(crate::Error::OutOfRange {
                source_name: self.name(),
                what: format!("position {position:?} outside the stream"),
            });
        }
        if position.chunk != self.chunk {
            self.current = None;
        }
        self.chunk = position.chunk;
        self.row = position.row as usize;
        Ok(())
    }
    fn read(
        &mut self,
        max_rows: usize,
        values: &mut Vec<f32>,
        tokens: &mut Vec<u64>,
    ) -> Result<usize> {
        if self.row >= self.chunk_rows {
            self.chunk += 1;
            self.row = 0;
            self.current = None;
        }
        if self.num_chunks.is_some_and(|n| self.chunk >= n) || max_rows == 0 {
            return Ok(0);
        }
        let d = self.data.d_in();
        let chunk = self.chunk;
        let current = self.current.get_or_insert_with(|| {
            self.data
                .sample(self.first_chunk + chunk, self.chunk_rows, &self.device)
                .activations
        });
        let take = max_rows.min(self.chunk_rows - self.row);
        values.extend_from_slice(&current[self.row * d..(self.row + take) * d]);
        let first = chunk * self.chunk_rows as u64 + self.row as u64;
        tokens.extend(first..first + take as u64);
        self.row += take;
        Ok(take)
    }
}
