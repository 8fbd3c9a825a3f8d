//! Documents added after the build: kept apart and searched exactly until the next rebuild.

use std::collections::HashMap;

use crate::collection::SparseCollection;
use crate::seismic::search::Scratch;
use crate::vector::SparseView;

/// A small exact inverted index over the documents added since the last build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    pub(crate) docs: SparseCollection,
    /// Component id → (local document id, value), documents in increasing order. A map, not a
    /// dense array, because a new document may bring arbitrarily large component ids.
    lists: HashMap<u32, Vec<(u32, f32)>>,
}

impl Pending {
    pub(crate) fn from_docs(docs: SparseCollection) -> Self {
        let mut p = Pending {
            docs: SparseCollection::new(),
            lists: HashMap::new(),
        };
        for v in docs.iter() {
            p.push(v);
        }
        p
    }

    pub(crate) fn push(&mut self, v: SparseView<'_>) -> u32 {
        let local = self.docs.push_view(v);
        for (c, val) in v.iter() {
            self.lists.entry(c).or_default().push((local, val));
        }
        local
    }

    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    /// Pushes the exact scores of the pending documents that share a component with `query`
    /// into `scratch.topk`, as document ids `base + local id`. Returns the number scored.
    ///
    /// Term at a time in increasing component order, so every score is the sum of the same
    /// products in the same order as [`SparseView::dot`].
    pub(crate) fn search_into(
        &self,
        query: SparseView<'_>,
        base: u32,
        scratch: &mut Scratch,
    ) -> usize {
        if self.docs.is_empty() {
            return 0;
        }
        let n = self.docs.len();
        if scratch.pending_acc.len() < n {
            scratch.pending_acc.resize(n, 0.0);
            scratch.pending_seen.resize(n, false);
        }
        for (c, qv) in query.iter() {
            if let Some(list) = self.lists.get(&c) {
                for &(d, v) in list {
                    let d = d as usize;
                    if !scratch.pending_seen[d] {
                        scratch.pending_seen[d] = true;
                        scratch.pending_touched.push(d as u32);
                    }
                    scratch.pending_acc[d] += qv * v;
                }
            }
        }
        let scored = scratch.pending_touched.len();
        for &d in &scratch.pending_touched {
            let d = d as usize;
            scratch.topk.push(base + d as u32, scratch.pending_acc[d]);
            scratch.pending_acc[d] = 0.0;
            scratch.pending_seen[d] = false;
        }
        scratch.pending_touched.clear();
        scored
    }
}
