//! A collection of sparse vectors in one compressed-sparse-row block.

use crate::error::{Error, Result};
use crate::vector::{SparseVector, SparseView, validate};

/// Many sparse vectors stored back to back (CSR layout: concatenated ids and values plus
/// offsets), the input of every index in this crate.
///
/// Document ids are positions: the first vector pushed is document 0.
///
/// ```
/// use sparse_index::{SparseCollection, SparseVector};
///
/// let mut docs = SparseCollection::new();
/// docs.push(&SparseVector::new(vec![0, 7], vec![1.0, 0.5])?);
/// docs.push_parts(&[3, 7], &[2.0, 1.0])?;
/// assert_eq!(docs.len(), 2);
/// assert_eq!(docs.get(1).indices(), &[3, 7]);
/// assert_eq!(docs.dim(), 8);
/// # Ok::<(), sparse_index::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SparseCollection {
    offsets: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    dim: u64,
}

impl SparseCollection {
    /// An empty collection.
    pub fn new() -> Self {
        Self {
            offsets: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
            dim: 0,
        }
    }

    /// A collection from owned vectors.
    pub fn from_vectors<'a>(vectors: impl IntoIterator<Item = &'a SparseVector>) -> Self {
        let mut c = Self::new();
        for v in vectors {
            c.push(v);
        }
        c
    }

    /// Appends a vector and returns its document id.
    ///
    /// # Panics
    /// If the collection already holds `u32::MAX` documents.
    pub fn push(&mut self, v: &SparseVector) -> u32 {
        self.push_view(v.view())
    }

    /// Appends a borrowed vector and returns its document id.
    ///
    /// # Panics
    /// If the collection already holds `u32::MAX` documents.
    pub fn push_view(&mut self, v: SparseView<'_>) -> u32 {
        let id = self.len();
        assert!(
            id < u32::MAX as usize,
            "SparseCollection holds at most u32::MAX - 1 documents"
        );
        self.indices.extend_from_slice(v.indices());
        self.values.extend_from_slice(v.values());
        self.offsets.push(self.indices.len());
        if let Some(&last) = v.indices().last() {
            self.dim = self.dim.max(u64::from(last) + 1);
        }
        id as u32
    }

    /// Validates and appends a vector given as slices; returns its document id.
    ///
    /// # Errors
    /// As [`SparseVector::new`].
    pub fn push_parts(&mut self, indices: &[u32], values: &[f32]) -> Result<u32> {
        validate(indices, values)?;
        Ok(self.push_view(SparseView::trusted(indices, values)))
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether the collection holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest component id plus one over all vectors.
    pub fn dim(&self) -> u64 {
        self.dim
    }

    /// Total number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The vector of document `doc`.
    ///
    /// # Panics
    /// If `doc >= self.len()`.
    pub fn get(&self, doc: usize) -> SparseView<'_> {
        let (s, e) = (self.offsets[doc], self.offsets[doc + 1]);
        SparseView::trusted(&self.indices[s..e], &self.values[s..e])
    }

    /// Iterates over the vectors in document order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SparseView<'_>> + '_ {
        (0..self.len()).map(|d| self.get(d))
    }

    /// The raw CSR arrays: offsets (`len() + 1`), ids, values.
    pub fn as_csr(&self) -> (&[usize], &[u32], &[f32]) {
        (&self.offsets, &self.indices, &self.values)
    }

    /// Builds a collection from CSR arrays, validating every vector.
    ///
    /// # Errors
    /// [`Error::Corrupt`]-free: offset problems are reported as [`Error::LengthMismatch`] on the
    /// vector concerned, vector problems as in [`SparseVector::new`], wrapped in
    /// [`Error::InVector`].
    pub fn from_csr(offsets: Vec<usize>, indices: Vec<u32>, values: Vec<f32>) -> Result<Self> {
        if offsets.first() != Some(&0) || offsets.last() != Some(&indices.len()) {
            return Err(Error::LengthMismatch {
                indices: indices.len(),
                values: offsets.last().copied().unwrap_or(0),
            });
        }
        if indices.len() != values.len() {
            return Err(Error::LengthMismatch {
                indices: indices.len(),
                values: values.len(),
            });
        }
        let mut dim = 0u64;
        for (d, w) in offsets.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(Error::LengthMismatch {
                    indices: w[0],
                    values: w[1],
                }
                .in_vector(d));
            }
            validate(&indices[w[0]..w[1]], &values[w[0]..w[1]]).map_err(|e| e.in_vector(d))?;
            if w[1] > w[0] {
                dim = dim.max(u64::from(indices[w[1] - 1]) + 1);
            }
        }
        if offsets.len() > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "collection",
                found: (offsets.len() - 1) as u64,
                limit: u64::from(u32::MAX) - 1,
            });
        }
        Ok(Self {
            offsets,
            indices,
            values,
            dim,
        })
    }

    /// Document frequency of every component id `< dim()`.
    pub fn document_frequencies(&self) -> Vec<u32> {
        let mut df = vec![0u32; self.dim as usize];
        for &c in &self.indices {
            df[c as usize] += 1;
        }
        df
    }

    /// The BM25 inverse document frequency of every component id `< dim()`:
    /// `ln(1 + (N − df + 0.5) / (df + 0.5))`, positive for every df (the weights of
    /// inference-free query encoders and of `training::idf_flops_loss` with the
    /// `burn` feature).
    pub fn bm25_idf(&self) -> Vec<f32> {
        let n = self.len() as f64;
        self.document_frequencies()
            .iter()
            .map(|&df| {
                let df = f64::from(df);
                (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
            })
            .collect()
    }
}

impl Default for SparseCollection {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> FromIterator<&'a SparseVector> for SparseCollection {
    fn from_iter<I: IntoIterator<Item = &'a SparseVector>>(iter: I) -> Self {
        Self::from_vectors(iter)
    }
}

impl FromIterator<SparseVector> for SparseCollection {
    fn from_iter<I: IntoIterator<Item = SparseVector>>(iter: I) -> Self {
        let mut c = Self::new();
        for v in iter {
            c.push(&v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_round_trip_and_validation() {
        let docs: SparseCollection = [
            SparseVector::new(vec![1, 4], vec![1.0, 2.0]).unwrap(),
            SparseVector::default(),
            SparseVector::new(vec![0], vec![3.0]).unwrap(),
        ]
        .into_iter()
        .collect();
        let (o, i, v) = docs.as_csr();
        let back = SparseCollection::from_csr(o.to_vec(), i.to_vec(), v.to_vec()).unwrap();
        assert_eq!(back, docs);
        assert_eq!(docs.document_frequencies(), vec![1, 1, 0, 0, 1]);
        let bad = SparseCollection::from_csr(vec![0, 2], vec![3, 2], vec![1.0, 1.0]);
        assert!(matches!(bad, Err(Error::InVector { index: 0, .. })));
    }
}
