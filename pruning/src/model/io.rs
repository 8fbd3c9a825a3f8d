//! Loading a pruned model saved with burn's `save_file`: masks come back with the weights.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;

use super::reparam::REPARAM_NAME;
use super::walk::{collect, put_masks};
use crate::{Error, Mask, Result};

/// Loads a model saved with burn's `model.save_file(path)` after pruning, masks included.
///
/// A pruned model's file holds, for each pruned parameter `p`, the dense weight at `p` (torch's
/// `weight_orig`), the mask at `p.pruning.mask` (`weight_mask`) and the forward mode at
/// `p.pruning.mode`. burn loads into a module of the same structure, so this reads the file's
/// tensor names, attaches placeholder masks to those parameters of `model` (freshly
/// initialised, e.g. `Config::init`), then loads everything with burn's strict loader: a
/// missing or unexpected tensor is an error, never a silent partial load.
///
/// # Errors
/// [`Error::Store`] when the file cannot be read or does not match the model;
/// [`Error::Corrupt`] when it names a mask for a parameter the model does not have.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use pruning::{load_pruned, masks, Pruner, PruningMethod};
///
/// let device = Device::flex();
/// let model: Linear = LinearConfig::new(8, 4).init(&device);
/// let model = Pruner::new(PruningMethod::nm(1, 4).unwrap()).apply(model).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("model.bpk");
/// model.clone().save_file(&path).unwrap();
///
/// let fresh: Linear = LinearConfig::new(8, 4).init(&device);
/// let loaded = load_pruned(fresh, &path).unwrap();
/// assert_eq!(masks(&loaded).unwrap(), masks(&model).unwrap());
/// ```
pub fn load_pruned<M: Module>(model: M, path: impl AsRef<Path>) -> Result<M> {
    let path = path.as_ref();
    let store_err = |reason: String| Error::Store {
        path: path.to_path_buf(),
        reason,
    };
    let reader = burn_pack::Reader::from_file(path).map_err(|e| store_err(e.to_string()))?;
    let suffix = format!(".{REPARAM_NAME}.mask");
    let pruned: Vec<String> = reader
        .tensor_names()
        .into_iter()
        .filter_map(|n| n.strip_suffix(&suffix).map(str::to_string))
        .collect();
    drop(reader);
    let params = collect(&model, &|_| false)?;
    let mut placeholders = HashMap::new();
    for p in pruned {
        let found = params
            .iter()
            .find(|f| f.info.path == p)
            .ok_or_else(|| Error::Corrupt {
                path: path.to_path_buf(),
                reason: format!("holds a pruning mask for `{p}`, which the model does not have"),
            })?;
        placeholders.insert(p, Mask::ones(&found.info.shape));
    }
    let model = put_masks(model, &placeholders);
    model
        .try_load_file(path)
        .map_err(|e| store_err(e.to_string()))
}
