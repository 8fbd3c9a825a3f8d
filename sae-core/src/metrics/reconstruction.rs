//! Reconstruction metrics streamed over batches: FVU and explained variance (with the conventional
//! whole-set mean), the two legacy explained-variance formulas, MSE, normalised MSE, cosine
//! similarity, shrinkage (l2 ratio) and relative reconstruction bias.

use burn::prelude::*;

use super::host::to_f64;

/// Streaming accumulator of reconstruction metrics over batches of inputs `x` and
/// reconstructions `x̂`.
///
/// Feed it any number of batches with [`update`](Self::update) (or combine accumulators with
/// [`merge`](Self::merge)), then read a [`ReconstructionReport`] with [`report`](Self::report).
/// Each update does its reductions on the tensors' device and reads back one small row
/// (`d_in + 9` numbers); the running state is kept on the host in `f64`.
///
/// Every metric except [`ReconstructionReport::explained_variance_per_token_legacy`] is a
/// function of the whole set of tokens only: splitting the same tokens into batches differently
/// gives the same report (up to float rounding). The whole-set mean `x̄` needed by FVU is merged
/// across batches exactly with Chan et al.'s pairwise update, so no second pass over the data is
/// needed and no cancellation-prone `E‖x‖² − ‖E x‖²` is ever formed.
///
/// # Definitions
/// Over `N` tokens `x_t ∈ R^d` with reconstructions `x̂_t`, `SSE = Σ_t ‖x_t − x̂_t‖²`:
/// - `fvu = SSE / Σ_t ‖x_t − x̄‖²` with `x̄` the mean over *all* `N` tokens (sparsify, OpenAI,
///   SAELens ≥ PR #665, SAEBench PR #61); `explained_variance = 1 − fvu`.
/// - `explained_variance_saelens_legacy = 1 − (SSE/N) / (E_t‖x_t‖² − (E_{t,i} x_{t,i}²)²)`: the
///   formula SAELens ≤ 6.18 (`evals.py`) and SAEBench 0.6 (`core/main.py`) shipped, where the
///   "mean per dimension" squared was the mean of `x²` over all entries. It is not a variance (it
///   mixes units of `x²` and `x⁴`) and is kept only to compare with published numbers.
/// - `explained_variance_per_token_legacy = mean_t [1 − ‖x_t − x̂_t‖² / ‖x_t − x̄_B‖²]` with
///   `x̄_B` the mean of the token's own *batch* (SAELens' `explained_variance_legacy`). It depends
///   on how tokens are batched, and a token equal to its batch mean (e.g. a batch of one token)
///   makes it non-finite.
/// - `mse = SSE / (N·d)`; `sse_per_token = SSE / N` (the "MSE" most training code logs).
/// - `normalized_mse = mean_t [‖x_t − x̂_t‖² / ‖x_t‖²]` (OpenAI's `normalized_mean_squared_error`;
///   a zero input token makes it non-finite, as in OpenAI's code).
/// - `cosine_similarity = mean_t ⟨x_t, x̂_t⟩ / (max(‖x_t‖, 1e-8)·max(‖x̂_t‖, 1e-8))` (torch's
///   `cosine_similarity` guard, so a zero vector gives 0 rather than NaN).
/// - `l2_ratio = mean_t ‖x̂_t‖ / ‖x_t‖`, with `‖x_t‖ < 1e-4` replaced by 1 as SAELens does
///   (shrinkage: < 1 means the SAE shrinks its outputs).
/// - `relative_reconstruction_bias = Σ_t ‖x̂_t‖² / Σ_t ⟨x_t, x̂_t⟩` (Gated SAE paper eq. 10; 1 =
///   unbiased, < 1 = shrinkage). Taken over the whole set; SAELens averages per-batch ratios.
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use sae_core::metrics::ReconstructionMetrics;
///
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], &device);
/// let x_hat = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], &device);
/// let mut metrics = ReconstructionMetrics::new();
/// metrics.update(&x.clone().slice([0..2, 0..2]), &x_hat.clone().slice([0..2, 0..2]));
/// metrics.update(&x.slice([2..3, 0..2]), &x_hat.slice([2..3, 0..2]));
/// let report = metrics.report().expect("two batches were seen");
/// // SSE = 1; x̄ = (2/3, 2/3), Σ‖x − x̄‖² = 4/3, so FVU = 3/4.
/// assert!((report.fvu - 0.75).abs() < 1e-6);
/// assert!((report.explained_variance - 0.25).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReconstructionMetrics {
    tokens: u64,
    /// Running mean of `x` over all tokens seen, `[d_in]`; empty before the first update.
    mean: Vec<f64>,
    /// `Σ_t ‖x_t − mean‖²` over all tokens seen.
    centered_sq: f64,
    sums: Sums,
}

