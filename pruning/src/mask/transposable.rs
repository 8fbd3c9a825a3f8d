//! Transposable N:M masks: every M×M block keeps N per row and N per column, so both W and Wᵀ
//! are N:M (what the backward pass's data gradient needs for sparse tensor cores).

use super::{HostTensor, Mask, NmPattern};
use crate::{Error, Result};

/// The transposable N:M mask of a 2-D score matrix: each M×M block takes, among all 0/1 blocks
/// with exactly N ones in every row and every column, the one with the largest kept score (apex
/// ASP's `m4n2_2d_best`, an exhaustive search — 90 candidates for 2:4).
///
/// Tie rule: among candidates with equal total score, the one that keeps the lowest differing
/// row-major position wins (the crate's "lower index first"). Both dimensions must be multiples
/// of M. M is limited to 4 (the 2:4 hardware case and its 1:4, 3:4 and 1:2 relatives); larger
/// blocks have too many candidates for an exhaustive search.
///
/// # Errors
/// [`Error::ShapeNotEligible`] for a tensor that is not 2-D or whose dimensions are not
/// multiples of M; [`Error::InvalidPattern`] for M > 4.
///
/// ```
/// use pruning::{transposable_nm_mask, satisfies_nm, HostTensor, NmPattern};
///
/// let w = HostTensor::new((0..16).map(|i| ((i * 7) % 16) as f32).collect(), &[4, 4], "w").unwrap();
/// let p = NmPattern::new(2, 4).unwrap();
/// let m = transposable_nm_mask(&w, p).unwrap();
/// assert!(satisfies_nm(&m, p, 0) && satisfies_nm(&m, p, 1));
/// assert_eq!(m.kept(), 8);
/// ```
pub fn transposable_nm_mask(scores: &HostTensor, pattern: NmPattern) -> Result<Mask> {
    let (n, m) = (pattern.n(), pattern.m());
    if m > 4 {
        return Err(Error::InvalidPattern {
            pattern: pattern.to_string(),
            reason: "transposable masks are searched exhaustively; M must be ≤ 4".into(),
        });
    }
    let shape = scores.shape();
    if shape.len() != 2 || !shape[0].is_multiple_of(m) || !shape[1].is_multiple_of(m) {
        return Err(Error::ShapeNotEligible {
            tensor: "the tensor".into(),
            shape: shape.to_vec(),
            pattern: format!("transposable {pattern}"),
            reason: format!("needs a 2-D matrix with both dimensions multiples of {m}"),
        });
    }
    let candidates = candidates(n, m);
    let (rows, cols) = (shape[0], shape[1]);
    let values = scores.values();
    let mut keep = vec![false; values.len()];
    let mut block = vec![0f64; m * m];
    for r0 in (0..rows).step_by(m) {
        for c0 in (0..cols).step_by(m) {
            for r in 0..m {
                for c in 0..m {
                    block[r * m + c] = values[(r0 + r) * cols + c0 + c] as f64;
                }
            }
            let mut best = 0;
            let mut best_score = f64::NEG_INFINITY;
            for (k, cand) in candidates.iter().enumerate() {
                let score: f64 = cand.iter().map(|&p| block[p]).sum();
                if score > best_score {
                    best_score = score;
                    best = k;
                }
            }
            for &p in &candidates[best] {
                keep[(r0 + p / m) * cols + c0 + p % m] = true;
            }
        }
    }
    Mask::from_vec(keep, shape)
}

/// All M×M 0/1 blocks with N ones per row and per column, as lists of kept positions, ordered
/// so that the one keeping lower positions first comes first.
fn candidates(n: usize, m: usize) -> Vec<Vec<usize>> {
    let cells = m * m;
    let mut out: Vec<Vec<bool>> = Vec::new();
    for bits in 0u32..(1 << cells) {
        let cell = |r: usize, c: usize| bits >> (r * m + c) & 1 == 1;
        let rows_ok = (0..m).all(|r| (0..m).filter(|&c| cell(r, c)).count() == n);
        let cols_ok = (0..m).all(|c| (0..m).filter(|&r| cell(r, c)).count() == n);
        if rows_ok && cols_ok {
            out.push((0..cells).map(|p| bits >> p & 1 == 1).collect());
        }
    }
    // Lexicographically greatest keep-vector first: true at the first differing position wins.
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter()
        .map(|v| (0..cells).filter(|&p| v[p]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::satisfies_nm;
    use proptest::prelude::*;

    #[test]
    fn there_are_90_two_four_blocks() {
        assert_eq!(candidates(2, 4).len(), 90);
        assert_eq!(candidates(1, 4).len(), 24);
        assert_eq!(candidates(1, 2).len(), 2);
    }

    #[test]
    fn ties_prefer_lower_positions() {
        let w = HostTensor::new(vec![1.0; 16], &[4, 4], "w").unwrap();
        let m = transposable_nm_mask(&w, NmPattern::new(2, 4).unwrap()).unwrap();
        // The lexicographically first block keeps positions 0 and 1 of the first row.
        assert_eq!(&m.as_slice()[..4], &[true, true, false, false]);
        assert!(transposable_nm_mask(&w, NmPattern::new(2, 8).unwrap()).is_err());
        let bad = HostTensor::new(vec![1.0; 8], &[2, 4], "w").unwrap();
        assert!(transposable_nm_mask(&bad, NmPattern::new(2, 4).unwrap()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Rows and columns are both N:M, and no other transposable block keeps more score.
        #[test]
        fn transposable_and_optimal(vals in prop::collection::vec(0.0f32..1.0, 32)) {
            let w = HostTensor::new(vals, &[4, 8], "w").unwrap();
            let p = NmPattern::new(2, 4).unwrap();
            let m = transposable_nm_mask(&w, p).unwrap();
            prop_assert!(satisfies_nm(&m, p, 0) && satisfies_nm(&m, p, 1));
            prop_assert_eq!(m.kept(), 16);
            for c0 in [0usize, 4] {
                let kept: f64 = (0..4).flat_map(|r| (0..4).map(move |c| (r, c)))
                    .filter(|&(r, c)| m.as_slice()[r * 8 + c0 + c])
                    .map(|(r, c)| w.values()[r * 8 + c0 + c] as f64).sum();
                for cand in candidates(2, 4) {
                    let s: f64 = cand.iter().map(|&q| w.values()[(q / 4) * 8 + c0 + q % 4] as f64).sum();
                    prop_assert!(s <= kept + 1e-9);
                }
            }
        }
    }
}
