//! [`SeismicIndex`]: the approximate index users build, query, extend, save and load.

use std::cell::RefCell;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::collection::SparseCollection;
use crate::error::{Error, Result};
use crate::file_format::{self, IndexFile, Section};
use crate::seismic::config::{SearchParams, SeismicConfig, UnknownComponents, ValuePrecision};
use crate::seismic::forward::{Component, F16Codec, F32Codec, ValueCodec};
use crate::seismic::parts::{self, BuildProgress, MAX_DIM, Parts};
use crate::seismic::pending::Pending;
use crate::seismic::search::{Scratch, SearchStats};
use crate::topk::ScoredDoc;
use crate::vector::{SparseVector, SparseView};

/// The index arrays, one variant per (component width, value precision).
enum Main {
    U16F16(Parts<u16, F16Codec>),
    U16F32(Parts<u16, F32Codec>),
    U32F16(Parts<u32, F16Codec>),
    U32F32(Parts<u32, F32Codec>),
}

/// Runs `$body` with `$p` bound to the concrete [`Parts`] of a [`Main`].
macro_rules! with_parts {
    ($main:expr, $p:ident => $body:expr) => {
        match $main {
            Main::U16F16($p) => $body,
            Main::U16F32($p) => $body,
            Main::U32F16($p) => $body,
            Main::U32F32($p) => $body,
        }
    };
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Memory used by an index, in bytes, by component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexMemory {
    /// The compact forward index (offsets, component ids, values).
    pub forward: usize,
    /// The blocked posting lists (list and block offsets, document ids).
    pub postings: usize,
    /// The block summaries (offsets, component ids, codes, scales).
    pub summaries: usize,
    /// The documents added since the build and their exact inverted index (estimate).
    pub pending: usize,
}

impl IndexMemory {
    /// The sum of all components.
    pub fn total(&self) -> usize {
        self.forward + self.postings + self.summaries + self.pending
    }
}

/// What the file's metadata block records.
#[derive(Serialize, Deserialize)]
struct Meta {
    kind: String,
    config: SeismicConfig,
    n_docs: usize,
    dim: usize,
    component_width: u32,
    precision: ValuePrecision,
    value_scale: f32,
    n_blocks: usize,
    pending_docs: usize,
}

/// A Seismic-style approximate index for top-k inner-product search over sparse vectors
/// (Bruch, Nardini, Rulli, Venturini, SIGIR 2024).
///
/// Build: each posting list keeps its largest values ([`SeismicConfig::budget`],
/// [`SeismicConfig::max_fraction`]), is clustered into blocks, and every block gets a quantised
/// summary vector; a compact forward index keeps every document for exact re-scoring. Search:
/// only the lists of the query's largest components are walked and a block's documents are
/// scored only when its summary promises to beat the current k-th score
/// ([`SearchParams`]).
///
/// Documents [added](Self::add) after the build are searched exactly until [`Self::rebuild`].
/// Indexes are saved to a versioned, checksummed file and loaded into memory or memory-mapped.
///
/// ```
/// use sparse_index::{SearchParams, SeismicConfig, SeismicIndex, SparseCollection, SparseVector};
///
/// let mut docs = SparseCollection::new();
/// for d in 0..100u32 {
///     docs.push(&SparseVector::new(vec![d % 7, 10 + d % 13, 30 + d % 5], vec![1.0, 0.5, 0.25])?);
/// }
/// let mut index = SeismicIndex::build(&docs, &SeismicConfig::default())?;
/// let query = SparseVector::new(vec![3, 13], vec![1.0, 1.0])?;
/// let hits = index.search(&query, 5, &SearchParams::default())?;
/// assert_eq!(hits[0].score, 1.5); // components 3 and 13: d % 7 == 3 and d % 13 == 3
///
/// let new_doc = index.add(&SparseVector::new(vec![3, 13], vec![2.0, 2.0])?)?;
/// assert_eq!(index.search(&query, 1, &SearchParams::default())?[0].doc, new_doc);
/// # Ok::<(), sparse_index::Error>(())
/// ```
pub struct SeismicIndex {
    config: SeismicConfig,
    main: Main,
    pending: Pending,
}

impl std::fmt::Debug for SeismicIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeismicIndex")
            .field("config", &self.config)
            .field("indexed_docs", &self.indexed_len())
            .field("pending_docs", &self.pending_len())
            .field("dim", &self.dim())
            .finish()
    }
}

