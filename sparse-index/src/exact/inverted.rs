//! Exact search over a full (unpruned) inverted index: term-at-a-time accumulation and the
//! rank-safe MaxScore dynamic pruning.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::collection::SparseCollection;
use crate::error::{Error, Result};
use crate::topk::{ScoredDoc, TopK};
use crate::vector::SparseView;

/// Largest component id (plus one) the exact index accepts (its query buffer is dense).
const MAX_DIM: u64 = 1 << 26;

#[derive(Default)]
struct Scratch {
    acc: Vec<f32>,
    seen: Vec<bool>,
    touched: Vec<u32>,
    q: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// An exact index: every posting of every document, lists in document order, plus the forward
/// vectors.
///
/// Both search methods return exactly what [`crate::brute_force_search`] returns, scores
/// included bit for bit: every score is the sum of the same products, added in increasing
/// component order.
///
/// ```
/// use sparse_index::{ExactIndex, SparseCollection, SparseVector, brute_force_search};
///
/// let docs: SparseCollection = (0..50u32)
///     .map(|d| SparseVector::new(vec![d % 3, 3 + d % 7], vec![1.0 + d as f32, 0.5]).unwrap())
///     .collect();
/// let index = ExactIndex::new(docs.clone())?;
/// let query = SparseVector::new(vec![1, 5], vec![1.0, 2.0])?;
/// assert_eq!(index.search(&query, 5)?, brute_force_search(&docs, &query, 5));
/// assert_eq!(index.search_maxscore(&query, 5)?, index.search(&query, 5)?);
/// # Ok::<(), sparse_index::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExactIndex {
    docs: SparseCollection,
    list_offsets: Vec<usize>,
    list_docs: Vec<u32>,
    list_values: Vec<f32>,
    list_max: Vec<f32>,
    list_min: Vec<f32>,
}

impl ExactIndex {
    /// Inverts `docs` (document ids are positions).
    ///
    /// # Errors
    /// [`Error::ComponentOutOfRange`] if a component id is `≥ 2²⁶`.
    pub fn new(docs: SparseCollection) -> Result<Self> {
        if docs.dim() > MAX_DIM {
            return Err(Error::ComponentOutOfRange {
                component: docs.dim() - 1,
                dim: MAX_DIM,
                what: "exact index (remap component ids below 2^26)",
            });
        }
        let dim = docs.dim() as usize;
        let lists = docs.transpose();
        let mut list_max = vec![f32::NEG_INFINITY; dim];
        let mut list_min = vec![f32::INFINITY; dim];
        for (c, l) in lists.iter().enumerate() {
            for &x in l.values() {
                list_max[c] = list_max[c].max(x);
                list_min[c] = list_min[c].min(x);
            }
        }
        let (list_offsets, list_docs, list_values) = lists.into_csr();
        Ok(Self {
            docs,
            list_offsets,
            list_docs,
            list_values,
            list_max,
            list_min,
        })
    }

    /// The indexed documents.
    pub fn documents(&self) -> &SparseCollection {
        &self.docs
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether there is no document.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn list(&self, c: u32) -> (&[u32], &[f32]) {
        let c = c as usize;
        if c + 1 >= self.list_offsets.len() {
            return (&[], &[]);
        }
        let (s, e) = (self.list_offsets[c], self.list_offsets[c + 1]);
        (&self.list_docs[s..e], &self.list_values[s..e])
    }

    /// Largest component id plus one over the documents: the vocabulary a query may use.
    pub fn dim(&self) -> u64 {
        self.docs.dim()
    }

    /// The components of `query` below [`Self::dim`] and how many were dropped: the lenient
    /// way to search with a query that may hold ids no document has (they could match
    /// nothing). Borrows `query` (ids are increasing, so the kept part is a prefix).
    ///
    /// ```
    /// use sparse_index::{ExactIndex, SparseCollection, SparseVector};
    ///
    /// let docs = SparseCollection::from_vectors(&[SparseVector::new(vec![0, 9], vec![1.0, 2.0])?]);
    /// let index = ExactIndex::new(docs)?;
    /// let query = SparseVector::new(vec![9, 40_000], vec![1.0, 1.0])?;
    /// assert!(index.search(&query, 10).is_err()); // 40,000 is outside the index's 10 components
    /// let (known, dropped) = index.known_components(&query);
    /// assert_eq!(dropped, 1);
    /// assert_eq!(index.search(known, 10)?[0].score, 2.0);
    /// # Ok::<(), sparse_index::Error>(())
    /// ```
    pub fn known_components<'q>(
        &self,
        query: impl Into<SparseView<'q>>,
    ) -> (SparseView<'q>, usize) {
        query.into().below(self.dim())
    }

    fn check(&self, query: SparseView<'_>) -> Result<()> {
        query.check_below(self.dim(), "exact index").map(|_| ())
    }

