//! Analyses: the essential-sparsity sweep, low-rank + sparse splits and Sparse-IFT formulas,
//! and activation sparsity by CETT.

mod activation;
mod essential;
mod low_rank;
mod plot;

pub use activation::{
    CettThreshold, cett, cett_bound_for_target, cett_threshold, sparsify_activations,
};
pub use essential::{SweepPoint, SweepResult, essential_sparsity_sweep};
pub use low_rank::{
    LowRankSparse, low_rank_sparse_split, sparse_doped_rank, sparse_factorized_rank,
    sparse_ift_scaling, sparse_parallel_branches, sparse_wide_width,
};
