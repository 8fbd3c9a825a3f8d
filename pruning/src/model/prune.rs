//! Pruning whole models: compute masks for the selected parameters and attach them.

use std::collections::HashMap;

use burn::module::Module;

use super::filter::ParamFilter;
use super::walk::{Found, collect, put_masks, select};
use crate::{
    Amount, Error, HostTensor, Mask, NmPattern, Norm, Remainder, global_unstructured,
    ln_structured, nm_mask, random_structured, random_unstructured, transposable_nm_mask,
    unstructured,
};

/// How [`Pruner`] computes the masks of the parameters it selects.
///
/// Every method compounds with masks already on the model, with torch's semantics: fractions are
/// of the weights (or channels) still kept, and new masks are ANDed with the old ones.
#[derive(Clone, Debug, PartialEq)]
pub enum PruningMethod {
    /// Smallest |score| per tensor (torch `l1_unstructured`).
    Magnitude(Amount),
    /// Smallest |score| over all selected tensors at once (torch `global_unstructured`; the
    /// one-shot pruning of the essential-sparsity paper).
    GlobalMagnitude(Amount),
    /// Random weights per tensor (torch `random_unstructured`); the seed is mixed with the
    /// tensor's position in the walk so tensors get different draws.
    Random {
        /// How much.
        amount: Amount,
        /// Seed.
        seed: u64,
    },
    /// Whole channels along `dim` with the smallest norm (torch `ln_structured`).
    LnStructured {
        /// How many channels.
        amount: Amount,
        /// Channel norm.
        norm: Norm,
        /// The channel dimension (burn `Linear` `[d_in, d_out]`: 1 = output neurons).
        dim: usize,
    },
    /// Random whole channels along `dim` (torch `random_structured`).
    RandomStructured {
        /// How many channels.
        amount: Amount,
        /// The channel dimension.
        dim: usize,
        /// Seed.
        seed: u64,
    },
    /// N:M along each tensor's input dimension ([`ParamInfo::input_dim`](crate::ParamInfo::input_dim)
    /// or [`Pruner::input_dim`]).
    Nm {
        /// The pattern.
        pattern: NmPattern,
        /// What to do when the input dimension is not a multiple of M.
        remainder: Remainder,
    },
    /// Transposable N:M (M ≤ 4) on 2-D tensors.
    TransposableNm(NmPattern),
}

impl PruningMethod {
    /// N:M along the input dimension, refusing tensors that do not fit.
    pub fn nm(n: usize, m: usize) -> crate::Result<Self> {
        Ok(PruningMethod::Nm {
            pattern: NmPattern::new(n, m)?,
            remainder: Remainder::Error,
        })
    }
}

/// Prunes the parameters of any burn [`Module`] selected by a [`ParamFilter`], keeping each
/// dense weight and attaching its mask (torch's `weight_orig` + `weight_mask`).
///
/// After [`apply`](Pruner::apply) every forward of the model uses `w ⊙ mask` (burn's
/// reparameterization: `param.val()` is masked, `param.base()` is dense), gradients reach the
/// dense weight masked like torch's (`g ⊙ mask`), the masks are saved with the model by burn's
/// own `save_file` (load with [`load_pruned`](crate::load_pruned)) and [`remove`](crate::remove)
/// makes them permanent.
///
/// Scores are |dense weight| unless [`scores`](Pruner::scores) gives importance scores for a
/// parameter (Wanda's, movement, …), which are used by absolute value as in torch.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use pruning::{Amount, ParamFilter, Pruner, PruningMethod, sparsity_report};
///
/// #[derive(Module, Debug)]
/// struct Mlp { fc1: Linear, fc2: Linear }
///
/// let device = Device::flex();
/// let model = Mlp {
///     fc1: LinearConfig::new(8, 16).init(&device),
///     fc2: LinearConfig::new(16, 4).init(&device),
/// };
/// let model = Pruner::new(PruningMethod::nm(2, 4).unwrap())
///     .filter(ParamFilter::linear_weights())
///     .apply(model)
///     .unwrap();
/// let report = sparsity_report(&model, &ParamFilter::linear_weights(), &[]).unwrap();
/// assert_eq!(report.total_sparsity(), 0.5);
///
/// // Compounds: 50 % more of what is left, globally.
/// let model = Pruner::new(PruningMethod::GlobalMagnitude(Amount::Fraction(0.5)))
///     .apply(model)
///     .unwrap();
/// let report = sparsity_report(&model, &ParamFilter::linear_weights(), &[]).unwrap();
/// assert_eq!(report.total_sparsity(), 0.75);
/// ```
#[derive(Clone, Debug)]
pub struct Pruner {
    method: PruningMethod,
    filter: ParamFilter,
    scores: HashMap<String, HostTensor>,
    input_dims: HashMap<String, usize>,
}