/// Per-token quantities summed over tokens; each batch adds its sums.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    sse: f64,
    x_sq: f64,
    x_hat_sq: f64,
    dot: f64,
    cosine: f64,
    l2_ratio: f64,
    normalized_mse: f64,
    per_token_ev: f64,
}

/// Number of per-token columns reduced on the device (the fields of [`Sums`] plus the batch's
/// centred sum of squares).
const COLUMNS: usize = 9;

impl ReconstructionMetrics {
    /// An empty accumulator; `d_in` is fixed by the first batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens seen so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Forgets every batch seen.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Adds one batch of inputs and their reconstructions. An empty batch changes nothing.
    ///
    /// Tensors on an autodiff device are read without recording anything on the graph.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_in]`
    /// - `x_hat`: `[batch, d_in]`
    ///
    /// # Panics
    /// If `x` and `x_hat` differ in shape, or `d_in` differs from earlier batches.
    pub fn update(&mut self, x: &Tensor<2>, x_hat: &Tensor<2>) {
        let [n, d] = x.dims();
        assert_eq!(
            x.dims(),
            x_hat.dims(),
            "ReconstructionMetrics::update: x_hat must have the shape of x [batch, d_in]"
        );
        if !self.mean.is_empty() {
            assert_eq!(
                d,
                self.mean.len(),
                "ReconstructionMetrics::update: d_in of this batch differs from earlier batches"
            );
        }
        if n == 0 {
            return;
        }
        let x = x.clone().inner();
        let x_hat = x_hat.clone().inner();

        let sse = (x.clone() - x_hat.clone()).square().sum_dim(1);
        let x_sq = x.clone().square().sum_dim(1);
        let x_hat_sq = x_hat.clone().square().sum_dim(1);
        let dot = (x.clone() * x_hat).sum_dim(1);
        let batch_mean = x.clone().mean_dim(0);
        let centered = (x - batch_mean.clone()).square().sum_dim(1);

        let x_norm = x_sq.clone().sqrt();
        let x_hat_norm = x_hat_sq.clone().sqrt();
        let cosine =
            dot.clone() / (x_norm.clone().clamp_min(1e-8) * x_hat_norm.clone().clamp_min(1e-8));
        let x_norm_for_ratio = x_norm.clone().mask_fill(x_norm.lower_elem(1e-4), 1.0);
        let l2_ratio = x_hat_norm / x_norm_for_ratio;
        let normalized_mse = sse.clone() / x_sq.clone();
        let per_token_ev = (sse.clone() / centered.clone()).neg() + 1.0;

        let columns = Tensor::cat(
            vec![
                sse,
                x_sq,
                x_hat_sq,
                dot,
                cosine,
                l2_ratio,
                normalized_mse,
                per_token_ev,
                centered,
            ],
            1,
        )
        .sum_dim(0);
        let row = to_f64(Tensor::cat(vec![columns, batch_mean], 1));
        let (s, batch_mean) = row.split_at(COLUMNS);

        self.sums.sse += s[0];
        self.sums.x_sq += s[1];
        self.sums.x_hat_sq += s[2];
        self.sums.dot += s[3];
        self.sums.cosine += s[4];
        self.sums.l2_ratio += s[5];
        self.sums.normalized_mse += s[6];
        self.sums.per_token_ev += s[7];
        self.merge_moments(n as u64, batch_mean, s[8]);
    }

    /// Adds everything another accumulator has seen, as if its batches had been fed to this one.
    ///
    /// # Panics
    /// If both have seen data of different `d_in`.
    pub fn merge(&mut self, other: &ReconstructionMetrics) {
        if other.tokens == 0 {
            return;
        }
        if !self.mean.is_empty() {
            assert_eq!(
                self.mean.len(),
                other.mean.len(),
                "ReconstructionMetrics::merge: accumulators saw different d_in"
            );
        }
        let o = other.sums;
        let s = &mut self.sums;
        s.sse += o.sse;
        s.x_sq += o.x_sq;
        s.x_hat_sq += o.x_hat_sq;
        s.dot += o.dot;
        s.cosine += o.cosine;
        s.l2_ratio += o.l2_ratio;
        s.normalized_mse += o.normalized_mse;
        s.per_token_ev += o.per_token_ev;
        self.merge_moments(other.tokens, &other.mean, other.centered_sq);
    }

