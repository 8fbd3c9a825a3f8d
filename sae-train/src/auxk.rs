//! The auxiliary-K loss that gives dead latents a gradient (Gao et al. 2024, appendix A.2).

use burn::prelude::*;
use burn::tensor::activation::relu;

/// Settings of the auxiliary-K loss.
///
/// **Variant chosen** (research notes §1.2 list four): the OpenAI/dictionary_learning form —
/// the top `k_aux` *dead* latents by pre-activation reconstruct the detached residual
/// `e = x − x̂`, decoded **without** the decoder bias, and the loss is normalised by the residual's
/// variance, `L_aux = mean_b ‖e − ê‖² / mean_b ‖e − ē‖²`, weighted by `coefficient` (1/32).
/// Why: the residual already has the bias cancelled, so decoding with `b_dec` (SAELens, sparsify)
/// would ask dead latents to fit `−b_dec` too; the variance normalisation makes the coefficient
/// independent of the data's scale and of how good the main reconstruction already is, unlike
/// SAELens' raw SSE; and 1/32 is the value both reference implementations ship. `k_aux` defaults
/// to `d_in / 2` (the paper's heuristic) and is capped by the number of dead latents. sparsify's
/// extra factor `min(n_dead / k_aux, 1)` is not applied (dictionary_learning does not either).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuxKConfig {
    /// Latents used by the auxiliary reconstruction (`None`: `d_in / 2`).
    pub k_aux: Option<usize>,
    /// Weight of the auxiliary loss in the total.
    pub coefficient: f64,
    /// Rank dead latents by `|pre|` and keep signs (for signed SAEs such as AbsTopK) instead of
    /// ranking `pre` and applying ReLU.
    pub signed: bool,
}

impl Default for AuxKConfig {
    fn default() -> Self {
        Self {
            k_aux: None,
            coefficient: 1.0 / 32.0,
            signed: false,
        }
    }
}

/// The auxiliary-K loss (a scalar tensor, before its coefficient).
///
/// `pre_acts [batch, d_sae]` are the encoder pre-activations (tracked: the loss trains the dead
/// latents' encoder rows), `residual [batch, d_in]` is `x − x̂` (detached here), `w_dec
/// [d_sae, d_in]` the decoder, `dead` one flag per latent. Returns `None` when no latent is dead.
///
/// # Shapes
/// - `pre_acts`: `[batch, d_sae]`, `residual`: `[batch, d_in]`, `w_dec`: `[d_sae, d_in]`
///
/// # Panics
/// If `dead` does not have `d_sae` entries.
pub fn aux_k_loss(
    pre_acts: Tensor<2>,
    residual: Tensor<2>,
    w_dec: Tensor<2>,
    dead: &[bool],
    config: &AuxKConfig,
) -> Option<Tensor<1>> {
    let [batch, d_sae] = pre_acts.dims();
    let [_, d_in] = residual.dims();
    assert_eq!(
        dead.len(),
        d_sae,
        "dead mask has {} entries, expected d_sae = {d_sae}",
        dead.len()
    );
    let n_dead = dead.iter().filter(|&&d| d).count();
    if n_dead == 0 {
        return None;
    }
    let k_aux = config.k_aux.unwrap_or(d_in / 2).clamp(1, n_dead);
    let device = pre_acts.device();
    let alive = Tensor::<1, Bool>::from_data(
        TensorData::new(dead.iter().map(|d| !d).collect::<Vec<_>>(), [d_sae]),
        &device,
    )
    .unsqueeze::<2>()
    .expand([batch, d_sae]);
    let ranking = if config.signed {
        pre_acts.clone().abs()
    } else {
        pre_acts.clone()
    };
    let ranking = ranking.detach().mask_fill(alive, f32::NEG_INFINITY);
    let (_, idx) = ranking.topk_with_indices(k_aux, 1);
    let vals = pre_acts.gather(1, idx.clone());
    let vals = if config.signed { vals } else { relu(vals) };
    // ê = Σ_j v_j W_dec[j]: gather the k_aux rows per token instead of a dense [batch, d_sae]
    // product.
    let rows = w_dec.select(0, idx.reshape([batch * k_aux]));
    let recon = (rows.reshape([batch, k_aux, d_in]) * vals.unsqueeze_dim::<3>(2))
        .sum_dim(1)
        .reshape([batch, d_in]);
    let residual = residual.detach();
    let centred = residual.clone() - residual.clone().mean_dim(0);
    let variance = centred.square().sum_dim(1).mean();
    let err = (residual - recon).square().sum_dim(1).mean();
    Some(err / variance.clamp_min(1e-12))
}

/// Scatters `vals [batch, k]` at `idx [batch, k]` into a dense `[batch, d_sae]` tensor (test
/// helper and oracle).
#[cfg(test)]
fn densify(vals: Tensor<2>, idx: Tensor<2, Int>, d_sae: usize) -> Tensor<2> {
    let [batch, _] = vals.dims();
    Tensor::<2>::zeros([batch, d_sae], &vals.device()).scatter(
        1,
        idx,
        vals,
        burn::tensor::IndexingUpdateOp::Add,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// The dense reference: mask, top-k, ReLU, scatter, full matmul.
    fn reference(
        pre: Tensor<2>,
        res: Tensor<2>,
        w: Tensor<2>,
        dead: &[bool],
        k: usize,
    ) -> Tensor<1> {
        let [b, m] = pre.dims();
        let device = pre.device();
        let mask = Tensor::<1, Bool>::from_data(
            TensorData::new(dead.iter().map(|d| !d).collect::<Vec<_>>(), [m]),
            &device,
        )
        .unsqueeze::<2>()
        .expand([b, m]);
        let (vals, idx) = pre
            .mask_fill(mask, f32::NEG_INFINITY)
            .topk_with_indices(k, 1);
        let dense = densify(relu(vals), idx, m);
        let recon = dense.matmul(w);
        let var = (res.clone() - res.clone().mean_dim(0))
            .square()
            .sum_dim(1)
            .mean();
        (res - recon).square().sum_dim(1).mean() / var
    }

    #[test]
    fn matches_the_dense_reference_and_trains_only_dead_latents() {
        let device = crate::test_device().autodiff();
        device.seed(3);
        let (b, m, d) = (6, 10, 4);
        let pre =
            Tensor::<2>::random([b, m], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let res = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<2>::random([m, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let dead = [
            true, false, true, true, false, false, true, false, true, false,
        ];
        let cfg = AuxKConfig {
            k_aux: Some(3),
            ..Default::default()
        };
        let loss = aux_k_loss(pre.clone(), res.clone(), w.clone(), &dead, &cfg).unwrap();
        let expected = reference(pre.clone(), res, w.clone(), &dead, 3);
        loss.clone()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
        let grads = loss.backward();
        let gw: Vec<f32> = w
            .grad(&grads)
            .unwrap()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        let gp: Vec<f32> = pre
            .grad(&grads)
            .unwrap()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        for j in 0..m {
            if !dead[j] {
                assert!(
                    gw[j * d..(j + 1) * d].iter().all(|&g| g == 0.0),
                    "alive row {j} got a gradient"
                );
                assert!((0..b).all(|r| gp[r * m + j] == 0.0));
            }
        }
        assert!(gw.iter().any(|&g| g != 0.0));
        assert!(aux_k_loss(pre, Tensor::zeros([b, d], &device), w, &[false; 10], &cfg).is_none());
    }
}
