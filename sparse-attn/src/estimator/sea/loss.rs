//! SEA's distillation losses, as the reference computes them (`perlin_attention/attention.py`,
//! causal and bidirectional branches), on autodiff tensors.
//!
//! **Attention distillation** ([`attention_distillation`]) of student scores against teacher
//! scores `[B, H, T, T_k]`: cells a query may not attend (causal future, key padding) are set to
//! `finfo(f32).min / 2` in both, then
//! - `KL = 0.1 · Σ p_teacher·(ln p_teacher − log_softmax(student))` divided by the number of
//!   query rows `B·H·T` (causal, `F.kl_div(reduction='batchmean')`), or — bidirectional, the
//!   reference's `kl_div_attention` — summed over valid (query, key) pairs and divided by
//!   `Σ_b len_b` (one head's valid rows), with `ln(p + 10⁻¹²)`;
//! - `MSE = mean over all B·H·T·T_k cells of (softmax(student) − p_teacher)²`.
//!
//! **The estimate's loss** ([`estimate_distillation`]) is that same pair applied to the
//! compressed scores `Ŝ` stretched to full length with the mask's own key → column map
//! ([`stretch_to_full`]). This is where the final reference code compares estimate and teacher:
//! it resizes the *estimate* up to `T`, not the teacher down to `T_M`. (Early commits had a
//! `resize_from_t_to_m` — a nearest `grid_sample` of the teacher's *scores* to `T_M` columns at
//! `align_corners = True` positions `c/(T_M − 1)·(len − 1)`, bidirectional only, raising for
//! causal — and used it only in commented-out losses and a visualisation buffer;
//! [`teacher_to_compressed`] provides it for inspection.) The stretched comparison trains the
//! estimate for what the mask does: every key of a kept column is kept.
//!
//! **Sparse attention and output**: the reference adds the same KL + MSE between the student's
//! *dense* scores `q·kᵀ` and the teacher (its q, k are fine-tuned; with frozen q, k that term is
//! constant), and `MSE(O, O_teacher)` on the mixed output. [`probability_mse`] compares SEA's
//! sparse probabilities with the teacher's (a KL is infinite as soon as teacher mass falls
//! outside the mask, so none is offered), and [`context_mse`] the outputs.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

use super::interpolate::stretch_to_full;
use super::output::MASKED_SCORE;
use crate::layout::AttentionLayout;

/// Weight of the KL term (the reference's `* 0.1`).
pub const KL_WEIGHT: f64 = 0.1;

/// A KL and an MSE term (each a one-element tensor).
#[derive(Clone, Debug)]
pub struct DistillationLoss {
    /// `0.1 · KL(teacher ‖ student)`.
    pub kl: Tensor<1>,
    /// Mean squared error of the probabilities.
    pub mse: Tensor<1>,
}

impl DistillationLoss {
    /// `kl + mse`.
    pub fn total(&self) -> Tensor<1> {
        self.kl.clone() + self.mse.clone()
    }
}

/// `[B, 1, T, T_k]` bool, `true` where query `t` may not attend key `j`.
fn invalid_cells(
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
    batch: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    let (t, tk) = (layout.q_len, layout.k_len);
    let mut masked = vec![true; batch * t * tk];
    for b in 0..batch {
        for i in 0..t {
            let len = if layout.causal {
                layout.valid_keys(i)
            } else {
                lengths.map_or(tk, |l| l[b])
            };
            masked[(b * t + i) * tk..(b * t + i) * tk + len.min(tk)].fill(false);
        }
    }
    Tensor::from_data(TensorData::new(masked, [batch, 1, t, tk]), device)
}

