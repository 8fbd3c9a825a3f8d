//! Decoder geometry: how far the decoder's latent directions are from orthogonal.

use burn::prelude::*;

use super::host::to_f64;

/// Rows of the cosine matrix computed per device call: a `[ROWS, d_sae]` block at a time, so a
/// 16k-latent decoder never materialises its 16k × 16k Gram matrix.
const ROWS_PER_BLOCK: usize = 1024;

/// Pairwise cosine statistics of the decoder's rows (latent directions), off the diagonal.
///
/// With `ŵ_i = W_dec[i] / max(‖W_dec[i]‖, 1e-8)` and `c_ij = ⟨ŵ_i, ŵ_j⟩` over pairs `i ≠ j`:
/// `max_cosine` and `mean_cosine` are top-AFA's logged `epsilon_max` / `epsilon_mean` (max and
/// mean of the off-diagonal of `W_dec W_decᵀ`, which are cosines there because that decoder has
/// unit rows); `max_abs_cosine` is the ε of ε-quasi-orthogonality (`|c_ij| ≤ ε` for all pairs);
/// `mean_max_abs_cosine` averages each latent's closest other direction (SAEBench's
/// "average max decoder cosine similarity", here with `|·|`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecoderGeometry {
    /// `max_{i≠j} c_ij`.
    pub max_cosine: f64,
    /// `mean_{i≠j} c_ij`.
    pub mean_cosine: f64,
    /// `max_{i≠j} |c_ij|`.
    pub max_abs_cosine: f64,
    /// `mean_{i≠j} |c_ij|`.
    pub mean_abs_cosine: f64,
    /// `mean_i max_{j≠i} |c_ij|`.
    pub mean_max_abs_cosine: f64,
}

