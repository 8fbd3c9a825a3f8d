//! Synthetic activations with known ground-truth features (research notes §6), seeded and
//! deterministic, for validating SAEs without a language model.

mod correlated;
mod linalg;
mod normal;
mod signed;
mod source;
mod tree;
mod zipf;

pub use correlated::{CorrelatedFeatures, CorrelatedFeaturesConfig};
pub use signed::{SignedFeatures, SignedFeaturesConfig};
pub use source::SyntheticSource;
pub use tree::{HierarchicalTree, HierarchicalTreeConfig};
pub use zipf::{ZipfFeatures, ZipfFeaturesConfig};

use burn::prelude::*;

/// One batch drawn from a synthetic dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticBatch {
    /// The activations `x = codes · features`, `[batch, d_in]` row-major.
    pub activations: Vec<f32>,
    /// The ground-truth coefficients, `[batch, num_features]` row-major.
    pub codes: Vec<f32>,
}

/// A generator of activations built from known feature directions.
///
/// Batch `index` is a pure function of the dataset's seed and `index`, so a stream of batches is
/// resumable and reproducible on every machine.
pub trait SyntheticDataset {
    /// A short name for logs.
    fn name(&self) -> String;
    /// The activation width.
    fn d_in(&self) -> usize;
    /// The number of ground-truth features.
    fn num_features(&self) -> usize;
    /// The ground-truth directions, `[num_features, d_in]` row-major, unit rows.
    fn features(&self) -> &[f32];
    /// The expected number of active features per token.
    fn expected_l0(&self) -> f64;
    /// Draws batch number `index` of `batch_size` tokens (`device` runs the dense products).
    fn sample(&self, index: u64, batch_size: usize, device: &Device) -> SyntheticBatch;

    /// The ground-truth directions as a `[num_features, d_in]` tensor.
    fn features_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.features().to_vec(), [self.num_features(), self.d_in()]),
            device,
        )
    }
}

impl SyntheticBatch {
    /// The batch of `data`'s ground-truth `codes` (`[rows, num_features]`), with activations
    /// `codes · features` computed on `device`.
    pub(crate) fn mix(
        data: &(impl SyntheticDataset + ?Sized),
        codes: Vec<f32>,
        rows: usize,
        device: &Device,
    ) -> Self {
        let shape = [rows, data.num_features()];
        let c = Tensor::<2>::from_data(TensorData::new(codes.clone(), shape), device);
        Self {
            activations: host_f32(c.matmul(data.features_tensor(device))),
            codes,
        }
    }
}

/// A float tensor's elements as `f32`, row-major.
pub(crate) fn host_f32(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float tensor converts to f32")
}

/// `rows` random unit vectors of width `d` (Gaussian, normalised).
pub(crate) fn random_unit_rows(rng: &mut impl rand::Rng, rows: usize, d: usize) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    let mut out = Vec::with_capacity(rows * d);
    for _ in 0..rows {
        let v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        out.extend(v.iter().map(|x| (x / norm) as f32));
    }
    out
}
