//! Area under the ROC curve, ties counted ½.

/// AUROC of `scores` for `labels` by the Mann–Whitney statistic with mid-ranks: the
/// probability that a random positive scores above a random negative, a tie counting ½.
/// `None` unless both classes are present. `O(n log n)`.
///
/// ```
/// use interp_eval::metrics::auroc;
///
/// assert_eq!(auroc(&[0.9, 0.4, 0.4, 0.1], &[true, true, false, false]), Some(0.875));
/// assert_eq!(auroc(&[0.5, 0.5], &[true, false]), Some(0.5));
/// assert_eq!(auroc(&[0.5], &[true]), None);
/// ```
///
/// # Panics
/// If the slices differ in length or a score is NaN.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    check(scores, labels);
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the mid-ranks (1-based) of the positives.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// [`auroc`] by counting every positive–negative pair (`O(P·N)`): the definition, kept as the
/// oracle of the tests.
///
/// # Panics
/// As [`auroc`].
pub fn auroc_pairwise(scores: &[f64], labels: &[bool]) -> Option<f64> {
    check(scores, labels);
    let (mut wins, mut pairs) = (0.0f64, 0u64);
    for (i, &li) in labels.iter().enumerate() {
        for (j, &lj) in labels.iter().enumerate() {
            if li && !lj {
                pairs += 1;
                if scores[i] > scores[j] {
                    wins += 1.0;
                } else if scores[i] == scores[j] {
                    wins += 0.5;
                }
            }
        }
    }
    (pairs > 0).then(|| wins / pairs as f64)
}

fn check(scores: &[f64], labels: &[bool]) {
    assert_eq!(
        scores.len(),
        labels.len(),
        "auroc: {} scores but {} labels",
        scores.len(),
        labels.len()
    );
    assert!(
        scores.iter().all(|s| !s.is_nan()),
        "auroc: scores must not be NaN"
    );
}