    /// Chan et al.'s pairwise merge of (count, mean, centred sum of squares).
    fn merge_moments(&mut self, n_b: u64, mean_b: &[f64], centered_b: f64) {
        if self.tokens == 0 {
            self.tokens = n_b;
            self.mean = mean_b.to_vec();
            self.centered_sq = centered_b;
            return;
        }
        let n_a = self.tokens as f64;
        let n_bf = n_b as f64;
        let n = n_a + n_bf;
        let mut delta_sq = 0.0;
        for (mean, &mb) in self.mean.iter_mut().zip(mean_b) {
            let delta = mb - *mean;
            delta_sq += delta * delta;
            *mean += delta * n_bf / n;
        }
        self.centered_sq += centered_b + delta_sq * n_a * n_bf / n;
        self.tokens += n_b;
    }

    /// The metrics over every token seen, or `None` before the first non-empty batch.
    pub fn report(&self) -> Option<ReconstructionReport> {
        if self.tokens == 0 {
            return None;
        }
        let n = self.tokens as f64;
        let d = self.mean.len() as f64;
        let s = self.sums;
        let fvu = s.sse / self.centered_sq;
        let mean_x_sq = s.x_sq / n;
        let legacy_total = mean_x_sq - (mean_x_sq / d).powi(2);
        Some(ReconstructionReport {
            tokens: self.tokens,
            d_in: self.mean.len(),
            mse: s.sse / (n * d),
            sse_per_token: s.sse / n,
            fvu,
            explained_variance: 1.0 - fvu,
            explained_variance_saelens_legacy: 1.0 - (s.sse / n) / legacy_total,
            explained_variance_per_token_legacy: s.per_token_ev / n,
            normalized_mse: s.normalized_mse / n,
            cosine_similarity: s.cosine / n,
            l2_ratio: s.l2_ratio / n,
            relative_reconstruction_bias: s.x_hat_sq / s.dot,
        })
    }
}

