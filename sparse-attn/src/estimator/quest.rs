//! Quest (Tang, Zhao, Zhu, Xiao, Kasikci, Han; ICML 2024): query-aware page selection for
//! decoding with a KV cache.
//!
//! The cache is cut into pages of `P` tokens. Per (batch, KV head, page) [`PageBounds`] keeps
//! the elementwise minimum and maximum of the page's keys, updated as decode tokens are appended
//! (the last page may be partial; a new page starts when it is full). For a decode query `q`
//! the page score
//!
//! `s(q, page) = Σ_c max(q_c · min_c, q_c · max_c)`
//!
//! is an upper bound of `q · k` for every key `k` of the page (each term bounds `q_c · k_c`);
//! the softmax scale is a positive factor and does not change the ranking, so it is left out.
//! [`Quest::mask`] keeps the current page (the one holding the newest key, the query's own) and
//! the best other pages, and lowers the choice to a [`SparseMask`] with blocks of one query row
//! and `P` keys on [`AttentionLayout::causal_suffix`]`(1, len)`; the partial last page is a full
//! block clipped by the valid keys.
//!
//! **Budget, as the reference kernels count it.** `mit-han-lab/Quest`'s `InferenceController`
//! takes `page_budget` as the "real page budget including the last page": it attends
//! `min(page_budget, n_pages)` pages, the last page plus the top `page_budget − 1` of the others
//! (`kv_indices_without_last`), so at most `token_budget` tokens are read. The research notes
//! (§1.5) phrase it as "top page_budget among complete pages + the current page", one page more;
//! we follow the code: [`Budget::TopK`]`(page_budget)` with the current page forced **inside**
//! it ([`RowSelector::with_local`]`(1)`), `page_budget = token_budget / P`, and at least the
//! current page is kept when the budget is below one page (the reference would fail there).
//! Quest's pages other than the last are always complete, so "the others" are the complete
//! pages, except when the last page itself is complete (its length is a multiple of `P`): then
//! it is still the current page and competes with nobody. With `page_budget ≥ n_pages` every
//! page is kept (the reference skips its estimate then). The repository's accuracy-evaluation
//! path (`evaluation/quest_attention.py`, a masked-softmax emulation) differs: it keeps the top
//! `min(max(3, token_budget / P), n_pages)` of *all* pages, the partial last one among them,
//! with nothing forced; the kernel path above is what Quest runs and measures.
//!
//! **GQA.** The reference (Llama-2, MHA) has one page set per head. Here the bounds live per KV
//! head and are shared by the query heads of its group; per query head each head ranks its own
//! pages (mask heads = query heads), or, with [`Quest::share_pages`], the scores of a group's
//! query heads are summed and the group uses one page set (mask heads = KV heads).
//!
//! **Host or device.** The bounds are kept on the host: an update is `2 · D` comparisons per
//! appended key, a decode estimate is `O(n_pages · D)` per query head, and the top-k runs on the
//! host anyway (as every estimator here), so keeping bounds as device tensors would add a
//! device→host copy of the scores for no gain. Only [`PageBounds::from_keys`] reduces the
//! complete pages of a prefilled cache on the device (one `min_dim`/`max_dim` over
//! `[B, H_kv, n_pages, P, D]`) and copies `2 · D` floats per page back — `1/P` of the keys.
//!
//! Quest also keeps the first layers dense and the prefill dense; that is the model's business
//! (an attention override per layer), not the estimator's.

use burn::prelude::*;

use super::host::host_f32;
use crate::budget::{Budget, RowSelector};
use crate::layout::AttentionLayout;
use crate::mask::{BlockEntry, BlockSize, MaskParts, SparseMask};

/// Per (batch, KV head, page) elementwise minimum and maximum of the cached keys, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct PageBounds {
    page_size: usize,
    batch: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Keys seen.
    len: usize,
    /// `[n_pages, batch, kv_heads, head_dim]` row-major, page-major so a new page is an append.
    min: Vec<f32>,
    /// Same layout as `min`.
    max: Vec<f32>,
}

impl PageBounds {
    /// An empty cache of pages of `page_size` keys.
    ///
    /// # Panics
    /// If `page_size`, `batch`, `kv_heads` or `head_dim` is 0.
    pub fn new(page_size: usize, batch: usize, kv_heads: usize, head_dim: usize) -> Self {
        for (name, v) in [
            ("page_size", page_size),
            ("batch", batch),
            ("kv_heads", kv_heads),
            ("head_dim", head_dim),
        ] {
            assert!(v > 0, "PageBounds::new: {name} must be at least 1, found 0");
        }
        Self {
            page_size,
            batch,
            kv_heads,
            head_dim,
            len: 0,
            min: Vec::new(),
            max: Vec::new(),
        }
    }

