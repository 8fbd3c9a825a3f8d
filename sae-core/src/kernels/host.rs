//! Moving tensors to and from host memory for the CPU kernels.

use burn::prelude::*;

/// The tensor's data as `f32` (read it with [`f32_slice`]). Zero-copy on `flex` when the tensor
/// is contiguous and not shared; a copy (and a dtype conversion for f16/bf16/f64 tensors)
/// otherwise. Borrowing the slice from the `TensorData` avoids the further copy that turning
/// flex's (over-aligned) buffer into a `Vec<f32>` would cost.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::kernels::{f32_slice, host_data};
///
/// let t = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &Device::flex());
/// let data = host_data(t);
/// assert_eq!(f32_slice(&data), &[1.0, 2.0, 3.0, 4.0]);
/// ```
pub fn host_data<const D: usize>(tensor: Tensor<D>) -> TensorData {
    let data = tensor.into_data();
    if data.dtype() == burn::tensor::DType::F32 {
        data
    } else {
        data.convert::<f32>()
    }
}

/// The `f32` elements of data from [`host_data`].
///
/// # Panics
/// If `data` does not hold `f32` elements (it always does when it comes from [`host_data`]).
pub fn f32_slice(data: &TensorData) -> &[f32] {
    data.as_slice::<f32>()
        .unwrap_or_else(|err| panic!("reading a float tensor in host memory failed: {err}"))
}

/// Integer tensor elements as `i64`, row-major.
pub(crate) fn to_host_i64<const D: usize>(tensor: Tensor<D, Int>) -> Vec<i64> {
    tensor
        .into_data()
        .try_into_vec_as::<i64>()
        .unwrap_or_else(|err| panic!("reading an int tensor into host memory failed: {err}"))
}

/// A float tensor on `device` from host values.
pub(crate) fn values_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// An int tensor on `device` from host indices.
pub(crate) fn indices_tensor<const D: usize>(
    indices: Vec<u32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D, Int> {
    let indices: Vec<i32> = indices.into_iter().map(|i| i as i32).collect();
    Tensor::from_data(TensorData::new(indices, shape), device)
}
