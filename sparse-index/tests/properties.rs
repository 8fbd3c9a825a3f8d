//! Property tests of the search paths against the brute-force oracle, and of save → load.

use proptest::prelude::*;
use sparse_index::{
    BlockOrder, Error, ExactIndex, PostingBudget, ScoredDoc, SearchParams, SeismicConfig,
    SeismicIndex, SparseCollection, SparseVector, UnknownComponents, ValuePrecision,
    brute_force_search,
};

/// A sparse vector over `dim` components with values from `values`.
fn vector(dim: u32, max_nnz: usize, values: BoxedStrategy<f32>) -> BoxedStrategy<SparseVector> {
    proptest::collection::btree_map(0..dim, values, 0..=max_nnz)
        .prop_map(|m| SparseVector::from_pairs(m).unwrap())
        .boxed()
}

/// Dyadic values k/8: every sum of products is exact in f32 whatever the summation order, and
/// every value is exact in f16, so all paths must agree bit for bit, ties included.
fn dyadic() -> BoxedStrategy<f32> {
    (-8i32..=32).prop_map(|k| k as f32 / 8.0).boxed()
}

/// Non-negative floats (SPLADE-like): the case where early termination can prune.
fn positive_floats() -> BoxedStrategy<f32> {
    (0.0f32..4.0).boxed()
}

/// Arbitrary finite floats of both signs.
fn floats() -> BoxedStrategy<f32> {
    (-4.0f32..4.0).boxed()
}