/// Off-diagonal cosine statistics of a decoder's rows; see [`DecoderGeometry`].
///
/// A zero row (e.g. a dead latent zeroed out) has cosine 0 with every other row.
///
/// # Shapes
/// - `w_dec`: `[d_sae, d_in]` (SAELens orientation: row `i` is latent `i`'s direction).
///
/// # Panics
/// If `d_sae < 2` (there is no pair of latents).
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use sae_core::metrics::decoder_geometry;
///
/// let w_dec = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], &Device::flex());
/// let g = decoder_geometry(&w_dec);
/// assert!((g.max_abs_cosine - 0.5f64.sqrt()).abs() < 1e-6);
/// ```
pub fn decoder_geometry(w_dec: &Tensor<2>) -> DecoderGeometry {
    let [m, d] = w_dec.dims();
    assert!(
        m >= 2,
        "decoder_geometry: needs d_sae >= 2 latents to have pairs, found d_sae = {m}"
    );
    let w = w_dec.clone().inner();
    let device = w.device();
    let norms = w.clone().square().sum_dim(1).sqrt().clamp_min(1e-8);
    let unit = w / norms;
    let unit_t = unit.clone().transpose();

    let (mut max_c, mut sum_c, mut max_abs, mut sum_abs, mut sum_row_max_abs) =
        (f64::NEG_INFINITY, 0.0, 0.0f64, 0.0, 0.0);
    let mut start = 0;
    while start < m {
        let rows = (m - start).min(ROWS_PER_BLOCK);
        let block = unit.clone().narrow(0, start, rows).reshape([rows, d]);
        let cos = block.matmul(unit_t.clone());
        let row_ids = Tensor::<1, Int>::arange(start as i64..(start + rows) as i64, &device)
            .reshape([rows, 1])
            .expand([rows, m]);
        let col_ids = Tensor::<1, Int>::arange(0..m as i64, &device)
            .reshape([1, m])
            .expand([rows, m]);
        let diagonal = row_ids.equal(col_ids);
        let abs = cos.clone().abs().mask_fill(diagonal.clone(), 0.0);
        let stats = Tensor::cat(
            vec![
                cos.clone().mask_fill(diagonal.clone(), -2.0).max_dim(1),
                cos.mask_fill(diagonal, 0.0).sum_dim(1),
                abs.clone().max_dim(1),
                abs.sum_dim(1),
            ],
            1,
        );
        for row in to_f64(stats).chunks_exact(4) {
            max_c = max_c.max(row[0]);
            sum_c += row[1];
            max_abs = max_abs.max(row[2]);
            sum_abs += row[3];
            sum_row_max_abs += row[2];
        }
        start += rows;
    }
    let pairs = (m * (m - 1)) as f64;
    DecoderGeometry {
        max_cosine: max_c,
        mean_cosine: sum_c / pairs,
        max_abs_cosine: max_abs,
        mean_abs_cosine: sum_abs / pairs,
        mean_max_abs_cosine: sum_row_max_abs / m as f64,
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    use super::*;
    use crate::test_device;

    #[test]
    fn matches_hand_computed_cosines() {
        // Rows e1, 2·e2, (1,1), −e1. Cosines (i<j): (0,1) 0, (0,2) s, (0,3) −1, (1,2) s,
        // (1,3) 0, (2,3) −s, with s = 1/√2.
        let w = Tensor::<2>::from_floats(
            [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]],
            &test_device(),
        );
        let g = decoder_geometry(&w);
        let s = 0.5f64.sqrt();
        assert_relative_eq!(g.max_cosine, s, max_relative = 1e-6);
        assert_relative_eq!(g.mean_cosine, 2.0 * (s - 1.0) / 12.0, max_relative = 1e-5);
        assert_relative_eq!(g.max_abs_cosine, 1.0, max_relative = 1e-6);
        assert_relative_eq!(
            g.mean_abs_cosine,
            2.0 * (3.0 * s + 1.0) / 12.0,
            max_relative = 1e-6
        );
        // Row maxima of |c|: 1, s, s, 1.
        assert_relative_eq!(
            g.mean_max_abs_cosine,
            (2.0 + 2.0 * s) / 4.0,
            max_relative = 1e-6
        );
    }

    #[test]
    fn orthonormal_decoder_is_exactly_orthogonal() {
        let w = Tensor::<2>::from_floats(
            [[0.0, 3.0, 0.0], [0.0, 0.0, -1.0], [2.0, 0.0, 0.0]],
            &test_device(),
        );
        let g = decoder_geometry(&w);
        assert_eq!(g.max_abs_cosine, 0.0);
        assert_eq!(g.mean_abs_cosine, 0.0);
    }

    #[test]
    #[should_panic(expected = "needs d_sae >= 2")]
    fn a_single_latent_panics() {
        decoder_geometry(&Tensor::<2>::ones([1, 3], &test_device()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Equals a brute-force computation on the host, and is invariant to permuting the rows,
        /// flipping signs (for the |·| statistics) and rescaling rows.
        #[test]
        fn equals_brute_force_and_is_invariant(
            (m, d, values, flips, scale) in (2usize..9, 1usize..5).prop_flat_map(|(m, d)| (
                Just(m), Just(d),
                prop::collection::vec(-1.0f32..1.0, m * d),
                prop::collection::vec(any::<bool>(), m),
                0.5f32..4.0,
            ))
        ) {
            let rows: Vec<Vec<f64>> = values.chunks(d).map(|r| r.iter().map(|&v| v as f64).collect()).collect();
            let unit: Vec<Vec<f64>> = rows.iter().map(|r| {
                let n = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-8);
                r.iter().map(|v| v / n).collect()
            }).collect();
            let (mut mx, mut mabs, mut sum_abs) = (f64::NEG_INFINITY, 0.0f64, 0.0);
            for i in 0..m { for j in 0..m { if i != j {
                let c: f64 = unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum();
                mx = mx.max(c); mabs = mabs.max(c.abs()); sum_abs += c.abs();
            }}}
            let device = test_device();
            let w = Tensor::<2>::from_data(TensorData::new(values.clone(), [m, d]), &device);
            let g = decoder_geometry(&w);
            prop_assert!((g.max_cosine - mx).abs() < 1e-5);
            prop_assert!((g.max_abs_cosine - mabs).abs() < 1e-5);
            prop_assert!((g.mean_abs_cosine - sum_abs / (m * (m - 1)) as f64).abs() < 1e-5);

            // Reverse the rows, flip some signs, rescale.
            let mut changed = Vec::with_capacity(m * d);
            for (i, r) in values.chunks(d).enumerate().rev() {
                let s = if flips[i] { -scale } else { scale };
                changed.extend(r.iter().map(|v| v * s));
            }
            let g2 = decoder_geometry(&Tensor::<2>::from_data(TensorData::new(changed, [m, d]), &device));
            prop_assert!((g.max_abs_cosine - g2.max_abs_cosine).abs() < 1e-5);
            prop_assert!((g.mean_abs_cosine - g2.mean_abs_cosine).abs() < 1e-5);
            prop_assert!((g.mean_max_abs_cosine - g2.mean_max_abs_cosine).abs() < 1e-5);
        }
    }
}
