//! The validated sparse vector.

use crate::error::{Error, Result};

/// A sparse vector: strictly increasing `u32` component ids, each with a finite `f32` value.
///
/// Every constructor validates; an invalid vector cannot exist. Explicit zeros are kept (they
/// take part in "shares a component with the query", see [`crate::ScoredDoc`]).
///
/// ```
/// use sparse_index::SparseVector;
///
/// let v = SparseVector::new(vec![3, 17, 40], vec![0.5, 1.25, 2.0])?;
/// assert_eq!(v.nnz(), 3);
/// let w = SparseVector::from_pairs([(40, 1.0), (3, 2.0)])?; // any order, no duplicates
/// assert_eq!(v.dot(&w), 0.5 * 2.0 + 2.0 * 1.0);
/// assert!(SparseVector::new(vec![2, 1], vec![1.0, 1.0]).is_err()); // not increasing
/// assert!(SparseVector::new(vec![1], vec![f32::NAN]).is_err()); // not finite
/// # Ok::<(), sparse_index::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseVector {
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseVector {
    /// Builds a vector from ids in strictly increasing order and their values.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::UnsortedComponents`] (which also covers duplicates) or
    /// [`Error::NonFiniteValue`].
    pub fn new(indices: Vec<u32>, values: Vec<f32>) -> Result<Self> {
        validate(&indices, &values)?;
        Ok(Self { indices, values })
    }

    /// Builds a vector from `(id, value)` pairs in any order.
    ///
    /// # Errors
    /// [`Error::DuplicateComponent`] if an id appears twice, [`Error::NonFiniteValue`].
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, f32)>) -> Result<Self> {
        let mut pairs: Vec<(u32, f32)> = pairs.into_iter().collect();
        pairs.sort_unstable_by_key(|&(c, _)| c);
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicateComponent { component: w[0].0 });
        }
        let (indices, values) = pairs.into_iter().unzip();
        Self::new(indices, values)
    }

    /// Builds a vector from a dense slice, keeping the non-zero entries.
    ///
    /// # Errors
    /// [`Error::NonFiniteValue`]; [`Error::TooLarge`] if the slice has more than `u32::MAX`
    /// entries.
    pub fn from_dense(dense: &[f32]) -> Result<Self> {
        if dense.len() as u64 > u64::from(u32::MAX) {
            return Err(Error::TooLarge {
                what: "dense vector",
                found: dense.len() as u64,
                limit: u64::from(u32::MAX),
            });
        }
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for (i, &v) in dense.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFiniteValue {
                    component: i as u32,
                    value: v,
                });
            }
            if v != 0.0 {
                indices.push(i as u32);
                values.push(v);
            }
        }
        Ok(Self { indices, values })
    }

    /// The component ids, strictly increasing.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The values, aligned with [`Self::indices`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Whether the vector stores no entry.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// A borrowed view of this vector.
    pub fn view(&self) -> SparseView<'_> {
        SparseView {
            indices: &self.indices,
            values: &self.values,
        }
    }

    /// Inner product with another vector (merge of the two id lists, ascending order).
    pub fn dot(&self, other: &SparseVector) -> f32 {
        self.view().dot(other.view())
    }

    /// Iterates over `(id, value)` pairs in increasing id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u32, f32)> + '_ {
        self.indices
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }

    /// Splits into ids and values.
    pub fn into_parts(self) -> (Vec<u32>, Vec<f32>) {
        (self.indices, self.values)
    }

    /// Largest component id plus one (0 for an empty vector).
    pub fn dim(&self) -> u64 {
        self.indices.last().map_or(0, |&c| u64::from(c) + 1)
    }
}

/// A borrowed sparse vector whose invariants were checked when its owner was built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseView<'a> {
    indices: &'a [u32],
    values: &'a [f32],
}

impl<'a> SparseView<'a> {
    /// Validates borrowed slices as a sparse vector.
    ///
    /// # Errors
    /// As [`SparseVector::new`].
    pub fn new(indices: &'a [u32], values: &'a [f32]) -> Result<Self> {
        validate(indices, values)?;
        Ok(Self { indices, values })
    }

    /// A view of slices already known to be valid (checked by the caller's type invariant).
    pub(crate) fn trusted(indices: &'a [u32], values: &'a [f32]) -> Self {
        debug_assert!(validate(indices, values).is_ok());
        Self { indices, values }
    }

