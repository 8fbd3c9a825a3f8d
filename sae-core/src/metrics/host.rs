//! Moving small reduction results from the device to the host as `f64`.

use burn::prelude::*;

/// Reads a tensor back to the host as `f64`, whatever its dtype or backend.
pub(crate) fn to_f64<const D: usize, K>(tensor: Tensor<D, K>) -> Vec<f64>
where
    K: burn::tensor::kind::Basic,
{
    tensor.into_data().iter::<f64>().collect()
}
