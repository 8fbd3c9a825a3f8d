//! One layer's SparseD state: the schedule and the cached mask, as the reference keeps them on
//! each attention module (`self.fine_mask`, `self.block_mask` in `modeling_llada.py`).

use burn::prelude::*;

use super::Sparsed;
use crate::kernel::{Crossover, dense_attention, sparse_attention};
use crate::mask::SparseMask;
use crate::problem::AttentionProblem;
use crate::schedule::{Schedule, StepAction};

/// A layer's SparseD attention over the steps of one generation.
///
/// [`SparsedAttention::plan`] follows the [`Schedule`] exactly: step 0 clears the cached mask
/// (one mask per generation, as the reference's `now_step == 0` reset), a
/// [`StepAction::DenseAndBuild`] step builds the mask from that step's q and k and caches it
/// (replacing any older one), a [`StepAction::Reuse`] step hands back the cached mask untouched.
/// [`SparsedAttention::forward`] also runs the attention: dense on dense steps (the build step's
/// output is dense too, as in the reference), and under the cached mask on reuse steps with
/// [`sparse_attention`] (gather below the crossover density, dense masked above it).
#[derive(Clone, Debug)]
pub struct SparsedAttention {
    /// How the mask is built.
    pub estimator: Sparsed,
    /// Which steps are dense, build or reuse.
    pub schedule: Schedule,
    /// Keys `0..prompt_len` are the prompt (isolated selection); `None`: one selection.
    pub prompt_len: Option<usize>,
    mask: Option<SparseMask>,
}

impl SparsedAttention {
    /// A layer with `estimator`'s mask and `schedule`, no prompt split, nothing cached.
    pub fn new(estimator: Sparsed, schedule: Schedule) -> Self {
        Self {
            estimator,
            schedule,
            prompt_len: None,
            mask: None,
        }
    }

    /// SparseD as the reference runs it: [`Schedule::sparsed`]`(total_steps, estimator.skip)`
    /// and isolated selection with the first `prompt_len` keys as the prompt.
    ///
    /// # Panics
    /// If the estimator's `skip` is outside `[0, 1]`.
    pub fn sparsed(estimator: Sparsed, total_steps: usize, prompt_len: usize) -> Self {
        let mut me = Self::new(estimator, estimator.schedule(total_steps));
        me.prompt_len = Some(prompt_len);
        me
    }

    /// The cached mask, if one was built in this generation.
    pub fn mask(&self) -> Option<&SparseMask> {
        self.mask.as_ref()
    }

    /// Drops the cached mask.
    pub fn clear(&mut self) {
        self.mask = None;
    }

    /// What step `step` does with this step's problem `p`; builds (and caches) the mask on a
    /// build step, clears the cache at step 0 first.
    ///
    /// # Panics
    /// If a reuse step finds no cached mask (the steps of this generation skipped its build
    /// step), or as [`Sparsed::mask`] on a build step.
    pub fn plan(&mut self, step: usize, p: &AttentionProblem) -> StepAction {
        if step == 0 {
            self.mask = None;
        }
        let action = self.schedule.action(step);
        match action {
            StepAction::DenseAndBuild => {
                self.mask = Some(self.estimator.mask(p, self.prompt_len));
            }
            StepAction::Reuse => assert!(
                self.mask.is_some(),
                "SparsedAttention: step {step} reuses a mask, but none was built since step 0"
            ),
            StepAction::Dense => {}
        }
        action
    }

    /// Plans step `step` and runs its attention: [`dense_attention`] on dense and build steps,
    /// [`sparse_attention`] with the cached mask on reuse steps (the default [`Crossover`]).
    ///
    /// # Panics
    /// As [`SparsedAttention::plan`], or if a reused mask does not fit `p` (another layout).
    pub fn forward(&mut self, step: usize, p: &AttentionProblem) -> Tensor<4> {
        match self.plan(step, p) {
            StepAction::Reuse => {
                let mask = self
                    .mask
                    .as_ref()
                    .expect("plan checked that a reuse step has a mask");
                sparse_attention(p, mask, Crossover::default())
            }
            StepAction::Dense | StepAction::DenseAndBuild => dense_attention(p),
        }
    }
}
