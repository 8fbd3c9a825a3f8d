//! Sparse vectors from burn tensors: dense rows and k-sparse codes (feature `burn`).

use burn::prelude::{Int, Tensor};

use crate::error::{Error, Result};
use crate::vector::SparseVector;

fn host_f32(t: Tensor<2>, what: &'static str) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::TensorData {
            what,
            reason: format!("{e:?}"),
        })
}

/// One sparse vector per row of a dense `[batch, dim]` tensor, keeping the non-zero entries
/// (for example SPLADE logits after `log(1 + relu(·))`, or the codes of a dense SAE).
///
/// # Shapes
/// - `rows`: `[batch, dim]`
///
/// # Errors
/// [`Error::InVector`] wrapping [`Error::NonFiniteValue`] for a NaN or infinite entry;
/// [`Error::TensorData`] if the data cannot be read as `f32`.
///
/// ```
/// use burn::prelude::*;
/// use sparse_index::tensors::from_dense_rows;
///
/// let device = Device::flex();
/// let rows = Tensor::<2>::from_floats([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]], &device);
/// let vectors = from_dense_rows(rows)?;
/// assert_eq!(vectors[0].indices(), &[1]);
/// assert_eq!(vectors[1].values(), &[2.0]);
/// # Ok::<(), sparse_index::Error>(())
/// ```
pub fn from_dense_rows(rows: Tensor<2>) -> Result<Vec<SparseVector>> {
    let [batch, dim] = rows.dims();
    let data = host_f32(rows, "rows")?;
    (0..batch)
        .map(|r| {
            SparseVector::from_dense(&data[r * dim..(r + 1) * dim]).map_err(|e| e.in_vector(r))
        })
        .collect()
}

/// One sparse vector per row of k-sparse codes given as `(indices, values)`, the layout of
/// sae-core's k-sparse codes and of burn's `topk_with_indices`. Entries whose value is exactly
/// zero (inactive latents after a ReLU) are dropped.
///
/// # Shapes
/// - `indices`: `[batch, k]`, latent ids
/// - `values`: `[batch, k]`, their activations
///
/// # Errors
/// [`Error::InVector`] wrapping [`Error::ComponentOutOfRange`] for a negative id or one above
/// `u32::MAX`, [`Error::DuplicateComponent`] for an id repeated in a row, or
/// [`Error::NonFiniteValue`]; [`Error::TensorData`] if the data cannot be read.
///
/// # Panics
/// If the two tensors have different shapes.
///
/// ```
/// use burn::prelude::*;
/// use sparse_index::tensors::from_topk_codes;
///
/// let device = Device::flex();
/// let pre = Tensor::<2>::from_floats([[0.1, 3.0, -1.0, 2.0]], &device);
/// let (values, indices) = pre.topk_with_indices(2, 1);
/// let vectors = from_topk_codes(indices, values)?;
/// assert_eq!(vectors[0].indices(), &[1, 3]);
/// assert_eq!(vectors[0].values(), &[3.0, 2.0]);
/// # Ok::<(), sparse_index::Error>(())
/// ```
pub fn from_topk_codes(indices: Tensor<2, Int>, values: Tensor<2>) -> Result<Vec<SparseVector>> {
    let (si, sv) = (indices.dims(), values.dims());
    assert_eq!(
        si, sv,
        "from_topk_codes: indices {si:?} and values {sv:?} must have the same [batch, k] shape"
    );
    let [batch, k] = si;
    let ids = indices
        .into_data()
        .try_into_vec_as::<i64>()
        .map_err(|e| Error::TensorData {
            what: "indices",
            reason: format!("{e:?}"),
        })?;
    let vals = host_f32(values, "values")?;
    (0..batch)
        .map(|r| {
            let mut pairs = Vec::with_capacity(k);
            for j in r * k..(r + 1) * k {
                let (id, v) = (ids[j], vals[j]);
                let id = u32::try_from(id).map_err(|_| {
                    Error::ComponentOutOfRange {
                        component: id as u64,
                        dim: u64::from(u32::MAX) + 1,
                        what: "u32 component ids",
                    }
                    .in_vector(r)
                })?;
                if !v.is_finite() {
                    return Err(Error::NonFiniteValue {
                        component: id,
                        value: v,
                    }
                    .in_vector(r));
                }
                if v != 0.0 {
                    pairs.push((id, v));
                }
            }
            SparseVector::from_pairs(pairs).map_err(|e| e.in_vector(r))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    #[test]
    fn dense_rows_and_topk_codes_agree() {
        let device = Device::flex();
        device.seed(3);
        let pre = Tensor::<2>::random(
            [4, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (vals, idx) = pre.clone().topk_with_indices(5, 1);
        let vals = burn::tensor::activation::relu(vals);
        let dense = pre.zeros_like().scatter(
            1,
            idx.clone(),
            vals.clone(),
            burn::tensor::IndexingUpdateOp::Assign,
        );
        let a = from_dense_rows(dense).unwrap();
        let b = from_topk_codes(idx, vals).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.nnz() <= 5));
    }

    #[test]
    fn invalid_codes_are_errors() {
        let device = Device::flex();
        let vals = Tensor::<2>::from_floats([[1.0, 2.0]], &device);
        let dup = Tensor::<2, Int>::from_ints([[3, 3]], &device);
        assert!(matches!(
            from_topk_codes(dup, vals.clone()),
            Err(Error::InVector { index: 0, .. })
        ));
        let neg = Tensor::<2, Int>::from_ints([[-1, 3]], &device);
        assert!(from_topk_codes(neg, vals).is_err());
        let nan = Tensor::<2>::from_floats([[0.0, f32::NAN]], &device);
        assert!(from_dense_rows(nan).is_err());
    }

    #[test]
    #[should_panic(expected = "same [batch, k] shape")]
    fn mismatched_shapes_panic() {
        let device = Device::flex();
        let _ = from_topk_codes(
            Tensor::<2, Int>::from_ints([[1, 2]], &device),
            Tensor::<2>::from_floats([[1.0], [2.0]], &device),
        );
    }
}
