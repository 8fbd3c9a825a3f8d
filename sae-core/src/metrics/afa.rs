//! The approximate-feature-activation (AFA) lower bound of Lee et al., per token.

use burn::prelude::*;

/// Per-token εLBO of Lee et al. ("Evaluating and designing SAEs by approximating
/// quasi-orthogonality"): the smallest quasi-orthogonality ε consistent with a token's code,
///
/// `εLBO_t = |‖z_t‖² − ‖f̃_t‖²| / ((h − 1)·‖f̃_t‖²)`, with `f̃_{t,j} = f_{t,j}·‖W_dec[j]‖`,
/// `h = d_sae`, and `z_t` the input the decoder reconstructs (usually `x_t − b_dec`).
///
/// A token with an all-zero code divides by zero (infinite or NaN), as in the paper's
/// definition; the paper reports the median over tokens. Runs on the tensors' device and returns
/// a tensor there.
///
/// # Shapes
/// - `z`: `[batch, d_in]`
/// - `codes`: `[batch, d_sae]`
/// - `w_dec`: `[d_sae, d_in]`
/// - returns `[batch]`
///
/// # Panics
/// If the shapes disagree, or `d_sae < 2`.
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use sae_core::metrics::afa_epsilon_lbo;
///
/// let device = Device::flex();
/// let z = Tensor::<2>::from_floats([[1.0, 0.0]], &device);
/// let codes = Tensor::<2>::from_floats([[1.0, 0.0]], &device);
/// let w_dec = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device);
/// // ‖z‖² = ‖f̃‖² = 1: the code accounts for the whole norm.
/// let e: f32 = afa_epsilon_lbo(&z, &codes, &w_dec).into_scalar();
/// assert_eq!(e, 0.0);
/// ```
pub fn afa_epsilon_lbo(z: &Tensor<2>, codes: &Tensor<2>, w_dec: &Tensor<2>) -> Tensor<1> {
    let [n, d] = z.dims();
    let [n_codes, m] = codes.dims();
    assert_eq!(
        n, n_codes,
        "afa_epsilon_lbo: z has {n} rows but codes has {n_codes}"
    );
    assert_eq!(
        w_dec.dims(),
        [m, d],
        "afa_epsilon_lbo: w_dec must be [d_sae, d_in] = [{m}, {d}]"
    );
    assert!(m >= 2, "afa_epsilon_lbo: needs d_sae >= 2, found {m}");
    let z = z.clone().inner();
    let codes = codes.clone().inner();
    let w_dec = w_dec.clone().inner();
    let z_sq = z.square().sum_dim(1);
    let dec_sq = w_dec.square().sum_dim(1); // [m, 1]
    let f_sq = codes.square().matmul(dec_sq); // [n, 1]
    let lbo = (z_sq - f_sq.clone()).abs() / (f_sq * (m - 1) as f32);
    lbo.reshape([n])
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;
    use crate::test_device;

    #[test]
    fn matches_the_worked_case() {
        // research/interp-eval.md §7: ‖z‖² = 10, ‖f̃‖² = 8, h = 5 → 2/(4·8) = 0.0625.
        // z = (1, 3); one active latent with code 2 and decoder row (1, 1), norm √2.
        let device = test_device();
        let z = Tensor::<2>::from_floats([[1.0, 3.0], [1.0, 3.0]], &device);
        let codes = Tensor::<2>::from_floats(
            [[2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0]],
            &device,
        );
        let w_dec = Tensor::<2>::from_floats(
            [[1.0, 1.0], [5.0, 0.0], [0.0, 5.0], [2.0, 0.0], [0.0, 1.0]],
            &device,
        );
        let e: Vec<f32> = afa_epsilon_lbo(&z, &codes, &w_dec)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_relative_eq!(e[0], 0.0625, max_relative = 1e-6);
        // Second token: ‖f̃‖² = 4 + 1 = 5 → |10 − 5| / (4·5) = 0.25.
        assert_relative_eq!(e[1], 0.25, max_relative = 1e-6);
    }
}
