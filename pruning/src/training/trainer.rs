//! Training with sparsity: the three hooks around a burn training step.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;

use super::dst::{Distribution, Growth, kept_for_density, layer_densities, prune_and_grow};
use super::schedule::{
    CubicSchedule, DropFraction, MaskDecay, StructureDecay, is_update_step, structure_decay_pattern,
};
use crate::model::{Found, ParamFilter, put_masks, put_modes, select, zero_pruned};
use crate::{
    Amount, Error, HostTensor, Mask, NmPattern, Remainder, Result, global_unstructured, nm_mask,
    random_unstructured, unstructured,
};

/// N:M training that keeps dense weights and recomputes the mask from them at every step, with
/// the straight-through estimator (the whole gradient reaches the dense weights).
///
/// One struct covers the recipes the seed papers compare:
/// - plain STE: `lambda_w = 0`, [`MaskDecay::Step`];
/// - SR-STE (Zhou et al. 2021): `lambda_w > 0` (paper default 2e-4) adds `λ_w (1 − E) ⊙ W` to
///   the gradient, pulling pruned weights toward zero;
/// - Progressive Gradient Flow, mask decay (MDGF): pruned weights enter the forward scaled by
///   `α(t)` ([`MaskDecay::Linear`] / [`MaskDecay::Exponential`]);
/// - Progressive Gradient Flow, structure decay (SDGF): the pattern walks a
///   [`StructureDecay`] timetable down to the target.
///
/// Timeline: `dense_steps` dense, then `decay_steps` of decay (α(t) with `t` counted from the
/// start of this phase; SDGF frames spread over it), then the target pattern with a binary mask
/// (PGF's fine-tune phase, where the decay is forced to `step`).
#[derive(Clone, Debug, PartialEq)]
pub struct NmSte {
    /// The target pattern.
    pub pattern: NmPattern,
    /// SR-STE's decay of pruned weights (0: none).
    pub lambda_w: f64,
    /// PGF mask decay.
    pub mask_decay: MaskDecay,
    /// PGF structure decay.
    pub structure_decay: Option<StructureDecay>,
    /// Steps trained dense first.
    pub dense_steps: u64,
    /// Length of the decay phase.
    pub decay_steps: u64,
}

impl NmSte {
    /// Plain straight-through N:M training from step 0.
    pub fn ste(pattern: NmPattern) -> Self {
        Self {
            pattern,
            lambda_w: 0.0,
            mask_decay: MaskDecay::Step,
            structure_decay: None,
            dense_steps: 0,
            decay_steps: 0,
        }
    }

    /// SR-STE with decay `lambda_w` (paper default `2e-4`).
    pub fn sr_ste(pattern: NmPattern, lambda_w: f64) -> Self {
        Self {
            lambda_w,
            ..Self::ste(pattern)
        }
    }

    /// PGF mask-decay gradient flow.
    pub fn mask_decay(
        pattern: NmPattern,
        decay: MaskDecay,
        dense_steps: u64,
        decay_steps: u64,
    ) -> Self {
        Self {
            mask_decay: decay,
            dense_steps,
            decay_steps,
            ..Self::ste(pattern)
        }
    }

    /// PGF structure-decay gradient flow.
    pub fn structure_decay(
        pattern: NmPattern,
        decay: StructureDecay,
        dense_steps: u64,
        decay_steps: u64,
    ) -> Self {
        Self {
            structure_decay: Some(decay),
            dense_steps,
            decay_steps,
            ..Self::ste(pattern)
        }
    }

    /// The pattern and α in force at `step` (`None` while dense).
    pub fn state(&self, step: u64) -> Option<(NmPattern, f64)> {
        if step < self.dense_steps {
            return None;
        }
        let t = step - self.dense_steps;
        let in_decay = t < self.decay_steps;
        let pattern = match &self.structure_decay {
            Some(d) => {
                structure_decay_pattern(d, self.pattern, self.dense_steps, self.decay_steps, step)
                    .unwrap_or(self.pattern)
            }
            None => self.pattern,
        };
        let alpha = if in_decay {
            self.mask_decay.alpha(t)
        } else {
            0.0
        };
        Some((pattern, alpha))
    }
}

