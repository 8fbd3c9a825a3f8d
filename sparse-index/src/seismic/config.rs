//! Build and search parameters of the Seismic-style index.

use serde::{Deserialize, Serialize};

/// How many postings the global-threshold pruning keeps (Seismic's `n_postings`, the paper's λ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PostingBudget {
    /// λ = ⌈1.3 · √N⌉ postings per non-empty list on average, for a collection of N documents.
    ///
    /// Seismic's MS MARCO default (λ = 4000 for 8.8M documents) barely prunes a 100k collection
    /// and the `0.0005 · N` rule of OpenSearch's port prunes it so hard that recall stalls near
    /// 0.95 (research note §5). λ ∝ √N goes through both good points: 400 at 100k documents
    /// (the best configuration measured there) and ≈ 3,900 at 8.8M.
    Auto,
    /// λ postings per non-empty list on average.
    PerList(usize),
    /// Keep every posting: no global threshold and no list cap (the exhaustive configuration).
    All,
}

impl PostingBudget {
    /// The mean list length λ for a collection of `n_docs` documents; `None` for [`Self::All`].
    pub fn per_list(&self, n_docs: usize) -> Option<usize> {
        match *self {
            PostingBudget::Auto => Some(((n_docs as f64).sqrt() * 1.3).ceil().max(1.0) as usize),
            PostingBudget::PerList(l) => Some(l),
            PostingBudget::All => None,
        }
    }
}

/// How the forward index stores values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValuePrecision {
    /// IEEE half precision with an index-wide power-of-two scale (so any finite `f32` range
    /// fits): half the memory of `f32`, relative error ≤ 2⁻¹¹ per value.
    F16,
    /// Full `f32`: scores equal those of exact search up to summation order.
    F32,
}

/// Build parameters of a [`crate::SeismicIndex`].
///
/// Defaults follow Seismic's library defaults (research note §2.4) except where noted:
/// λ scales with the collection ([`PostingBudget::Auto`]), blocks are a little smaller
/// ([`Self::centroid_fraction`]) and summaries are capped at
/// [`Self::summary_max_components`] entries (they are 84–91% of Seismic's memory at 100k
/// documents). The choices come from the sweeps in the crate guide.
///
/// ```
/// use sparse_index::{PostingBudget, SeismicConfig};
///
/// let config = SeismicConfig::default()
///     .with_budget(PostingBudget::PerList(400))
///     .with_summary_energy(0.5)
///     .with_seed(7);
/// assert_eq!(config.centroid_fraction, 0.15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeismicConfig {
    /// Global-threshold pruning budget. Default [`PostingBudget::Auto`].
    pub budget: PostingBudget,
    /// A list keeps at most `⌊λ · max_fraction⌋` postings (its largest values). Default 1.5.
    pub max_fraction: f32,
    /// Each list of length L is clustered into `max(1, ⌊centroid_fraction · L⌋)` blocks
    /// (Seismic's β/λ). Default 0.15 (Seismic: 0.1; its best configurations use 0.2).
    pub centroid_fraction: f32,
    /// Clusters with at most this many documents are dissolved and their documents reassigned.
    /// Default 2.
    pub min_cluster_size: usize,
    /// A document is assigned to a centroid using only its `doc_cut` largest components
    /// (Seismic's approximate inverted-index k-means). Default 15.
    pub doc_cut: usize,
    /// A block summary keeps the largest entries of the block's coordinate-wise maximum until
    /// they hold this fraction of its L1 mass (Seismic's α). Default 0.4.
    pub summary_energy: f32,
    /// At most this many entries per summary after the energy cut; 0 = no cap. Default 96
    /// (the energy cut alone keeps ≈ 300 entries per block on SPLADE-like data; capped
    /// summaries take 40% less memory and are cheaper to score, at equal recall per µs).
    pub summary_max_components: usize,
    /// Forward-index value storage. Default [`ValuePrecision::F16`].
    pub precision: ValuePrecision,
    /// Store similar documents next to each other in the forward index (one grouping pass
    /// over the collection; see the crate guide). Results do not change, re-scoring reads
    /// fewer scattered rows. Default `true`.
    pub reorder_documents: bool,
    /// Seed of the centroid sampling. Default 42.
    pub seed: u64,
}

impl Default for SeismicConfig {
    fn default() -> Self {
        Self {
            budget: PostingBudget::Auto,
            max_fraction: 1.5,
            centroid_fraction: 0.15,
            min_cluster_size: 2,
            doc_cut: 15,
            summary_energy: 0.4,
            summary_max_components: 96,
            precision: ValuePrecision::F16,
            reorder_documents: true,
            seed: 42,
        }
    }
}

impl SeismicConfig {
    /// A configuration that prunes nothing: every posting kept, full-precision values. With
    /// [`SearchParams::exhaustive`] the index then returns exactly what exact search returns.
    pub fn exhaustive() -> Self {
        Self {
            budget: PostingBudget::All,
            summary_energy: 1.0,
            precision: ValuePrecision::F32,
            ..Self::default()
        }
    }