impl SeismicIndex {
    /// Builds an index over `docs` (document ids are positions in `docs`).
    ///
    /// Uses rayon's global thread pool for the blocking stage; deterministic for a given
    /// [`SeismicConfig::seed`] whatever the number of threads.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if a component id is `≥ 2²⁶` (the query buffers are dense arrays of
    /// that size) or the index would hold more than `u32::MAX` postings.
    ///
    /// # Panics
    /// If a [`SeismicConfig`] field is outside its domain (the message names it).
    pub fn build(docs: &SparseCollection, config: &SeismicConfig) -> Result<Self> {
        Self::build_with_progress(docs, config, |_| {})
    }

    /// [`Self::build`] that reports progress (from worker threads) to `progress`.
    ///
    /// # Errors
    /// As [`Self::build`].
    ///
    /// # Panics
    /// As [`Self::build`].
    pub fn build_with_progress(
        docs: &SparseCollection,
        config: &SeismicConfig,
        progress: impl Fn(BuildProgress) + Sync,
    ) -> Result<Self> {
        config.check();
        if docs.dim() > MAX_DIM {
            return Err(Error::ComponentOutOfRange {
                component: docs.dim() - 1,
                dim: MAX_DIM,
                what: "approximate index (remap component ids below 2^26)",
            });
        }
        let wide = !u16::fits(docs.dim());
        let main = match (wide, config.precision) {
            (false, ValuePrecision::F16) => Main::U16F16(parts::build(docs, config, &progress)?),
            (false, ValuePrecision::F32) => Main::U16F32(parts::build(docs, config, &progress)?),
            (true, ValuePrecision::F16) => Main::U32F16(parts::build(docs, config, &progress)?),
            (true, ValuePrecision::F32) => Main::U32F32(parts::build(docs, config, &progress)?),
        };
        Ok(Self {
            config: *config,
            main,
            pending: Pending::default(),
        })
    }

    /// The build configuration.
    pub fn config(&self) -> &SeismicConfig {
        &self.config
    }

    /// Number of documents, indexed and pending.
    pub fn len(&self) -> usize {
        self.indexed_len() + self.pending_len()
    }

    /// Whether the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of documents in the built index.
    pub fn indexed_len(&self) -> usize {
        with_parts!(&self.main, p => p.n_docs)
    }

    /// Number of documents added since the last build.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Largest component id plus one of the built index.
    pub fn dim(&self) -> usize {
        with_parts!(&self.main, p => p.dim)
    }

    /// Number of blocks over all posting lists.
    pub fn n_blocks(&self) -> usize {
        with_parts!(&self.main, p => p.n_blocks())
    }

    /// Number of postings kept after pruning.
    pub fn n_postings(&self) -> usize {
        with_parts!(&self.main, p => p.postings.len())
    }

    /// Memory used, by component (the logical size of the arrays, also when memory-mapped).
    pub fn memory(&self) -> IndexMemory {
        let (forward, postings, summaries) = with_parts!(&self.main, p => p.bytes());
        let nnz = self.pending.docs.nnz();
        IndexMemory {
            forward,
            postings,
            summaries,
            pending: nnz * 16 + self.pending.len() * 8,
        }
    }

    /// Document `doc` as stored (values decoded from the forward index's precision).
    ///
    /// # Panics
    /// If `doc >= self.len()`.
    pub fn document(&self, doc: u32) -> SparseVector {
        let n = self.indexed_len();
        let doc = doc as usize;
        assert!(
            doc < self.len(),
            "document {doc} out of range ({} documents)",
            self.len()
        );
        if doc < n {
            let (c, v) = with_parts!(&self.main, p => p.document(doc));
            SparseVector::new(c, v).expect("the forward index holds valid vectors")
        } else {
            self.pending.docs.get(doc - n).to_owned()
        }
    }

    /// Largest component id plus one over the built index and the documents added since:
    /// the vocabulary a query may use. A query component `≥` this matches no document and is
    /// an error unless [`SearchParams::unknown_components`] is [`UnknownComponents::Drop`].
    pub fn searchable_dim(&self) -> u64 {
        (self.dim() as u64).max(self.pending.docs.dim())
    }