/// KL + MSE of student scores against teacher scores `[B, H, T, T_k]` (see the
/// [module docs](self)). `lengths[b]` = unpadded keys of batch `b` (bidirectional).
///
/// # Panics
/// If the shapes differ or disagree with the layout.
pub fn attention_distillation(
    student_scores: Tensor<4>,
    teacher_scores: Tensor<4>,
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
) -> DistillationLoss {
    let [b, h, t, tk] = student_scores.dims();
    assert!(
        teacher_scores.dims() == [b, h, t, tk] && t == layout.q_len && tk == layout.k_len,
        "attention_distillation: student {:?} and teacher {:?} must both be [B, H, {}, {}]",
        student_scores.dims(),
        teacher_scores.dims(),
        layout.q_len,
        layout.k_len
    );
    let device = student_scores.device();
    let invalid = invalid_cells(layout, lengths, b, &device).expand([b, h, t, tk]);
    let student = student_scores.mask_fill(invalid.clone(), MASKED_SCORE);
    let teacher = softmax(teacher_scores.mask_fill(invalid.clone(), MASKED_SCORE), 3).detach();
    let log_student = log_softmax(student.clone(), 3);
    let mse = (softmax(student, 3) - teacher.clone())
        .powi_scalar(2)
        .mean();
    let kl = if layout.causal {
        // xlogy: cells with p = 0 contribute 0.
        let pointwise =
            teacher.clone() * (teacher.clamp_min(f32::MIN_POSITIVE).log() - log_student);
        pointwise.sum().div_scalar((b * h * t) as f64)
    } else {
        let pointwise = teacher.clone() * (teacher.add_scalar(1e-12).log() - log_student);
        // Only (valid query, valid key) pairs count; padded queries are invalid rows.
        let mut pairs = invalid.clone().bool_not().float();
        if let Some(l) = lengths {
            let rows: Vec<f32> = (0..b)
                .flat_map(|bi| (0..t).map(move |i| if i < l[bi] { 1.0 } else { 0.0 }))
                .collect();
            pairs = pairs * Tensor::<4>::from_data(TensorData::new(rows, [b, 1, t, 1]), &device);
        }
        let rows = lengths.map_or(b * t, |l| l.iter().sum());
        (pointwise * pairs).sum().div_scalar(rows.max(1) as f64)
    };
    DistillationLoss {
        kl: kl.mul_scalar(KL_WEIGHT),
        mse,
    }
}

/// The estimate's loss: [`attention_distillation`] of the compressed scores `[B, H, T, T_M]`
/// stretched to full length against the teacher's scores `[B, H, T, T_k]`.
pub fn estimate_distillation(
    compressed_scores: Tensor<4>,
    teacher_scores: Tensor<4>,
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
) -> DistillationLoss {
    let stretched = stretch_to_full(compressed_scores, layout, lengths, MASKED_SCORE);
    attention_distillation(stretched, teacher_scores, layout, lengths)
}

/// Mean squared error of SEA's sparse probabilities `[B, H, T, T_k]` against the teacher's
/// probabilities (softmax of its scores over valid keys), over all cells.
pub fn probability_mse(
    sparse_probs: Tensor<4>,
    teacher_scores: Tensor<4>,
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
) -> Tensor<1> {
    let [b, h, t, tk] = teacher_scores.dims();
    let invalid = invalid_cells(layout, lengths, b, &teacher_scores.device()).expand([b, h, t, tk]);
    let teacher =
        softmax(teacher_scores.mask_fill(invalid.clone(), MASKED_SCORE), 3).mask_fill(invalid, 0.0);
    (sparse_probs - teacher.detach()).powi_scalar(2).mean()
}

/// Mean squared error of SEA's context against the teacher's `[B, H, T, E]` (the reference's
/// `F.mse_loss(context_layer_truth, partial_context_layer)`: a mean over every element).
///
/// # Panics
/// If the shapes differ.
pub fn context_mse(context: Tensor<4>, teacher_context: Tensor<4>) -> Tensor<1> {
    assert!(
        context.dims() == teacher_context.dims(),
        "context_mse: shapes differ, {:?} vs {:?}",
        context.dims(),
        teacher_context.dims()
    );
    (context - teacher_context.detach()).powi_scalar(2).mean()
}