/// Reconstruction metrics over a set of tokens; see [`ReconstructionMetrics`] for the exact
/// definitions. Values are non-finite where a definition divides by zero (e.g. FVU of constant
/// data).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconstructionReport {
    /// Tokens measured.
    pub tokens: u64,
    /// Width of the inputs.
    pub d_in: usize,
    /// `SSE / (N·d_in)`: mean squared error per element.
    pub mse: f64,
    /// `SSE / N`: squared error summed over dimensions, averaged over tokens.
    pub sse_per_token: f64,
    /// Fraction of variance unexplained, `SSE / Σ_t ‖x_t − x̄‖²` with the whole-set mean.
    pub fvu: f64,
    /// `1 − fvu`.
    pub explained_variance: f64,
    /// The formula SAELens ≤ 6.18 and SAEBench 0.6 shipped (for comparison with their numbers).
    pub explained_variance_saelens_legacy: f64,
    /// Mean over tokens of the per-token ratio against the batch mean (batch-dependent).
    pub explained_variance_per_token_legacy: f64,
    /// Mean over tokens of `‖x − x̂‖² / ‖x‖²` (OpenAI).
    pub normalized_mse: f64,
    /// Mean over tokens of `cos(x, x̂)`.
    pub cosine_similarity: f64,
    /// Mean over tokens of `‖x̂‖ / ‖x‖` (shrinkage).
    pub l2_ratio: f64,
    /// `Σ‖x̂‖² / Σ⟨x, x̂⟩` (1 = unbiased, < 1 = shrinkage).
    pub relative_reconstruction_bias: f64,
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    use super::*;
    use crate::test_device;

    fn tensor(rows: &[Vec<f32>]) -> Tensor<2> {
        let d = rows[0].len();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), d]), &test_device())
    }

    /// x = [[1,2],[3,4],[5,0]], x̂ = [[1,1],[3,5],[4,0]] in one batch.
    fn hand_case() -> ReconstructionReport {
        let x = tensor(&[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 0.0]]);
        let x_hat = tensor(&[vec![1.0, 1.0], vec![3.0, 5.0], vec![4.0, 0.0]]);
        let mut m = ReconstructionMetrics::new();
        m.update(&x, &x_hat);
        m.report().unwrap()
    }

    #[test]
    fn every_metric_matches_hand_computed_values() {
        let r = hand_case();
        // Residuals (0,1), (0,-1), (1,0): SSE_t = 1, 1, 1; SSE = 3.
        // x̄ = (3, 2); centred rows (-2,0), (0,2), (2,-2): 4 + 4 + 8 = 16.
        assert_eq!(r.tokens, 3);
        assert_eq!(r.d_in, 2);
        assert_relative_eq!(r.mse, 3.0 / 6.0, max_relative = 1e-6);
        assert_relative_eq!(r.sse_per_token, 1.0, max_relative = 1e-6);
        assert_relative_eq!(r.fvu, 3.0 / 16.0, max_relative = 1e-6);
        assert_relative_eq!(r.explained_variance, 13.0 / 16.0, max_relative = 1e-6);
        // ‖x‖² = 5, 25, 25: E‖x‖² = 55/3; mean over entries of x² = 55/6.
        // total = 55/3 − (55/6)² = 660/36 − 3025/36 = −2365/36; EV = 1 − 1/(−2365/36) = 1 + 36/2365.
        assert_relative_eq!(
            r.explained_variance_saelens_legacy,
            1.0 + 36.0 / 2365.0,
            max_relative = 1e-6
        );
        // Per token against the batch mean: 1 − 1/4, 1 − 1/4, 1 − 1/8.
        assert_relative_eq!(
            r.explained_variance_per_token_legacy,
            (0.75 + 0.75 + 0.875) / 3.0,
            max_relative = 1e-6
        );
        // OpenAI normalised MSE: mean(1/5, 1/25, 1/25).
        assert_relative_eq!(
            r.normalized_mse,
            (0.2 + 0.04 + 0.04) / 3.0,
            max_relative = 1e-6
        );
        // ⟨x, x̂⟩ = 3, 29, 20; ‖x̂‖² = 2, 34, 16.
        let cos = (3.0 / (5f64.sqrt() * 2f64.sqrt()) + 29.0 / (5.0 * 34f64.sqrt()) + 1.0) / 3.0;
        assert_relative_eq!(r.cosine_similarity, cos, max_relative = 1e-6);
        let ratio = ((2.0f64 / 5.0).sqrt() + 34f64.sqrt() / 5.0 + 4.0 / 5.0) / 3.0;
        assert_relative_eq!(r.l2_ratio, ratio, max_relative = 1e-6);
        assert_relative_eq!(
            r.relative_reconstruction_bias,
            52.0 / 52.0,
            max_relative = 1e-6
        );
    }

    #[test]
    fn shrinkage_shows_in_l2_ratio_and_reconstruction_bias() {
        // x̂ = x/2: ratio 1/2, bias Σ‖x/2‖² / Σ⟨x, x/2⟩ = (1/4)/(1/2) = 1/2, cos 1.
        let x = tensor(&[vec![1.0, 2.0], vec![-3.0, 4.0]]);
        let mut m = ReconstructionMetrics::new();
        m.update(&x, &(x.clone() * 0.5));
        let r = m.report().unwrap();
        assert_relative_eq!(r.l2_ratio, 0.5, max_relative = 1e-6);
        assert_relative_eq!(r.relative_reconstruction_bias, 0.5, max_relative = 1e-6);
        assert_relative_eq!(r.cosine_similarity, 1.0, max_relative = 1e-6);
    }

    #[test]
    fn zero_vectors_follow_the_documented_guards() {
        // Token 0: x = 0 (ratio divides by 1; cos 0); token 1: x̂ = 0 (cos 0, ratio 0).
        let x = tensor(&[vec![0.0, 0.0], vec![3.0, 4.0]]);
        let x_hat = tensor(&[vec![0.5, 0.0], vec![0.0, 0.0]]);
        let mut m = ReconstructionMetrics::new();
        m.update(&x, &x_hat);
        let r = m.report().unwrap();
        assert_eq!(r.cosine_similarity, 0.0);
        assert_relative_eq!(r.l2_ratio, (0.5 + 0.0) / 2.0, max_relative = 1e-6);
        assert!(
            r.normalized_mse.is_infinite(),
            "a zero input makes OpenAI's NMSE infinite"
        );
    }

    #[test]
    fn the_conventional_definition_differs_from_the_per_batch_one() {
        // Two batches whose batch means differ: the whole-set mean gives a larger total variance,
        // so the conventional EV is higher than what per-batch centring would give.
        let a = tensor(&[vec![0.0], vec![2.0]]);
        let b = tensor(&[vec![10.0], vec![12.0]]);
        let a_hat = tensor(&[vec![1.0], vec![1.0]]);
        let b_hat = tensor(&[vec![11.0], vec![11.0]]);
        let mut m = ReconstructionMetrics::new();
        m.update(&a, &a_hat);
        m.update(&b, &b_hat);
        let r = m.report().unwrap();
        // SSE = 4; x̄ = 6; Σ(x − 6)² = 36 + 16 + 16 + 36 = 104.
        assert_relative_eq!(r.fvu, 4.0 / 104.0, max_relative = 1e-6);
        // Each token is 1 away from its batch mean and from x̂: per-token EV = 0.
        assert_relative_eq!(r.explained_variance_per_token_legacy, 0.0, epsilon = 1e-9);
    }

    #[test]
    fn empty_accumulator_and_empty_batches_report_nothing() {
        let mut m = ReconstructionMetrics::new();
        assert!(m.report().is_none());
        let empty = Tensor::<2>::zeros([0, 3], &test_device());
        m.update(&empty, &empty);
        assert!(m.report().is_none());
    }

    #[test]
    fn autodiff_tensors_are_accepted() {
        let device = test_device().autodiff();
        let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device).require_grad();
        let mut m = ReconstructionMetrics::new();
        m.update(&x, &(x.clone() * 2.0));
        assert_relative_eq!(m.report().unwrap().l2_ratio, 2.0, max_relative = 1e-6);
    }

    #[test]
    #[should_panic(expected = "d_in of this batch differs")]
    fn a_batch_of_another_width_panics() {
        let mut m = ReconstructionMetrics::new();
        let a = tensor(&[vec![1.0, 2.0]]);
        let b = tensor(&[vec![1.0, 2.0, 3.0]]);
        m.update(&a, &a);
        m.update(&b, &b);
    }

    fn batch_strategy() -> impl Strategy<Value = (usize, Vec<f32>, Vec<f32>, Vec<usize>)> {
        (1usize..5, 2usize..24).prop_flat_map(|(d, n)| {
            (
                Just(d),
                prop::collection::vec(-10.0f32..10.0, n * d),
                prop::collection::vec(-10.0f32..10.0, n * d),
                prop::collection::vec(1usize..n.max(2), 0..4),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Streaming over any batch split (and merging accumulators) equals one shot, for every
        /// metric defined over the whole set.
        #[test]
        fn any_batch_split_equals_one_shot((d, xs, hs, mut cuts) in batch_strategy()) {
            let n = xs.len() / d;
            let device = test_device();
            let x = Tensor::<2>::from_data(TensorData::new(xs, [n, d]), &device);
            let h = Tensor::<2>::from_data(TensorData::new(hs, [n, d]), &device);
            let mut one = ReconstructionMetrics::new();
            one.update(&x, &h);
            cuts.push(0);
            cuts.push(n);
            cuts.sort();
            cuts.dedup();
            let mut streamed = ReconstructionMetrics::new();
            let mut merged = ReconstructionMetrics::new();
            for w in cuts.windows(2) {
                let xb = x.clone().slice([w[0]..w[1], 0..d]);
                let hb = h.clone().slice([w[0]..w[1], 0..d]);
                streamed.update(&xb, &hb);
                let mut part = ReconstructionMetrics::new();
                part.update(&xb, &hb);
                merged.merge(&part);
            }
            let a = one.report().unwrap();
            for b in [streamed.report().unwrap(), merged.report().unwrap()] {
                prop_assert_eq!(a.tokens, b.tokens);
                for (p, q) in [
                    (a.mse, b.mse),
                    (a.fvu, b.fvu),
                    (a.explained_variance_saelens_legacy, b.explained_variance_saelens_legacy),
                    (a.normalized_mse, b.normalized_mse),
                    (a.cosine_similarity, b.cosine_similarity),
                    (a.l2_ratio, b.l2_ratio),
                    (a.relative_reconstruction_bias, b.relative_reconstruction_bias),
                ] {
                    prop_assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "{p} vs {q}");
                }
            }
        }

        /// A perfect reconstruction has FVU 0, cosine 1, ratio 1, bias 1.
        #[test]
        fn perfect_reconstruction_is_perfect((d, xs, _hs, _cuts) in batch_strategy()) {
            let n = xs.len() / d;
            let x = Tensor::<2>::from_data(TensorData::new(xs, [n, d]), &test_device());
            let mut m = ReconstructionMetrics::new();
            m.update(&x, &x);
            let r = m.report().unwrap();
            prop_assert_eq!(r.fvu, 0.0);
            prop_assert_eq!(r.mse, 0.0);
            prop_assert!((r.cosine_similarity - 1.0).abs() < 1e-5);
            prop_assert!((r.l2_ratio - 1.0).abs() < 1e-5);
            prop_assert!((r.relative_reconstruction_bias - 1.0).abs() < 1e-5);
        }
    }
}
