//! Choosing the kernel: gather below the measured crossover, dense masked attention above it.
//!
//! Gathering pays per kept cell (index traffic, a padded per-chunk list, small matrix products),
//! dense attention pays per valid cell at full matmul speed. The crossover is the fraction of
//! valid cells the gather kernel computes ([`GatherPlan::gathered_cells`], list padding included)
//! above which dense is faster. It depends on the backend and on the mask's shape — whole blocks
//! multiply as matrices, per-row columns are vector work — so [`Crossover`] keeps two figures,
//! plus a third for the host CPU kernel that column masks use on the CPU.
//!
//! The defaults are what `bench_sparse_attn` measured on burn's CPU `flex` backend (simd +
//! rayon, 2 cores, head dim 64; docs/benchmarks.md#sparse-attn has the run). No GPU was
//! available to measure there; pass your own [`Crossover`] for another backend.

use burn::prelude::*;

use super::gather::{GatherPlan, gather_attention_planned};
use super::host::host_gather_attention;
use super::masked_dense_attention;
use crate::mask::SparseMask;
use crate::problem::AttentionProblem;

/// Crossover densities (fractions of the valid cells computed by the gather kernel) above which
/// dense masked attention is used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossover {
    /// For masks of whole blocks (block-gather + matmul).
    pub blocks: f64,
    /// For masks whose work is mostly per-row columns (element gather).
    pub columns: f64,
    /// For column masks: run the host CPU kernel ([`host_gather_attention`]) at or below this
    /// work fraction, when no input is tracked by autodiff. `None`: never (GPU backends, where
    /// it would copy to host memory).
    pub host_columns: Option<f64>,
}

impl Crossover {
    /// burn `flex` on the CPU, measured by `bench_sparse_attn` (see the module docs; work =
    /// gathered cells / valid cells, about twice the density for columns, whose per-chunk
    /// lists are padded to the longest row): block gather beat burn's dense attention up to
    /// work ≈ 0.6 at L ≥ 2k (1.07–1.36× at density 0.5), the portable column gather only up to
    /// ≈ 0.03 (0.95× at density 0.02), the host kernel to at least 0.6 (1.07–2.0× at density
    /// 0.3, the densest measured).
    pub const FLEX_CPU: Self = Self {
        blocks: 0.6,
        columns: 0.03,
        host_columns: Some(0.6),
    };

    /// Always gather (for tests and for measuring).
    pub const ALWAYS_GATHER: Self = Self {
        blocks: f64::INFINITY,
        columns: f64::INFINITY,
        host_columns: None,
    };
}

impl Default for Crossover {
    fn default() -> Self {
        Self::FLEX_CPU
    }
}

/// The kernel [`sparse_attention`] runs for a problem and mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KernelChoice {
    /// Gather the kept cells; `work` is the computed fraction of valid cells.
    Gather {
        /// Gathered cells / valid cells.
        work: f64,
    },
    /// The host CPU kernel ([`host_gather_attention`]); `work` as above.
    Host {
        /// Gathered cells / valid cells.
        work: f64,
    },
    /// burn's attention with the equivalent bool mask; `work` as above (what gathering would
    /// have cost).
    Dense {
        /// Gathered cells / valid cells.
        work: f64,
    },
}

/// Decides which kernel runs `mask` on `p` under `crossover`.
pub fn choose_kernel(
    p: &AttentionProblem,
    mask: &SparseMask,
    crossover: Crossover,
) -> (KernelChoice, GatherPlan) {
    let [b, h, _, _] = p.q.dims();
    let hk = p.k.dims()[1];
    let plan = GatherPlan::new(mask, b, h, hk);
    let tracked = p.q.is_tracked() || p.k.is_tracked() || p.v.is_tracked();
    (decide(mask, &plan, b, h, crossover, tracked), plan)
}

fn decide(
    mask: &SparseMask,
    plan: &GatherPlan,
    batch: usize,
    heads: usize,
    crossover: Crossover,
    tracked: bool,
) -> KernelChoice {
    let bk = mask.block_size().k;
    let valid = mask.layout().valid_cells() as f64 * (batch * heads) as f64;
    let gathered = plan.gathered_cells(bk) as f64;
    let work = if valid > 0.0 { gathered / valid } else { 0.0 };
    // Which figure applies: the share of the work that is per-row columns.
    let column_cells = (plan.units() * plan.rows * plan.max_columns()) as f64;
    let columns = column_cells * 2.0 > gathered;
    let limit = if columns {
        crossover.columns
    } else {
        crossover.blocks
    };
    if let Some(host) = crossover.host_columns.filter(|_| columns && !tracked)
        && work <= host
    {
        return KernelChoice::Host { work };
    }
    if work <= limit {
        KernelChoice::Gather { work }
    } else {
        KernelChoice::Dense { work }
    }
}

/// Sparse attention with the kernel [`choose_kernel`] picks: gather below the crossover, dense
/// masked attention above it. Same result either way (up to float rounding).
///
/// # Panics
/// If the problem's shapes are inconsistent or the mask does not match its layout, batch or
/// heads.
pub fn sparse_attention(
    p: &AttentionProblem,
    mask: &SparseMask,
    crossover: Crossover,
) -> Tensor<4> {
    p.check();
    assert!(
        mask.layout() == p.layout,
        "sparse_attention: mask layout {:?} differs from the problem's {:?}",
        mask.layout(),
        p.layout
    );
    let (choice, plan) = choose_kernel(p, mask, crossover);
    match choice {
        KernelChoice::Gather { .. } => gather_attention_planned(p, mask, &plan),
        KernelChoice::Host { .. } => host_gather_attention(p, mask),
        KernelChoice::Dense { .. } => masked_dense_attention(p, mask),
    }
}