/// The early reference's `resize_from_t_to_m` (bidirectional only): teacher scores
/// `[B, H, T, T_k]` sampled at `T_M` columns, column `c` reading key
/// `round(c/(T_M − 1)·(len − 1))` (nearest `grid_sample`, `align_corners = True`). For
/// inspection; the losses stretch the estimate instead (see the [module docs](self)).
///
/// # Panics
/// If the layout is causal or `width < 2`.
pub fn teacher_to_compressed(
    teacher_scores: Tensor<4>,
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
    width: usize,
) -> Tensor<4> {
    assert!(
        !layout.causal,
        "teacher_to_compressed: the reference defines it for bidirectional attention only"
    );
    assert!(
        width >= 2,
        "teacher_to_compressed: width must be at least 2, found {width}"
    );
    let [b, h, t, _] = teacher_scores.dims();
    let mut index = Vec::with_capacity(b * t * width);
    for bi in 0..b {
        let len = lengths.map_or(layout.k_len, |l| l[bi]).max(1);
        for _ in 0..t {
            for c in 0..width {
                let pos = c as f64 / (width - 1) as f64 * (len - 1) as f64;
                index.push(pos.round_ties_even() as i64);
            }
        }
    }
    let device = teacher_scores.device();
    let index = Tensor::<4, Int>::from_data(TensorData::new(index, [b, 1, t, width]), &device)
        .expand([b, h, t, width]);
    teacher_scores.gather(3, index)
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use burn::tensor::Distribution;

    use super::*;

    fn scalar(x: Tensor<1>) -> f64 {
        x.into_scalar::<f32>() as f64
    }

    #[test]
    fn causal_kl_and_mse_match_a_hand_computation() {
        let device = Device::flex();
        // Row 0 sees key 0 only; row 1: teacher p = (¼, ¾), student uniform (½, ½).
        let teacher = Tensor::<4>::from_floats([[[[5.0, 7.0], [0.0, 3f32.ln()]]]], &device);
        let student = Tensor::<4>::from_floats([[[[1.0, -2.0], [0.0, 0.0]]]], &device);
        let loss = attention_distillation(student, teacher, &AttentionLayout::causal(2), None);
        let kl_row1 = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        assert_relative_eq!(scalar(loss.kl.clone()), 0.1 * kl_row1 / 2.0, epsilon = 1e-6);
        // Squared errors: row 1 has 2·(¼)²; mean over 4 cells.
        assert_relative_eq!(scalar(loss.mse.clone()), 0.125 / 4.0, epsilon = 1e-6);
        assert_relative_eq!(
            scalar(loss.total()),
            0.1 * kl_row1 / 2.0 + 0.03125,
            epsilon = 1e-6
        );
    }

    #[test]
    fn bidirectional_kl_counts_valid_pairs_over_valid_rows() {
        let device = Device::flex();
        // Two queries, three keys, one padded key: both rows see keys 0, 1; row 1 is padding too.
        let teacher = Tensor::<4>::from_floats(
            [[[[0.0, 3f32.ln(), 9.0], [0.0, 0.0, 9.0], [1.0, 1.0, 1.0]]]],
            &device,
        );
        let student = Tensor::<4>::zeros([1, 1, 3, 3], &device);
        let layout = AttentionLayout::full(3, 3);
        let loss = attention_distillation(student, teacher, &layout, Some(&[2]));
        let kl_row0 = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        // Rows 0 and 1 are valid queries (row 1's KL is 0); divisor = len = 2.
        assert_relative_eq!(scalar(loss.kl), 0.1 * kl_row0 / 2.0, epsilon = 1e-5);
        // MSE: row 0 2·(¼)², rows 1 and 2 match exactly; 9 cells.
        assert_relative_eq!(scalar(loss.mse), 0.125 / 9.0, epsilon = 1e-6);
    }

    #[test]
    fn estimate_loss_stretches_the_compressed_scores() {
        let device = Device::flex();
        let layout = AttentionLayout::causal(4);
        let compressed = Tensor::<4>::random([1, 2, 4, 2], Distribution::Normal(0.0, 1.0), &device);
        let teacher = Tensor::<4>::random([1, 2, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let a = estimate_distillation(compressed.clone(), teacher.clone(), &layout, None);
        let stretched = stretch_to_full(compressed, &layout, None, 0.0);
        let b = attention_distillation(stretched, teacher, &layout, None);
        assert_relative_eq!(scalar(a.total()), scalar(b.total()), epsilon = 1e-6);
    }

    #[test]
    fn context_and_probability_mse_by_hand() {
        let device = Device::flex();
        let a = Tensor::<4>::from_floats([[[[1.0, 2.0]]]], &device);
        let b = Tensor::<4>::from_floats([[[[0.0, 4.0]]]], &device);
        assert_relative_eq!(scalar(context_mse(a, b)), 2.5, epsilon = 1e-6);
        // Teacher p = (¼, ¾) on one row; sparse probs (1, 0).
        let teacher = Tensor::<4>::from_floats([[[[0.0, 3f32.ln()]]]], &device);
        let probs = Tensor::<4>::from_floats([[[[1.0, 0.0]]]], &device);
        let mse = probability_mse(probs, teacher, &AttentionLayout::full(1, 2), None);
        assert_relative_eq!(scalar(mse), (0.75f64.powi(2) * 2.0) / 2.0, epsilon = 1e-6);
    }

    #[test]
    fn teacher_resize_samples_align_corners_positions() {
        let device = Device::flex();
        let teacher = Tensor::<4>::from_floats([[[[0.0, 1.0, 2.0, 3.0, 4.0]]]], &device);
        let y = teacher_to_compressed(teacher, &AttentionLayout::full(1, 5), None, 3);
        y.into_data()
            .assert_eq(&TensorData::from([[[[0.0f32, 2.0, 4.0]]]]), false);
    }

    #[test]
    fn gradients_flow_to_the_student_only() {
        let device = Device::flex().autodiff();
        let s = Tensor::<4>::random([1, 1, 3, 3], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let t = Tensor::<4>::random([1, 1, 3, 3], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let loss =
            attention_distillation(s.clone(), t.clone(), &AttentionLayout::causal(3), None).total();
        let grads = loss.backward();
        let g = s.grad(&grads).expect("student gradient");
        assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
        assert!(t.grad(&grads).is_none());
    }
}
