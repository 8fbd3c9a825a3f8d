//! Search results and the bounded top-k collector every search path shares.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One search result: a document id and its inner product with the query.
///
/// Every search in this crate returns the documents that share at least one component id with
/// the query (explicit zeros count), best first, ordered by descending score and, among equal
/// scores, by ascending document id. At most `k` results come back; fewer when fewer documents
/// share a component with the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredDoc {
    /// Document id (position in the collection the index was built from).
    pub doc: u32,
    /// Inner product with the query.
    pub score: f32,
}

impl ScoredDoc {
    /// The ranking order: `Less` means `self` ranks before `other`.
    pub fn rank_cmp(&self, other: &ScoredDoc) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.doc.cmp(&other.doc))
    }
}

/// Heap entry ordered so that the worst result sits at the root of a max-heap.
#[derive(Clone, Copy)]
struct Worst(ScoredDoc);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// Keeps the `k` best [`ScoredDoc`]s pushed into it (ranking order of [`ScoredDoc`]).
#[derive(Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// A collector for the `k` best results.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Empties the collector and sets a new `k`.
    pub fn reset(&mut self, k: usize) {
        self.k = k;
        self.heap.clear();
    }

    /// Whether `k` results are held.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Number of results held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The score a new result must beat once full (`-inf` before).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.is_full() {
            self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score)
        } else {
            f32::NEG_INFINITY
        }
    }

    /// Offers a result; keeps it if it ranks among the `k` best so far.
    #[inline]
    pub fn push(&mut self, doc: u32, score: f32) {
        let cand = ScoredDoc { doc, score };
        if self.heap.len() < self.k {
            self.heap.push(Worst(cand));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && cand.rank_cmp(&worst.0) == Ordering::Less
        {
            *worst = Worst(cand);
        }
    }

    /// The results, best first.
    pub fn into_sorted(self) -> Vec<ScoredDoc> {
        let mut v: Vec<ScoredDoc> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(ScoredDoc::rank_cmp);
        v
    }

    /// The results, best first, leaving the collector empty.
    pub fn drain_sorted(&mut self) -> Vec<ScoredDoc> {
        let mut v: Vec<ScoredDoc> = self.heap.drain().map(|w| w.0).collect();
        v.sort_by(ScoredDoc::rank_cmp);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topk_equals_sort_then_truncate(
            scores in proptest::collection::vec(-3i32..4, 0..60),
            k in 0usize..12,
        ) {
            let mut top = TopK::new(k);
            let mut all = Vec::new();
            for (d, &s) in scores.iter().enumerate() {
                top.push(d as u32, s as f32);
                all.push(ScoredDoc { doc: d as u32, score: s as f32 });
            }
            all.sort_by(ScoredDoc::rank_cmp);
            all.truncate(k);
            prop_assert_eq!(top.into_sorted(), all);
        }
    }
}
