//! Walking a burn module: reading pruned parameters and their masks, attaching and rewriting
//! masks.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, Reparameterizer};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::filter::{ParamFilter, ParamInfo};
use super::reparam::{PruningReparam, REPARAM_NAME, mask_tensor};
use crate::{Error, HostTensor, Mask, NmPattern, Result};

const REPARAM_CONTAINER: &str = "Reparameterization";

/// A float parameter found by the walk, with what is attached to it.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub info: ParamInfo,
    /// The dense (base) values, read only when asked for.
    pub values: Option<HostTensor>,
    /// The current mask, if the parameter is pruned.
    pub mask: Option<Mask>,
    /// The current `[α, s]` mode, if pruned.
    pub mode: Option<[f32; 2]>,
    /// The name of another reparameterization (LoRA, …) attached to it.
    pub foreign: Option<String>,
}

impl Found {
    /// The dimension N:M groups run along: the one given for this path in `explicit` (set with
    /// `setter`, e.g. `Pruner::input_dim`), else the layer's known input dimension.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeNotEligible`] naming `setter` when neither is known.
    pub(crate) fn group_dim(
        &self,
        explicit: &HashMap<String, usize>,
        pattern: NmPattern,
        setter: &str,
    ) -> Result<usize> {
        explicit
            .get(&self.info.path)
            .copied()
            .or_else(|| self.info.input_dim())
            .ok_or_else(|| Error::ShapeNotEligible {
                tensor: self.info.path.clone(),
                shape: self.info.shape.clone(),
                pattern: pattern.to_string(),
                reason: format!(
                    "the input dimension of a `{}` parameter is unknown; give it with {setter}",
                    self.info.owner
                ),
            })
    }
}

/// Read-only walk: every float parameter outside reparameterizations, in module order.
struct Collector<'a> {
    path: Vec<String>,
    owners: Vec<String>,
    /// Depth of `Reparameterization` containers we are inside.
    in_reparam: usize,
    read_values: &'a dyn Fn(&ParamInfo) -> bool,
    found: Vec<Found>,
    index: HashMap<String, usize>,
    error: Option<Error>,
}

impl Collector<'_> {
    fn current_param(&self) -> Option<usize> {
        // Inside `<param>.pruning.<field>` the parameter path is the prefix before the
        // reparameterization name.
        let pos = self.path.iter().rposition(|p| p == REPARAM_NAME)?;
        self.index.get(&self.path[..pos].join(".")).copied()
    }
}

impl ModuleVisitor for Collector<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == REPARAM_CONTAINER {
            self.in_reparam += 1;
            if name != REPARAM_NAME
                && let Some(&i) = self.index.get(&self.path.join("."))
            {
                self.found[i].foreign = Some(name.to_string());
            }
        }
        self.path.push(name.to_string());
        self.owners.push(
            container_type
                .strip_prefix("Struct:")
                .or_else(|| container_type.strip_prefix("Enum:"))
                .unwrap_or(container_type)
                .to_string(),
        );
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.pop();
        self.owners.pop();
        if container_type == REPARAM_CONTAINER {
            self.in_reparam -= 1;
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.in_reparam > 0 {
            if self.path.last().is_some_and(|n| n == "mode")
                && let Some(i) = self.current_param()
            {
                let v = param.val().into_data().convert::<f32>();
                if let Ok(v) = v.as_slice::<f32>()
                    && v.len() == 2
                {
                    self.found[i].mode = Some([v[0], v[1]]);
                }
            }
            return;
        }
        let info = ParamInfo {
            path: self.path.join("."),
            owner: self.owners.last().cloned().unwrap_or_default(),
            shape: param.lazy_shape().to_vec(),
        };
        let values = if (self.read_values)(&info) {
            match HostTensor::from_tensor(&param.base(), &info.path) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.error.get_or_insert(e);
                    None
                }
            }
        } else {
            None
        };
        self.index.insert(info.path.clone(), self.found.len());
        self.found.push(Found {
            info,
            values,
            mask: None,
            mode: None,
            foreign: None,
        });
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        if self.in_reparam == 0 || self.path.last().is_none_or(|n| n != "mask") {
            return;
        }
        if let Some(i) = self.current_param() {
            let shape = self.found[i].info.shape.clone();
            let data = param.val().into_data();
            match data
                .try_into_vec_as::<bool>()
                .map_err(|e| Error::OutOfRange {
                    what: format!("mask of {}", self.found[i].info.path),
                    value: "non-boolean data".into(),
                    reason: format!("{e:?}"),
                })
                .and_then(|keep| Mask::from_vec(keep, &shape))
            {
                Ok(m) => self.found[i].mask = Some(m),
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
}

/// Every float parameter of `module`, reading dense values for those `read_values` selects.
pub(crate) fn collect<M: Module>(
    module: &M,
    read_values: &dyn Fn(&ParamInfo) -> bool,
) -> Result<Vec<Found>> {
    let mut c = Collector {
        path: Vec::new(),
        owners: Vec::new(),
        in_reparam: 0,
        read_values,
        found: Vec::new(),
        index: HashMap::new(),
        error: None,
    };
    module.visit(&mut c);
    match c.error {
        Some(e) => Err(e),
        None => Ok(c.found),
    }
}

/// The parameters a filter selects; an error when it selects none or one carries a foreign
/// reparameterization.
pub(crate) fn select<M: Module>(
    module: &M,
    filter: &ParamFilter,
    read_values: bool,
) -> Result<Vec<Found>> {
    let all = collect(module, &|info| read_values && filter.matches(info))?;
    let seen: Vec<String> = all.iter().map(|f| f.info.path.clone()).collect();
    let selected: Vec<Found> = all
        .into_iter()
        .filter(|f| filter.matches(&f.info))
        .collect();
    if selected.is_empty() {
        let mut seen_s = seen.iter().take(12).cloned().collect::<Vec<_>>().join(", ");
        if seen.len() > 12 {
            seen_s.push_str(&format!(", … ({} in all)", seen.len()));
        }
        return Err(Error::NoMatch {
            filter: filter.to_string(),
            seen: seen_s,
        });
    }
    if let Some(f) = selected.iter().find(|f| f.foreign.is_some()) {
        return Err(Error::ShapeNotEligible {
            tensor: f.info.path.clone(),
            shape: f.info.shape.clone(),
            pattern: "pruning".into(),
            reason: format!(
                "it already carries the `{}` reparameterization; merge it first (`materialize`)",
                f.foreign.as_deref().unwrap_or("")
            ),
        });
    }
    Ok(selected)
}

/// Attaches masks to parameters that have none yet.
struct Attach<'a> {
    masks: &'a HashMap<String, Mask>,
}