    /// The bounds of a prefilled key cache `k` `[batch, kv_heads, len, head_dim]`: complete
    /// pages are reduced on the device, the partial last page on the host.
    ///
    /// # Panics
    /// If `page_size` or a dimension of `k` other than `len` is 0.
    pub fn from_keys(k: &Tensor<4>, page_size: usize) -> Self {
        let [b, h, t, d] = k.dims();
        let mut me = Self::new(page_size, b, h, d);
        let full = t / page_size;
        if full > 0 {
            let pages = k
                .clone()
                .slice([0..b, 0..h, 0..full * page_size, 0..d])
                .reshape([b, h, full, page_size, d]);
            let page_major = |x: Tensor<5>| x.reshape([b, h, full, d]).permute([2, 0, 1, 3]);
            me.min = host_f32(page_major(pages.clone().min_dim(3)));
            me.max = host_f32(page_major(pages.max_dim(3)));
            me.len = full * page_size;
        }
        if t > full * page_size {
            me.append(&k.clone().slice([0..b, 0..h, full * page_size..t, 0..d]));
        }
        me
    }

    /// Appends keys `[batch, kv_heads, t, head_dim]` (any `t`, one decode token or many): the
    /// last page's bounds widen until it holds `page_size` keys, then a new page starts.
    ///
    /// # Panics
    /// If the batch, KV heads or head dim differ from the cache's.
    pub fn append(&mut self, k: &Tensor<4>) {
        let [b, h, t, d] = k.dims();
        assert!(
            [b, h, d] == [self.batch, self.kv_heads, self.head_dim],
            "PageBounds::append: keys must be [{}, {}, t, {}], found [{b}, {h}, {t}, {d}]",
            self.batch,
            self.kv_heads,
            self.head_dim
        );
        if t == 0 {
            return;
        }
        let keys = host_f32(k.clone());
        let stride = self.batch * self.kv_heads * d;
        for i in 0..t {
            let new_page = self.len.is_multiple_of(self.page_size);
            if new_page {
                self.min.resize(self.min.len() + stride, f32::INFINITY);
                self.max.resize(self.max.len() + stride, f32::NEG_INFINITY);
            }
            let page0 = self.min.len() - stride;
            for bh in 0..b * h {
                let key = &keys[(bh * t + i) * d..][..d];
                let lo = &mut self.min[page0 + bh * d..][..d];
                lo.iter_mut().zip(key).for_each(|(m, &x)| *m = m.min(x));
                let hi = &mut self.max[page0 + bh * d..][..d];
                hi.iter_mut().zip(key).for_each(|(m, &x)| *m = m.max(x));
            }
            self.len += 1;
        }
    }

    /// Keys per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// KV heads.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Head dim of the keys.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Keys in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages, the last possibly partial: `⌈len / page_size⌉`.
    pub fn n_pages(&self) -> usize {
        self.len.div_ceil(self.page_size)
    }

    /// Pages holding `page_size` keys: `⌊len / page_size⌋`.
    pub fn n_complete_pages(&self) -> usize {
        self.len / self.page_size
    }

    fn offset(&self, b: usize, h: usize, page: usize) -> usize {
        assert!(
            b < self.batch && h < self.kv_heads && page < self.n_pages(),
            "PageBounds: expected b < {}, h < {}, page < {}, found b {b}, h {h}, page {page}",
            self.batch,
            self.kv_heads,
            self.n_pages()
        );
        ((page * self.batch + b) * self.kv_heads + h) * self.head_dim
    }

    /// Elementwise minimum of the keys of one page (`head_dim` values).
    ///
    /// # Panics
    /// If `b`, `h` or `page` is out of range.
    pub fn min(&self, b: usize, h: usize, page: usize) -> &[f32] {
        let o = self.offset(b, h, page);
        &self.min[o..o + self.head_dim]
    }

    /// Elementwise maximum of the keys of one page (`head_dim` values).
    ///
    /// # Panics
    /// If `b`, `h` or `page` is out of range.
    pub fn max(&self, b: usize, h: usize, page: usize) -> &[f32] {
        let o = self.offset(b, h, page);
        &self.max[o..o + self.head_dim]
    }

    /// Quest's page score `Σ_c max(q_c · min_c, q_c · max_c)`, an upper bound of `q · k` over
    /// the page's keys.
    ///
    /// # Panics
    /// If `b`, `h` or `page` is out of range or `q` is not `head_dim` long.
    pub fn score(&self, b: usize, h: usize, page: usize, q: &[f32]) -> f32 {
        assert!(
            q.len() == self.head_dim,
            "PageBounds::score: q must have head_dim {} values, found {}",
            self.head_dim,
            q.len()
        );
        page_score(q, self.min(b, h, page), self.max(b, h, page))
    }
}

fn page_score(q: &[f32], min: &[f32], max: &[f32]) -> f32 {
    q.iter()
        .zip(min.iter().zip(max))
        .map(|(&qc, (&lo, &hi))| (qc * lo).max(qc * hi))
        .sum()
}

