//! SEA's attention output under its mask (the reference's training path, `context_output_method
//! = 'mix'`):
//!
//! `P = softmax over kept keys of q·kᵀ·scale` (zero elsewhere; a row with nothing kept is zero),
//! `P ← σ(scales₀)·P` when `partial_attention_scaler`, `O_sparse = P·v`, and
//! `O = σ(scales₁)·O_sparse + (1 − σ(scales₁))·Ō` where the average context `Ō` is
//! - causal: the running mean `Σ_{j≤t} v_j / (t + 1)`;
//! - bidirectional: `Σ_j w_j·v_j` over unpadded keys with `w` = the query-mean of `P̂` (padded
//!   queries counted as zero rows) stretched to full length.
//!
//! Dense scores are computed and masked, as the reference does while training (the scale and mix
//! are differentiable; the mask is not). For the sparse product alone use a kernel with the same
//! mask (`masked_dense_attention` is its oracle).

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::interpolate::stretch_to_full;
use super::network::SeaEstimate;
use crate::mask::SparseMask;
use crate::problem::{AttentionProblem, repeat_kv};

/// The score written at masked cells before the softmax (`finfo(f32).min / 2`, the reference's
/// `FP_MIN`).
pub const MASKED_SCORE: f32 = f32::MIN / 2.0;

/// SEA's output for one attention call.
#[derive(Clone, Debug)]
pub struct SeaOutput {
    /// The mixed context `O` `[B, H, T, E]`.
    pub context: Tensor<4>,
    /// The sparse context `O_sparse = P·v` before mixing `[B, H, T, E]`.
    pub sparse_context: Tensor<4>,
    /// The (scaled) sparse probabilities `P` `[B, H, T, k_len]`.
    pub probs: Tensor<4>,
}

/// Unpadded key lengths of each batch item from the problem's padding (`None` without padding).
pub(crate) fn padding_lengths(p: &AttentionProblem) -> Option<Vec<usize>> {
    p.key_padding.as_ref().map(|pad| {
        let [b, tk] = pad.dims();
        let flags = pad.clone().int().into_data().convert::<i64>();
        let flags: Vec<i64> = flags.try_to_vec().expect("int padding flags");
        (0..b)
            .map(|bi| {
                flags[bi * tk..(bi + 1) * tk]
                    .iter()
                    .filter(|&&f| f == 0)
                    .count()
            })
            .collect()
    })
}

