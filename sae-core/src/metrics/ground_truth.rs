//! Recovery of a known ground-truth dictionary (synthetic data): MMCS and MCC with an optimal
//! one-to-one matching.

use burn::prelude::*;
use pathfinding::prelude::{Matrix, kuhn_munkres};

use super::host::to_f64;

/// `|cos|` values are scaled by this and rounded to integers for the Hungarian solver, which
/// needs a totally ordered weight type. The matching found is optimal for the rounded weights,
/// so its float total is within `min(n, m)·2⁻³²` of the true optimum, below the `f32` resolution
/// the cosines were computed at.
const WEIGHT_SCALE: f64 = 4_294_967_296.0;

/// One pair of an optimal one-to-one matching between ground-truth features and latents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchedPair {
    /// Row of the ground-truth dictionary.
    pub truth: usize,
    /// Row of the decoder (latent index).
    pub latent: usize,
    /// `|cos|` between the two directions.
    pub abs_cosine: f64,
}

/// How well a decoder recovers a known dictionary; see [`ground_truth_recovery`].
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruthRecovery {
    /// Mean max cosine similarity: `mean_g max_j |cos(g, W_dec[j])|` over ground-truth rows `g`.
    pub mmcs: f64,
    /// Mean `|cos|` over an optimal one-to-one matching (`min(n, d_sae)` pairs).
    pub mcc: f64,
    /// The matching, sorted by ground-truth row.
    pub matching: Vec<MatchedPair>,
    /// For each ground-truth row, the latent with the largest `|cos|` (many may share one).
    pub best_latent: Vec<usize>,
}

/// Compares a decoder with a known dictionary: MMCS (each true feature's best latent, latents may
/// be reused) and MCC (an optimal one-to-one matching found with the Hungarian algorithm).
///
/// Both use `|cos|` with rows normalised as `v / max(‖v‖, 1e-8)`, so they are invariant to
/// permuting, rescaling or flipping the sign of either set of rows (a latent with a sign-flipped
/// direction is the same feature for signed codes; for non-negative codes read `matching` if the
/// sign matters). MCC follows SAELens' `synthetic.mean_correlation_coefficient` (O'Neill et al.):
/// the mean over the `min(n, d_sae)` matched pairs. MMCS follows Sharkey et al., averaged over the
/// ground-truth features.
///
/// The Hungarian step is `pathfinding`'s Kuhn–Munkres, O(min² · max) in the two set sizes, on
/// integer weights (`|cos|` scaled by 2³² and rounded; see the constant's note). It is meant
/// for synthetic benchmarks (hundreds to a few thousand features).
///
/// # Shapes
/// - `w_dec`: `[d_sae, d_in]` (SAELens orientation, one latent per row).
/// - `truth`: `[n_features, d_in]`, one ground-truth direction per row.
///
/// # Panics
/// If the widths differ, or either set is empty.
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use sae_core::metrics::ground_truth_recovery;
///
/// let device = Device::flex();
/// let truth = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device);
/// // The latents are the true features, swapped, one of them sign-flipped and rescaled.
/// let w_dec = Tensor::<2>::from_floats([[0.0, -3.0], [1.0, 0.0]], &device);
/// let r = ground_truth_recovery(&w_dec, &truth);
/// assert!((r.mcc - 1.0).abs() < 1e-6);
/// assert_eq!(r.matching[0].latent, 1);
/// ```
pub fn ground_truth_recovery(w_dec: &Tensor<2>, truth: &Tensor<2>) -> GroundTruthRecovery {
    let [m, d] = w_dec.dims();
    let [n, d_truth] = truth.dims();
    assert_eq!(
        d, d_truth,
        "ground_truth_recovery: decoder rows have d_in = {d} but ground-truth rows have {d_truth}"
    );
    assert!(
        m > 0 && n > 0,
        "ground_truth_recovery: needs at least one latent and one feature, found d_sae = {m}, n_features = {n}"
    );
    let cos = abs_cosines(truth, w_dec); // [n, m], row-major

    let mut best_latent = Vec::with_capacity(n);
    let mut sum_best = 0.0;
    for row in cos.chunks_exact(m) {
        let (j, &c) =
            row.iter().enumerate().fold(
                (0, &f64::NEG_INFINITY),
                |acc, x| if x.1 > acc.1 { x } else { acc },
            );
        best_latent.push(j);
        sum_best += c;
    }

    // Kuhn–Munkres needs rows ≤ columns: put the smaller set on the rows. `pair` maps a
    // (row, column) of the assignment matrix to (truth, latent).
    let truth_on_rows = n <= m;
    let pair = |r: usize, c: usize| if truth_on_rows { (r, c) } else { (c, r) };
    let (rows, cols) = pair(n, m);
    let weight = |(r, c): (usize, usize)| {
        let (g, j) = pair(r, c);
        (cos[g * m + j] * WEIGHT_SCALE).round() as i64
    };
    let (_, assigned) = kuhn_munkres(&Matrix::from_fn(rows, cols, weight));
    let mut matching: Vec<MatchedPair> = assigned
        .into_iter()
        .enumerate()
        .map(|(r, c)| {
            let (g, j) = pair(r, c);
            MatchedPair {
                truth: g,
                latent: j,
                abs_cosine: cos[g * m + j],
            }
        })
        .collect();
    matching.sort_by_key(|p| p.truth);
    let mcc = matching.iter().map(|p| p.abs_cosine).sum::<f64>() / matching.len() as f64;

    GroundTruthRecovery {
        mmcs: sum_best / n as f64,
        mcc,
        matching,
        best_latent,
    }
}

