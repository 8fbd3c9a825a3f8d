//! A checked, row-major copy of a float tensor on the host: what every mask function reads.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{Error, Result};

/// A float tensor copied to the host, row-major, with every value checked finite.
///
/// Masks are computed on the host so that they are bit-identical on every burn backend (GPU
/// `topk`/`sort` break ties differently from the CPU ones). Reading a tensor costs one transfer;
/// for the per-step masks of sparse training the crate also has a portable tensor-op N:M
/// ([`nm_mask_tensor`](crate::nm_mask_tensor)) that stays on the device and gives the same mask.
///
/// ```
/// use burn::prelude::*;
/// use pruning::HostTensor;
///
/// let device = Device::flex();
/// let w = Tensor::<2>::from_floats([[1.0, -2.0], [3.0, -4.0]], &device);
/// let host = HostTensor::from_tensor(&w, "w").unwrap();
/// assert_eq!(host.shape(), &[2, 2]);
/// assert_eq!(host.values(), &[1.0, -2.0, 3.0, -4.0]);
/// assert_eq!(host.abs().values(), &[1.0, 2.0, 3.0, 4.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl HostTensor {
    /// Wraps row-major `values` of the given `shape`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `values.len()` is not the product of `shape`;
    /// [`Error::NonFinite`] when a value is NaN or infinite (`what` names the input).
    pub fn new(values: Vec<f32>, shape: &[usize], what: &str) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if values.len() != expected {
            return Err(Error::ShapeMismatch {
                what: format!("{what}: number of values vs shape {shape:?}"),
                expected: vec![expected],
                found: vec![values.len()],
            });
        }
        Error::check_finite(what, &values)?;
        Ok(Self {
            shape: shape.to_vec(),
            values,
        })
    }

    /// Copies a float tensor (any float dtype, converted to `f32`) to the host.
    ///
    /// # Errors
    /// [`Error::NonFinite`] when the tensor holds NaN or ±Inf.
    pub fn from_tensor<const D: usize>(tensor: &Tensor<D>, what: &str) -> Result<Self> {
        Self::from_data(tensor.to_data(), what)
    }

    /// Takes burn [`TensorData`] of any numeric dtype.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the data cannot be read as numbers (e.g. quantized data),
    /// [`Error::NonFinite`] for NaN/Inf.
    pub fn from_data(data: TensorData, what: &str) -> Result<Self> {
        let shape = data.shape().to_vec();
        let dtype = data.dtype();
        let values = data
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::OutOfRange {
                what: format!("{what} dtype"),
                value: format!("{dtype:?}"),
                reason: format!("cannot be read as f32 ({e:?})"),
            })?;
        Self::new(values, &shape, what)
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Consumes the tensor, returning its row-major values.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Element-wise absolute value: the magnitude scores.
    pub fn abs(&self) -> Self {
        Self {
            shape: self.shape.clone(),
            values: self.values.iter().map(|v| v.abs()).collect(),
        }
    }

    /// Builds a burn tensor of rank `D` on `device`.
    ///
    /// # Panics
    /// If `D` is not the rank of this tensor.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        assert_eq!(
            D,
            self.shape.len(),
            "HostTensor::to_tensor: rank D = {D} but the tensor has shape {:?}",
            self.shape
        );
        Tensor::from_data(
            TensorData::new(self.values.clone(), self.shape.clone()),
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_length_and_non_finite() {
        assert!(matches!(
            HostTensor::new(vec![1.0; 5], &[2, 3], "w"),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            HostTensor::new(vec![1.0, f32::INFINITY], &[2], "w"),
            Err(Error::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn round_trips_through_a_tensor() {
        let device = crate::test_device();
        let h = HostTensor::new((0..6).map(|i| i as f32 - 2.5).collect(), &[2, 3], "w").unwrap();
        let t: Tensor<2> = h.to_tensor(&device);
        assert_eq!(HostTensor::from_tensor(&t, "w").unwrap(), h);
    }
}
