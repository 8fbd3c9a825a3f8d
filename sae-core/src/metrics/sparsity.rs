//! Sparsity metrics streamed over batches of codes: L0, L1 and per-latent firing density with
//! dead and dense fractions.

use burn::prelude::*;

use super::host::to_f64;

/// Rows reduced per device call; firing counts are summed in `f32`, which is exact for integer
/// counts below 2²⁴.
const MAX_ROWS_PER_REDUCTION: usize = 1 << 24;

/// Streaming accumulator of sparsity metrics over batches of codes `f` (`[batch, d_sae]`).
///
/// A latent *fires* on a token when its code is non-zero (`f ≠ 0`, SAEBench's convention, so
/// that signed codes such as AbsTopK's count; SAELens' evals count `f > 0`, identical for the
/// non-negative codes of every other architecture).
///
/// # Definitions
/// Over `N` tokens:
/// - `l0 = mean_t #{i : f_{t,i} ≠ 0}`;
/// - `l1 = mean_t Σ_i |f_{t,i}|` (SAELens sums raw values, identical for non-negative codes);
/// - `density_i = #{t : f_{t,i} ≠ 0} / N`;
/// - `dead_fraction` = share of latents with `density_i = 0` over the tokens seen (a
///   training-window definition of "dead" belongs to the trainer);
/// - `dense_fraction_1pct`, `dense_fraction_10pct` = share of latents with `density_i > 0.01`,
///   `> 0.1` (SAEBench's `freq_over_1_percent`, `freq_over_10_percent`).
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use sae_core::metrics::SparsityMetrics;
///
/// let device = Device::flex();
/// let codes = Tensor::<2>::from_floats([[0.0, 2.0, 0.0], [1.0, -3.0, 0.0]], &device);
/// let mut sparsity = SparsityMetrics::new();
/// sparsity.update(&codes);
/// let report = sparsity.report().expect("one batch was seen");
/// assert_eq!(report.l0, 1.5);
/// assert_eq!(report.l1, 3.0);
/// assert_eq!(report.density, vec![0.5, 1.0, 0.0]);
/// assert!((report.dead_fraction - 1.0 / 3.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SparsityMetrics {
    tokens: u64,
    l1_sum: f64,
    /// Tokens on which each latent fired, `[d_sae]`; empty before the first update.
    firing_counts: Vec<u64>,
}

impl SparsityMetrics {
    /// An empty accumulator; `d_sae` is fixed by the first batch.
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

    /// Per-latent firing counts so far (`[d_sae]`; empty before the first batch).
    pub fn firing_counts(&self) -> &[u64] {
        &self.firing_counts
    }

    /// Adds one batch of codes. An empty batch changes nothing.
    ///
    /// # Shapes
    /// - `codes`: `[batch, d_sae]`, dense codes (zeros where a latent is inactive).
    ///
    /// # Panics
    /// If `d_sae` differs from earlier batches.
    pub fn update(&mut self, codes: &Tensor<2>) {
        let [n, m] = codes.dims();
        if self.firing_counts.is_empty() {
            self.firing_counts = vec![0; m];
        } else {
            assert_eq!(
                m,
                self.firing_counts.len(),
                "SparsityMetrics::update: d_sae of this batch differs from earlier batches"
            );
        }
        let codes = codes.clone().inner();
        let mut start = 0;
        while start < n {
            let rows = (n - start).min(MAX_ROWS_PER_REDUCTION);
            let chunk = codes.clone().narrow(0, start, rows);
            let fired = chunk.clone().not_equal_elem(0.0).float().sum_dim(0);
            let l1 = chunk.abs().sum().reshape([1, 1]);
            let row = to_f64(Tensor::cat(vec![fired, l1], 1));
            for (count, &c) in self.firing_counts.iter_mut().zip(&row[..m]) {
                *count += c as u64;
            }
            self.l1_sum += row[m];
            self.tokens += rows as u64;
            start += rows;
        }
    }

    /// Adds everything another accumulator has seen.
    ///
    /// # Panics
    /// If both have seen codes of different `d_sae`.
    pub fn merge(&mut self, other: &SparsityMetrics) {
        if other.firing_counts.is_empty() {
            return;
        }
        if self.firing_counts.is_empty() {
            *self = other.clone();
            return;
        }
        assert_eq!(
            self.firing_counts.len(),
            other.firing_counts.len(),
            "SparsityMetrics::merge: accumulators saw different d_sae"
        );
        for (a, b) in self.firing_counts.iter_mut().zip(&other.firing_counts) {
            *a += b;
        }
        self.tokens += other.tokens;
        self.l1_sum += other.l1_sum;
    }

    /// The metrics over every token seen, or `None` before the first non-empty batch.
    pub fn report(&self) -> Option<SparsityReport> {
        if self.tokens == 0 {
            return None;
        }
        let n = self.tokens as f64;
        let m = self.firing_counts.len() as f64;
        let density: Vec<f64> = self.firing_counts.iter().map(|&c| c as f64 / n).collect();
        let fraction =
            |pred: &dyn Fn(f64) -> bool| density.iter().filter(|&&p| pred(p)).count() as f64 / m;
        Some(SparsityReport {
            tokens: self.tokens,
            l0: self.firing_counts.iter().sum::<u64>() as f64 / n,
            l1: self.l1_sum / n,
            dead_fraction: fraction(&|p| p == 0.0),
            dense_fraction_1pct: fraction(&|p| p > 0.01),
            dense_fraction_10pct: fraction(&|p| p > 0.1),
            density,
        })
    }
}