    /// The component ids, strictly increasing.
    pub fn indices(&self) -> &'a [u32] {
        self.indices
    }

    /// The values.
    pub fn values(&self) -> &'a [f32] {
        self.values
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Iterates over `(id, value)` pairs in increasing id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u32, f32)> + 'a {
        self.indices
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }

    /// An owned copy.
    pub fn to_owned(&self) -> SparseVector {
        SparseVector {
            indices: self.indices.to_vec(),
            values: self.values.to_vec(),
        }
    }

    /// Splits off the components `≥ dim`: the view of those below (a prefix, since ids are
    /// increasing) and the number cut.
    pub(crate) fn below(&self, dim: u64) -> (SparseView<'a>, usize) {
        let n = self.indices.partition_point(|&c| u64::from(c) < dim);
        (
            SparseView {
                indices: &self.indices[..n],
                values: &self.values[..n],
            },
            self.indices.len() - n,
        )
    }

    /// The view itself if every component is `< dim`, otherwise
    /// [`Error::ComponentOutOfRange`] naming the first one that is not and `what` it was
    /// checked against.
    pub(crate) fn check_below(&self, dim: u64, what: &'static str) -> Result<SparseView<'a>> {
        let (known, cut) = self.below(dim);
        if cut > 0 {
            return Err(Error::ComponentOutOfRange {
                component: u64::from(self.indices[known.nnz()]),
                dim,
                what,
            });
        }
        Ok(known)
    }

    /// Inner product by merging the two id lists; products are added in increasing id order.
    pub fn dot(&self, other: SparseView<'_>) -> f32 {
        self.dot_and_overlap(other).0
    }

    /// Inner product and whether the two vectors share at least one component id.
    pub(crate) fn dot_and_overlap(&self, other: SparseView<'_>) -> (f32, bool) {
        let (a, b) = (self.indices, other.indices);
        let (mut i, mut j, mut acc, mut shared) = (0, 0, 0.0f32, false);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    acc += self.values[i] * other.values[j];
                    shared = true;
                    i += 1;
                    j += 1;
                }
            }
        }
        (acc, shared)
    }
}

impl<'a> From<&'a SparseVector> for SparseView<'a> {
    fn from(v: &'a SparseVector) -> Self {
        v.view()
    }
}

/// Checks the invariants of a sparse vector.
pub(crate) fn validate(indices: &[u32], values: &[f32]) -> Result<()> {
    if indices.len() != values.len() {
        return Err(Error::LengthMismatch {
            indices: indices.len(),
            values: values.len(),
        });
    }
    for (position, w) in indices.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(Error::UnsortedComponents {
                position: position + 1,
                previous: w[0],
                next: w[1],
            });
        }
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteValue {
            component: indices[i],
            value: values[i],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_each_kind_of_invalid_input() {
        assert!(matches!(
            SparseVector::new(vec![1, 2], vec![1.0]),
            Err(Error::LengthMismatch {
                indices: 2,
                values: 1
            })
        ));
        assert!(matches!(
            SparseVector::new(vec![1, 1], vec![1.0, 2.0]),
            Err(Error::UnsortedComponents {
                position: 1,
                previous: 1,
                next: 1
            })
        ));
        assert!(matches!(
            SparseVector::new(vec![0, 5], vec![1.0, f32::INFINITY]),
            Err(Error::NonFiniteValue { component: 5, .. })
        ));
        assert!(matches!(
            SparseVector::from_pairs([(4, 1.0), (4, 2.0)]),
            Err(Error::DuplicateComponent { component: 4 })
        ));
        assert!(SparseVector::from_dense(&[0.0, f32::NAN]).is_err());
    }

    #[test]
    fn from_dense_keeps_non_zeros() {
        let v = SparseVector::from_dense(&[0.0, 2.0, 0.0, -1.5]).unwrap();
        assert_eq!(v.indices(), &[1, 3]);
        assert_eq!(v.values(), &[2.0, -1.5]);
        assert_eq!(v.dim(), 4);
    }

    proptest! {
        #[test]
        fn dot_equals_dense_dot(
            a in proptest::collection::btree_map(0u32..64, -4i32..5, 0..20),
            b in proptest::collection::btree_map(0u32..64, -4i32..5, 0..20),
        ) {
            // Small integers: every sum is exact, so equality is exact.
            let va = SparseVector::from_pairs(a.iter().map(|(&c, &v)| (c, v as f32))).unwrap();
            let vb = SparseVector::from_pairs(b.iter().map(|(&c, &v)| (c, v as f32))).unwrap();
            let mut da = [0.0f32; 64];
            let mut db = [0.0f32; 64];
            for (c, v) in va.iter() { da[c as usize] = v; }
            for (c, v) in vb.iter() { db[c as usize] = v; }
            let dense: f32 = da.iter().zip(&db).map(|(x, y)| x * y).sum();
            prop_assert_eq!(va.dot(&vb), dense);
            prop_assert_eq!(SparseVector::from_dense(&da).unwrap().values().len(),
                da.iter().filter(|v| **v != 0.0).count());
        }
    }
}