/// Gradual magnitude pruning (Zhu & Gupta): hard masks, recomputed on the schedule's update
/// steps from the current weights; pruned weights stay pruned.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradual {
    /// The cubic schedule.
    pub schedule: CubicSchedule,
    /// One budget over all selected tensors (`true`) or per tensor.
    pub global: bool,
}

/// Dynamic sparse training: a constant budget with periodic prune-and-grow (SET, RigL, DSL).
#[derive(Clone, Debug, PartialEq)]
pub struct Dynamic {
    /// Overall density of the selected tensors.
    pub density: f64,
    /// How the density is spread over tensors.
    pub distribution: Distribution,
    /// Paths of selected tensors kept dense (their weights count in the budget).
    pub dense: Vec<String>,
    /// SET (random) or RigL (gradient) growth.
    pub growth: Growth,
    /// The fraction of active weights replaced at an update.
    pub drop: DropFraction,
    /// First update step.
    pub begin: u64,
    /// Last update step.
    pub end: u64,
    /// Steps between updates (RigL ΔT = 100).
    pub frequency: u64,
    /// Seed of the initial masks and of SET's growth.
    pub seed: u64,
}

impl Dynamic {
    /// RigL's defaults: ERK, gradient growth, drop fraction 0.3 cosine-annealed to 0 at 75 % of
    /// training, ΔT = 100.
    pub fn rigl(density: f64, total_steps: u64, seed: u64) -> Self {
        let end = total_steps * 3 / 4;
        Self {
            density,
            distribution: Distribution::Erk { power: 1.0 },
            dense: vec![],
            growth: Growth::Gradient,
            drop: DropFraction::Cosine { alpha: 0.3, end },
            begin: 0,
            end,
            frequency: 100,
            seed,
        }
    }

    /// SET: Erdős–Rényi budgets, random growth, a constant fraction ζ = 0.3 replaced every
    /// `frequency` steps (the paper updates once per epoch).
    pub fn set(density: f64, total_steps: u64, frequency: u64, seed: u64) -> Self {
        Self {
            distribution: Distribution::Er,
            growth: Growth::Random,
            drop: DropFraction::Constant { alpha: 0.3 },
            end: total_steps,
            frequency,
            ..Self::rigl(density, total_steps, seed)
        }
    }

    /// DSL (dynamic sparse learning for recommenders): the same budget on every embedding table
    /// (select them with `ParamFilter::none().layer("Embedding", "weight")`), prune by |w| and
    /// grow by |gradient| with a cosine-annealed update ratio. The paper's exact ΔT and initial
    /// ratio were not available to us; RigL's (100, 0.3) are the defaults.
    pub fn dsl(density: f64, total_steps: u64, seed: u64) -> Self {
        Self {
            distribution: Distribution::Uniform,
            ..Self::rigl(density, total_steps, seed)
        }
    }
}

/// What a [`SparseTrainer`] does.
#[derive(Clone, Debug, PartialEq)]
pub enum SparseMethod {
    /// Keep the masks already on the model fixed (NVIDIA ASP's retraining): the optimiser only
    /// moves kept weights and pruned ones are re-zeroed after every step.
    HardMask,
    /// N:M with dense weights and the straight-through estimator (STE, SR-STE, PGF).
    NmSte(NmSte),
    /// Gradual magnitude pruning.
    Gradual(Gradual),
    /// Dynamic sparse training.
    Dynamic(Dynamic),
}

/// Drives sparse training of any burn module with three calls around the optimiser step.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::{GradientsParams, Optimizer, SgdConfig};
/// use burn::prelude::*;
/// use pruning::{NmPattern, NmSte, ParamFilter, SparseMethod, SparseTrainer, masks, satisfies_nm};
///
/// let device = Device::flex().autodiff();
/// let pattern = NmPattern::new(1, 4).unwrap();
/// let mut trainer = SparseTrainer::new(
///     ParamFilter::linear_weights(),
///     SparseMethod::NmSte(NmSte::sr_ste(pattern, 2e-4)),
/// );
/// let model: Linear = LinearConfig::new(8, 2).init(&device);
/// let mut model = trainer.init(model).unwrap();
/// let mut optim = SgdConfig::new().init();
/// for step in 0..3 {
///     model = trainer.before_forward(model, step).unwrap();
///     let x = Tensor::<2>::ones([4, 8], &device);
///     let loss = model.forward(x).powi_scalar(2).mean();
///     let mut grads = GradientsParams::from_grads(loss.backward(), &model);
///     trainer.before_optimizer(&model, &mut grads, step).unwrap();
///     model = optim.step(0.1, model, grads);
///     model = trainer.after_optimizer(model, step).unwrap();
/// }
/// assert!(satisfies_nm(&masks(&model).unwrap()["weight"], pattern, 0));
/// ```
#[derive(Clone, Debug)]
pub struct SparseTrainer {
    filter: ParamFilter,
    method: SparseMethod,
    input_dims: HashMap<String, usize>,
    masks: HashMap<String, Mask>,
    /// |dense gradient| captured at a DST update step.
    captured: HashMap<String, HostTensor>,
    sparse_now: bool,
}