impl Pruner {
    /// A pruner for `method` over every `Linear` weight (change it with
    /// [`filter`](Pruner::filter)).
    pub fn new(method: PruningMethod) -> Self {
        Self {
            method,
            filter: ParamFilter::linear_weights(),
            scores: HashMap::new(),
            input_dims: HashMap::new(),
        }
    }

    /// Which parameters to prune.
    pub fn filter(mut self, filter: ParamFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Importance scores for the parameter at `path` (same shape), used instead of its weights.
    pub fn scores(mut self, path: &str, scores: HostTensor) -> Self {
        self.scores.insert(path.to_string(), scores);
        self
    }

    /// The N:M grouping dimension for the parameter at `path`, for layers whose input dimension
    /// is not known (embeddings, custom modules).
    pub fn input_dim(mut self, path: &str, dim: usize) -> Self {
        self.input_dims.insert(path.to_string(), dim);
        self
    }

    /// The masks this pruner would attach, by parameter path, without changing the model.
    ///
    /// # Errors
    /// As [`apply`](Pruner::apply).
    pub fn masks<M: Module>(&self, model: &M) -> crate::Result<HashMap<String, Mask>> {
        let targets = select(model, &self.filter, true)?;
        self.compute(&targets)
    }

    /// Computes the masks and attaches them to `model`.
    ///
    /// # Errors
    /// [`Error::NoMatch`] when the filter selects nothing; [`Error::ShapeNotEligible`] for a
    /// tensor that does not fit the pattern (or has no known input dimension) or already
    /// carries another reparameterization; [`Error::ShapeMismatch`] for scores of the wrong
    /// shape; [`Error::NonFinite`] for NaN/Inf weights or scores; [`Error::InvalidAmount`].
    pub fn apply<M: Module>(&self, model: M) -> crate::Result<M> {
        let masks = self.masks(&model)?;
        Ok(put_masks(model, &masks))
    }

    fn scores_of(&self, f: &Found) -> crate::Result<HostTensor> {
        let values = match self.scores.get(&f.info.path) {
            Some(s) => {
                if s.shape() != f.info.shape.as_slice() {
                    return Err(Error::ShapeMismatch {
                        what: format!("importance scores of {}", f.info.path),
                        expected: f.info.shape.clone(),
                        found: s.shape().to_vec(),
                    });
                }
                s
            }
            None => f.values.as_ref().expect("selected parameters are read"),
        };
        Ok(values.abs())
    }

    fn compute(&self, targets: &[Found]) -> crate::Result<HashMap<String, Mask>> {
        if let Some(path) = self
            .scores
            .keys()
            .find(|p| !targets.iter().any(|t| &t.info.path == *p))
        {
            return Err(Error::NoMatch {
                filter: format!("importance scores for `{path}`"),
                seen: targets
                    .iter()
                    .map(|t| t.info.path.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut out = HashMap::new();
        if let PruningMethod::GlobalMagnitude(amount) = self.method {
            let scores: Vec<HostTensor> = targets
                .iter()
                .map(|t| self.scores_of(t))
                .collect::<crate::Result<_>>()?;
            let refs: Vec<&HostTensor> = scores.iter().collect();
            let priors: Vec<Option<&Mask>> = targets.iter().map(|t| t.mask.as_ref()).collect();
            let masks = global_unstructured(&refs, amount, &priors)?;
            for (t, m) in targets.iter().zip(masks) {
                out.insert(t.info.path.clone(), m);
            }
            return Ok(out);
        }
        for (i, t) in targets.iter().enumerate() {
            let prior = t.mask.as_ref();
            let shape = &t.info.shape;
            let mask = match &self.method {
                PruningMethod::Magnitude(amount) => {
                    unstructured(&self.scores_of(t)?, *amount, prior)
                }
                PruningMethod::Random { amount, seed } => {
                    random_unstructured(shape, *amount, prior, seed.wrapping_add(i as u64))
                }
                PruningMethod::LnStructured { amount, norm, dim } => {
                    ln_structured(&self.scores_of(t)?, *amount, *norm, *dim, prior)
                }
                PruningMethod::RandomStructured { amount, dim, seed } => {
                    random_structured(shape, *amount, *dim, prior, seed.wrapping_add(i as u64))
                }
                PruningMethod::Nm { pattern, remainder } => {
                    let dim = t.group_dim(&self.input_dims, *pattern, "Pruner::input_dim")?;
                    nm_mask(&self.scores_of(t)?, *pattern, dim, *remainder, prior)
                }
                PruningMethod::TransposableNm(pattern) => {
                    let m = transposable_nm_mask(&self.scores_of(t)?, *pattern)?;
                    match prior {
                        Some(p) => m.and(p),
                        None => Ok(m),
                    }
                }
                PruningMethod::GlobalMagnitude(_) => unreachable!("handled above"),
            }
            .map_err(|e| name_tensor(e, &t.info.path))?;
            out.insert(t.info.path.clone(), mask);
        }
        Ok(out)
    }
}

/// Puts the tensor's path into errors raised by the pure mask functions.
fn name_tensor(e: Error, path: &str) -> Error {
    match e {
        Error::ShapeNotEligible {
            shape,
            pattern,
            reason,
            ..
        } => Error::ShapeNotEligible {
            tensor: path.to_string(),
            shape,
            pattern,
            reason,
        },
        other => other,
    }
}

/// Attaches the given masks (by parameter path) to a model, ANDed with any mask already there
/// (torch's `custom_from_mask`).
///
/// # Errors
/// [`Error::NoMatch`] for a path that is not a float parameter of the model;
/// [`Error::ShapeMismatch`] for a mask of the wrong shape.
pub fn apply_masks<M: Module>(model: M, masks: &HashMap<String, Mask>) -> crate::Result<M> {
    let all = collect(&model, &|_| false)?;
    let mut combined = HashMap::new();
    for (path, mask) in masks {
        let found = all
            .iter()
            .find(|f| &f.info.path == path)
            .ok_or_else(|| Error::NoMatch {
                filter: format!("mask for `{path}`"),
                seen: all
                    .iter()
                    .map(|f| f.info.path.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        mask.check_shape(&found.info.shape, path)?;
        let m = match &found.mask {
            Some(prior) => mask.and(prior)?,
            None => mask.clone(),
        };
        combined.insert(path.clone(), m);
    }
    Ok(put_masks(model, &combined))
}

/// The current masks of every pruned parameter, by path.
///
/// # Errors
/// [`Error::OutOfRange`] when a stored mask cannot be read.
pub fn masks<M: Module>(model: &M) -> crate::Result<HashMap<String, Mask>> {
    Ok(collect(model, &|_| false)?
        .into_iter()
        .filter_map(|f| f.mask.map(|m| (f.info.path, m)))
        .collect())
}

/// Whether any parameter of the model carries a pruning mask (torch's `is_pruned`).
pub fn is_pruned<M: Module>(model: &M) -> bool {
    masks(model).is_ok_and(|m| !m.is_empty())
}

/// Makes every mask permanent: each pruned parameter becomes `w ⊙ mask` again as a plain
/// parameter (torch's `remove`), keeping its id and training state.
///
/// This is burn's `materialize`, which merges *every* reparameterization of the module — LoRA
/// adapters included — into plain weights.
pub fn remove<M: Module>(model: M) -> M {
    model.materialize()
}
