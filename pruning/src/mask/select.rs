//! The one tie rule of the crate and the top-k selections built on it.
//!
//! **Tie rule.** A higher score is kept before a lower one; among equal scores the element with
//! the lower (row-major, or concatenation-order) index is kept. `-0.0` and `+0.0` are equal.
//! Every mask in the crate ranks with [`order_key`] and this rule, so masks are deterministic
//! and identical on every backend.

use rayon::prelude::*;

/// Maps a finite `f32` to a `u32` whose unsigned order is the float order (`-0.0 == +0.0`).
#[inline]
pub(crate) fn order_key(score: f32) -> u32 {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Keeps the `k` eligible elements with the highest score (tie rule above); returns a keep flag
/// per element. Ineligible elements are never kept.
///
/// Linear time: a two-pass radix select on the order keys finds the k-th key, then one pass
/// keeps everything above it and the first elements equal to it, in index order.
pub(crate) fn keep_top_k(scores: &[f32], eligible: Option<&[bool]>, k: usize) -> Vec<bool> {
    let n = scores.len();
    let is_eligible = |i: usize| eligible.is_none_or(|e| e[i]);
    let n_eligible = match eligible {
        None => n,
        Some(e) => e.iter().filter(|&&x| x).count(),
    };
    assert!(
        k <= n_eligible,
        "keep_top_k: k = {k} > {n_eligible} eligible"
    );
    if k == 0 {
        return vec![false; n];
    }
    if k == n_eligible {
        return (0..n).map(is_eligible).collect();
    }
    let threshold = kth_largest_key(scores, eligible, k);
    // Elements strictly above the threshold are all kept; equal ones fill up in index order.
    let above = count_keys(scores, eligible, |key| key > threshold);
    let mut equal_left = k - above;
    let mut keep = vec![false; n];
    for (i, (&s, slot)) in scores.iter().zip(keep.iter_mut()).enumerate() {
        if !is_eligible(i) {
            continue;
        }
        let key = order_key(s);
        if key > threshold {
            *slot = true;
        } else if key == threshold && equal_left > 0 {
            *slot = true;
            equal_left -= 1;
        }
    }
    keep
}

const PARALLEL_MIN: usize = 1 << 16;
const CHUNK: usize = 1 << 15;

fn count_keys(
    scores: &[f32],
    eligible: Option<&[bool]>,
    pred: impl Fn(u32) -> bool + Sync,
) -> usize {
    let count_range = |start: usize, chunk: &[f32]| {
        chunk
            .iter()
            .enumerate()
            .filter(|&(j, &s)| eligible.is_none_or(|e| e[start + j]) && pred(order_key(s)))
            .count()
    };
    if scores.len() < PARALLEL_MIN {
        return count_range(0, scores);
    }
    scores
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| count_range(c * CHUNK, chunk))
        .sum()
}

/// Histogram of 16 bits of the key (selected by `shift`) over eligible elements whose key
/// passes `filter`.
fn histogram(
    scores: &[f32],
    eligible: Option<&[bool]>,
    shift: u32,
    filter: impl Fn(u32) -> bool + Sync,
) -> Vec<usize> {
    let fill = |start: usize, chunk: &[f32]| {
        let mut h = vec![0usize; 1 << 16];
        for (j, &s) in chunk.iter().enumerate() {
            if eligible.is_none_or(|e| e[start + j]) {
                let key = order_key(s);
                if filter(key) {
                    h[((key >> shift) & 0xFFFF) as usize] += 1;
                }
            }
        }
        h
    };
    if scores.len() < PARALLEL_MIN {
        return fill(0, scores);
    }
    scores
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| fill(c * CHUNK, chunk))
        .reduce(
            || vec![0usize; 1 << 16],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// The key of the k-th largest eligible score (1-based k).
fn kth_largest_key(scores: &[f32], eligible: Option<&[bool]>, k: usize) -> u32 {
    let high = histogram(scores, eligible, 16, |_| true);
    let (bucket, rank_in_bucket) = locate(&high, k);
    let low = histogram(scores, eligible, 0, |key| (key >> 16) as usize == bucket);
    let (low_bucket, _) = locate(&low, rank_in_bucket);
    ((bucket as u32) << 16) | low_bucket as u32
}

/// Walks a histogram from the top; returns the bucket holding the k-th largest and the rank
/// of that element inside the bucket (1-based).
fn locate(hist: &[usize], mut k: usize) -> (usize, usize) {
    for b in (0..hist.len()).rev() {
        if hist[b] >= k {
            return (b, k);
        }
        k -= hist[b];
    }
    unreachable!("histogram holds fewer than k elements")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force: sort all eligible indices by (score desc, index asc), keep the first k.
    fn reference(scores: &[f32], eligible: Option<&[bool]>, k: usize) -> Vec<bool> {
        let mut idx: Vec<usize> = (0..scores.len())
            .filter(|&i| eligible.is_none_or(|e| e[i]))
            .collect();
        idx.sort_by(|&a, &b| {
            let (sa, sb) = (scores[a] + 0.0, scores[b] + 0.0);
            sb.partial_cmp(&sa).unwrap().then(a.cmp(&b))
        });
        let mut keep = vec![false; scores.len()];
        for &i in &idx[..k] {
            keep[i] = true;
        }
        keep
    }

    #[test]
    fn order_key_is_monotone_and_merges_zeros() {
        let xs = [-3.0f32, -1.0, -1e-30, -0.0, 0.0, 1e-30, 1.0, 3.0, f32::MAX];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]), "{:?}", w);
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
    }

    #[test]
    fn ties_keep_the_lower_index() {
        let s = [1.0, 2.0, 2.0, 2.0, 0.5];
        assert_eq!(
            keep_top_k(&s, None, 2),
            vec![false, true, true, false, false]
        );
        let elig = [true, false, true, true, true];
        assert_eq!(
            keep_top_k(&s, Some(&elig), 2),
            vec![false, false, true, true, false]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn top_k_equals_brute_force(
            scores in prop::collection::vec(prop_oneof![(-4i32..4).prop_map(|x| x as f32), -10.0f32..10.0], 1..300),
            mask_seed in any::<u64>(),
            frac in 0.0f64..=1.0,
        ) {
            let eligible: Vec<bool> = (0..scores.len()).map(|i| (mask_seed >> (i % 64)) & 1 == 1 || i % 3 == 0).collect();
            let n_el = eligible.iter().filter(|&&e| e).count();
            let k = (frac * n_el as f64) as usize;
            prop_assert_eq!(keep_top_k(&scores, Some(&eligible), k), reference(&scores, Some(&eligible), k));
            let k = (frac * scores.len() as f64) as usize;
            prop_assert_eq!(keep_top_k(&scores, None, k), reference(&scores, None, k));
        }
    }

    #[test]
    fn parallel_path_equals_brute_force() {
        // Large enough for the rayon histogram path, with many ties.
        let scores: Vec<f32> = (0..200_000u64)
            .map(|i| ((i.wrapping_mul(2654435761) >> 7) % 1000) as f32 / 10.0)
            .collect();
        for k in [0, 1, 99_999, 150_000, 200_000] {
            assert_eq!(keep_top_k(&scores, None, k), reference(&scores, None, k));
        }
    }
}