impl SparseTrainer {
    /// A trainer for the parameters `filter` selects.
    pub fn new(filter: ParamFilter, method: SparseMethod) -> Self {
        Self {
            filter,
            method,
            input_dims: HashMap::new(),
            masks: HashMap::new(),
            captured: HashMap::new(),
            sparse_now: false,
        }
    }

    /// The N:M grouping dimension for a parameter whose layer type does not tell it.
    pub fn input_dim(mut self, path: &str, dim: usize) -> Self {
        self.input_dims.insert(path.to_string(), dim);
        self
    }

    /// The masks currently in force, by parameter path.
    pub fn masks(&self) -> &HashMap<String, Mask> {
        &self.masks
    }

    /// Prepares the model: attaches masks (dense for STE and gradual, random at the layer
    /// budgets for dynamic training) or, for [`SparseMethod::HardMask`], adopts the masks
    /// already on it.
    ///
    /// # Errors
    /// [`Error::NoMatch`] when the filter selects nothing (or, for `HardMask`, no selected
    /// parameter is pruned); errors of the mask functions.
    pub fn init<M: Module>(&mut self, model: M) -> Result<M> {
        let found = select(&model, &self.filter, true)?;
        match &self.method {
            SparseMethod::HardMask => {
                self.masks = found
                    .iter()
                    .filter_map(|f| f.mask.clone().map(|m| (f.info.path.clone(), m)))
                    .collect();
                if self.masks.is_empty() {
                    return Err(Error::NoMatch {
                        filter: format!("pruned parameters among {}", self.filter),
                        seen: paths(&found),
                    });
                }
                Ok(self.zero_pruned(model))
            }
            SparseMethod::NmSte(cfg) => {
                for f in &found {
                    let dim = self.group_dim(f, cfg.pattern)?;
                    crate::check_nm_shape(
                        &f.info.shape,
                        cfg.pattern,
                        dim,
                        Remainder::Error,
                        &f.info.path,
                    )?;
                }
                self.masks = found
                    .iter()
                    .map(|f| (f.info.path.clone(), Mask::ones(&f.info.shape)))
                    .collect();
                Ok(self.put_masks_and_mode(model, [0.0, 1.0]))
            }
            SparseMethod::Gradual(_) => {
                self.masks = found
                    .iter()
                    .map(|f| {
                        (
                            f.info.path.clone(),
                            f.mask.clone().unwrap_or_else(|| Mask::ones(&f.info.shape)),
                        )
                    })
                    .collect();
                Ok(self.put_masks_and_mode(model, [0.0, 0.0]))
            }
            SparseMethod::Dynamic(cfg) => {
                let shapes: Vec<Vec<usize>> = found.iter().map(|f| f.info.shape.clone()).collect();
                let dense: Vec<bool> = found
                    .iter()
                    .map(|f| cfg.dense.contains(&f.info.path))
                    .collect();
                let densities = layer_densities(&shapes, cfg.density, cfg.distribution, &dense)?;
                self.masks.clear();
                for (i, (f, d)) in found.iter().zip(densities).enumerate() {
                    let size = f.info.shape.iter().product();
                    let prune = size - kept_for_density(size, d);
                    let m = random_unstructured(
                        &f.info.shape,
                        Amount::Count(prune),
                        None,
                        cfg.seed.wrapping_add(i as u64),
                    )?;
                    self.masks.insert(f.info.path.clone(), m);
                }
                // STE backward so the dense gradient is there for growth; the optimiser still only
                // sees masked gradients (before_optimizer).
                let model = self.put_masks_and_mode(model, [0.0, 1.0]);
                Ok(self.zero_pruned(model))
            }
        }
    }

