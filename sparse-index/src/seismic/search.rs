//! The query loop over blocked, summarised posting lists.

use crate::seismic::config::{BlockOrder, SearchParams};
use crate::seismic::forward::{Component, ValueCodec};
use crate::seismic::parts::Parts;
use crate::topk::TopK;
use crate::vector::SparseView;

/// A block and its estimate, ordered by estimate (then lower block id first).
struct Candidate(f32, u32);

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// Work counters of one search, for tuning and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Block summaries scored.
    pub blocks_estimated: usize,
    /// Blocks whose documents were scored.
    pub blocks_visited: usize,
    /// Documents scored exactly through the forward index.
    pub docs_scored: usize,
    /// Documents added after the build, searched exactly.
    pub pending_docs_scored: usize,
    /// Query components dropped because they are beyond the index's vocabulary (only with
    /// [`crate::UnknownComponents::Drop`]; otherwise such a query is an error).
    pub dropped_components: usize,
}

impl std::ops::AddAssign for SearchStats {
    fn add_assign(&mut self, o: Self) {
        self.blocks_estimated += o.blocks_estimated;
        self.blocks_visited += o.blocks_visited;
        self.docs_scored += o.docs_scored;
        self.pending_docs_scored += o.pending_docs_scored;
        self.dropped_components += o.dropped_components;
    }
}

/// Per-thread buffers reused across queries: the dense query, the visited set, candidates.
pub(crate) struct Scratch {
    /// The query scattered densely; all zero between queries.
    q: Vec<f32>,
    /// One bit per document; all zero between queries.
    visited: Vec<u64>,
    /// Words of `visited` set during the current query.
    dirty: Vec<u32>,
    cut: Vec<(u32, f32)>,
    cands: Vec<Candidate>,
    pub(crate) topk: TopK,
    pub(crate) pending_acc: Vec<f32>,
    pub(crate) pending_seen: Vec<bool>,
    pub(crate) pending_touched: Vec<u32>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Self {
            q: Vec::new(),
            visited: Vec::new(),
            dirty: Vec::new(),
            cut: Vec::new(),
            cands: Vec::new(),
            topk: TopK::new(0),
            pending_acc: Vec::new(),
            pending_seen: Vec::new(),
            pending_touched: Vec::new(),
        }
    }
}

/// Hints the CPU to load the cache line holding `slice[i]` (nothing if out of bounds or on
/// other architectures).
#[inline(always)]
fn prefetch<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = slice.get(i) {
        // SAFETY: a prefetch is only a hint: it never faults, never reads into the program and
        // has no effect on memory; the address is that of a live element. SSE, which provides
        // the instruction, is part of the x86_64 baseline.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                (p as *const T).cast::<i8>(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, i);
}

