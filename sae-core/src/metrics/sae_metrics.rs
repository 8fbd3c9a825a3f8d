//! Reconstruction and sparsity metrics together: what a trainer logs every N steps.

use burn::prelude::*;

use super::reconstruction::{ReconstructionMetrics, ReconstructionReport};
use super::sparsity::{SparsityMetrics, SparsityReport};

/// Streaming reconstruction + sparsity metrics of an SAE over batches `(x, x̂, codes)`.
///
/// A thin pair of [`ReconstructionMetrics`] and [`SparsityMetrics`]; see them for the exact
/// definitions. Typical use: create one per evaluation window, `update` on each batch, `report`
/// and `reset` when logging.
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use sae_core::metrics::SaeMetrics;
///
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
/// let codes = Tensor::<2>::from_floats([[0.5, 0.0, 0.0], [0.0, 0.0, 2.0]], &device);
/// let x_hat = x.clone() * 0.9;
/// let mut metrics = SaeMetrics::new();
/// metrics.update(&x, &x_hat, &codes);
/// let report = metrics.report().expect("one batch was seen");
/// assert_eq!(report.sparsity.l0, 1.0);
/// assert!((report.reconstruction.l2_ratio - 0.9).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SaeMetrics {
    /// Reconstruction metrics accumulated so far.
    pub reconstruction: ReconstructionMetrics,
    /// Sparsity metrics accumulated so far.
    pub sparsity: SparsityMetrics,
}

impl SaeMetrics {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one batch.
    ///
    /// # Shapes
    /// - `x`, `x_hat`: `[batch, d_in]`
    /// - `codes`: `[batch, d_sae]`
    ///
    /// # Panics
    /// If the shapes disagree with each other or with earlier batches.
    pub fn update(&mut self, x: &Tensor<2>, x_hat: &Tensor<2>, codes: &Tensor<2>) {
        assert_eq!(
            x.dims()[0],
            codes.dims()[0],
            "SaeMetrics::update: codes must have one row per row of x"
        );
        self.reconstruction.update(x, x_hat);
        self.sparsity.update(codes);
    }

    /// Adds everything another accumulator has seen.
    ///
    /// # Panics
    /// If the two saw data of different widths.
    pub fn merge(&mut self, other: &SaeMetrics) {
        self.reconstruction.merge(&other.reconstruction);
        self.sparsity.merge(&other.sparsity);
    }

    /// Forgets every batch seen.
    pub fn reset(&mut self) {
        self.reconstruction.reset();
        self.sparsity.reset();
    }

    /// Both reports, or `None` before the first non-empty batch.
    pub fn report(&self) -> Option<SaeMetricsReport> {
        Some(SaeMetricsReport {
            reconstruction: self.reconstruction.report()?,
            sparsity: self.sparsity.report()?,
        })
    }
}

/// Reconstruction and sparsity reports over the same tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeMetricsReport {
    /// FVU, explained variance, MSE, cosine, shrinkage, ...
    pub reconstruction: ReconstructionReport,
    /// L0, L1, firing density, dead and dense fractions.
    pub sparsity: SparsityReport,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    #[test]
    fn reports_both_and_resets() {
        let device = test_device();
        let x = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device);
        let codes = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 1.0]], &device);
        let mut m = SaeMetrics::new();
        m.update(&x, &x, &codes);
        let r = m.report().unwrap();
        assert_eq!(r.reconstruction.tokens, 2);
        assert_eq!(r.reconstruction.fvu, 0.0);
        assert_eq!(r.sparsity.l0, 1.5);
        assert_eq!(r.sparsity.density, vec![1.0, 0.5]);
        m.reset();
        assert!(m.report().is_none());
    }

    #[test]
    #[should_panic(expected = "one row per row of x")]
    fn mismatched_rows_panic() {
        let device = test_device();
        let x = Tensor::<2>::zeros([2, 2], &device);
        SaeMetrics::new().update(&x, &x, &Tensor::<2>::zeros([3, 4], &device));
    }
}
