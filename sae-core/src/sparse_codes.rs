//! k-sparse codes: `(indices, values)` pairs, `[batch, k]` each.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// The k-sparse form of SAE codes: for every row of a batch, the latent `indices` and their
/// `values`, both `[batch, k]`.
///
/// This is exactly the layout `sparse-index` accepts (`(Tensor<2, Int>, Tensor<2>)`), so codes
/// travel there with [`SparseCodes::into_parts`] and no conversion.
///
/// Conventions:
/// - Within a row, entries are ordered by the architecture's selection score, best first
///   (TopK: descending pre-activation, ties broken by the lower latent index on the host-kernel
///   path; see [`crate::kernels::top_k_rows`]).
/// - Architectures whose L0 varies per row (top-AFA, matching pursuit, a thresholded encoder)
///   pad short rows: padding entries have value `0.0` and repeat a valid latent index. Every
///   consumer therefore treats a `0.0` value as "no entry"; [`SparseCodes::to_dense`] and
///   [`SparseCodes::decode`] add entries, so padding contributes nothing.
/// - A selected latent may carry `0.0` legitimately (TopK applies ReLU after selection), which
///   is indistinguishable from padding and, for every use, equivalent to it.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::SparseCodes;
///
/// let device = Device::flex();
/// let codes = SparseCodes::new(
///     Tensor::<2, Int>::from_data([[2, 0], [1, 1]], &device),
///     Tensor::<2>::from_floats([[3.0, 1.0], [5.0, 0.0]], &device),
/// );
/// let dense = codes.to_dense(4);
/// dense.into_data().assert_eq(
///     &TensorData::from([[1.0f32, 0.0, 3.0, 0.0], [0.0, 5.0, 0.0, 0.0]]),
///     false,
/// );
/// ```
#[derive(Clone, Debug)]
pub struct SparseCodes {
    /// Latent indices, `[batch, k]`, each in `0..d_sae`.
    pub indices: Tensor<2, Int>,
    /// Code values, `[batch, k]`, aligned with `indices`.
    pub values: Tensor<2>,
}

impl SparseCodes {
    /// Pairs indices with values.
    ///
    /// # Panics
    /// If `indices` and `values` differ in shape.
    pub fn new(indices: Tensor<2, Int>, values: Tensor<2>) -> Self {
        assert_eq!(
            indices.dims(),
            values.dims(),
            "SparseCodes: `indices` and `values` must have the same shape [batch, k]"
        );
        Self { indices, values }
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.values.dims()[0]
    }

    /// Entries per row (the `k` of the layout, padding included).
    pub fn k(&self) -> usize {
        self.values.dims()[1]
    }

    /// The `(indices, values)` pair, the layout `sparse-index` takes.
    pub fn into_parts(self) -> (Tensor<2, Int>, Tensor<2>) {
        (self.indices, self.values)
    }

    /// Dense codes `[batch, d_sae]`: zeros with every entry added at its index (so padding with
    /// value `0.0` is harmless). Differentiable in `values`.
    pub fn to_dense(&self, d_sae: usize) -> Tensor<2> {
        let [batch, _] = self.values.dims();
        Tensor::<2>::zeros([batch, d_sae], &self.values.device()).scatter(
            1,
            self.indices.clone(),
            self.values.clone(),
            IndexingUpdateOp::Add,
        )
    }

    /// Decodes against a decoder `w_dec [d_sae, d_in]` and optional bias `b_dec [d_in]`:
    /// `x̂[b] = Σ_j values[b, j] · w_dec[indices[b, j]] (+ b_dec)`, touching only the `k` selected
    /// rows per example.
    ///
    /// On a CPU device with tensors that carry no autodiff graph this runs the host kernel
    /// [`crate::kernels::sparse_decode`]; otherwise it uses tensor ops (`select` the rows,
    /// multiply, sum), which every backend supports and which autodiff differentiates.
    ///
    /// # Shapes
    /// - `w_dec`: `[d_sae, d_in]`, `b_dec`: `[d_in]` → `[batch, d_in]`.
    pub fn decode(&self, w_dec: Tensor<2>, b_dec: Option<Tensor<1>>) -> Tensor<2> {
        let path = crate::kernels::ComputePath::for_tensors(&w_dec, &self.values);
        crate::kernels::sparse_decode_tensor(self, w_dec, b_dec, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    #[test]
    fn to_dense_adds_duplicates_so_padding_is_harmless() {
        let device = test_device();
        let codes = SparseCodes::new(
            Tensor::<2, Int>::from_data([[1, 1, 1]], &device),
            Tensor::<2>::from_floats([[2.0, 0.0, 0.0]], &device),
        );
        codes
            .to_dense(3)
            .into_data()
            .assert_eq(&TensorData::from([[0.0f32, 2.0, 0.0]]), false);
    }

    #[test]
    #[should_panic(expected = "same shape")]
    fn mismatched_shapes_panic() {
        let device = test_device();
        let _ = SparseCodes::new(
            Tensor::<2, Int>::from_data([[1, 2]], &device),
            Tensor::<2>::from_floats([[2.0]], &device),
        );
    }

    #[test]
    fn decode_matches_hand_computed_value() {
        let device = test_device();
        let w_dec = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], &device);
        let b_dec = Tensor::<1>::from_floats([0.5, -0.5], &device);
        let codes = SparseCodes::new(
            Tensor::<2, Int>::from_data([[2, 0]], &device),
            Tensor::<2>::from_floats([[3.0, 1.0]], &device),
        );
        // 3·[1,1] + 1·[1,0] + [0.5,-0.5] = [4.5, 2.5]
        codes
            .decode(w_dec, Some(b_dec))
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[4.5f32, 2.5]]), Default::default());
    }
}