    /// Exact top-k by term-at-a-time accumulation: every posting of every query component.
    ///
    /// # Errors
    /// [`Error::ComponentOutOfRange`] if a query component is `≥` [`Self::dim`] (naming the
    /// first such id); [`Self::known_components`] drops them instead.
    pub fn search_taat<'q>(
        &self,
        query: impl Into<SparseView<'q>>,
        k: usize,
    ) -> Result<Vec<ScoredDoc>> {
        let query = query.into();
        self.check(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        Ok(SCRATCH.with_borrow_mut(|s| {
            let n = self.docs.len();
            if s.acc.len() < n {
                s.acc.resize(n, 0.0);
                s.seen.resize(n, false);
            }
            for (c, qv) in query.iter() {
                let (docs, vals) = self.list(c);
                for (&d, &v) in docs.iter().zip(vals) {
                    let d = d as usize;
                    if !s.seen[d] {
                        s.seen[d] = true;
                        s.touched.push(d as u32);
                    }
                    s.acc[d] += qv * v;
                }
            }
            let mut top = TopK::new(k);
            for &d in &s.touched {
                let d = d as usize;
                top.push(d as u32, s.acc[d]);
                s.acc[d] = 0.0;
                s.seen[d] = false;
            }
            s.touched.clear();
            top.into_sorted()
        }))
    }

    /// Exact top-k: [`Self::search_taat`], the fastest exact path on SPLADE-like data (see
    /// [`Self::search_maxscore`] for when dynamic pruning pays).
    ///
    /// # Errors
    /// As [`Self::search_taat`].
    pub fn search<'q>(&self, query: impl Into<SparseView<'q>>, k: usize) -> Result<Vec<ScoredDoc>> {
        self.search_taat(query, k)
    }

    /// Exact top-k with MaxScore dynamic pruning (Turtle & Flood, 1995), document at a time.
    ///
    /// Query terms are sorted by their largest possible contribution. Once the k-th best score
    /// exceeds the summed bounds of the weakest terms, those lists are only consulted through
    /// the forward index: a document is scored only if it appears in a remaining list and its
    /// partial score plus those bounds can still beat the k-th best. Bounds are inflated by
    /// 10⁻⁵ relative so that float rounding never drops a result: rank-safe, ties included.
    ///
    /// It pays when a few query terms carry most of the weight and the rest have long lists
    /// of small values. On flat weights — SPLADE-like 40-term queries whose terms all matter —
    /// almost every list stays essential and it is an order of magnitude slower than
    /// [`Self::search_taat`] (measured in the crate guide).
    ///
    /// # Errors
    /// As [`Self::search_taat`].
    pub fn search_maxscore<'q>(
        &self,
        query: impl Into<SparseView<'q>>,
        k: usize,
    ) -> Result<Vec<ScoredDoc>> {
        let query = query.into();
        self.check(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        struct Cursor<'a> {
            docs: &'a [u32],
            vals: &'a [f32],
            pos: usize,
            q: f32,
            ub: f64,
        }
        let mut cursors: Vec<Cursor<'_>> = query
            .iter()
            .filter_map(|(c, q)| {
                let (docs, vals) = self.list(c);
                if docs.is_empty() {
                    return None;
                }
                let (mx, mn) = (self.list_max[c as usize], self.list_min[c as usize]);
                let ub = f64::from(q) * f64::from(if q >= 0.0 { mx } else { mn });
                Some(Cursor {
                    docs,
                    vals,
                    pos: 0,
                    q,
                    ub: ub.max(0.0),
                })
            })
            .collect();
        cursors.sort_by(|a, b| a.ub.total_cmp(&b.ub));
        let inflate = |x: f64| x + x.abs() * 1e-5 + 1e-30;
        // prefix[i] = bound on the score from terms 0..=i.
        let prefix: Vec<f64> = cursors
            .iter()
            .scan(0.0f64, |acc, c| {
                *acc += c.ub;
                Some(inflate(*acc))
            })
            .collect();

        Ok(SCRATCH.with_borrow_mut(|s| {
            let dim = self.list_offsets.len() - 1;
            if s.q.len() < dim {
                s.q.resize(dim, 0.0);
            }
            for (c, v) in query.iter() {
                if (c as usize) < dim {
                    s.q[c as usize] = v;
                }
            }
            let mut top = TopK::new(k);
            let mut first_essential = 0;
            loop {
                let essential = &mut cursors[first_essential..];
                let mut d = u32::MAX;
                for c in essential.iter() {
                    if let Some(&x) = c.docs.get(c.pos) {
                        d = d.min(x);
                    }
                }
                if d == u32::MAX {
                    break;
                }
                let mut partial = 0.0f64;
                for c in essential.iter_mut() {
                    if c.docs.get(c.pos) == Some(&d) {
                        partial += f64::from(c.q) * f64::from(c.vals[c.pos]);
                        c.pos += 1;
                    }
                }
                if top.is_full() {
                    let rest = if first_essential > 0 {
                        prefix[first_essential - 1]
                    } else {
                        0.0
                    };
                    if inflate(partial + rest) <= f64::from(top.threshold()) {
                        continue;
                    }
                }
                let doc = self.docs.get(d as usize);
                let mut score = 0.0f32;
                for (c, v) in doc.iter() {
                    score += s.q[c as usize] * v;
                }
                top.push(d, score);
                if top.is_full() {
                    let thr = f64::from(top.threshold());
                    while first_essential < cursors.len() && prefix[first_essential] < thr {
                        first_essential += 1;
                    }
                }
            }
            for (c, _) in query.iter() {
                if (c as usize) < dim {
                    s.q[c as usize] = 0.0;
                }
            }
            top.into_sorted()
        }))
    }

    /// [`Self::search`] (term at a time) for many queries over rayon's thread pool, results in
    /// query order.
    ///
    /// # Errors
    /// As [`Self::search`], wrapped in [`Error::InVector`] with the position of the first
    /// query that fails.
    pub fn search_batch(
        &self,
        queries: &SparseCollection,
        k: usize,
    ) -> Result<Vec<Vec<ScoredDoc>>> {
        (0..queries.len())
            .into_par_iter()
            .map(|i| self.search(queries.get(i), k).map_err(|e| e.in_vector(i)))
            .collect()
    }
}
