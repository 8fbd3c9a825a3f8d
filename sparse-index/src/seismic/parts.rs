//! The arrays of a built Seismic-style index, how they are built, and how they are validated.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::collection::SparseCollection;
use crate::error::{Error, Result};
use crate::seismic::clustering::{ClusterScratch, cluster_list};
use crate::seismic::config::SeismicConfig;
use crate::seismic::forward::{Component, ValueCodec};
use crate::seismic::pruning::prune;
use crate::seismic::reorder::locality_order;
use crate::seismic::summary::{SummaryScratch, summarize};
use crate::storage::Array;

/// What a build is doing, reported to the progress callback of
/// [`crate::SeismicIndex::build_with_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStage {
    /// Copying documents into the compact forward index.
    Forward,
    /// Selecting the postings to keep.
    Pruning,
    /// Clustering posting lists into blocks and summarising the blocks (`done` of `total`
    /// lists).
    Blocking,
    /// Concatenating the per-list results.
    Assembling,
}

/// A progress report: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildProgress {
    /// The stage.
    pub stage: BuildStage,
    /// Units done.
    pub done: usize,
    /// Units in the stage.
    pub total: usize,
}

/// The arrays of an index whose component ids are stored as `C` and forward values as `V`.
///
/// Everything below is indexed by internal document ids; `doc_ids` maps them back.
///
/// Invariants (established by [`build`], checked by [`Parts::validate`] for loaded files):
/// - `dim` fits `C` (`≤ 65,536` for `u16` ids), so every id below it indexes the dense query;
/// - `doc_ids` is a permutation of `0..n_docs`;
/// - `fwd_offsets` has `n_docs + 1` non-decreasing entries from 0 to `fwd_comps.len()` ==
///   `fwd_values.len()`; each document's ids are strictly increasing and `< dim`;
/// - `list_blocks` has `dim + 1` non-decreasing entries from 0 to `n_blocks`;
/// - `block_postings` and `summary_offsets` have `n_blocks + 1` non-decreasing entries ending at
///   `postings.len()` and `summary_comps.len()` == `summary_codes.len()`;
/// - postings are `< n_docs`, summary ids `< dim`, `summary_scales` has `n_blocks` finite
///   non-negative entries.
pub(crate) struct Parts<C: Component, V: ValueCodec> {
    pub(crate) dim: usize,
    pub(crate) n_docs: usize,
    pub(crate) value_scale: f32,
    /// Original document id of every internal id (documents are stored in locality order).
    pub(crate) doc_ids: Array<u32>,
    /// Internal id of every original document id (derived from `doc_ids`, not stored).
    pub(crate) internal_ids: Vec<u32>,
    pub(crate) fwd_offsets: Array<u64>,
    pub(crate) fwd_comps: Array<C>,
    pub(crate) fwd_values: Array<V::Stored>,
    pub(crate) list_blocks: Array<u32>,
    pub(crate) block_postings: Array<u32>,
    pub(crate) postings: Array<u32>,
    pub(crate) summary_offsets: Array<u32>,
    pub(crate) summary_comps: Array<C>,
    pub(crate) summary_codes: Array<u8>,
    pub(crate) summary_scales: Array<f32>,
}

/// Largest component id (plus one) the approximate index accepts: its query and build buffers
/// are dense arrays of `dim` entries.
pub(crate) const MAX_DIM: u64 = 1 << 26;

/// One posting list after blocking and summarising.
struct ListOut {
    docs: Vec<u32>,
    block_sizes: Vec<u32>,
    summary_lens: Vec<u32>,
    summary_comps: Vec<u32>,
    summary_codes: Vec<u8>,
    summary_scales: Vec<f32>,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn to_u32(n: usize, what: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::TooLarge {
        what,
        found: n as u64,
        limit: u64::from(u32::MAX),
    })
}

