//! The k-sparse TopK training step: loss and gradients of a TopK SAE computed by hand with
//! sae-core's CPU kernels, touching only the `k` selected decoder rows per token.
//!
//! Only the encoder product `(x − b_dec) W_enc` is dense (it must score every latent); top-k
//! runs on a partial-selection kernel, and the decoder forward, its backward and the encoder
//! backward are gathers and scatters over the selected rows: `O(batch · k · d_in)` instead of
//! `O(batch · d_sae · d_in)`. burn's autodiff path is the portable fallback and the oracle in the
//! tests (the gradients agree within float tolerance).

use std::any::Any;

use burn::optim::GradientsParams;
use burn::prelude::*;
use sae_core::decoder::NORM_EPS;
use sae_core::kernels::{
    Rank, scatter_outer, scatter_sum, sparse_decode, sparse_decode_backward_values, top_k_rows,
};
use sae_core::{AnySae, TopKSae};

use crate::AuxKConfig;

/// Loss, gradients and firing counts of one fast step.
pub(crate) struct FastStep {
    pub grads: GradientsParams,
    pub loss: f64,
    pub mse: f64,
    pub aux_loss: f64,
    pub firing_counts: Vec<u32>,
}

/// The fast step for `sae` if it is a TopK SAE (directly or inside [`AnySae`]) on a CPU device;
/// `None` otherwise (the caller then runs autodiff).
pub(crate) fn fast_topk_step(
    sae: &dyn Any,
    batch: &[f32],
    rows: usize,
    dead: &[bool],
    aux: Option<&AuxKConfig>,
    clip_norm: Option<f64>,
) -> Option<FastStep> {
    let topk = sae
        .downcast_ref::<TopKSae>()
        .or_else(|| match sae.downcast_ref::<AnySae>() {
            Some(AnySae::TopK(t)) => Some(t),
            _ => None,
        })?;
    if !is_cpu(&topk.W_enc.val().device()) {
        return None;
    }
    Some(topk_step(topk, batch, rows, dead, aux, clip_norm))
}