/// Sparsity metrics over a set of tokens; see [`SparsityMetrics`] for the definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct SparsityReport {
    /// Tokens measured.
    pub tokens: u64,
    /// Mean number of non-zero codes per token.
    pub l0: f64,
    /// Mean `Σ_i |f_i|` per token.
    pub l1: f64,
    /// Share of latents that never fired.
    pub dead_fraction: f64,
    /// Share of latents firing on more than 1% of tokens.
    pub dense_fraction_1pct: f64,
    /// Share of latents firing on more than 10% of tokens.
    pub dense_fraction_10pct: f64,
    /// Per-latent firing density (fraction of tokens with a non-zero code), `[d_sae]`.
    pub density: Vec<f64>,
}

impl SparsityReport {
    /// Share of latents whose density is strictly above `threshold`.
    pub fn fraction_denser_than(&self, threshold: f64) -> f64 {
        self.density.iter().filter(|&&p| p > threshold).count() as f64 / self.density.len() as f64
    }

    /// `log10(density + 1e-10)` per latent: the `sparsity` tensor SAELens stores in
    /// `sparsity.safetensors`.
    pub fn log10_sparsity(&self) -> Vec<f32> {
        self.density
            .iter()
            .map(|&p| (p + 1e-10).log10() as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    use super::*;
    use crate::test_device;

    fn codes(rows: &[Vec<f32>]) -> Tensor<2> {
        let m = rows[0].len();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), m]), &test_device())
    }

    #[test]
    fn every_metric_matches_hand_computed_values() {
        // 4 tokens × 5 latents; latent 4 is dead, latent 0 fires on every token, latent 3 carries a
        // signed (AbsTopK-style) code that must count.
        let c = codes(&[
            vec![1.0, 0.0, 0.0, 0.0, 0.0],
            vec![2.0, 0.5, 0.0, -1.0, 0.0],
            vec![0.5, 0.0, 0.0, 0.0, 0.0],
            vec![1.0, 0.0, 3.0, 0.0, 0.0],
        ]);
        let mut m = SparsityMetrics::new();
        m.update(&c);
        let r = m.report().unwrap();
        assert_eq!(r.tokens, 4);
        assert_eq!(r.l0, 7.0 / 4.0);
        assert_eq!(r.l1, 9.0 / 4.0);
        assert_eq!(r.density, vec![1.0, 0.25, 0.25, 0.25, 0.0]);
        assert_eq!(r.dead_fraction, 0.2);
        assert_eq!(r.dense_fraction_1pct, 0.8);
        assert_eq!(r.dense_fraction_10pct, 0.8);
        assert_eq!(r.fraction_denser_than(0.5), 0.2);
        assert_eq!(m.firing_counts(), &[4, 1, 1, 1, 0]);
        let s = r.log10_sparsity();
        assert_relative_eq!(s[0], 0.0, epsilon = 1e-6);
        assert_relative_eq!(s[1], 0.25f32.log10(), epsilon = 1e-6);
        assert_relative_eq!(s[4], -10.0, epsilon = 1e-6);
    }

    #[test]
    fn empty_accumulator_reports_nothing() {
        assert!(SparsityMetrics::new().report().is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Streaming over any split, and merging, equals one shot exactly (counts are integers).
        #[test]
        fn any_batch_split_equals_one_shot(
            (m, values, mut cuts) in (1usize..6, 1usize..20).prop_flat_map(|(m, n)| (
                Just(m),
                prop::collection::vec(prop_oneof![Just(0.0f32), -4.0f32..4.0], n * m),
                prop::collection::vec(0usize..=n, 0..4),
            ))
        ) {
            let n = values.len() / m;
            let device = test_device();
            let c = Tensor::<2>::from_data(TensorData::new(values.clone(), [n, m]), &device);
            let mut one = SparsityMetrics::new();
            one.update(&c);
            cuts.push(0);
            cuts.push(n);
            cuts.sort();
            cuts.dedup();
            let mut streamed = SparsityMetrics::new();
            let mut merged = SparsityMetrics::new();
            for w in cuts.windows(2) {
                let part = c.clone().slice([w[0]..w[1], 0..m]);
                streamed.update(&part);
                let mut p = SparsityMetrics::new();
                p.update(&part);
                merged.merge(&p);
            }
            let a = one.report().unwrap();
            // Brute force on the host.
            let nonzero = values.iter().filter(|v| **v != 0.0).count();
            prop_assert_eq!(a.l0, nonzero as f64 / n as f64);
            for b in [streamed.report().unwrap(), merged.report().unwrap()] {
                prop_assert_eq!(&a.density, &b.density);
                prop_assert_eq!(a.l0, b.l0);
                prop_assert!((a.l1 - b.l1).abs() <= 1e-5 * a.l1.max(1.0));
            }
        }
    }
}
