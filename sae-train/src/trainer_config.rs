//! Settings of a training run and of each SAE in it.

use serde::{Deserialize, Serialize};

use crate::{AuxKConfig, LrSchedule};

/// Adam's hyperparameters.
///
/// **Epsilon**: `1e-8`, PyTorch's default, which SAELens, sparsify's Adam and dictionary_learning
/// train with. burn's own default (`1e-5`) is 1000× larger and damps the updates of rarely
/// active latents, whose second moments are tiny — exactly the latents an SAE must keep alive.
/// (OpenAI's reference uses `6.25e-10` with fp16 gradient scaling.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamSettings {
    /// First-moment decay (0.9).
    pub beta_1: f32,
    /// Second-moment decay (0.999).
    pub beta_2: f32,
    /// Denominator epsilon (1e-8).
    pub epsilon: f32,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Settings shared by every SAE of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// Optimiser steps of the whole run.
    pub total_steps: u64,
    /// Adam's hyperparameters.
    pub adam: AdamSettings,
    /// Clip the global L2 norm of each SAE's gradient to this value (SAELens and
    /// dictionary_learning: 1.0); `None` disables clipping.
    pub grad_clip_norm: Option<f64>,
    /// A latent is dead after this many tokens without firing (10 M in OpenAI, sparsify and
    /// dictionary_learning; short runs need less).
    pub dead_after_tokens: u64,
    /// Log metrics every this many steps (and at the last step).
    pub log_every: u64,
    /// Save a checkpoint every this many steps (`None`: only when asked).
    pub checkpoint_every: Option<u64>,
    /// Use the hand-written k-sparse TopK step (CPU kernels) where it applies; `false` always
    /// runs burn's autodiff.
    pub fast_topk: bool,
}

impl TrainerConfig {
    /// `total_steps` steps, default Adam, clipping at 1.0, dead after 10 M tokens, logging every
    /// 10 steps, no periodic checkpoints, fast TopK steps on.
    ///
    /// # Panics
    /// If `total_steps` is 0.
    pub fn new(total_steps: u64) -> Self {
        assert!(total_steps > 0, "total_steps must be positive, got 0");
        Self {
            total_steps,
            adam: AdamSettings::default(),
            grad_clip_norm: Some(1.0),
            dead_after_tokens: 10_000_000,
            log_every: 10,
            checkpoint_every: None,
            fast_topk: true,
        }
    }
    /// Sets [`dead_after_tokens`](Self::dead_after_tokens).
    pub fn with_dead_after_tokens(mut self, tokens: u64) -> Self {
        self.dead_after_tokens = tokens;
        self
    }
    /// Sets [`grad_clip_norm`](Self::grad_clip_norm).
    pub fn with_grad_clip_norm(mut self, norm: Option<f64>) -> Self {
        self.grad_clip_norm = norm;
        self
    }
    /// Sets [`log_every`](Self::log_every).
    pub fn with_log_every(mut self, steps: u64) -> Self {
        self.log_every = steps.max(1);
        self
    }
    /// Sets [`checkpoint_every`](Self::checkpoint_every).
    pub fn with_checkpoint_every(mut self, steps: Option<u64>) -> Self {
        self.checkpoint_every = steps.filter(|&s| s > 0);
        self
    }
    /// Sets [`fast_topk`](Self::fast_topk).
    pub fn with_fast_topk(mut self, fast: bool) -> Self {
        self.fast_topk = fast;
        self
    }
    /// Sets [`adam`](Self::adam).
    pub fn with_adam(mut self, adam: AdamSettings) -> Self {
        self.adam = adam;
        self
    }
}

/// Settings of one SAE in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaeRunConfig {
    /// A name for logs, plots and checkpoints (unique within the run).
    pub name: String,
    /// The learning-rate schedule.
    pub lr: LrSchedule,
    /// Steps of linear warm-up of the architecture's sparsity coefficient (0: none).
    pub sparsity_warmup_steps: u64,
    /// The auxiliary-K loss for dead latents (`None`: off).
    pub aux_k: Option<AuxKConfig>,
}

impl SaeRunConfig {
    /// An SAE named `name` trained with `lr`, no sparsity warm-up, no aux-K.
    pub fn new(name: impl Into<String>, lr: LrSchedule) -> Self {
        Self {
            name: name.into(),
            lr,
            sparsity_warmup_steps: 0,
            aux_k: None,
        }
    }
    /// Sets [`sparsity_warmup_steps`](Self::sparsity_warmup_steps).
    pub fn with_sparsity_warmup(mut self, steps: u64) -> Self {
        self.sparsity_warmup_steps = steps;
        self
    }
    /// Sets [`aux_k`](Self::aux_k).
    pub fn with_aux_k(mut self, aux_k: Option<AuxKConfig>) -> Self {
        self.aux_k = aux_k;
        self
    }
}