/// Whether the kernels' host memory is the device's memory (burn's CPU backends).
fn is_cpu(device: &Device) -> bool {
    let name = format!("{device:?}").to_lowercase();
    name.contains("flex") || name.contains("ndarray") || name.contains("cpu")
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float tensor converts to f32")
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Loss and gradients of `mse + coefficient · aux_k` for a TopK SAE (see the module docs),
/// with the unit-norm projection of the decoder gradient (when the SAE has that constraint) and
/// global-norm clipping at `clip_norm` applied on the host, as the trainer would otherwise do.
pub(crate) fn topk_step(
    sae: &TopKSae,
    batch: &[f32],
    rows: usize,
    dead: &[bool],
    aux: Option<&AuxKConfig>,
    clip_norm: Option<f64>,
) -> FastStep {
    let w_enc_t = sae.W_enc.val().inner();
    let device = w_enc_t.device();
    let [d, m] = w_enc_t.dims();
    let k = sae.k;
    let b = rows;
    let w_dec = host(sae.W_dec.val().inner());
    let b_dec = host(sae.b_dec.val().inner());
    let b_enc_t = sae.b_enc.val().inner();

    // Encoder: the one dense product.
    let mut u = batch.to_vec();
    if sae.apply_b_dec_to_input {
        for row in u.chunks_exact_mut(d) {
            row.iter_mut().zip(&b_dec).for_each(|(v, bd)| *v -= bd);
        }
    }
    let u_t = tensor(u.clone(), [b, d], &device);
    let pre = host(u_t.matmul(w_enc_t.clone()) + b_enc_t.unsqueeze::<2>());

    // Selection (on decoder-norm-rescaled scores where the SAE selects that way).
    let norms: Vec<f32> = w_dec
        .chunks_exact(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
        .collect();
    let rescaled: Option<Vec<f32>> = sae.rescale_acts_by_decoder_norm.then(|| {
        pre.chunks_exact(m)
            .flat_map(|row| row.iter().zip(&norms).map(|(p, n)| p * n))
            .collect()
    });
    let scores = rescaled.as_deref().unwrap_or(&pre);
    let (idx, _) = top_k_rows(scores, m, k, Rank::Value);
    // Codes on the decoder's scale: relu(pre) (the rescaling by ‖W_dec,i‖ cancels in decoding).
    let vals: Vec<f32> = idx
        .chunks_exact(k)
        .enumerate()
        .flat_map(|(r, ix)| {
            let pre = &pre;
            ix.iter().map(move |&i| pre[r * m + i as usize].max(0.0))
        })
        .collect();

    // Decoder forward and the reconstruction loss (SSE per token).
    let recon = sparse_decode(&idx, &vals, k, &w_dec, d, Some(&b_dec));
    let mut upstream = vec![0f32; b * d];
    let mut sse = 0f64;
    for ((g, &r), &x) in upstream.iter_mut().zip(&recon).zip(batch) {
        let e = r - x;
        sse += (e as f64) * (e as f64);
        *g = 2.0 * e / b as f32;
    }
    let mse = sse / b as f64;

    // Decoder backward.
    let mut g_w_dec = scatter_outer(&idx, &vals, k, &upstream, d, m);
    let mut g_b_dec = vec![0f32; d];
    for row in upstream.chunks_exact(d) {
        g_b_dec.iter_mut().zip(row).for_each(|(g, v)| *g += v);
    }
    let g_vals = sparse_decode_backward_values(&idx, k, &w_dec, d, &upstream);
    let g_pre: Vec<f32> = g_vals
        .iter()
        .zip(&vals)
        .map(|(g, &v)| if v > 0.0 { *g } else { 0.0 })
        .collect();

    // Auxiliary-K on dead latents (see `AuxKConfig` for the variant).
    let mut aux_loss = 0.0;
    let mut coefficient = 0.0;
    let mut enc_idx = idx.clone();
    let mut enc_coef = g_pre;
    let mut enc_k = k;
    let dead_ids: Vec<u32> = (0..m as u32).filter(|&i| dead[i as usize]).collect();
    if let Some(cfg) = aux
        && !dead_ids.is_empty()
    {
        let k_aux = cfg.k_aux.unwrap_or(d / 2).clamp(1, dead_ids.len());
        coefficient = cfg.coefficient;
        // Dead latents ranked on the same scores as the main selection.
        let compact: Vec<f32> = scores
            .chunks_exact(m)
            .flat_map(|row| dead_ids.iter().map(move |&i| row[i as usize]))
            .collect();
        let (local, _) = top_k_rows(&compact, dead_ids.len(), k_aux, Rank::Value);
        let aux_idx: Vec<u32> = local.iter().map(|&j| dead_ids[j as usize]).collect();
        let aux_vals: Vec<f32> = aux_idx
            .chunks_exact(k_aux)
            .enumerate()
            .flat_map(|(r, ix)| {
                let pre = &pre;
                ix.iter().map(move |&i| pre[r * m + i as usize].max(0.0))
            })
            .collect();
        let aux_recon = sparse_decode(&aux_idx, &aux_vals, k_aux, &w_dec, d, None);
        // Residual r = x − x̂ (detached) and its variance around the batch mean.
        let residual: Vec<f32> = batch.iter().zip(&recon).map(|(x, r)| x - r).collect();
        let mut mean = vec![0f64; d];
        for row in residual.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|v| *v /= b as f64);
        let variance = residual
            .chunks_exact(d)
            .map(|row| {
                row.iter()
                    .zip(&mean)
                    .map(|(&v, m)| (v as f64 - m).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / b as f64;
        let variance = variance.max(1e-12);
        let mut err = 0f64;
        let mut g_aux = vec![0f32; b * d];
        let scale = (coefficient * 2.0 / (b as f64 * variance)) as f32;
        for ((g, &r), &e) in g_aux.iter_mut().zip(&residual).zip(&aux_recon) {
            let diff = r - e;
            err += (diff as f64) * (diff as f64);
            *g = -scale * diff;
        }
        aux_loss = err / b as f64 / variance;
        let g_aux_dec = scatter_outer(&aux_idx, &aux_vals, k_aux, &g_aux, d, m);
        g_w_dec
            .iter_mut()
            .zip(&g_aux_dec)
            .for_each(|(a, g)| *a += g);
        let g_aux_vals = sparse_decode_backward_values(&aux_idx, k_aux, &w_dec, d, &g_aux);
        // Merge the aux latents into the encoder's sparse upstream: [b, k + k_aux].
        let kk = k + k_aux;
        let mut merged_idx = Vec::with_capacity(b * kk);
        let mut merged_coef = Vec::with_capacity(b * kk);
        for r in 0..b {
            merged_idx.extend_from_slice(&idx[r * k..(r + 1) * k]);
            merged_coef.extend_from_slice(&enc_coef[r * k..(r + 1) * k]);
            merged_idx.extend_from_slice(&aux_idx[r * k_aux..(r + 1) * k_aux]);
            merged_coef.extend(
                g_aux_vals[r * k_aux..(r + 1) * k_aux]
                    .iter()
                    .zip(&aux_vals[r * k_aux..(r + 1) * k_aux])
                    .map(|(g, &v)| if v > 0.0 { *g } else { 0.0 }),
            );
        }
        enc_idx = merged_idx;
        enc_coef = merged_coef;
        enc_k = kk;
    }

    // Encoder backward: ∂L/∂W_encᵀ = scatter of the input rows, ∂L/∂b_enc = column sums.
    let g_w_enc_t = scatter_outer(&enc_idx, &enc_coef, enc_k, &u, d, m);
    let g_b_enc = scatter_sum(&enc_idx, &enc_coef, m);
    let mut g_w_enc_t = g_w_enc_t;
    let mut g_b_enc = g_b_enc;
    if sae.apply_b_dec_to_input {
        // pre = (x − b_dec) W_enc + b_enc ⇒ ∂L/∂b_dec −= W_enc · ∂L/∂b_enc.
        let back = host(w_enc_t.matmul(tensor(g_b_enc.clone(), [m, 1], &device)));
        g_b_dec.iter_mut().zip(&back).for_each(|(g, v)| *g -= v);
    }
    if sae.unit_norm_decoder {
        // sae-core's `remove_parallel_component`: g_i − (g_i · ŵ_i) ŵ_i.
        for (g, w) in g_w_dec.chunks_exact_mut(d).zip(w_dec.chunks_exact(d)) {
            let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt().max(NORM_EPS);
            let along = g.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() / (norm * norm);
            g.iter_mut().zip(w).for_each(|(a, b)| *a -= along * b);
        }
    }
    if let Some(max_norm) = clip_norm {
        // PyTorch's clip_grad_norm_ over all four gradients (as `clip::clip_global_norm`).
        let squares = |v: &[f32]| v.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>();
        let norm =
            (squares(&g_w_enc_t) + squares(&g_b_enc) + squares(&g_w_dec) + squares(&g_b_dec))
                .sqrt();
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            let c = coef as f32;
            for v in [&mut g_w_enc_t, &mut g_b_enc, &mut g_w_dec, &mut g_b_dec] {
                v.iter_mut().for_each(|g| *g *= c);
            }
        }
    }
    let g_w_enc = tensor(g_w_enc_t, [m, d], &device).transpose();

    let mut firing_counts = vec![0u32; m];
    for (&i, &v) in idx.iter().zip(&vals) {
        if v != 0.0 {
            firing_counts[i as usize] += 1;
        }
    }
    let mut grads = GradientsParams::new();
    grads.register::<2>(sae.W_enc.id, g_w_enc);
    grads.register::<1>(sae.b_enc.id, tensor(g_b_enc, [m], &device));
    grads.register::<2>(sae.W_dec.id, tensor(g_w_dec, [m, d], &device));
    grads.register::<1>(sae.b_dec.id, tensor(g_b_dec, [d], &device));
    FastStep {
        grads,
        loss: mse + coefficient * aux_loss,
        mse,
        aux_loss,
        firing_counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};
    use sae_core::{SparseAutoencoder, StepContext, TopKSaeConfig};

    /// The fast step's loss and gradients against burn autodiff of the same objective (the
    /// architecture's training forward plus `aux_k_loss`).
    fn check(rescale: bool, unit_norm: bool, apply_b_dec: bool, with_aux: bool, clip: Option<f64>) {
        let device = crate::test_device().autodiff();
        device.seed(7);
        let (b, d, m, k) = (24, 12, 40, 4);
        let mut sae = TopKSaeConfig::new(d, m, k)
            .with_rescale_acts_by_decoder_norm(rescale)
            .with_unit_norm_decoder(unit_norm)
            .with_apply_b_dec_to_input(apply_b_dec)
            .init(&device);
        // Non-zero biases and uneven decoder norms exercise every gradient path.
        sae.b_dec = sae.b_dec.map(|t| {
            t.random_like(Distribution::Normal(0.0, 0.3))
                .detach()
                .require_grad()
        });
        sae.b_enc = sae.b_enc.map(|t| {
            t.random_like(Distribution::Normal(0.0, 0.1))
                .detach()
                .require_grad()
        });
        if !unit_norm {
            sae.W_dec = sae.W_dec.map(|t| {
                (t.clone() * t.random_like(Distribution::Uniform(0.5, 2.0)))
                    .detach()
                    .require_grad()
            });
        }
        let x = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device);
        let batch = host(x.clone().inner());
        let dead: Vec<bool> = (0..m).map(|i| i % 3 == 0).collect();
        let aux = AuxKConfig {
            k_aux: Some(5),
            ..Default::default()
        };
        let fast = topk_step(&sae, &batch, b, &dead, with_aux.then_some(&aux), clip);

        let out = sae.training_forward(x.clone(), &StepContext::new(0));
        let mut loss = out.total_loss();
        if with_aux {
            let aux_loss = crate::aux_k_loss(
                out.pre_activations.clone().unwrap(),
                x - out.reconstruction.clone(),
                sae.dictionary(),
                &dead,
                &aux,
            )
            .unwrap();
            loss = loss + aux_loss * aux.coefficient as f32;
        }
        let expected_loss = loss.clone().into_scalar::<f32>() as f64;
        approx::assert_relative_eq!(fast.loss, expected_loss, max_relative = 1e-4);
        let mut grads = GradientsParams::from_grads(loss.backward(), &sae);
        sae.project_gradients(&mut grads);
        if let Some(max_norm) = clip {
            let before = crate::clip::clip_global_norm(&sae, &mut grads, max_norm);
            assert!(before > max_norm, "the test must exercise clipping");
        }
        let tol = Tolerance::<f32>::rel_abs(2e-3, 2e-5);
        let cmp2 = |id, name: &str| {
            let a = fast.grads.get::<2>(id).unwrap().into_data();
            let e = grads.get::<2>(id).unwrap().into_data();
            println!("{name}");
            a.assert_approx_eq::<f32>(&e, tol);
        };
        cmp2(sae.W_enc.id, "W_enc");
        cmp2(sae.W_dec.id, "W_dec");
        let cmp1 = |id, name: &str| {
            let a = fast.grads.get::<1>(id).unwrap().into_data();
            let e = grads.get::<1>(id).unwrap().into_data();
            println!("{name}");
            a.assert_approx_eq::<f32>(&e, tol);
        };
        cmp1(sae.b_enc.id, "b_enc");
        cmp1(sae.b_dec.id, "b_dec");
    }

    #[test]
    fn gradients_equal_autodiff_plain() {
        check(false, false, true, false, None);
    }

    #[test]
    fn gradients_equal_autodiff_with_aux_k_unit_norm_decoder_and_clipping() {
        check(false, true, true, true, Some(0.05));
    }

    #[test]
    fn gradients_equal_autodiff_rescaled_selection_without_input_centering() {
        check(true, false, false, true, None);
    }
}
