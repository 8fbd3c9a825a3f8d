//! Retrieval metrics: recall@k against an exact result, nDCG@k and MRR@k against graded
//! relevance judgements.

use std::collections::HashMap;
use std::hash::Hash;

/// recall@k of `found` against the exact top-k `truth`: `|found[..k] ∩ truth[..k]| / k`
/// (Seismic's and BigANN's definition; `k` is the denominator even when `truth` is shorter).
///
/// ```
/// use sparse_index::metrics::recall_at_k;
/// assert_eq!(recall_at_k(&[1, 2, 3], &[3, 2, 9], 3), 2.0 / 3.0);
/// ```
///
/// # Panics
/// If `k == 0`.
pub fn recall_at_k<T: PartialEq>(found: &[T], truth: &[T], k: usize) -> f64 {
    assert!(k > 0, "recall_at_k: k must be ≥ 1");
    let truth = &truth[..truth.len().min(k)];
    let hits = found.iter().take(k).filter(|d| truth.contains(d)).count();
    hits as f64 / k as f64
}

/// nDCG@k of a ranking against graded judgements (`judged[doc] = grade`, unjudged = 0), with
/// gain `2^grade − 1` and discount `log2(rank + 1)` (rank from 1). The ideal DCG ranks the
/// judged grades in decreasing order. 0 when no document has a positive grade.
///
/// ```
/// use std::collections::HashMap;
/// use sparse_index::metrics::ndcg_at_k;
///
/// let judged = HashMap::from([(7u32, 2), (3, 1)]);
/// assert_eq!(ndcg_at_k(&[7, 3], &judged, 10), 1.0);
/// assert!(ndcg_at_k(&[3, 7], &judged, 10) < 1.0);
/// ```
pub fn ndcg_at_k<T: Eq + Hash>(ranking: &[T], judged: &HashMap<T, i32>, k: usize) -> f64 {
    let gain = |g: i32| if g > 0 { 2f64.powi(g) - 1.0 } else { 0.0 };
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .map(|(r, d)| gain(judged.get(d).copied().unwrap_or(0)) / (r as f64 + 2.0).log2())
        .sum();
    let mut grades: Vec<i32> = judged.values().copied().collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    let ideal: f64 = grades
        .iter()
        .take(k)
        .enumerate()
        .map(|(r, &g)| gain(g) / (r as f64 + 2.0).log2())
        .sum();
    if ideal > 0.0 { dcg / ideal } else { 0.0 }
}

/// MRR@k: `1 / rank` of the first document with a positive grade among the first `k`, else 0.
///
/// ```
/// use std::collections::HashMap;
/// use sparse_index::metrics::mrr_at_k;
///
/// let judged = HashMap::from([(5u32, 1), (6, 0)]);
/// assert_eq!(mrr_at_k(&[6, 5], &judged, 10), 0.5);
/// assert_eq!(mrr_at_k(&[6, 5], &judged, 1), 0.0);
/// ```
pub fn mrr_at_k<T: Eq + Hash>(ranking: &[T], judged: &HashMap<T, i32>, k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|d| judged.get(d).is_some_and(|&g| g > 0))
        .map_or(0.0, |r| 1.0 / (r as f64 + 1.0))
}

/// Mean of a metric over queries (0 for no query).
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn ndcg_by_hand() {
        // Ranking [a(0), b(3), c(1)], judged b=3, c=1, d=2.
        let judged = HashMap::from([("b", 3), ("c", 1), ("d", 2)]);
        let dcg = 7.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let ideal = 7.0 + 3.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert_relative_eq!(ndcg_at_k(&["a", "b", "c"], &judged, 10), dcg / ideal);
        // k = 1 cuts both the ranking and the ideal list.
        assert_eq!(ndcg_at_k(&["a", "b"], &judged, 1), 0.0);
        assert_eq!(ndcg_at_k(&["b"], &judged, 1), 1.0);
        assert_eq!(ndcg_at_k(&["x"], &HashMap::<&str, i32>::new(), 10), 0.0);
    }

    #[test]
    fn recall_and_mean() {
        assert_eq!(recall_at_k(&[1, 2], &[1, 2, 3, 4], 4), 0.5);
        assert_eq!(recall_at_k(&[4, 3, 0, 1, 2], &[1, 2, 3, 4], 4), 0.75);
        assert_eq!(mean([1.0, 0.0]), 0.5);
        assert_eq!(mean(std::iter::empty()), 0.0);
    }
}