/// The Quest estimator: page size, token budget and GQA page sharing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quest {
    /// Keys per page (16 in the paper and the reference).
    pub page_size: usize,
    /// Keys read per decode step; `token_budget / page_size` pages, the current page included.
    pub token_budget: usize,
    /// Sum the page scores of a GQA group's query heads so the group reads one page set.
    pub share_pages: bool,
}

impl Default for Quest {
    /// Pages of 16, a budget of 1024 tokens (one of the budgets the paper evaluates, 64 pages),
    /// one page set per query head.
    fn default() -> Self {
        Self::new(16, 1024)
    }
}

impl Quest {
    /// Pages of `page_size` keys and a budget of `token_budget` keys, page sets per query head.
    ///
    /// # Panics
    /// If `page_size` is 0.
    pub fn new(page_size: usize, token_budget: usize) -> Self {
        assert!(
            page_size > 0,
            "Quest::new: page_size must be at least 1, found 0"
        );
        Self {
            page_size,
            token_budget,
            share_pages: false,
        }
    }

    /// Shares one page set per GQA group (scores summed over the group's query heads).
    pub fn sharing_pages(mut self) -> Self {
        self.share_pages = true;
        self
    }

    /// Pages per decode step, the current page included: `token_budget / page_size`.
    pub fn page_budget(&self) -> usize {
        self.token_budget / self.page_size
    }

    /// Page scores of a decode query `q` `[batch, heads, 1, head_dim]`, row-major
    /// `[batch, mask_heads, n_pages]` on the host: mask heads are the query heads, or the KV
    /// heads with [`Quest::share_pages`] (the sum over the group's query heads).
    ///
    /// # Panics
    /// If `bounds` has another page size, batch or head dim than `q`, `q` has more than one
    /// query, or the query heads are not a multiple of the KV heads.
    pub fn page_scores(&self, bounds: &PageBounds, q: &Tensor<4>) -> Vec<f32> {
        let [b, h, tq, d] = q.dims();
        let hkv = bounds.kv_heads();
        assert!(
            bounds.page_size() == self.page_size,
            "Quest: bounds have page_size {}, the estimator {}",
            bounds.page_size(),
            self.page_size
        );
        assert!(
            tq == 1,
            "Quest: a decode query has one row, found q_len {tq}"
        );
        assert!(
            b == bounds.batch() && d == bounds.head_dim() && h.is_multiple_of(hkv),
            "Quest: q must be [{}, a multiple of {hkv}, 1, {}], found [{b}, {h}, 1, {d}]",
            bounds.batch(),
            bounds.head_dim()
        );
        let group = h / hkv;
        let n = bounds.n_pages();
        let qh = host_f32(q.clone());
        let mask_heads = if self.share_pages { hkv } else { h };
        let mut scores = vec![0f32; b * mask_heads * n];
        for bi in 0..b {
            for hi in 0..h {
                let kh = hi / group;
                let row = if self.share_pages { kh } else { hi };
                let qv = &qh[(bi * h + hi) * d..][..d];
                let out = &mut scores[(bi * mask_heads + row) * n..][..n];
                for (page, s) in out.iter_mut().enumerate() {
                    *s += bounds.score(bi, kh, page, qv);
                }
            }
        }
        scores
    }

    /// The decode mask of `q` `[batch, heads, 1, head_dim]` over the cached keys: per (batch,
    /// mask head), the current page and the best `page_budget − 1` others (see the
    /// [module docs](self)), as full `1 × page_size` blocks on
    /// `AttentionLayout::causal_suffix(1, bounds.len())`; batch is the query's, heads the query
    /// heads (or the KV heads with [`Quest::share_pages`]).
    ///
    /// # Panics
    /// If the cache is empty, or as [`Quest::page_scores`].
    pub fn mask(&self, bounds: &PageBounds, q: &Tensor<4>) -> SparseMask {
        assert!(
            !bounds.is_empty(),
            "Quest::mask: the page cache holds no key"
        );
        let scores = self.page_scores(bounds, q);
        let n = bounds.n_pages();
        let [b, h, _, _] = q.dims();
        let heads = if self.share_pages {
            bounds.kv_heads()
        } else {
            h
        };
        // The current page is the row's diagonal block, forced inside the page budget.
        let selector = RowSelector::new(Budget::TopK(self.page_budget())).with_local(1);
        let mut kept = Vec::new();
        let blocks = scores
            .chunks(n)
            .map(|row| {
                selector.select(row, n - 1, &mut kept);
                kept.iter().copied().map(BlockEntry::full).collect()
            })
            .collect();
        SparseMask::from_parts(MaskParts {
            layout: AttentionLayout::causal_suffix(1, bounds.len()),
            block: BlockSize::new(1, self.page_size),
            batch: b,
            heads,
            blocks,
            columns: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("Quest::mask: {e}"))
    }
}

#[cfg(test)]
mod tests;
