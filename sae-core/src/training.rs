//! What one training step needs from an architecture: the step context going in, the loss
//! terms and intermediate tensors coming out.

use burn::prelude::*;

use crate::SparseCodes;

/// Per-step information the trainer passes to [`crate::SparseAutoencoder::training_forward`].
///
/// ```
/// use sae_core::StepContext;
///
/// // Step 50 of a 100-step linear sparsity warm-up.
/// let ctx = StepContext::new(50).with_sparsity_scale(StepContext::linear_warmup(50, 100));
/// assert_eq!(ctx.sparsity_scale, 0.5);
/// ```
#[derive(Clone, Debug)]
pub struct StepContext {
    /// Optimiser steps taken before this one.
    pub step: u64,
    /// Factor in `[0, 1]` on the architecture's sparsity coefficient (L1, L0, tanh, AFA):
    /// the trainer's coefficient warm-up (SAELens `l1_warm_up_steps` / `l0_warm_up_steps`,
    /// dictionary_learning `sparsity_warmup_steps`). `1.0` = no warm-up.
    pub sparsity_scale: f64,
    /// Latents the trainer currently counts as dead (`true` = dead), `[d_sae]`. Used by
    /// JumpReLU's pre-activation loss, which SAELens applies to dead latents only. `None` when the
    /// trainer does not track dead latents (the pre-activation loss is then applied to all).
    pub dead_latents: Option<Tensor<1, Bool>>,
}

impl StepContext {
    /// Context for `step` with no warm-up and no dead-latent mask.
    pub fn new(step: u64) -> Self {
        Self {
            step,
            sparsity_scale: 1.0,
            dead_latents: None,
        }
    }

    /// Sets [`StepContext::sparsity_scale`].
    ///
    /// # Panics
    /// If `scale` is not in `[0, 1]`.
    pub fn with_sparsity_scale(mut self, scale: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&scale),
            "StepContext: sparsity_scale must be in [0, 1], found {scale}"
        );
        self.sparsity_scale = scale;
        self
    }

    /// Sets [`StepContext::dead_latents`].
    pub fn with_dead_latents(mut self, dead: Tensor<1, Bool>) -> Self {
        self.dead_latents = Some(dead);
        self
    }

    /// The linear warm-up factor `min(1, step / warmup_steps)`: the value SAELens'
    /// `CoefficientScheduler` holds while optimiser step `step` runs (0 at step 0, since it
    /// advances after each step), and `1.0` when `warmup_steps == 0`.
    pub fn linear_warmup(step: u64, warmup_steps: u64) -> f64 {
        if warmup_steps == 0 {
            1.0
        } else {
            (step as f64 / warmup_steps as f64).min(1.0)
        }
    }
}

/// What a loss term measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// Reconstruction error (the main MSE, Matryoshka prefix levels).
    Reconstruction,
    /// A sparsity penalty (L1, L0, tanh, AFA).
    Sparsity,
    /// An auxiliary term (Gated's detached-decoder reconstruction, JumpReLU's pre-activation
    /// loss).
    Auxiliary,
}

/// One named, already-weighted scalar term of an architecture's training objective.
#[derive(Clone, Debug)]
pub struct LossTerm {
    /// Stable name for logs (`"mse"`, `"l1"`, `"l0"`, `"pre_act"`, `"aux_reconstruction"`, ...).
    pub name: &'static str,
    /// What the term measures.
    pub kind: LossKind,
    /// The weighted value, shape `[1]`, differentiable.
    pub value: Tensor<1>,
}

/// The training forward pass of an architecture.
///
/// The objective of the architecture is [`TrainingOutput::total_loss`], the sum of
/// [`TrainingOutput::losses`]. It always contains the main reconstruction term `"mse"`, defined
/// as in SAELens: the squared error summed over `d_in` and averaged over the batch (SSE per
/// token), against the input as given (not minus `b_dec`). Aux-K (dead-latent) losses are *not*
/// included: the trainer builds them from [`TrainingOutput::pre_activations`] and
/// [`crate::SparseAutoencoder::decode`].
#[derive(Clone, Debug)]
pub struct TrainingOutput {
    /// `x̂`, `[batch, d_in]`.
    pub reconstruction: Tensor<2>,
    /// The codes that produced `x̂`, dense, `[batch, d_sae]`; what L0 and firing statistics are
    /// computed from.
    pub codes: Tensor<2>,
    /// The same codes in k-sparse form where the architecture's L0 is bounded per row.
    pub sparse_codes: Option<SparseCodes>,
    /// Pre-activations on the scale of [`TrainingOutput::codes`] (so that
    /// `decode` of a selection of them reconstructs), `[batch, d_sae]`: what an aux-K loss ranks
    /// among dead latents. `None` where an aux-K loss is not meaningful (matching pursuit).
    pub pre_activations: Option<Tensor<2>>,
    /// Whether codes are signed (AbsTopK): an aux-K loss must then rank `|pre_activations|` and
    /// L0 must count `≠ 0`.
    pub signed_codes: bool,
    /// The architecture's loss terms, weighted.
    pub losses: Vec<LossTerm>,
}

impl TrainingOutput {
    /// The sum of every term in [`TrainingOutput::losses`], `[1]`.
    ///
    /// # Panics
    /// If there are no terms (never the case for this crate's architectures).
    pub fn total_loss(&self) -> Tensor<1> {
        self.losses
            .iter()
            .map(|t| t.value.clone())
            .reduce(|a, b| a + b)
            .expect("TrainingOutput: an architecture must produce at least one loss term")
    }

    /// The term called `name`, if present.
    pub fn loss(&self, name: &str) -> Option<&LossTerm> {
        self.losses.iter().find(|t| t.name == name)
    }
}

/// The SSE-per-token reconstruction loss, `mean_b Σ_d (x̂ − x)²`, `[1]`.
///
/// # Shapes
/// `x`, `reconstruction`: `[batch, d_in]`.
pub fn sse_per_token(x: Tensor<2>, reconstruction: Tensor<2>) -> Tensor<1> {
    (reconstruction - x).powi_scalar(2).sum_dim(1).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;

    #[test]
    fn warmup_is_linear_and_saturates() {
        assert_relative_eq!(StepContext::linear_warmup(0, 4), 0.0);
        assert_relative_eq!(StepContext::linear_warmup(3, 4), 0.75);
        assert_relative_eq!(StepContext::linear_warmup(4, 4), 1.0);
        assert_relative_eq!(StepContext::linear_warmup(10, 4), 1.0);
        assert_relative_eq!(StepContext::linear_warmup(0, 0), 1.0);
    }

    #[test]
    fn sse_per_token_hand_value() {
        let device = test_device();
        let x = Tensor::<2>::from_floats([[1.0, 2.0], [0.0, 0.0]], &device);
        let r = Tensor::<2>::from_floats([[0.0, 0.0], [3.0, 0.0]], &device);
        // (1 + 4 + 9) / 2 = 7
        assert_relative_eq!(sse_per_token(x, r).into_scalar::<f32>(), 7.0);
    }

    #[test]
    #[should_panic(expected = "sparsity_scale")]
    fn out_of_range_scale_panics() {
        let _ = StepContext::new(0).with_sparsity_scale(1.5);
    }
}