    /// The `k` best documents for `query` (see [`ScoredDoc`] for the order), approximately for
    /// the built index and exactly for documents added since. Single-threaded.
    ///
    /// # Errors
    /// [`Error::ComponentOutOfRange`] if a query component is `≥` [`Self::searchable_dim`]
    /// (naming the first such id) and [`SearchParams::unknown_components`] is
    /// [`UnknownComponents::Reject`], the default; with [`UnknownComponents::Drop`] such
    /// components are ignored ([`Self::search_with_stats`] counts them).
    ///
    /// # Panics
    /// If a [`SearchParams`] field is outside its domain.
    pub fn search<'q>(
        &self,
        query: impl Into<SparseView<'q>>,
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<ScoredDoc>> {
        Ok(self.search_with_stats(query, k, params)?.0)
    }

    /// [`Self::search`] that also returns how much work it did and how many query components
    /// it dropped ([`SearchStats::dropped_components`]).
    ///
    /// # Errors
    /// As [`Self::search`].
    ///
    /// # Panics
    /// As [`Self::search`].
    pub fn search_with_stats<'q>(
        &self,
        query: impl Into<SparseView<'q>>,
        k: usize,
        params: &SearchParams,
    ) -> Result<(Vec<ScoredDoc>, SearchStats)> {
        params.check();
        let query = query.into();
        let dim = self.searchable_dim();
        let (query, dropped) = match params.unknown_components {
            UnknownComponents::Reject => (query.check_below(dim, "Seismic index")?, 0),
            UnknownComponents::Drop => query.below(dim),
        };
        Ok(SCRATCH.with_borrow_mut(|scratch| {
            scratch.topk.reset(k);
            if k == 0 {
                let stats = SearchStats {
                    dropped_components: dropped,
                    ..SearchStats::default()
                };
                return (Vec::new(), stats);
            }
            let mut stats = with_parts!(&self.main, p => p.search_into(query, params, scratch));
            let base = self.indexed_len() as u32;
            stats.pending_docs_scored = self.pending.search_into(query, base, scratch);
            stats.dropped_components = dropped;
            (scratch.topk.drain_sorted(), stats)
        }))
    }

    /// [`Self::search`] for many queries, spread over rayon's thread pool; results in query
    /// order.
    ///
    /// # Errors
    /// As [`Self::search`], wrapped in [`Error::InVector`] with the position of the first
    /// query that fails.
    ///
    /// # Panics
    /// As [`Self::search`].
    pub fn search_batch(
        &self,
        queries: &SparseCollection,
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<ScoredDoc>>> {
        (0..queries.len())
            .into_par_iter()
            .map(|i| {
                self.search(queries.get(i), k, params)
                    .map_err(|e| e.in_vector(i))
            })
            .collect()
    }

    /// Adds a document and returns its id (`self.len()` before the call). It is searchable at
    /// once, scored exactly, until the next [`Self::rebuild`] folds it into the approximate
    /// index.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the index already holds `u32::MAX - 1` documents.
    pub fn add<'v>(&mut self, doc: impl Into<SparseView<'v>>) -> Result<u32> {
        let id = self.len();
        if id >= u32::MAX as usize - 1 {
            return Err(Error::TooLarge {
                what: "index",
                found: id as u64 + 1,
                limit: u64::from(u32::MAX) - 1,
            });
        }
        self.pending.push(doc.into());
        Ok(id as u32)
    }

    /// Every document, indexed and pending, in id order (values as stored).
    pub fn documents(&self) -> SparseCollection {
        let mut all = SparseCollection::new();
        for d in 0..self.len() {
            all.push(&self.document(d as u32));
        }
        all
    }

    /// Rebuilds the approximate index over all documents with the same configuration;
    /// document ids do not change. Indexed documents enter with their stored values (f16
    /// precision with [`ValuePrecision::F16`]).
    ///
    /// # Errors
    /// As [`Self::build`].
    pub fn rebuild(&mut self) -> Result<()> {
        let all = self.documents();
        *self = Self::build(&all, &self.config)?;
        Ok(())
    }

    /// Saves the index (including pending documents) to `path`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (component_width, precision) = with_parts!(&self.main, p => parts_kind(p));
        let meta = Meta {
            kind: "seismic".into(),
            config: self.config,
            n_docs: self.indexed_len(),
            dim: self.dim(),
            component_width,
            precision,
            value_scale: with_parts!(&self.main, p => p.value_scale),
            n_blocks: self.n_blocks(),
            pending_docs: self.pending.len(),
        };
        let meta = serde_json::to_string(&meta).expect("metadata serialises");
        let (p_off, p_idx, p_val) = self.pending.docs.as_csr();
        let p_off: Vec<u64> = p_off.iter().map(|&o| o as u64).collect();
        with_parts!(&self.main, p => {
            let sections = [
                Section::of("doc_ids", &p.doc_ids),
                Section::of("fwd_offsets", &p.fwd_offsets),
                Section::of("fwd_comps", &p.fwd_comps),
                Section::of("fwd_values", &p.fwd_values),
                Section::of("list_blocks", &p.list_blocks),
                Section::of("block_postings", &p.block_postings),
                Section::of("postings", &p.postings),
                Section::of("sum_offsets", &p.summary_offsets),
                Section::of("sum_comps", &p.summary_comps),
                Section::of("sum_codes", &p.summary_codes),
                Section::of("sum_scales", &p.summary_scales),
                Section::of("pending_offsets", &p_off),
                Section::of("pending_comps", p_idx),
                Section::of("pending_values", p_val),
            ];
            file_format::write(path, &meta, &sections)
        })
    }

    /// Loads an index saved with [`Self::save`], reading the file into memory.
    ///
    /// Every checksum and every structural invariant is verified before the index is used, so
    /// a truncated, corrupt or hostile file gives an error, never a panic or undefined
    /// behaviour.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Truncated`], [`Error::Corrupt`], [`Error::UnsupportedVersion`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_file(IndexFile::parse(path, file_format::read_region(path)?)?)
    }

    /// Loads an index saved with [`Self::save`] by memory-mapping the file: the arrays are used
    /// in place, not copied (pending documents are copied). Verified as in [`Self::load`].
    ///
    /// # Errors
    /// As [`Self::load`].
    ///
    /// # Safety
    /// The file must not be modified or truncated while the index (or anything derived from
    /// it) is alive: the operating system would change the mapped bytes under the index's
    /// feet, which Rust cannot guard against (see [`memmap2::Mmap::map`]).
    pub unsafe fn load_mmap(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // SAFETY: the caller upholds the contract above.
        let region = unsafe { file_format::map_region(path)? };
        Self::from_file(IndexFile::parse(path, region)?)
    }

    fn from_file(file: IndexFile) -> Result<Self> {
        let meta: Meta = serde_json::from_str(&file.meta)
            .map_err(|e| Error::corrupt(&file.path, format!("metadata: {e}")))?;
        if meta.kind != "seismic" {
            return Err(Error::corrupt(
                &file.path,
                format!("not a Seismic index (kind {:?})", meta.kind),
            ));
        }
        if meta.dim as u64 > MAX_DIM {
            return Err(Error::corrupt(
                &file.path,
                format!("dim {} too large", meta.dim),
            ));
        }
        let main = match (meta.component_width, meta.precision) {
            (2, ValuePrecision::F16) => Main::U16F16(load_parts(&file, &meta)?),
            (2, ValuePrecision::F32) => Main::U16F32(load_parts(&file, &meta)?),
            (4, ValuePrecision::F16) => Main::U32F16(load_parts(&file, &meta)?),
            (4, ValuePrecision::F32) => Main::U32F32(load_parts(&file, &meta)?),
            (w, _) => {
                return Err(Error::corrupt(
                    &file.path,
                    format!("component width {w} is neither 2 nor 4"),
                ));
            }
        };
        let p_off = file.array::<u64>("pending_offsets", Some(meta.pending_docs + 1))?;
        let p_idx = file.array::<u32>("pending_comps", None)?;
        let p_val = file.array::<f32>("pending_values", None)?;
        let offsets = p_off
            .iter()
            .map(|&o| usize::try_from(o))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| Error::corrupt(&file.path, "pending offsets overflow"))?;
        let pending_docs = SparseCollection::from_csr(offsets, p_idx.to_vec(), p_val.to_vec())
            .map_err(|e| Error::corrupt(&file.path, format!("pending documents: {e}")))?;
        Ok(Self {
            config: meta.config,
            main,
            pending: Pending::from_docs(pending_docs),
        })
    }
}