    /// Before the forward pass of `step`: recomputes masks (N:M from the dense weights every
    /// step; gradual ones on update steps) and sets the forward mode.
    ///
    /// # Errors
    /// Errors of the mask functions (NaN/Inf weights among them).
    pub fn before_forward<M: Module>(&mut self, model: M, step: u64) -> Result<M> {
        match self.method.clone() {
            SparseMethod::NmSte(cfg) => {
                let found = select(&model, &self.filter, true)?;
                let state = cfg.state(step);
                self.sparse_now = state.is_some();
                let alpha = state.map_or(0.0, |(_, a)| a) as f32;
                for f in &found {
                    let mask = match state {
                        None => Mask::ones(&f.info.shape),
                        Some((pattern, _)) => {
                            let dim = self.group_dim(f, pattern)?;
                            let values = f.values.as_ref().expect("selected parameters are read");
                            nm_mask(&values.abs(), pattern, dim, Remainder::Error, None)?
                        }
                    };
                    self.masks.insert(f.info.path.clone(), mask);
                }
                Ok(self.put_masks_and_mode(model, [alpha, 1.0]))
            }
            SparseMethod::Gradual(cfg) if cfg.schedule.is_update_step(step) => {
                let found = select(&model, &self.filter, true)?;
                let target = cfg.schedule.sparsity(step);
                let scores: Vec<HostTensor> = found
                    .iter()
                    .map(|f| f.values.as_ref().expect("read").abs())
                    .collect();
                let priors: Vec<&Mask> = found.iter().map(|f| &self.masks[&f.info.path]).collect();
                let new: Vec<Mask> = if cfg.global {
                    let numel: usize = scores.iter().map(|s| s.len()).sum();
                    let pruned: usize = priors.iter().map(|m| m.pruned()).sum();
                    let goal = (target * numel as f64).round() as usize;
                    let refs: Vec<&HostTensor> = scores.iter().collect();
                    let prior_opts: Vec<Option<&Mask>> = priors.iter().map(|m| Some(*m)).collect();
                    global_unstructured(
                        &refs,
                        Amount::Count(goal.saturating_sub(pruned)),
                        &prior_opts,
                    )?
                } else {
                    scores
                        .iter()
                        .zip(&priors)
                        .map(|(s, m)| {
                            let goal = (target * s.len() as f64).round() as usize;
                            unstructured(s, Amount::Count(goal.saturating_sub(m.pruned())), Some(m))
                        })
                        .collect::<Result<_>>()?
                };
                for (f, m) in found.iter().zip(new) {
                    self.masks.insert(f.info.path.clone(), m);
                }
                Ok(self.zero_pruned(put_masks(model, &self.masks)))
            }
            _ => Ok(model),
        }
    }

