//! Whole models: prune any burn `Module` by path filters, keep dense weights and masks, report,
//! load, make permanent.

mod filter;
mod io;
mod prune;
mod reparam;
mod report;
mod walk;

#[cfg(test)]
mod tests;

pub use filter::{ParamFilter, ParamInfo};
pub use io::load_pruned;
pub use prune::{Pruner, PruningMethod, apply_masks, is_pruned, masks, remove};
pub use reparam::{PruningReparam, REPARAM_NAME};
pub use report::{Eligibility, SparsityReport, TensorReport, sparsity_report};

pub(crate) use walk::{Found, put_masks, put_modes, select, zero_pruned};
