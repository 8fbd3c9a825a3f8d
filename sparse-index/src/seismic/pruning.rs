//! Posting-list pruning: a global value threshold plus a per-list cap (Seismic's
//! `GlobalThreshold { n_postings, max_fraction }`).

use rayon::prelude::*;

use crate::collection::SparseCollection;
use crate::seismic::config::SeismicConfig;

/// The pruned posting lists: for every component id `< docs.dim()`, the kept document ids in
/// decreasing value order (ties by increasing document id).
pub(crate) fn prune(docs: &SparseCollection, config: &SeismicConfig) -> Vec<Vec<u32>> {
    let (offsets, indices, values) = docs.as_csr();
    let dim = docs.dim() as usize;
    let df = docs.document_frequencies();
    let n_lists = df.iter().filter(|&&d| d > 0).count();
    let total = indices.len();
    let lambda = config.budget.per_list(docs.len());

    // Global threshold: keep the `λ · n_lists` largest values overall. Seismic multiplies by
    // `dim` (largest id + 1); counting only non-empty lists keeps the budget meaningful for
    // sparse id spaces such as SAE latents or a vocabulary only partly used.
    let budget = lambda
        .map_or(total, |l| l.saturating_mul(n_lists))
        .min(total);
    let (threshold, mut ties_left) = if budget < total {
        let mut sorted: Vec<f32> = values.to_vec();
        let cut = total - budget;
        sorted.select_nth_unstable_by(cut, f32::total_cmp);
        let thr = sorted[cut];
        let above = sorted[cut..].iter().filter(|&&v| v > thr).count();
        (thr, budget - above)
    } else {
        (f32::NEG_INFINITY, 0)
    };

    // Bucket the kept postings by component (document order inside a bucket; ties at the
    // threshold are taken in document order).
    let mut lists: Vec<Vec<(u32, f32)>> =
        df.iter().map(|&d| Vec::with_capacity(d as usize)).collect();
    debug_assert_eq!(lists.len(), dim);
    for doc in 0..docs.len() {
        for i in offsets[doc]..offsets[doc + 1] {
            let v = values[i];
            let keep = if v > threshold {
                true
            } else if v == threshold && ties_left > 0 {
                ties_left -= 1;
                true
            } else {
                false
            };
            if keep {
                lists[indices[i] as usize].push((doc as u32, v));
            }
        }
    }

    // Per-list cap: the largest `⌊λ · max_fraction⌋` values. Appending postings in globally
    // decreasing value order and dropping them once a list is full (Seismic) keeps the same set.
    let cap = match lambda {
        Some(l) if config.max_fraction.is_finite() => {
            ((l as f64 * f64::from(config.max_fraction)).floor() as usize).max(1)
        }
        _ => usize::MAX,
    };
    lists
        .into_par_iter()
        .map(|mut list| {
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            list.truncate(cap);
            list.into_iter().map(|(d, _)| d).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seismic::config::PostingBudget;
    use crate::vector::SparseVector;

    fn docs() -> SparseCollection {
        [
            SparseVector::new(vec![0, 1], vec![5.0, 1.0]).unwrap(),
            SparseVector::new(vec![0, 1], vec![4.0, 2.0]).unwrap(),
            SparseVector::new(vec![0, 2], vec![3.0, 6.0]).unwrap(),
            SparseVector::new(vec![0], vec![3.0]).unwrap(),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn all_keeps_everything_sorted_by_value() {
        let lists = prune(
            &docs(),
            &SeismicConfig::default().with_budget(PostingBudget::All),
        );
        assert_eq!(lists, vec![vec![0, 1, 2, 3], vec![1, 0], vec![2]]);
    }

    #[test]
    fn global_threshold_and_cap() {
        // λ = 1, 3 lists: budget 3 postings = the three largest values 6, 5, 4.
        let cfg = SeismicConfig::default()
            .with_budget(PostingBudget::PerList(1))
            .with_max_fraction(1.0);
        let lists = prune(&docs(), &cfg);
        // cap 1 per list: list 0 keeps only its largest (doc 0 = 5.0).
        assert_eq!(lists, vec![vec![0], vec![], vec![2]]);
        // λ = 2: budget 6 of 7 postings; threshold ties at 3.0 taken in document order.
        let cfg = SeismicConfig::default()
            .with_budget(PostingBudget::PerList(2))
            .with_max_fraction(2.0);
        let lists = prune(&docs(), &cfg);
        assert_eq!(lists, vec![vec![0, 1, 2, 3], vec![1], vec![2]]);
    }
}
