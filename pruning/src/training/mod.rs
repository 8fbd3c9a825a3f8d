//! Training with sparsity: schedules (pure functions of the step), hard-mask, straight-through
//! (STE, SR-STE, Progressive Gradient Flow), gradual and dynamic sparse training.

mod dst;
mod schedule;
mod trainer;

pub use dst::{Distribution, Growth, kept_for_density, layer_densities, prune_and_grow};
pub use schedule::{
    CubicSchedule, DropFraction, MaskDecay, StructureDecay, is_update_step, structure_decay_pattern,
};
pub use trainer::{Dynamic, Gradual, NmSte, SparseMethod, SparseTrainer};
