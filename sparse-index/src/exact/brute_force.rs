//! Exhaustive search over the forward representation: the oracle of every other path.

use crate::collection::SparseCollection;
use crate::topk::{ScoredDoc, TopK};
use crate::vector::SparseView;

/// The `k` best documents of `docs` for `query` by scoring every document with a sorted merge
/// ([`SparseView::dot`]). Documents sharing no component with the query are not returned (see
/// [`ScoredDoc`]).
///
/// ```
/// use sparse_index::{brute_force_search, SparseCollection, SparseVector};
///
/// let docs: SparseCollection = [
///     SparseVector::new(vec![0, 1], vec![1.0, 1.0])?,
///     SparseVector::new(vec![1], vec![3.0])?,
///     SparseVector::new(vec![2], vec![9.0])?,
/// ]
/// .into_iter()
/// .collect();
/// let query = SparseVector::new(vec![1], vec![2.0])?;
/// let hits = brute_force_search(&docs, &query, 10);
/// assert_eq!(hits.iter().map(|h| h.doc).collect::<Vec<_>>(), vec![1, 0]); // doc 2 shares nothing
/// # Ok::<(), sparse_index::Error>(())
/// ```
pub fn brute_force_search<'q>(
    docs: &SparseCollection,
    query: impl Into<SparseView<'q>>,
    k: usize,
) -> Vec<ScoredDoc> {
    let query = query.into();
    let mut top = TopK::new(k);
    if k == 0 {
        return Vec::new();
    }
    for (d, doc) in docs.iter().enumerate() {
        let (score, shared) = query.dot_and_overlap(doc);
        if shared {
            top.push(d as u32, score);
        }
    }
    top.into_sorted()
}