fn parts_kind<C: Component, V: ValueCodec>(_: &Parts<C, V>) -> (u32, ValuePrecision) {
    (C::WIDTH, V::PRECISION)
}

fn load_parts<C: Component, V: ValueCodec>(file: &IndexFile, meta: &Meta) -> Result<Parts<C, V>> {
    let (n, dim, nb) = (meta.n_docs, meta.dim, meta.n_blocks);
    let inc = |x: usize| {
        x.checked_add(1)
            .ok_or_else(|| Error::corrupt(&file.path, "size overflow"))
    };
    let parts = Parts::<C, V> {
        dim,
        n_docs: n,
        value_scale: meta.value_scale,
        doc_ids: file.array("doc_ids", Some(n))?,
        internal_ids: Vec::new(),
        fwd_offsets: file.array("fwd_offsets", Some(inc(n)?))?,
        fwd_comps: file.array("fwd_comps", None)?,
        fwd_values: file.array("fwd_values", None)?,
        list_blocks: file.array("list_blocks", Some(inc(dim)?))?,
        block_postings: file.array("block_postings", Some(inc(nb)?))?,
        postings: file.array("postings", None)?,
        summary_offsets: file.array("sum_offsets", Some(inc(nb)?))?,
        summary_comps: file.array("sum_comps", None)?,
        summary_codes: file.array("sum_codes", None)?,
        summary_scales: file.array("sum_scales", Some(nb))?,
    };
    if n >= u32::MAX as usize {
        return Err(Error::corrupt(&file.path, "too many documents"));
    }
    let mut parts = parts;
    parts
        .validate()
        .map_err(|reason| Error::corrupt(&file.path, reason))?;
    parts.internal_ids = parts::invert(&parts.doc_ids);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seismic::config::PostingBudget;

    fn docs() -> SparseCollection {
        (0..80u32)
            .map(|d| {
                SparseVector::new(
                    vec![d % 6, 6 + d % 9, 15 + d % 4],
                    vec![1.0 + (d % 5) as f32, 0.75, 0.5 + (d % 3) as f32],
                )
                .unwrap()
            })
            .collect()
    }

    /// Rewrites a saved index with one section changed and fresh checksums: a hostile file
    /// that only the structural validation can catch.
    fn tamper(path: &Path, section: &str, edit: impl Fn(&mut Vec<u8>)) {
        tamper_with_meta(path, |m| m.to_owned(), section, edit);
    }

    /// [`tamper`] that also rewrites the metadata JSON.
    fn tamper_with_meta(
        path: &Path,
        edit_meta: impl Fn(&str) -> String,
        section: &str,
        edit: impl Fn(&mut Vec<u8>),
    ) {
        let file = IndexFile::parse(path, file_format::read_region(path).unwrap()).unwrap();
        let mut sections = file.sections();
        let s = sections.iter_mut().find(|s| s.0 == section).unwrap();
        edit(&mut s.2);
        let names: Vec<&'static str> = sections
            .iter()
            .map(|s| &*Box::leak(s.0.clone().into_boxed_str()))
            .collect();
        let list: Vec<Section<'_>> = sections
            .iter()
            .zip(&names)
            .map(|(s, n)| Section {
                name: n,
                elem_size: s.1,
                bytes: &s.2,
            })
            .collect();
        file_format::write(path, &edit_meta(&file.meta), &list).unwrap();
    }

    /// A file whose u16 ids claim a dim past the 65,536-entry dense query, with every other
    /// invariant intact (one empty posting list per extra component): loading refuses it, in
    /// memory and memory-mapped, instead of a search indexing past the query buffer.
    #[test]
    fn narrow_ids_with_a_wide_dim_are_refused() {
        let index = SeismicIndex::build(&docs(), &SeismicConfig::default()).unwrap();
        assert_eq!(index.dim(), 19);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.splx");
        index.save(&path).unwrap();
        let dim = 70_000usize;
        tamper_with_meta(
            &path,
            |m| {
                assert!(m.contains(r#""dim":19,"#) && m.contains(r#""component_width":2"#));
                m.replace(r#""dim":19,"#, &format!(r#""dim":{dim},"#))
            },
            "list_blocks",
            |b| {
                let last: [u8; 4] = b[b.len() - 4..].try_into().unwrap();
                for _ in 19..dim {
                    b.extend_from_slice(&last);
                }
            },
        );
        let query = SparseVector::new(vec![3, 66_000], vec![1.0, 1.0]).unwrap();
        // SAFETY: a private temporary file, not modified while mapped.
        let mapped = unsafe { SeismicIndex::load_mmap(&path) };
        for loaded in [SeismicIndex::load(&path), mapped] {
            match loaded {
                Err(Error::Corrupt { reason, .. }) => {
                    assert!(
                        reason.contains("component_width 2")
                            && reason.contains("65536")
                            && reason.contains("found 70000"),
                        "{reason}"
                    );
                }
                Err(e) => panic!("wrong error: {e}"),
                Ok(loaded) => {
                    // Before the check this search indexed the dense query out of bounds.
                    let hits = loaded.search(&query, 5, &SearchParams::default());
                    panic!("hostile file loaded; search gave {hits:?}");
                }
            }
        }
    }

    #[test]
    fn unknown_query_components_are_an_error_or_dropped() {
        let mut index = SeismicIndex::build(&docs(), &SeismicConfig::default()).unwrap();
        let strict = SearchParams::default();
        let lenient = strict.with_unknown_components(UnknownComponents::Drop);
        let query =
            SparseVector::new(vec![3, 40_000, 70_000, 4_000_000_000], vec![1.0; 4]).unwrap();
        let err = index.search(&query, 5, &strict).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ComponentOutOfRange {
                    component: 40_000,
                    dim: 19,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("40000") && err.to_string().contains("19"));
        let (hits, stats) = index.search_with_stats(&query, 5, &lenient).unwrap();
        assert_eq!(stats.dropped_components, 3);
        let known = SparseVector::new(vec![3], vec![1.0]).unwrap();
        assert_eq!(hits, index.search(&known, 5, &strict).unwrap());
        assert!(matches!(
            index.search_batch(
                &SparseCollection::from_vectors([&known, &query]),
                5,
                &strict
            ),
            Err(Error::InVector { index: 1, .. })
        ));

        // A document added later widens what a query may use.
        let added = index
            .add(&SparseVector::new(vec![40_000], vec![2.0]).unwrap())
            .unwrap();
        assert_eq!(index.searchable_dim(), 40_001);
        let query = SparseVector::new(vec![40_000], vec![1.0]).unwrap();
        let hits = index.search(&query, 5, &strict).unwrap();
        assert_eq!(hits.iter().map(|h| h.doc).collect::<Vec<_>>(), [added]);
    }

    #[test]
    fn hostile_files_fail_validation() {
        let index = SeismicIndex::build(
            &docs(),
            &SeismicConfig::default().with_budget(PostingBudget::PerList(10)),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.splx");
        index.save(&good).unwrap();
        let put_u32 = |at: usize, v: u32| {
            move |b: &mut Vec<u8>| b[at * 4..at * 4 + 4].copy_from_slice(&v.to_le_bytes())
        };
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("postings", Box::new(put_u32(0, 80))),
            ("doc_ids", Box::new(put_u32(0, 1))),
            ("doc_ids", Box::new(put_u32(5, 80))),
            ("postings", Box::new(put_u32(3, u32::MAX))),
            ("block_postings", Box::new(put_u32(1, 1_000_000))),
            ("list_blocks", Box::new(put_u32(2, 0))),
            ("sum_offsets", Box::new(put_u32(1, 0xffff))),
            (
                "fwd_comps",
                Box::new(|b: &mut Vec<u8>| b[0..2].copy_from_slice(&60u16.to_le_bytes())),
            ),
            ("fwd_comps", Box::new(|b: &mut Vec<u8>| b.swap(0, 2))),
            (
                "fwd_values",
                Box::new(|b: &mut Vec<u8>| b[0..2].copy_from_slice(&0x7c00u16.to_le_bytes())),
            ),
            (
                "fwd_offsets",
                Box::new(|b: &mut Vec<u8>| b[8..16].copy_from_slice(&u64::MAX.to_le_bytes())),
            ),
            (
                "sum_comps",
                Box::new(|b: &mut Vec<u8>| b[0..2].copy_from_slice(&999u16.to_le_bytes())),
            ),
            (
                "sum_scales",
                Box::new(|b: &mut Vec<u8>| b[0..4].copy_from_slice(&f32::NAN.to_le_bytes())),
            ),
            (
                "postings",
                Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 4)),
            ),
            (
                "pending_offsets",
                Box::new(|b: &mut Vec<u8>| b.extend_from_slice(&5u64.to_le_bytes())),
            ),
        ];
        for (i, (section, edit)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("bad{i}.splx"));
            std::fs::copy(&good, &path).unwrap();
            tamper(&path, section, edit);
            let err = SeismicIndex::load(&path).expect_err(section);
            assert!(matches!(err, Error::Corrupt { .. }), "{section}: {err}");
        }
    }

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SeismicIndex>();
    }
}
