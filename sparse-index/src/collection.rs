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

    /// The raw CSR arrays, moved out: offsets (`len() + 1`), ids, values.
    pub fn into_csr(self) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
        (self.offsets, self.indices, self.values)
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

    /// The inverted form: a collection with one vector per component id `< dim()` whose ids are
    /// the documents holding that component and whose values are theirs (CSR ↔ CSC).
    ///
    /// This is the posting-list inversion every index here starts from (a counting sort by
    /// component, stable in document order), public so that other crates — `interp-eval`'s
    /// latent cache among them — build posting lists with it instead of a second copy. The ids
    /// of every inverted vector are strictly increasing because documents are visited in
    /// order, so the result is a valid collection; transposing twice gives the original back
    /// (up to trailing empty documents, which have no component to keep them).
    ///
    /// ```
    /// use sparse_index::SparseCollection;
    ///
    /// let mut docs = SparseCollection::new();
    /// docs.push_parts(&[0, 2], &[1.0, 2.0])?;
    /// docs.push_parts(&[2], &[3.0])?;
    /// let lists = docs.transpose();
    /// assert_eq!(lists.len(), 3);
    /// assert_eq!(lists.get(2).indices(), &[0, 1]);
    /// assert_eq!(lists.get(2).values(), &[2.0, 3.0]);
    /// assert!(lists.get(1).indices().is_empty());
    /// # Ok::<(), sparse_index::Error>(())
    /// ```
    ///
    /// # Panics
    /// If the collection holds `u32::MAX` documents or more (impossible through its
    /// constructors) or `dim()` does not fit in `usize`.
    pub fn transpose(&self) -> SparseCollection {
        let dim = usize::try_from(self.dim).expect("SparseCollection::transpose: dim fits usize");
        let mut offsets = vec![0usize; dim + 1];
        for &c in &self.indices {
            offsets[c as usize + 1] += 1;
        }
        for i in 0..dim {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut docs = vec![0u32; self.indices.len()];
        let mut values = vec![0f32; self.indices.len()];
        for d in 0..self.len() {
            let (s, e) = (self.offsets[d], self.offsets[d + 1]);
            for (&c, &x) in self.indices[s..e].iter().zip(&self.values[s..e]) {
                let slot = &mut fill[c as usize];
                docs[*slot] = d as u32;
                values[*slot] = x;
                *slot += 1;
            }
        }
        let max_doc = docs.iter().copied().max().map_or(0, |d| u64::from(d) + 1);
        SparseCollection {
            offsets,
            indices: docs,
            values,
            dim: max_doc,
        }
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
    fn transpose_inverts_and_round_trips() {
        let docs: SparseCollection = [
            SparseVector::new(vec![1, 4], vec![1.0, 2.0]).unwrap(),
            SparseVector::default(),
            SparseVector::new(vec![0, 4], vec![3.0, 5.0]).unwrap(),
        ]
        .into_iter()
        .collect();
        let lists = docs.transpose();
        assert_eq!(lists.len(), 5);
        assert_eq!(lists.dim(), 3);
        assert_eq!(lists.get(0).indices(), &[2]);
        assert_eq!(lists.get(1).indices(), &[0]);
        assert_eq!(lists.get(4).indices(), &[0, 2]);
        assert_eq!(lists.get(4).values(), &[2.0, 5.0]);
        assert!(lists.get(3).indices().is_empty());
        assert_eq!(lists.transpose(), docs);
    }

    proptest::proptest! {
        #[test]
        fn transpose_twice_is_identity_and_matches_dense(
            rows in proptest::collection::vec(
                proptest::collection::btree_map(0u32..40, -5.0f32..5.0, 0..8), 1..30),
        ) {
            let mut docs = SparseCollection::new();
            for r in &rows {
                let (i, v): (Vec<u32>, Vec<f32>) = r.iter().map(|(&i, &v)| (i, v)).unzip();
                docs.push_parts(&i, &v).unwrap();
            }
            let lists = docs.transpose();
            proptest::prop_assert_eq!(lists.nnz(), docs.nnz());
            for (d, r) in rows.iter().enumerate() {
                for (&c, &x) in r {
                    let l = lists.get(c as usize);
                    let at = l.indices().binary_search(&(d as u32)).unwrap();
                    proptest::prop_assert_eq!(l.values()[at], x);
                }
            }
            // Trailing empty documents have no component to survive the round trip.
            let back = lists.transpose();
            let kept = (0..docs.len()).rev().find(|&d| !docs.get(d).indices().is_empty()).map_or(0, |d| d + 1);
            proptest::prop_assert_eq!(back.len(), kept);
            for d in 0..kept {
                proptest::prop_assert_eq!(back.get(d), docs.get(d));
            }
        }
    }

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
