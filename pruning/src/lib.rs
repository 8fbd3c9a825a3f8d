//! # pruning — sparsity for burn models that makes them smaller and faster
//!
//! The whole path from a dense burn model to a sparse one that runs faster.
//!
//! What this crate holds:
//! - masks as pure functions: magnitude (per tensor and global), random, Ln-structured, N:M for
//!   any N ≤ M, transposable 2:4 and Wanda scores, with torch's meaning of `amount`;
//! - whole-model pruning by path filters with dense weights and masks kept until made permanent;
//! - training with sparsity: hard masks, straight-through, SR-STE, gradual schedules and dynamic
//!   sparse training (SET/RigL);
//! - analyses: essential-sparsity sweeps, low-rank + sparse splits, activation sparsity;
//! - compressed formats (CSR, block-sparse, N:M, the 2:4 layout of PyTorch/CUTLASS) and a
//!   multi-threaded CPU sparse × dense kernel behind a `SparseLinear` inference layer.
//!
//! Masks are pure functions on the host ([`HostTensor`] in, [`Mask`] out) with torch's meaning
//! of `amount` ([`Amount`]) and one tie rule everywhere: **the higher score is kept; among equal
//! scores the lower index is kept** (row-major within a tensor, list order across tensors), so
//! masks are identical on every backend. Whole models are pruned through burn's
//! reparameterization: the dense weight stays the parameter (torch's `weight_orig`), the mask
//! rides along as a saved `Bool` parameter (`weight_mask`), and every forward sees `w ⊙ mask`.
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::prelude::*;
//! use pruning::{masks, remove, satisfies_nm, sparsity_report, NmPattern, ParamFilter, Pruner, PruningMethod};
//!
//! #[derive(Module, Debug)]
//! struct Mlp { fc1: Linear, head: Linear }
//!
//! let device = Device::flex();
//! let model = Mlp { fc1: LinearConfig::new(16, 32).init(&device), head: LinearConfig::new(32, 4).init(&device) };
//!
//! // 2:4 along the input dimension of every Linear but the head.
//! let filter = ParamFilter::linear_weights().exclude("head.*");
//! let model = Pruner::new(PruningMethod::nm(2, 4)?).filter(filter.clone()).apply(model)?;
//! assert!(satisfies_nm(&masks(&model)?["fc1.weight"], NmPattern::new(2, 4)?, 0));
//! println!("{}", sparsity_report(&model, &filter, &[])?);
//!
//! // Make it permanent: plain Linear layers with zeros.
//! let model = remove(model);
//! assert!(masks(&model)?.is_empty());
//! # Ok::<(), pruning::Error>(())
//! ```

pub use analysis::{
    CettThreshold, LowRankSparse, SweepPoint, SweepResult, cett, cett_bound_for_target,
    cett_threshold, essential_sparsity_sweep, low_rank_sparse_split, sparse_doped_rank,
    sparse_factorized_rank, sparse_ift_scaling, sparse_parallel_branches, sparse_wide_width,
    sparsify_activations,
};
pub use error::{Error, Result};
pub use mask::{
    Amount, HostTensor, Mask, NmPattern, Norm, Remainder, WandaCalibration, check_nm_shape,
    global_magnitude, global_unstructured, ln_structured, magnitude, nm_mask, nm_mask_tensor,
    random_structured, random_unstructured, satisfies_nm, transposable_nm_mask, unstructured,
    unstructured_along,
};
pub use model::{
    Eligibility, ParamFilter, ParamInfo, Pruner, PruningMethod, PruningReparam, REPARAM_NAME,
    SparsityReport, TensorReport, apply_masks, is_pruned, load_pruned, masks, remove,
    sparsity_report,
};
pub use sparse_linear::{KERNEL_MAX_DENSITY, SparseLinear, SparseWeight, is_kernel_device};
pub use training::{
    CubicSchedule, Distribution, DropFraction, Dynamic, Gradual, Growth, MaskDecay, NmSte,
    SparseMethod, SparseTrainer, StructureDecay, is_update_step, kept_for_density, layer_densities,
    prune_and_grow, structure_decay_pattern,
};

mod analysis;
mod error;
pub mod format;
pub mod kernel;
mod mask;
mod model;
mod sparse_linear;
mod training;

#[cfg(test)]
pub(crate) fn test_device() -> burn::prelude::Device {
    burn::prelude::Device::flex()
}
