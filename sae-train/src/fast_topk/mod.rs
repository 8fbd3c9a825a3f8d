//! The k-sparse TopK training step: loss and gradients of a TopK SAE computed by hand on the
//! host, touching only the `k` selected decoder rows per token.
//!
//! Only the encoder product `(x − b_dec) W_enc` is dense (it must score every latent); top-k
//! runs on sae-core's partial-selection kernel, and the decoder forward, its backward and the
//! encoder backward are gathers and scatters over the selected rows: `O(batch · k · d_in)`
//! instead of `O(batch · d_sae · d_in)`. The sparse work is two passes over memory
//! ([`host_passes`]): one per token (decode, error, code gradients — main and aux-K rows read
//! once each while in cache) and one per latent (decoder and encoder row gradients). burn's
//! autodiff path is the portable fallback and the oracle in the tests (the gradients agree
//! within float tolerance).

mod host_passes;

use std::any::Any;

use burn::optim::GradientsParams;
use burn::prelude::*;
use rayon::prelude::*;
use sae_core::decoder::NORM_EPS;
use sae_core::kernels::{ComputePath, Rank, f32_slice, host_data, top_k_rows};
use sae_core::{AnySae, TopKSae};

use crate::AuxKConfig;
use host_passes::{
    Entries, TokenInputs, latent_pass, project_rows, scale, select_dead, sum_squares, token_pass,
};

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
    // The host passes read the tensors' memory: worth it only where that is host memory (and
    // `SPARSELAND_COMPUTE_PATH=tensor-ops` forces the autodiff path, e.g. to compare the two).
    if ComputePath::for_device(&topk.W_enc.val().device()) != ComputePath::HostKernels {
        return None;
    }
    Some(topk_step(topk, batch, rows, dead, aux, clip_norm))
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    host_data(t)
        .try_into_vec::<f32>()
        .expect("host_data holds f32 elements")
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `relu(pre[t, idx[t, j]])` for `idx [rows, k]`.
fn gather_relu(pre: &[f32], m: usize, idx: &[u32], k: usize) -> Vec<f32> {
    let mut out = vec![0f32; idx.len()];
    out.par_chunks_mut(k)
        .zip(idx.par_chunks(k))
        .enumerate()
        .with_min_len(64)
        .for_each(|(t, (o, ix))| {
            let row = &pre[t * m..][..m];
            for (o, &i) in o.iter_mut().zip(ix) {
                *o = row[i as usize].max(0.0);
            }
        });
    out
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
    let w_dec_data = host_data(sae.W_dec.val().inner());
    let w_dec = f32_slice(&w_dec_data);
    let b_dec = host(sae.b_dec.val().inner());
    let b_enc = host(sae.b_enc.val().inner());

    // Encoder: the one dense product; the bias is added on the host, in place.
    let mut u = batch.to_vec();
    if sae.apply_b_dec_to_input {
        u.par_chunks_mut(d).with_min_len(64).for_each(|row| {
            row.iter_mut().zip(&b_dec).for_each(|(v, bd)| *v -= bd);
        });
    }
    let mut pre_data = host_data(tensor(u.clone(), [b, d], &device).matmul(w_enc_t.clone()));
    let pre = pre_data
        .as_mut_slice::<f32>()
        .expect("host_data holds f32 elements");

    pre.par_chunks_mut(m).with_min_len(16).for_each(|row| {
        row.iter_mut().zip(&b_enc).for_each(|(p, c)| *p += c);
    });
    let pre: &[f32] = pre;

    // Selection (on decoder-norm-rescaled scores where the SAE selects that way).
    let rescaled: Option<Vec<f32>> = sae.rescale_acts_by_decoder_norm.then(|| {
        let norms: Vec<f32> = w_dec
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        let mut s = pre.to_vec();
        s.par_chunks_mut(m).with_min_len(16).for_each(|row| {
            row.iter_mut().zip(&norms).for_each(|(p, n)| *p *= n);
        });
        s
    });
    let scores = rescaled.as_deref().unwrap_or(pre);
    let (idx, _) = top_k_rows(scores, m, k, Rank::Value);

    // Codes on the decoder's scale: relu(pre) (the rescaling by ‖W_dec,i‖ cancels in decoding).
    let vals = gather_relu(pre, m, &idx, k);

    // Auxiliary-K on dead latents (see `AuxKConfig` for the variant): the top `k_aux` dead
    // latents per token, ranked on the same scores as the main selection.
    let dead_ids: Vec<u32> = (0..m as u32).filter(|&i| dead[i as usize]).collect();
    let aux_sel = aux.filter(|_| !dead_ids.is_empty()).map(|cfg| {
        let k_aux = cfg.k_aux.unwrap_or(d / 2).clamp(1, dead_ids.len());
        let aux_idx = select_dead(scores, m, &dead_ids, k_aux);
        let aux_vals = gather_relu(pre, m, &aux_idx, k_aux);
        (aux_idx, aux_vals, k_aux, cfg.coefficient)
    });

    // Per token: decoder forward, the losses, and the code gradients.
    let tokens = token_pass(&TokenInputs {
        x: batch,
        w_dec,
        b_dec: &b_dec,
        idx: &idx,
        vals: &vals,
        k,
        aux: aux_sel
            .as_ref()
            .map(|(i, v, k_aux, _)| (&i[..], &v[..], *k_aux)),
    });

    let mse = tokens.sse / b as f64;
    let mut g_b_dec = tokens.upstream_sum.clone();

    // Aux-K: scale by the residual's variance around its batch mean, `Σ‖r − r̄‖² / b`.
    let mut aux_loss = 0.0;
    let mut coefficient = 0.0;
    let mut aux_grads = None;
    if let (Some((aux_idx, aux_vals, k_aux, coef)), Some(mut a)) = (&aux_sel, tokens.aux) {
        let mean_sq: f64 = a.residual_sum.iter().map(|s| s * s).sum::<f64>() / b as f64;
        let variance = ((a.residual_sq - mean_sq) / b as f64).max(1e-12);
        coefficient = *coef;
        aux_loss = a.err / b as f64 / variance;
        let c = (-coefficient * 2.0 / (b as f64 * variance)) as f32;
        scale(&mut a.diff, c);
        scale(&mut a.dots, c);
        aux_grads = Some((aux_idx, aux_vals, *k_aux, a.diff, a.dots));
    }

    // Per latent: decoder and encoder row gradients from the entries that selected it.
    let mut groups = vec![Entries {
        idx: &idx,
        k,
        dec: &vals,
        enc: &tokens.g_pre,
        dec_rows: &tokens.upstream,
    }];
    if let Some((aux_idx, aux_vals, k_aux, diff, dots)) = &aux_grads {
        groups.push(Entries {
            idx: aux_idx,
            k: *k_aux,
            dec: aux_vals,
            enc: dots,
            dec_rows: diff,
        });
    }
    let (mut g_w_dec, mut g_w_enc_t, mut g_b_enc) = latent_pass(&groups, &u, m, d);

    drop(groups);

    if sae.apply_b_dec_to_input {
        // pre = (x − b_dec) W_enc + b_enc ⇒ ∂L/∂b_dec −= W_enc · ∂L/∂b_enc.
        let back = host(w_enc_t.matmul(tensor(g_b_enc.clone(), [m, 1], &device)));
        g_b_dec.iter_mut().zip(&back).for_each(|(g, v)| *g -= v);
    }
    if sae.unit_norm_decoder {
        project_rows(&mut g_w_dec, w_dec, d, NORM_EPS);
    }
    if let Some(max_norm) = clip_norm {
        // PyTorch's clip_grad_norm_ over all four gradients (as `clip::clip_global_norm`).
        let norm = (sum_squares(&g_w_enc_t)
            + sum_squares(&g_b_enc)
            + sum_squares(&g_w_dec)
            + sum_squares(&g_b_dec))
        .sqrt();
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            let c = coef as f32;
            for v in [&mut g_w_enc_t, &mut g_b_enc, &mut g_w_dec, &mut g_b_dec] {
                scale(v, c);
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
