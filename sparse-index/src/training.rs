//! Sparsity regularisers for training sparse encoders (feature `burn`): FLOPS and the
//! IDF-aware FLOPS of inference-free retrievers.
//!
//! Both take a batch of representations `[batch, vocab]` on any device (an autodiff device
//! while training) and return a one-element loss tensor to add to the ranking loss with a
//! weight λ.

use burn::prelude::Tensor;

/// The FLOPS regulariser of Paria et al. (ICLR 2020), used by SPLADE:
/// `Σ_j ( (1/N) Σ_i |w_ij| )²`, a smooth proxy of the expected number of floating-point
/// operations of an inner product between two representations.
///
/// # Shapes
/// - `reps`: `[batch, vocab]`
/// - returns `[1]`
///
/// ```
/// use burn::prelude::*;
/// use sparse_index::training::flops_loss;
///
/// let device = Device::flex();
/// let reps = Tensor::<2>::from_floats([[1.0, 0.0], [3.0, 2.0]], &device);
/// let loss: f32 = flops_loss(reps).into_scalar();
/// assert_eq!(loss, 2.0 * 2.0 + 1.0 * 1.0);
/// ```
pub fn flops_loss(reps: Tensor<2>) -> Tensor<1> {
    reps.abs().mean_dim(0).powi_scalar(2).sum()
}

/// The IDF-aware FLOPS loss of Geng, Ru and Yang, "Towards Competitive Search Relevance For
/// Inference-Free Learned Sparse Retrievers" (arXiv:2411.04403), for document encoders whose
/// queries are scored by IDF lookup instead of a query encoder:
/// `Σ_j ( (1/N) Σ_i m_i · |w_ij| / idf_j )²`.
///
/// Dividing by `idf_j` penalises activations on frequent, uninformative terms more than on
/// rare ones, which the paper finds keeps relevance while sparsifying. `m_i = 1` when document
/// `i` has more than `min_active` non-zero entries, else 0 (documents already sparse enough
/// are not pushed further). The paper gives the idea in prose; this form follows the
/// sentence-transformers `IDFFlopsLoss` that cites it (mean over the whole batch, masked rows
/// count as zeros).
///
/// # Shapes
/// - `reps`: `[batch, vocab]`
/// - `idf`: `[vocab]`, positive (entries are clamped below at 10⁻⁶)
/// - returns `[1]`
///
/// # Panics
/// If `idf` has a length other than `vocab`.
///
/// ```
/// use burn::prelude::*;
/// use sparse_index::training::{flops_loss, idf_flops_loss};
///
/// let device = Device::flex();
/// let reps = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 0.0]], &device);
/// let ones = Tensor::<1>::ones([2], &device);
/// let plain: f32 = flops_loss(reps.clone()).into_scalar();
/// assert_eq!(idf_flops_loss(reps.clone(), ones, 0).into_scalar::<f32>(), plain);
/// let idf = Tensor::<1>::from_floats([2.0, 1.0], &device);
/// let weighted: f32 = idf_flops_loss(reps, idf, 0).into_scalar();
/// assert_eq!(weighted, 1.0 * 1.0 + 1.0 * 1.0); // (4/2/2)² + (2/2/1)²
/// ```
pub fn idf_flops_loss(reps: Tensor<2>, idf: Tensor<1>, min_active: usize) -> Tensor<1> {
    let [_, vocab] = reps.dims();
    let [n_idf] = idf.dims();
    assert_eq!(
        n_idf, vocab,
        "idf_flops_loss: idf has {n_idf} entries, reps have vocab {vocab}"
    );
    let active = reps
        .clone()
        .not_equal_elem(0.0)
        .int()
        .sum_dim(1)
        .greater_elem(min_active as i64)
        .float();
    let weighted = reps.abs() / idf.clamp_min(1e-6).unsqueeze::<2>();
    (weighted * active).mean_dim(0).powi_scalar(2).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    #[test]
    fn mask_and_gradient() {
        let device = Device::flex().autodiff();
        let reps =
            Tensor::<2>::from_floats([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]], &device).require_grad();
        let idf = Tensor::<1>::from_floats([1.0, 2.0, 4.0], &device);
        // Row 1 has one active entry, not more than min_active = 1: masked out.
        let loss = idf_flops_loss(reps.clone(), idf, 1);
        // mean over 2 rows: [0.5, 0.5, 0]; squared sum 0.5.
        assert_eq!(loss.clone().into_scalar::<f32>(), 0.5);
        let grads = loss.backward();
        let g: Vec<f32> = reps
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        // d/dw_0j = 2 · a_j · (1/N) / idf_j for the active row, 0 for the masked row.
        assert_eq!(g, vec![0.5, 0.25, 0.0, 0.0, 0.0, 0.0]);
    }
}