impl<C: Component, V: ValueCodec> Parts<C, V> {
    /// Pushes the approximate top results of `query` among the indexed documents into
    /// `scratch.topk` (which the caller has reset to `k`).
    pub(crate) fn search_into(
        &self,
        query: SparseView<'_>,
        params: &SearchParams,
        scratch: &mut Scratch,
    ) -> SearchStats {
        let mut stats = SearchStats::default();
        let Scratch {
            q,
            visited,
            dirty,
            cut,
            cands,
            topk,
            ..
        } = scratch;
        let dense_len = C::dense_len(self.dim);
        if q.len() != dense_len {
            q.clear();
            q.resize(dense_len, 0.0);
        }
        let words = self.n_docs.div_ceil(64);
        if visited.len() < words {
            visited.resize(words, 0);
        }

        cut.clear();
        for (c, v) in query.iter() {
            if (c as usize) < self.dim {
                q[c as usize] = v;
                cut.push((c, v));
            }
        }
        let by_weight = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if cut.len() > params.query_cut {
            cut.select_nth_unstable_by(params.query_cut - 1, by_weight);
            cut.truncate(params.query_cut);
        }
        cut.sort_unstable_by(by_weight);

        let list_blocks = &*self.list_blocks;
        let summary_offsets = &*self.summary_offsets;
        let summary_comps = &*self.summary_comps;
        let summary_codes = &*self.summary_codes;
        let summary_scales = &*self.summary_scales;
        let block_postings = &*self.block_postings;
        let postings = &*self.postings;
        let fwd_offsets = &*self.fwd_offsets;
        let fwd_comps = &*self.fwd_comps;
        let fwd_values = &*self.fwd_values;
        let doc_ids = &*self.doc_ids;
        let value_scale = self.value_scale;
        let hf = params.heap_factor;
        let q: &[f32] = q;

        let estimate = |b: usize| -> f32 {
            let (s, e) = (summary_offsets[b] as usize, summary_offsets[b + 1] as usize);
            summary_scales[b] * C::dot_codes(q, &summary_comps[s..e], &summary_codes[s..e])
        };
        let mut score_block = |b: usize, topk: &mut TopK, stats: &mut SearchStats| {
            stats.blocks_visited += 1;
            let block = &postings[block_postings[b] as usize..block_postings[b + 1] as usize];
            // Request every row of the block before scoring the first: the rows are scattered
            // over the forward index, and overlapping their cache misses is what makes a
            // block cheaper than the same documents scored one by one.
            for &d in block {
                let (s, e) = (
                    fwd_offsets[d as usize] as usize,
                    fwd_offsets[d as usize + 1] as usize,
                );
                // Every 64-byte line of the row (measured: 9% faster than only the first).
                let mut i = s;
                while i < e {
                    prefetch(fwd_comps, i);
                    prefetch(fwd_values, i);
                    i += 64 / size_of::<C>().max(size_of::<V::Stored>());
                }
            }
            for &d in block {
                let (word, bit) = ((d >> 6) as usize, 1u64 << (d & 63));
                let w = &mut visited[word];
                if *w & bit != 0 {
                    continue;
                }
                if *w == 0 {
                    dirty.push(word as u32);
                }
                *w |= bit;
                let (s, e) = (
                    fwd_offsets[d as usize] as usize,
                    fwd_offsets[d as usize + 1] as usize,
                );
                let score = value_scale * C::dot::<V>(q, &fwd_comps[s..e], &fwd_values[s..e]);
                stats.docs_scored += 1;
                topk.push(doc_ids[d as usize], score);
            }
        };
        let skip =
            |est: f32, topk: &TopK| hf > 0.0 && topk.is_full() && est < hf * topk.threshold();

        match params.order {
            BlockOrder::BestFirst => {
                cands.clear();
                for &(t, _) in cut.iter() {
                    let (b0, b1) = (list_blocks[t as usize], list_blocks[t as usize + 1]);
                    for b in b0..b1 {
                        cands.push(Candidate(estimate(b as usize), b));
                    }
                }
                stats.blocks_estimated = cands.len();
                // A heap: building it is linear and only the visited blocks are popped
                // (measured ~5% faster than sorting every candidate).
                let mut heap = std::collections::BinaryHeap::from(std::mem::take(cands));
                while let Some(Candidate(est, b)) = heap.pop() {
                    if skip(est, topk) {
                        break;
                    }
                    score_block(b as usize, topk, &mut stats);
                }
                *cands = heap.into_vec();
            }
            BlockOrder::Seismic => {
                for &(t, _) in cut.iter() {
                    let (b0, b1) = (list_blocks[t as usize], list_blocks[t as usize + 1]);
                    for b in b0..b1 {
                        let est = estimate(b as usize);
                        stats.blocks_estimated += 1;
                        if skip(est, topk) {
                            continue;
                        }
                        score_block(b as usize, topk, &mut stats);
                    }
                }
            }
        }

        // Leave the buffers clean for the next query.
        for (c, _) in query.iter() {
            if (c as usize) < self.dim {
                scratch.q[c as usize] = 0.0;
            }
        }
        for &w in scratch.dirty.iter() {
            scratch.visited[w as usize] = 0;
        }
        scratch.dirty.clear();
        stats
    }
}