impl Reparameterizer for Attach<'_> {
    type Reparam = PruningReparam;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<PruningReparam>) {
        match self.masks.get(path) {
            Some(mask) => {
                let device = param.lazy_device();
                (param, Some(PruningReparam::new(mask, &device)))
            }
            None => (param, None),
        }
    }
}

/// Rewrites masks, modes and dense values by parameter path.
#[derive(Default)]
pub(crate) struct Rewrite<'a> {
    pub masks: Option<&'a HashMap<String, Mask>>,
    pub modes: Option<&'a HashMap<String, [f32; 2]>>,
    /// Zero the dense weight where the mask prunes (after an optimiser step).
    pub zero_pruned: Option<&'a HashMap<String, Mask>>,
    /// Replace dense values (host, same shape).
    pub values: Option<&'a HashMap<String, HostTensor>>,
    path: Vec<String>,
}

impl Rewrite<'_> {
    fn reparam_target(&self, field: &str) -> Option<String> {
        let n = self.path.len();
        (n >= 2 && self.path[n - 1] == field && self.path[n - 2] == REPARAM_NAME)
            .then(|| self.path[..n - 2].join("."))
    }
}

impl ModuleMapper for Rewrite<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if let Some(target) = self.reparam_target("mode") {
            if let Some(mode) = self.modes.and_then(|m| m.get(&target)) {
                let mode = *mode;
                return param
                    .map(|t| Tensor::from_data(TensorData::new(mode.to_vec(), [2]), &t.device()));
            }
            return param;
        }
        let path = self.path.join(".");
        let zero = self.zero_pruned.and_then(|m| m.get(&path));
        let value = self.values.and_then(|m| m.get(&path));
        if zero.is_none() && value.is_none() {
            return param;
        }
        param.map(|t| {
            let require_grad = t.is_require_grad();
            let device = t.device();
            let mut t = match value {
                Some(v) => Tensor::<D>::from_data(
                    TensorData::new(v.values().to_vec(), v.shape().to_vec()),
                    &device,
                ),
                None => t.detach(),
            };
            if let Some(mask) = zero {
                let keep: Tensor<D> = Tensor::<1, Bool>::from_data(
                    TensorData::new(mask.as_slice().to_vec(), [mask.len()]),
                    &device,
                )
                .reshape(t.shape())
                .float();
                t = t * keep;
            }
            t.detach().set_require_grad(require_grad)
        })
    }

    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        if let Some(target) = self.reparam_target("mask")
            && let Some(mask) = self.masks.and_then(|m| m.get(&target))
        {
            return param.map(|t| mask_tensor(mask, &t.device()).reshape(t.shape()));
        }
        param
    }
}

/// Zeroes the dense weights where the masks prune (hard masking after an optimiser step).
pub(crate) fn zero_pruned<M: Module>(module: M, masks: &HashMap<String, Mask>) -> M {
    module.map(&mut Rewrite {
        zero_pruned: Some(masks),
        ..Default::default()
    })
}

/// Puts `masks` on `module`: attaches a reparameterization where there is none, rewrites the
/// mask where there is one.
pub(crate) fn put_masks<M: Module>(module: M, masks: &HashMap<String, Mask>) -> M {
    let module = module.apply_reparameterization(Attach { masks });
    module.map(&mut Rewrite {
        masks: Some(masks),
        ..Default::default()
    })
}

/// Sets `[α, s]` for the given pruned parameters.
pub(crate) fn put_modes<M: Module>(module: M, modes: &HashMap<String, [f32; 2]>) -> M {
    module.map(&mut Rewrite {
        modes: Some(modes),
        ..Default::default()
    })
}
