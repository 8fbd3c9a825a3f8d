//! The portable N:M mask: tensor ops only, so it runs on the weights' own device.

use burn::prelude::*;
use burn::tensor::TensorData;

use super::nm::{NmPattern, Remainder, check_nm_shape};
use crate::Result;

/// The N:M mask of `scores` computed with tensor ops on their device, equal to
/// [`nm_mask`](crate::nm_mask) (same tie rule) without a host round trip.
///
/// Each element's rank in its group is the number of members that beat it — a higher score, or
/// an equal score at a lower index — counted with pairwise comparisons (`M²` per group); the N
/// with rank < N are kept. Memory is `M ×` the tensor's, so this is meant for the per-step
/// masks of sparse training and for modest M (≤ 32); large one-shot masks are faster on the
/// host. Scores must be finite (they are not checked here; [`HostTensor`](crate::HostTensor)
/// checks them on the host path).
///
/// # Errors
/// [`Error::OutOfRange`](crate::Error::OutOfRange) for a `dim` out of range,
/// [`Error::ShapeNotEligible`](crate::Error::ShapeNotEligible) when the dimension is not a
/// multiple of M.
///
/// ```
/// use burn::prelude::*;
/// use pruning::{nm_mask_tensor, NmPattern};
///
/// let device = Device::flex();
/// let w = Tensor::<2>::from_floats([[0.1, 0.9, 0.5, 0.3], [1.0, 1.0, 1.0, 0.0]], &device);
/// let keep = nm_mask_tensor(w.abs(), NmPattern::new(2, 4).unwrap(), 1).unwrap();
/// let expected = TensorData::from([[false, true, true, false], [true, true, false, false]]);
/// keep.into_data().assert_eq(&expected, false);
/// ```
pub fn nm_mask_tensor<const D: usize>(
    scores: Tensor<D>,
    pattern: NmPattern,
    dim: usize,
) -> Result<Tensor<D, Bool>> {
    let dims = scores.dims();
    check_nm_shape(&dims, pattern, dim, Remainder::Error, "the scores")?;
    let device = scores.device();
    let (n, m) = (pattern.n(), pattern.m());
    let outer: usize = dims[..dim].iter().product();
    let inner: usize = dims[dim + 1..].iter().product();
    let groups = dims[dim] / m;
    if dims.iter().product::<usize>() == 0 {
        return Ok(Tensor::<D, Bool>::empty(dims, &device));
    }
    let s: Tensor<4> = scores.reshape([outer, groups, m, inner]);
    let full = [outer, groups, m, m, inner];
    // s_i along axis 2, s_j along axis 3.
    let si: Tensor<5> = s.clone().unsqueeze_dim::<5>(3).expand(full);
    let sj: Tensor<5> = s.unsqueeze_dim::<5>(2).expand(full);
    let lower: Vec<bool> = (0..m * m).map(|k| k % m < k / m).collect(); // [i][j] = j < i
    let lower = Tensor::<2, Bool>::from_data(TensorData::new(lower, [m, m]), &device)
        .reshape([1, 1, m, m, 1])
        .expand(full);
    let better = sj
        .clone()
        .greater(si.clone())
        .bool_or(sj.equal(si).bool_and(lower));
    let rank = better.int().sum_dim(3); // [outer, groups, m, 1, inner]
    Ok(rank.lower_elem(n as i64).reshape(dims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HostTensor, Mask, nm_mask};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// The tensor-op path equals the host path bit for bit (ties included).
        #[test]
        fn equals_the_host_mask(
            a in 1usize..4, g in 1usize..4, c in 1usize..4, m in 1usize..9, nfrac in 0.0f64..=1.0,
            vals in prop::collection::vec(prop_oneof![(0i32..3).prop_map(|x| x as f32), -2.0f32..2.0], 200),
        ) {
            let n = ((m as f64) * nfrac) as usize;
            let p = NmPattern::new(n, m).unwrap();
            let shape = [a, g * m, c];
            let len = a * g * m * c;
            let vals: Vec<f32> = vals.iter().cycle().take(len).copied().collect();
            let host = HostTensor::new(vals, &shape, "s").unwrap();
            let device = crate::test_device();
            let t: Tensor<3> = host.to_tensor(&device);
            let on_device = Mask::from_tensor(&nm_mask_tensor(t, p, 1).unwrap()).unwrap();
            let on_host = nm_mask(&host, p, 1, Remainder::Error, None).unwrap();
            prop_assert_eq!(on_device, on_host);
        }
    }
}
