//! The binary keep-mask every pruning function returns.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{Error, Result};

/// A binary mask over a tensor: `true` keeps the weight, `false` prunes it (torch's
/// `weight_mask` with 1 = kept).
///
/// Row-major, with the shape of the tensor it masks. Masks combine with [`Mask::and`], which is
/// how repeated pruning compounds.
///
/// ```
/// use pruning::Mask;
///
/// let a = Mask::from_vec(vec![true, false, true, true], &[2, 2]).unwrap();
/// let b = Mask::from_vec(vec![true, true, false, true], &[2, 2]).unwrap();
/// let both = a.and(&b).unwrap();
/// assert_eq!(both.as_slice(), &[true, false, false, true]);
/// assert_eq!(both.kept(), 2);
/// assert_eq!(both.sparsity(), 0.5);
///
/// let mut w = vec![1.0, 2.0, 3.0, 4.0];
/// both.apply(&mut w);
/// assert_eq!(w, vec![1.0, 0.0, 0.0, 4.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mask {
    shape: Vec<usize>,
    keep: Vec<bool>,
}

impl Mask {
    /// A mask that keeps everything.
    pub fn ones(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            keep: vec![true; shape.iter().product()],
        }
    }

    /// Wraps a row-major keep vector.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `keep.len()` is not the product of `shape`.
    pub fn from_vec(keep: Vec<bool>, shape: &[usize]) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if keep.len() != expected {
            return Err(Error::ShapeMismatch {
                what: format!("mask values vs shape {shape:?}"),
                expected: vec![expected],
                found: vec![keep.len()],
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            keep,
        })
    }

    /// Reads a bool tensor (`true` = kept) back to the host.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the tensor's data cannot be read as booleans.
    pub fn from_tensor<const D: usize>(mask: &Tensor<D, Bool>) -> Result<Self> {
        Self::from_data(mask.to_data())
    }

    /// Reads burn [`TensorData`] holding booleans (or numbers, non-zero = kept).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the data cannot be read as booleans.
    pub fn from_data(data: TensorData) -> Result<Self> {
        let shape = data.shape().to_vec();
        let dtype = data.dtype();
        let keep = match data.clone().try_into_vec_as::<bool>() {
            Ok(v) => v,
            Err(_) => data
                .try_into_vec_as::<f32>()
                .map_err(|e| Error::OutOfRange {
                    what: "mask dtype".into(),
                    value: format!("{dtype:?}"),
                    reason: format!("cannot be read as booleans ({e:?})"),
                })?
                .into_iter()
                .map(|v| v != 0.0)
                .collect(),
        };
        Self::from_vec(keep, &shape)
    }

    /// Builds a bool tensor of rank `D` (`true` = kept) on `device`.
    ///
    /// # Panics
    /// If `D` is not the rank of the mask.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D, Bool> {
        assert_eq!(
            D,
            self.shape.len(),
            "Mask::to_tensor: rank D = {D} but the mask has shape {:?}",
            self.shape
        );
        Tensor::from_data(
            TensorData::new(self.keep.clone(), self.shape.clone()),
            device,
        )
    }

    /// Builds a float tensor of rank `D` holding 1.0 where kept and 0.0 where pruned.
    ///
    /// # Panics
    /// If `D` is not the rank of the mask.
    pub fn to_float_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        self.to_tensor::<D>(device).float()
    }

    /// The shape of the masked tensor.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The keep flags, row-major.
    pub fn as_slice(&self) -> &[bool] {
        &self.keep
    }

    /// Consumes the mask, returning its keep flags.
    pub fn into_vec(self) -> Vec<bool> {
        self.keep
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    /// Whether the mask covers no element.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// The number of kept weights.
    pub fn kept(&self) -> usize {
        self.keep.iter().filter(|&&k| k).count()
    }

    /// The number of pruned weights.
    pub fn pruned(&self) -> usize {
        self.len() - self.kept()
    }

    /// The fraction of pruned weights, `pruned / len` (0 for an empty mask).
    pub fn sparsity(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.pruned() as f64 / self.len() as f64
        }
    }

    /// Keeps a weight only where both masks keep it (torch's `default_mask * mask`).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the shapes differ.
    pub fn and(&self, other: &Mask) -> Result<Mask> {
        if self.shape != other.shape {
            return Err(Error::ShapeMismatch {
                what: "the two masks combined".into(),
                expected: self.shape.clone(),
                found: other.shape.clone(),
            });
        }
        Ok(Mask {
            shape: self.shape.clone(),
            keep: self
                .keep
                .iter()
                .zip(&other.keep)
                .map(|(&a, &b)| a && b)
                .collect(),
        })
    }

    /// Zeroes the pruned entries of row-major `values`.
    ///
    /// # Panics
    /// If `values.len()` differs from the mask's length.
    pub fn apply(&self, values: &mut [f32]) {
        assert_eq!(
            values.len(),
            self.keep.len(),
            "Mask::apply: {} values for a mask of {} elements",
            values.len(),
            self.keep.len()
        );
        for (v, &k) in values.iter_mut().zip(&self.keep) {
            if !k {
                *v = 0.0;
            }
        }
    }

    /// Checks that this mask has the given shape, naming the tensor in the error.
    pub(crate) fn check_shape(&self, shape: &[usize], what: &str) -> Result<()> {
        if self.shape != shape {
            return Err(Error::ShapeMismatch {
                what: format!("prior mask of {what}"),
                expected: shape.to_vec(),
                found: self.shape.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_bool_and_float_tensors() {
        let device = crate::test_device();
        let m = Mask::from_vec(vec![true, false, false, true, true, false], &[2, 3]).unwrap();
        let t = m.to_tensor::<2>(&device);
        assert_eq!(Mask::from_tensor(&t).unwrap(), m);
        let f = m.to_float_tensor::<2>(&device);
        assert_eq!(Mask::from_data(f.to_data()).unwrap(), m);
    }

    #[test]
    fn and_rejects_other_shapes() {
        let a = Mask::ones(&[2, 3]);
        let b = Mask::ones(&[3, 2]);
        assert!(matches!(a.and(&b), Err(Error::ShapeMismatch { .. })));
        assert_eq!(Mask::ones(&[0]).sparsity(), 0.0);
    }
}