/// MMCS alone; see [`ground_truth_recovery`].
///
/// # Panics
/// As [`ground_truth_recovery`].
pub fn mmcs(w_dec: &Tensor<2>, truth: &Tensor<2>) -> f64 {
    let [m, d] = w_dec.dims();
    let [n, d_truth] = truth.dims();
    assert_eq!(
        d, d_truth,
        "mmcs: decoder rows have d_in = {d} but ground-truth rows have {d_truth}"
    );
    assert!(
        m > 0 && n > 0,
        "mmcs: needs at least one latent and one feature"
    );
    let cos = abs_cosines(truth, w_dec);
    cos.chunks_exact(m)
        .map(|row| row.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .sum::<f64>()
        / n as f64
}

/// MCC alone; see [`ground_truth_recovery`].
///
/// # Panics
/// As [`ground_truth_recovery`].
pub fn mcc(w_dec: &Tensor<2>, truth: &Tensor<2>) -> f64 {
    ground_truth_recovery(w_dec, truth).mcc
}

/// `|cos(a_i, b_j)|` as a row-major `[rows(a), rows(b)]` host matrix.
fn abs_cosines(a: &Tensor<2>, b: &Tensor<2>) -> Vec<f64> {
    let unit = |t: &Tensor<2>| {
        let t = t.clone().inner();
        let norms = t.clone().square().sum_dim(1).sqrt().clamp_min(1e-8);
        t / norms
    };
    let b = unit(b).to_device(&a.device());
    to_f64(unit(a).matmul(b.transpose()).abs())
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    use super::*;
    use crate::test_device;

    fn t(rows: &[[f32; 2]]) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 2]), &test_device())
    }

    #[test]
    fn matches_hand_computed_values_where_greedy_and_optimal_differ() {
        // Truth g0 = (1,0), g1 = (1,1); latents l0 = (1,0.1), l1 = (0,1). |cos|: g0–l0 = 1/√1.01,
        // g0–l1 = 0, g1–l0 = 1.1/(√2·√1.01) ≈ 0.774, g1–l1 = 1/√2 ≈ 0.707. Both truths' best
        // latent is l0, so MMCS reuses it while MCC must give g1 the worse l1.
        let truth = t(&[[1.0, 0.0], [1.0, 1.0]]);
        let w_dec = t(&[[1.0, 0.1], [0.0, 1.0]]);
        let r = ground_truth_recovery(&w_dec, &truth);
        let c00 = 1.0 / 1.01f64.sqrt();
        let c10 = 1.1 / (2f64.sqrt() * 1.01f64.sqrt());
        let c11 = 1.0 / 2f64.sqrt();
        assert_eq!(r.best_latent, vec![0, 0]);
        assert_relative_eq!(r.mmcs, (c00 + c10) / 2.0, max_relative = 1e-6);
        // One-to-one: g0–l0 + g1–l1 = c00 + c11 beats g0–l1 + g1–l0 = 0 + c10.
        assert_eq!(
            r.matching.iter().map(|p| p.latent).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_relative_eq!(r.mcc, (c00 + c11) / 2.0, max_relative = 1e-6);
        assert_relative_eq!(mmcs(&w_dec, &truth), r.mmcs, max_relative = 1e-12);
        assert_relative_eq!(mcc(&w_dec, &truth), r.mcc, max_relative = 1e-12);
    }

    #[test]
    fn non_square_sets_match_min_of_the_sizes() {
        // 3 latents, 1 true feature: MCC is that feature's best |cos|.
        let truth = t(&[[0.0, 1.0]]);
        let w_dec = t(&[[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]]);
        let r = ground_truth_recovery(&w_dec, &truth);
        assert_eq!(
            r.matching,
            vec![MatchedPair {
                truth: 0,
                latent: 2,
                abs_cosine: 1.0
            }]
        );
        // 1 latent, 3 true features: one pair, the latent's best feature.
        let r = ground_truth_recovery(&truth, &w_dec);
        assert_eq!(r.matching.len(), 1);
        assert_eq!(r.matching[0].truth, 2);
        assert_relative_eq!(r.mcc, 1.0, max_relative = 1e-6);
        // MMCS averages over all three features: 0, s, 1.
        assert_relative_eq!(r.mmcs, (0.5f64.sqrt() + 1.0) / 3.0, max_relative = 1e-6);
    }

    /// All permutations of 0..n (n ≤ 6), for a brute-force oracle.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    fn matrix(rows: usize, d: usize, values: Vec<f32>) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, [rows, d]), &test_device())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// MCC equals the brute-force best one-to-one matching (square case); MCC of a dictionary
        /// with itself is 1; both metrics are invariant to permutation, sign and scale of rows;
        /// MCC ≤ MMCS when there are at least as many latents as features.
        #[test]
        fn optimal_and_invariant(
            (n, d, values, perm_seed, flips) in (1usize..6, 2usize..5).prop_flat_map(|(n, d)| (
                Just(n), Just(d),
                prop::collection::vec(-1.0f32..1.0, n * d),
                any::<u64>(),
                prop::collection::vec(any::<bool>(), n),
            ))
        ) {
            let truth = matrix(n, d, values.clone());
            // The decoder: another random-ish set derived from the values (rotate within rows).
            let other: Vec<f32> = values.chunks(d).flat_map(|r| {
                let mut r = r.to_vec(); r.rotate_left(1); r
            }).collect();
            let w_dec = matrix(n, d, other.clone());
            let r = ground_truth_recovery(&w_dec, &truth);

            let cos: Vec<f64> = abs_cosines(&truth, &w_dec);
            let best = permutations(n).into_iter()
                .map(|p| p.iter().enumerate().map(|(g, &j)| cos[g * n + j]).sum::<f64>())
                .fold(f64::NEG_INFINITY, f64::max) / n as f64;
            prop_assert!((r.mcc - best).abs() < 1e-9, "hungarian {} vs brute force {}", r.mcc, best);
            prop_assert!(r.mcc <= r.mmcs + 1e-12);

            let itself = ground_truth_recovery(&truth, &truth);
            let nonzero_rows = values.chunks(d).all(|row| row.iter().any(|v| v.abs() > 1e-3));
            if nonzero_rows {
                prop_assert!((itself.mcc - 1.0).abs() < 1e-5);
                prop_assert!((itself.mmcs - 1.0).abs() < 1e-5);
            }

            // Permute and sign-flip/rescale the decoder rows.
            let mut order: Vec<usize> = (0..n).collect();
            let mut s = perm_seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let shuffled: Vec<f32> = order.iter().flat_map(|&i| {
                let k = if flips[i] { -2.5 } else { 0.7 };
                other[i * d..(i + 1) * d].iter().map(move |v| v * k)
            }).collect();
            let r2 = ground_truth_recovery(&matrix(n, d, shuffled), &truth);
            prop_assert!((r.mcc - r2.mcc).abs() < 1e-5);
            prop_assert!((r.mmcs - r2.mmcs).abs() < 1e-5);
        }
    }
}