    /// Between `backward` and the optimiser step: SR-STE's decay term; for dynamic training,
    /// captures |gradient| on update steps and masks the gradient the optimiser sees.
    ///
    /// # Errors
    /// [`Error::NonFinite`] when a captured gradient holds NaN/Inf.
    pub fn before_optimizer<M: Module>(
        &mut self,
        model: &M,
        grads: &mut GradientsParams,
        step: u64,
    ) -> Result<()> {
        match &self.method {
            SparseMethod::NmSte(cfg) if cfg.lambda_w > 0.0 && self.sparse_now => {
                let mut s = Surgery::new(grads, &self.masks, Op::SrSte(cfg.lambda_w as f32));
                model.visit(&mut s);
                s.finish()
            }
            SparseMethod::Dynamic(cfg) => {
                let update = is_update_step(step, cfg.begin, cfg.end, cfg.frequency);
                let mut s = Surgery::new(
                    grads,
                    &self.masks,
                    if update {
                        Op::CaptureThenMask
                    } else {
                        Op::Mask
                    },
                );
                model.visit(&mut s);
                let captured = std::mem::take(&mut s.captured);
                s.finish()?;
                self.captured = captured;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// After the optimiser step: re-zeroes pruned weights of hard masks; for dynamic training,
    /// runs prune-and-grow on update steps.
    ///
    /// # Errors
    /// Errors of the mask functions.
    pub fn after_optimizer<M: Module>(&mut self, model: M, step: u64) -> Result<M> {
        match self.method.clone() {
            SparseMethod::HardMask | SparseMethod::Gradual(_) => Ok(self.zero_pruned(model)),
            SparseMethod::Dynamic(cfg) => {
                if !is_update_step(step, cfg.begin, cfg.end, cfg.frequency) {
                    return Ok(self.zero_pruned(model));
                }
                let fraction = cfg.drop.at(step);
                let found = select(&model, &self.filter, true)?;
                for (i, f) in found.iter().enumerate() {
                    if cfg.dense.contains(&f.info.path) {
                        continue;
                    }
                    let mask = &self.masks[&f.info.path];
                    let k = (fraction * mask.kept() as f64).floor() as usize;
                    let next = prune_and_grow(
                        f.values.as_ref().expect("read"),
                        mask,
                        self.captured.get(&f.info.path),
                        k,
                        cfg.growth,
                        cfg.seed ^ step.rotate_left(17) ^ i as u64,
                    )?;
                    self.masks.insert(f.info.path.clone(), next);
                }
                self.captured.clear();
                Ok(self.zero_pruned(put_masks(model, &self.masks)))
            }
            SparseMethod::NmSte(_) => Ok(model),
        }
    }

    /// Attaches the current masks, every masked parameter in the same `[α, s]` mode.
    fn put_masks_and_mode<M: Module>(&self, model: M, mode: [f32; 2]) -> M {
        let modes: HashMap<String, [f32; 2]> =
            self.masks.keys().map(|k| (k.clone(), mode)).collect();
        put_modes(put_masks(model, &self.masks), &modes)
    }

    fn zero_pruned<M: Module>(&self, model: M) -> M {
        zero_pruned(model, &self.masks)
    }

    fn group_dim(&self, f: &Found, pattern: NmPattern) -> Result<usize> {
        f.group_dim(&self.input_dims, pattern, "SparseTrainer::input_dim")
    }
}

fn paths(found: &[Found]) -> String {
    found
        .iter()
        .map(|f| f.info.path.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

enum Op {
    /// g ⊙ E.
    Mask,
    /// Record |g|, then g ⊙ E.
    CaptureThenMask,
    /// g + λ (1 − E) ⊙ W.
    SrSte(f32),
}

/// Gradient surgery by parameter path (the optimiser keys gradients by id; the walk gives both).
struct Surgery<'a> {
    grads: &'a mut GradientsParams,
    masks: &'a HashMap<String, Mask>,
    op: Op,
    path: Vec<String>,
    in_reparam: usize,
    captured: HashMap<String, HostTensor>,
    error: Option<Error>,
}

impl<'a> Surgery<'a> {
    fn new(grads: &'a mut GradientsParams, masks: &'a HashMap<String, Mask>, op: Op) -> Self {
        Self {
            grads,
            masks,
            op,
            path: vec![],
            in_reparam: 0,
            captured: HashMap::new(),
            error: None,
        }
    }

    fn finish(self) -> Result<()> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl ModuleVisitor for Surgery<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == "Reparameterization" {
            self.in_reparam += 1;
        }
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.pop();
        if container_type == "Reparameterization" {
            self.in_reparam -= 1;
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.in_reparam > 0 {
            return;
        }
        let path = self.path.join(".");
        let Some(mask) = self.masks.get(&path) else {
            return;
        };
        let Some(g) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let device = g.device();
        let keep: Tensor<D> = Tensor::<1, Bool>::from_data(
            TensorData::new(mask.as_slice().to_vec(), [mask.len()]),
            &device,
        )
        .reshape(g.shape())
        .float();
        let g = match self.op {
            Op::Mask => g * keep,
            Op::CaptureThenMask => {
                match HostTensor::from_tensor(&g, &format!("gradient of {path}")) {
                    Ok(h) => {
                        self.captured.insert(path, h.abs());
                    }
                    Err(e) => {
                        self.error.get_or_insert(e);
                    }
                }
                g * keep
            }
            Op::SrSte(lambda) => {
                let w = param.base().inner();
                g + (keep.neg() + 1.0) * w * lambda
            }
        };
        self.grads.register::<D>(param.id, g);
    }
}