fn collection(
    values: fn() -> BoxedStrategy<f32>,
) -> impl Strategy<Value = (SparseCollection, Vec<SparseVector>)> {
    (1u32..40).prop_flat_map(move |dim| {
        (
            proptest::collection::vec(vector(dim, 8, values()), 0..50)
                .prop_map(|v| v.into_iter().collect::<SparseCollection>()),
            proptest::collection::vec(vector(dim + 3, 10, values()), 1..5),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Exact search (term at a time, MaxScore) equals brute force, bit for bit, for any values:
    /// all of them add the same products in increasing component order (MaxScore re-scores its
    /// candidates through the forward index).
    #[test]
    fn exact_equals_brute_force((docs, queries) in collection(floats), k in 0usize..12) {
        let exact = ExactIndex::new(docs.clone()).unwrap();
        for q in &queries {
            let oracle = brute_force_search(&docs, q, k);
            let (q, _) = exact.known_components(q);
            prop_assert_eq!(&exact.search_taat(q, k).unwrap(), &oracle);
            prop_assert_eq!(&exact.search(q, k).unwrap(), &oracle);
            prop_assert_eq!(&exact.search_maxscore(q, k).unwrap(), &oracle);
        }
    }

    /// The same with non-negative, skewed values (some lists much heavier than others), where
    /// MaxScore does prune.
    #[test]
    fn pruned_exact_equals_brute_force((docs, queries) in collection(positive_floats), k in 1usize..6, skew in 1u32..4) {
        let skewed: SparseCollection = docs
            .iter()
            .map(|d| SparseVector::new(
                d.indices().to_vec(),
                d.indices().iter().zip(d.values()).map(|(&c, &v)| if c % 4 == 0 { v * (skew * 10) as f32 } else { v }).collect(),
            ).unwrap())
            .collect();
        let exact = ExactIndex::new(skewed.clone()).unwrap();
        for q in &queries {
            let oracle = brute_force_search(&skewed, q, k);
            let (q, _) = exact.known_components(q);
            prop_assert_eq!(&exact.search(q, k).unwrap(), &oracle);
            prop_assert_eq!(&exact.search_maxscore(q, k).unwrap(), &oracle);
        }
    }

    /// With nothing pruned and nothing skipped, approximate search is exact, for both value
    /// precisions and both block orders, before and after documents are added.
    #[test]
    fn approximate_without_pruning_equals_exact(
        (docs, queries) in collection(dyadic),
        extra in proptest::collection::vec(vector(45, 6, dyadic()), 0..6),
        k in 1usize..12,
        f16 in any::<bool>(),
        seismic_order in any::<bool>(),
    ) {
        let precision = if f16 { ValuePrecision::F16 } else { ValuePrecision::F32 };
        let config = SeismicConfig::exhaustive().with_precision(precision);
        let order = if seismic_order { BlockOrder::Seismic } else { BlockOrder::BestFirst };
        let params = SearchParams::exhaustive().with_order(order).with_unknown_components(UnknownComponents::Drop);
        let mut index = SeismicIndex::build(&docs, &config).unwrap();
        for q in &queries {
            prop_assert_eq!(index.search(q, k, &params).unwrap(), brute_force_search(&docs, q, k));
        }
        let mut all = docs.clone();
        for v in &extra {
            let id = index.add(v).unwrap();
            prop_assert_eq!(id as usize, all.push(v) as usize);
        }
        for q in &queries {
            prop_assert_eq!(index.search(q, k, &params).unwrap(), brute_force_search(&all, q, k));
        }
        index.rebuild().unwrap();
        prop_assert_eq!(index.pending_len(), 0);
        for q in &queries {
            prop_assert_eq!(index.search(q, k, &params).unwrap(), brute_force_search(&all, q, k));
        }
    }

    /// A query component beyond the index's vocabulary is an error naming the first one and
    /// the dimension (exact and approximate index alike); the lenient modes drop exactly those
    /// components, count them, and lose nothing (they match no document).
    #[test]
    fn unknown_components_are_refused_or_dropped(
        (docs, queries) in collection(dyadic),
        extra in proptest::collection::vec(vector(45, 6, dyadic()), 0..3),
        k in 1usize..8,
    ) {
        let exact = ExactIndex::new(docs.clone()).unwrap();
        let mut seismic = SeismicIndex::build(&docs, &SeismicConfig::exhaustive()).unwrap();
        let mut all = docs.clone();
        for v in &extra {
            seismic.add(v).unwrap();
            all.push(v);
        }
        let strict = SearchParams::exhaustive();
        let lenient = strict.with_unknown_components(UnknownComponents::Drop);
        for q in &queries {
            for (dim, index) in [(docs.dim(), None), (all.dim(), Some(&seismic))] {
                let unknown: Vec<u32> = q.indices().iter().copied().filter(|&c| u64::from(c) >= dim).collect();
                let (strict_result, lenient_result, dropped) = match index {
                    None => {
                        let (known, dropped) = exact.known_components(q);
                        (exact.search(q, k), exact.search(known, k).unwrap(), dropped)
                    }
                    Some(index) => {
                        prop_assert_eq!(index.searchable_dim(), dim);
                        let (hits, stats) = index.search_with_stats(q, k, &lenient).unwrap();
                        (index.search(q, k, &strict), hits, stats.dropped_components)
                    }
                };
                let oracle = brute_force_search(if index.is_none() { &docs } else { &all }, q, k);
                prop_assert_eq!(dropped, unknown.len());
                prop_assert_eq!(&lenient_result, &oracle);
                match (strict_result, unknown.first()) {
                    (Ok(hits), None) => prop_assert_eq!(&hits, &oracle),
                    (Err(Error::ComponentOutOfRange { component, dim: d, .. }), Some(&first)) => {
                        prop_assert_eq!(component, u64::from(first));
                        prop_assert_eq!(d, dim);
                    }
                    (other, first) => prop_assert!(false, "{:?} for first unknown {:?}", other, first),
                }
            }
        }
    }

    /// Approximate search never invents results: every hit carries its true score (up to f16
    /// rounding) and comes from a document that shares a component with the query.
    #[test]
    fn approximate_hits_are_real((docs, queries) in collection(floats), k in 1usize..8) {
        let config = SeismicConfig::default().with_budget(PostingBudget::PerList(3));
        let index = SeismicIndex::build(&docs, &config).unwrap();
        for q in &queries {
            let hits = index.search(q, k, &SearchParams::default().with_query_cut(2).with_unknown_components(UnknownComponents::Drop)).unwrap();
            prop_assert!(hits.len() <= k);
            for h in &hits {
                let (score, doc) = (h.score, docs.get(h.doc as usize));
                let truth = q.view().dot(doc);
                prop_assert!((score - truth).abs() <= 1e-2 * (1.0 + truth.abs()), "{} vs {}", score, truth);
                prop_assert!(doc.indices().iter().any(|c| q.indices().contains(c)));
            }
            prop_assert!(hits.windows(2).all(|w| w[0].rank_cmp(&w[1]).is_lt()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Save → load (into memory and memory-mapped) gives identical results, pending documents
    /// included.
    #[test]
    fn save_load_identical(
        (docs, queries) in collection(floats),
        extra in proptest::collection::vec(vector(45, 6, floats()), 0..4),
        lambda in 1usize..10,
        energy in 0.1f32..1.0,
        cap in 0usize..6,
        f16 in any::<bool>(),
    ) {
        let config = SeismicConfig::default()
            .with_budget(PostingBudget::PerList(lambda))
            .with_summary_energy(energy)
            .with_summary_max_components(cap)
            .with_precision(if f16 { ValuePrecision::F16 } else { ValuePrecision::F32 })
            .with_centroid_fraction(0.3);
        let mut index = SeismicIndex::build(&docs, &config).unwrap();
        for v in &extra {
            index.add(v).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.splx");
        index.save(&path).unwrap();
        let loaded = SeismicIndex::load(&path).unwrap();
        // SAFETY: the file is not modified while the mapping lives (it is a private temp file).
        let mapped = unsafe { SeismicIndex::load_mmap(&path) }.unwrap();
        prop_assert_eq!(loaded.config(), index.config());
        prop_assert_eq!(loaded.len(), index.len());
        for q in &queries {
            for params in [SearchParams::default(), SearchParams::default().with_query_cut(1).with_heap_factor(1.0), SearchParams::exhaustive()] {
                let params = params.with_unknown_components(UnknownComponents::Drop);
                let expect: Vec<ScoredDoc> = index.search(q, 5, &params).unwrap();
                prop_assert_eq!(&loaded.search(q, 5, &params).unwrap(), &expect);
                prop_assert_eq!(&mapped.search(q, 5, &params).unwrap(), &expect);
            }
        }
    }
}