/// Builds the index arrays for `docs`.
pub(crate) fn build<C: Component, V: ValueCodec>(
    original: &SparseCollection,
    config: &SeismicConfig,
    progress: &(dyn Fn(BuildProgress) + Sync),
) -> Result<Parts<C, V>> {
    progress(BuildProgress {
        stage: BuildStage::Forward,
        done: 0,
        total: 1,
    });
    let doc_ids: Vec<u32> = if config.reorder_documents {
        locality_order(original, config.doc_cut, config.seed)
    } else {
        (0..original.len() as u32).collect()
    };
    let reordered: SparseCollection;
    let docs = if config.reorder_documents {
        let mut c = SparseCollection::new();
        for &d in &doc_ids {
            c.push_view(original.get(d as usize));
        }
        reordered = c;
        &reordered
    } else {
        original
    };
    let dim = docs.dim() as usize;
    let n_docs = docs.len();
    let (offsets, indices, values) = docs.as_csr();

    let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let value_scale = V::scale_for(max_abs);
    let fwd_offsets: Vec<u64> = offsets.iter().map(|&o| o as u64).collect();
    let fwd_comps: Vec<C> = indices.iter().map(|&c| C::from_u32(c)).collect();
    let fwd_values: Vec<V::Stored> = values.iter().map(|&v| V::encode(v / value_scale)).collect();

    progress(BuildProgress {
        stage: BuildStage::Pruning,
        done: 0,
        total: 1,
    });
    let lists = prune(docs, config);

    let done = AtomicUsize::new(0);
    let report_every = (dim / 200).max(64);
    let outs: Vec<ListOut> = lists
        .par_iter()
        .enumerate()
        .map_init(
            || (ClusterScratch::new(dim), SummaryScratch::new(dim)),
            |(cluster_scratch, summary_scratch), (term, list)| {
                let blocks = cluster_list(
                    list,
                    docs,
                    config.centroid_fraction,
                    config.min_cluster_size,
                    config.doc_cut,
                    splitmix64(config.seed ^ splitmix64(term as u64)),
                    cluster_scratch,
                );
                let mut out = ListOut {
                    docs: Vec::with_capacity(blocks.docs.len()),
                    block_sizes: blocks.sizes.clone(),
                    summary_lens: Vec::with_capacity(blocks.sizes.len()),
                    summary_comps: Vec::new(),
                    summary_codes: Vec::new(),
                    summary_scales: Vec::with_capacity(blocks.sizes.len()),
                };
                let mut start = 0;
                for &size in &blocks.sizes {
                    let block = &blocks.docs[start..start + size as usize];
                    let s = summarize(
                        block,
                        docs,
                        config.summary_energy,
                        config.summary_max_components,
                        summary_scratch,
                    );
                    out.summary_lens.push(s.comps.len() as u32);
                    out.summary_comps.extend_from_slice(&s.comps);
                    out.summary_codes.extend_from_slice(&s.codes);
                    out.summary_scales.push(s.scale);
                    start += size as usize;
                }
                out.docs = blocks.docs;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(report_every) || n == dim {
                    progress(BuildProgress {
                        stage: BuildStage::Blocking,
                        done: n,
                        total: dim,
                    });
                }
                out
            },
        )
        .collect();
    drop(lists);

    progress(BuildProgress {
        stage: BuildStage::Assembling,
        done: 0,
        total: 1,
    });
    let n_blocks: usize = outs.iter().map(|o| o.block_sizes.len()).sum();
    let n_postings: usize = outs.iter().map(|o| o.docs.len()).sum();
    let n_summary: usize = outs.iter().map(|o| o.summary_comps.len()).sum();
    to_u32(n_blocks, "number of blocks")?;
    to_u32(n_postings, "number of postings")?;
    to_u32(n_summary, "number of summary entries")?;

    let mut list_blocks = Vec::with_capacity(dim + 1);
    let mut block_postings = Vec::with_capacity(n_blocks + 1);
    let mut postings = Vec::with_capacity(n_postings);
    let mut summary_offsets = Vec::with_capacity(n_blocks + 1);
    let mut summary_comps = Vec::with_capacity(n_summary);
    let mut summary_codes = Vec::with_capacity(n_summary);
    let mut summary_scales = Vec::with_capacity(n_blocks);
    list_blocks.push(0u32);
    block_postings.push(0u32);
    summary_offsets.push(0u32);
    for out in outs {
        for &size in &out.block_sizes {
            block_postings.push(block_postings.last().copied().unwrap_or(0) + size);
        }
        for &len in &out.summary_lens {
            summary_offsets.push(summary_offsets.last().copied().unwrap_or(0) + len);
        }
        postings.extend_from_slice(&out.docs);
        summary_comps.extend(out.summary_comps.iter().map(|&c| C::from_u32(c)));
        summary_codes.extend_from_slice(&out.summary_codes);
        summary_scales.extend_from_slice(&out.summary_scales);
        list_blocks.push(list_blocks.last().copied().unwrap_or(0) + out.block_sizes.len() as u32);
    }
    Ok(Parts {
        dim,
        n_docs,
        value_scale,
        internal_ids: invert(&doc_ids),
        doc_ids: doc_ids.into(),
        fwd_offsets: fwd_offsets.into(),
        fwd_comps: fwd_comps.into(),
        fwd_values: fwd_values.into(),
        list_blocks: list_blocks.into(),
        block_postings: block_postings.into(),
        postings: postings.into(),
        summary_offsets: summary_offsets.into(),
        summary_comps: summary_comps.into(),
        summary_codes: summary_codes.into(),
        summary_scales: summary_scales.into(),
    })
}

/// The inverse of a permutation.
pub(crate) fn invert(perm: &[u32]) -> Vec<u32> {
    let mut inv = vec![0u32; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p as usize] = i as u32;
    }
    inv
}