/// SEA's output (see the [module docs](self)) for problem `p`, its mask and its estimate.
///
/// # Panics
/// If the problem is not self-attention without a cache (`q_len = k_len`, `q_offset = 0`), a
/// causal problem has key padding, or the mask or estimate does not match the problem.
pub fn sea_output(p: &AttentionProblem, mask: &SparseMask, estimate: &SeaEstimate) -> SeaOutput {
    p.check();
    let layout = p.layout;
    assert!(
        layout.q_len == layout.k_len && layout.q_offset == 0,
        "sea_output: SEA handles self-attention without a cache, found q_len {}, k_len {}, q_offset {}",
        layout.q_len,
        layout.k_len,
        layout.q_offset
    );
    assert!(
        !(layout.causal && p.key_padding.is_some()),
        "sea_output: key padding is only supported for bidirectional attention"
    );
    let [b, h, t, _] = p.q.dims();
    let device = p.q.device();
    let group = p.group_size();
    let k = repeat_kv(p.k.clone(), group);
    let v = repeat_kv(p.v.clone(), group);
    let e = v.dims()[3];
    let masked = mask.to_masked_tensor(b, h, p.key_padding.clone(), &device);
    let scores = p.q.clone().matmul(k.transpose()).mul_scalar(p.scale);
    let probs = softmax(scores.mask_fill(masked.clone(), MASKED_SCORE), 3).mask_fill(masked, 0.0);
    let probs = probs * estimate.probability_scale();
    let sparse_context = probs.clone().matmul(v.clone());
    let average = if layout.causal {
        let counts = Tensor::<1, Int>::arange(1..t as i64 + 1, &device)
            .float()
            .reshape([1, 1, t, 1]);
        v.cumsum(2).div(counts)
    } else {
        let lengths = padding_lengths(p);
        let valid_q: Vec<f32> = (0..b)
            .flat_map(|bi| (0..t).map(move |i| (bi, i)))
            .map(|(bi, i)| match &lengths {
                Some(l) if i >= l[bi] => 0.0,
                _ => 1.0,
            })
            .collect();
        let valid_q = Tensor::<4>::from_data(TensorData::new(valid_q, [b, 1, t, 1]), &device);
        let mean_row = (estimate.probs() * valid_q.clone()).mean_dim(2); // [B, H, 1, T_M]
        let row_layout = crate::AttentionLayout::full(1, t);
        let weights = stretch_to_full(mean_row, &row_layout, lengths.as_deref(), 0.0); // [B, H, 1, T]
        // Keys and queries coincide in self-attention: the query validity is the key validity.
        weights.matmul(v * valid_q).expand([b, h, t, e])
    };
    let mix = estimate.context_mix();
    let context = sparse_context.clone() * mix.clone() + (mix.neg().add_scalar(1.0)) * average;
    SeaOutput {
        context,
        sparse_context,
        probs,
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance};

    use super::*;
    use crate::{AttentionLayout, BlockSize, masked_dense_attention};

    fn estimate_with(
        scales: [f32; 2],
        b: usize,
        h: usize,
        t: usize,
        device: &Device,
    ) -> SeaEstimate {
        let scales = Tensor::<1>::from_floats(scales, device)
            .reshape([1, 1, 1, 2])
            .expand([b, h, t, 2]);
        SeaEstimate {
            scores: Tensor::zeros([b, h, t, 4], device),
            features: Tensor::zeros([b, h, t, 2], device),
            scales,
            partial_attention_scaler: true,
        }
    }

    fn problem(causal: bool, device: &Device) -> AttentionProblem {
        let (b, h, kv, t, d) = (2, 4, 2, 6, 3);
        let layout = if causal {
            AttentionLayout::causal(t)
        } else {
            AttentionLayout::full(t, t)
        };
        AttentionProblem::new(
            Tensor::random([b, h, t, d], Distribution::Normal(0.0, 1.0), device),
            Tensor::random([b, kv, t, d], Distribution::Normal(0.0, 1.0), device),
            Tensor::random([b, kv, t, d], Distribution::Normal(0.0, 1.0), device),
            layout,
        )
    }

    fn some_mask(p: &AttentionProblem) -> SparseMask {
        let [b, h, t, _] = p.q.dims();
        let rows = (0..b * h * t)
            .map(|r| {
                (0..t as u32)
                    .filter(|j| !(r as u32 + j).is_multiple_of(3))
                    .collect()
            })
            .collect();
        SparseMask::from_rows(p.layout, BlockSize::square(2), b, h, rows).expect("mask")
    }

    #[test]
    fn saturated_scales_give_the_masked_dense_oracle() {
        let device = Device::flex();
        for causal in [true, false] {
            let p = problem(causal, &device);
            let mask = some_mask(&p);
            let est = estimate_with([40.0, 40.0], 2, 4, 6, &device);
            let out = sea_output(&p, &mask, &est);
            let oracle = masked_dense_attention(&p, &mask);
            out.context
                .into_data()
                .assert_approx_eq::<f32>(&oracle.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
        }
    }

    #[test]
    fn zero_mix_gives_the_running_mean_of_values() {
        let device = Device::flex();
        let p = problem(true, &device);
        let mask = some_mask(&p);
        let out = sea_output(&p, &mask, &estimate_with([0.0, -60.0], 2, 4, 6, &device));
        // Hand computation for query 2 of head 0: the mean of v rows 0..=2 of KV head 0.
        let v = p.v.clone().slice([0..1, 0..1, 0..3, 0..3]).mean_dim(2);
        let got = out.context.slice([0..1, 0..1, 2..3, 0..3]);
        got.into_data()
            .assert_approx_eq::<f32>(&v.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    #[test]
    fn probability_scale_is_a_sigmoid_factor() {
        let device = Device::flex();
        let p = problem(false, &device);
        let mask = some_mask(&p);
        let out = sea_output(&p, &mask, &estimate_with([0.0, 40.0], 2, 4, 6, &device));
        let oracle = masked_dense_attention(&p, &mask).mul_scalar(0.5);
        out.context
            .into_data()
            .assert_approx_eq::<f32>(&oracle.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
        // Each kept row of P sums to σ(0) = ½.
        let sums: Vec<f32> = out.probs.sum_dim(3).try_into_vec_as::<f32>().expect("f32");
        assert!(sums.iter().all(|s| (s - 0.5).abs() < 1e-5), "{sums:?}");
    }
}