    /// Sets [`Self::budget`].
    pub fn with_budget(mut self, budget: PostingBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Sets [`Self::max_fraction`].
    pub fn with_max_fraction(mut self, max_fraction: f32) -> Self {
        self.max_fraction = max_fraction;
        self
    }

    /// Sets [`Self::centroid_fraction`].
    pub fn with_centroid_fraction(mut self, centroid_fraction: f32) -> Self {
        self.centroid_fraction = centroid_fraction;
        self
    }

    /// Sets [`Self::min_cluster_size`].
    pub fn with_min_cluster_size(mut self, min_cluster_size: usize) -> Self {
        self.min_cluster_size = min_cluster_size;
        self
    }

    /// Sets [`Self::doc_cut`].
    pub fn with_doc_cut(mut self, doc_cut: usize) -> Self {
        self.doc_cut = doc_cut;
        self
    }

    /// Sets [`Self::summary_energy`].
    pub fn with_summary_energy(mut self, summary_energy: f32) -> Self {
        self.summary_energy = summary_energy;
        self
    }

    /// Sets [`Self::summary_max_components`].
    pub fn with_summary_max_components(mut self, n: usize) -> Self {
        self.summary_max_components = n;
        self
    }

    /// Sets [`Self::precision`].
    pub fn with_precision(mut self, precision: ValuePrecision) -> Self {
        self.precision = precision;
        self
    }

    /// Sets [`Self::reorder_documents`].
    pub fn with_reorder_documents(mut self, reorder: bool) -> Self {
        self.reorder_documents = reorder;
        self
    }

    /// Sets [`Self::seed`].
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Panics with the field's name if a parameter is outside its domain.
    pub(crate) fn check(&self) {
        if let PostingBudget::PerList(l) = self.budget {
            assert!(
                l >= 1,
                "SeismicConfig::budget: PerList(λ) needs λ ≥ 1, found {l}"
            );
        }
        assert!(
            self.max_fraction >= 1.0,
            "SeismicConfig::max_fraction must be ≥ 1 (a list cap below λ), found {}",
            self.max_fraction
        );
        assert!(
            self.centroid_fraction > 0.0 && self.centroid_fraction <= 1.0,
            "SeismicConfig::centroid_fraction must be in (0, 1], found {}",
            self.centroid_fraction
        );
        assert!(
            self.doc_cut >= 1,
            "SeismicConfig::doc_cut must be ≥ 1, found {}",
            self.doc_cut
        );
        assert!(
            self.summary_energy > 0.0 && self.summary_energy <= 1.0,
            "SeismicConfig::summary_energy must be in (0, 1], found {}",
            self.summary_energy
        );
    }
}

/// In which order the query loop visits blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockOrder {
    /// Seismic's loop: lists by decreasing query weight, each list's blocks in stored order,
    /// a block skipped when its summary score is below `heap_factor ×` the k-th best score.
    Seismic,
    /// All blocks of the `query_cut` lists sorted by summary score, best first; the loop stops
    /// at the first block below `heap_factor ×` the k-th best score. The best blocks raise the
    /// threshold early, so fewer documents are scored for the same recall.
    BestFirst,
}

/// Query-time parameters of [`crate::SeismicIndex::search`].
///
/// ```
/// use sparse_index::SearchParams;
///
/// let fast = SearchParams::default().with_query_cut(5);
/// let exact = SearchParams::exhaustive();
/// assert_eq!(exact.heap_factor, 0.0);
/// # let _ = fast;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    /// Only the lists of the query's `query_cut` largest components are traversed. Default 10.
    pub query_cut: usize,
    /// A block is skipped when its summary score is below `heap_factor ×` the k-th best score
    /// found so far; larger is faster and less accurate; `0` (or below) never skips.
    /// Default 0.8.
    pub heap_factor: f32,
    /// Block visiting order. Default [`BlockOrder::BestFirst`].
    pub order: BlockOrder,
    /// What to do with query components beyond the index's vocabulary
    /// ([`crate::SeismicIndex::searchable_dim`]). Default [`UnknownComponents::Reject`].
    #[serde(default)]
    pub unknown_components: UnknownComponents,
}

/// What a search does with query components `≥` the index's dimension: ids no indexed
/// document has, typically from a query encoded with a different vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UnknownComponents {
    /// The search returns [`crate::Error::ComponentOutOfRange`] naming the first such id and
    /// the index's dimension.
    #[default]
    Reject,
    /// They are dropped (they match no document) and counted in
    /// [`crate::SearchStats::dropped_components`].
    Drop,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            query_cut: 10,
            heap_factor: 0.8,
            order: BlockOrder::BestFirst,
            unknown_components: UnknownComponents::Reject,
        }
    }
}

impl SearchParams {
    /// Every list, every block: exact over the postings the index kept.
    pub fn exhaustive() -> Self {
        Self {
            query_cut: usize::MAX,
            heap_factor: 0.0,
            ..Self::default()
        }
    }

    /// Sets [`Self::query_cut`].
    pub fn with_query_cut(mut self, query_cut: usize) -> Self {
        self.query_cut = query_cut;
        self
    }

    /// Sets [`Self::heap_factor`].
    pub fn with_heap_factor(mut self, heap_factor: f32) -> Self {
        self.heap_factor = heap_factor;
        self
    }

    /// Sets [`Self::order`].
    pub fn with_order(mut self, order: BlockOrder) -> Self {
        self.order = order;
        self
    }

    /// Sets [`Self::unknown_components`].
    pub fn with_unknown_components(mut self, unknown: UnknownComponents) -> Self {
        self.unknown_components = unknown;
        self
    }

    pub(crate) fn check(&self) {
        assert!(
            self.query_cut >= 1,
            "SearchParams::query_cut must be ≥ 1, found 0"
        );
        assert!(
            self.heap_factor.is_finite(),
            "SearchParams::heap_factor must be finite, found {}",
            self.heap_factor
        );
    }
}