/// Checks that `offsets` has `n + 1` non-decreasing entries from 0 to `end`.
fn check_offsets<T: Copy + Into<u64>>(
    offsets: &[T],
    n: usize,
    end: usize,
    what: &str,
) -> std::result::Result<(), String> {
    if offsets.len() != n + 1 {
        return Err(format!(
            "{what}: {} offsets, expected {}",
            offsets.len(),
            n + 1
        ));
    }
    if offsets[0].into() != 0 || offsets[n].into() != end as u64 {
        return Err(format!(
            "{what}: offsets run from {} to {}, expected 0 to {end}",
            offsets[0].into(),
            offsets[n].into()
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1].into() < w[0].into()) {
        return Err(format!("{what}: offsets decrease at entry {}", i + 1));
    }
    Ok(())
}

impl<C: Component, V: ValueCodec> Parts<C, V> {
    /// Number of blocks over all lists.
    pub(crate) fn n_blocks(&self) -> usize {
        self.summary_scales.len()
    }

    /// Checks every invariant a search relies on; the reason on failure.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let (dim, n_docs) = (self.dim, self.n_docs);
        // The search scatters the query into a dense array of `C::dense_len(dim)` entries
        // (65,536 for u16 ids) and writes every query id below `dim` into it.
        if !C::fits(dim as u64) || C::dense_len(dim) < dim {
            return Err(format!(
                "dim: component_width {} needs dim ≤ {} (the dense query length), found {dim}",
                C::WIDTH,
                C::dense_len(dim),
            ));
        }
        if !(self.value_scale.is_finite() && self.value_scale > 0.0) {
            return Err(format!("value scale {} is not positive", self.value_scale));
        }
        if self.doc_ids.len() != n_docs {
            return Err(format!(
                "{} document ids for {n_docs} documents",
                self.doc_ids.len()
            ));
        }
        let mut seen = vec![false; n_docs];
        for &d in self.doc_ids.iter() {
            match seen.get_mut(d as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(format!("document ids are not a permutation (id {d})")),
            }
        }
        if self.fwd_comps.len() != self.fwd_values.len() {
            return Err("forward ids and values differ in length".into());
        }
        check_offsets(
            &self.fwd_offsets,
            n_docs,
            self.fwd_comps.len(),
            "forward index",
        )?;
        for d in 0..n_docs {
            let (s, e) = (
                self.fwd_offsets[d] as usize,
                self.fwd_offsets[d + 1] as usize,
            );
            let row = &self.fwd_comps[s..e];
            if row.windows(2).any(|w| w[1] <= w[0]) {
                return Err(format!("document {d}: component ids not increasing"));
            }
            if row.last().is_some_and(|c| c.idx() >= dim) {
                return Err(format!("document {d}: component id beyond dim {dim}"));
            }
        }
        if let Some(i) = self.fwd_values.iter().position(|&v| !V::is_valid(v)) {
            return Err(format!("forward value {i} is not finite"));
        }
        let n_blocks = self.n_blocks();
        check_offsets(&self.list_blocks, dim, n_blocks, "posting lists")?;
        check_offsets(
            &self.block_postings,
            n_blocks,
            self.postings.len(),
            "blocks",
        )?;
        if let Some(&d) = self.postings.iter().find(|&&d| d as usize >= n_docs) {
            return Err(format!("posting names document {d} of {n_docs}"));
        }
        if self.summary_comps.len() != self.summary_codes.len() {
            return Err("summary ids and codes differ in length".into());
        }
        check_offsets(
            &self.summary_offsets,
            n_blocks,
            self.summary_comps.len(),
            "summaries",
        )?;
        if self.summary_comps.iter().any(|c| c.idx() >= dim) {
            return Err(format!("summary component id beyond dim {dim}"));
        }
        if let Some(s) = self
            .summary_scales
            .iter()
            .find(|s| !(s.is_finite() && **s >= 0.0))
        {
            return Err(format!("summary scale {s} is not finite and non-negative"));
        }
        Ok(())
    }

    /// Document `doc` (original id) decoded to `f32` (ids and values).
    pub(crate) fn document(&self, doc: usize) -> (Vec<u32>, Vec<f32>) {
        let doc = self.internal_ids[doc] as usize;
        let (s, e) = (
            self.fwd_offsets[doc] as usize,
            self.fwd_offsets[doc + 1] as usize,
        );
        let comps = self.fwd_comps[s..e]
            .iter()
            .map(|c| c.idx() as u32)
            .collect();
        let vals = self.fwd_values[s..e]
            .iter()
            .map(|&v| V::decode(v) * self.value_scale)
            .collect();
        (comps, vals)
    }

    /// Bytes of the forward index, the blocked posting lists and the summaries.
    pub(crate) fn bytes(&self) -> (usize, usize, usize) {
        let forward = self.doc_ids.len() * 4
            + self.fwd_offsets.len() * 8
            + self.fwd_comps.len() * size_of::<C>()
            + self.fwd_values.len() * size_of::<V::Stored>();
        let postings =
            self.list_blocks.len() * 4 + self.block_postings.len() * 4 + self.postings.len() * 4;
        let summaries = self.summary_offsets.len() * 4
            + self.summary_comps.len() * size_of::<C>()
            + self.summary_codes.len()
            + self.summary_scales.len() * 4;
        (forward, postings, summaries)
    }
}
