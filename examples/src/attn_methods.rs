//! The sparse-attention methods of the experiments, each calibrated to a target density.
//!
//! Every method is one entry of [`METHODS`]: a name and a function that, given one attention
//! call of the model and a target density (kept over valid causal cells), returns the method's
//! mask at the setting whose density is closest to the target. Adding a method (Quest, SparseD,
//! SEA, a sparse kernel's own estimator) is one more entry.
//!
//! **Calibration** (how a density becomes each method's own knob):
//! - *oracle element top-k*: per query row the `⌊n_i · r⌋ + 1` keys of largest exact probability
//!   (sparse-attn's [`Budget::KeepRatio`], `n_i` the row's valid keys); the ratio `r` is found by
//!   bisection on the exact kept-cell count, which depends only on the layout
//!   ([`keep_ratio_density`]).
//! - *block top-k* (the Sparse Frontier's block-sparse: 16-token blocks, sink, diagonal and
//!   sub-diagonal forced): the number `k` of key blocks per query block whose exact **cell**
//!   density is closest to the target ([`block_topk_density`]: the diagonal block only counts its
//!   causal half). [`BlockTopK::for_density`] is the Sparse Frontier's own search, on the
//!   block-count density (diagonal blocks counted whole); the two differ by about
//!   `1 / n_blocks` and we use the cell count so every method is judged against the same
//!   definition of density.
//! - *oracle block top-k*: the same `k` and blocks as block top-k, chosen by exact attention mass
//!   and with nothing forced — block top-k's upper bound at the same budget.
//! - *vertical-slash* (MInference's pattern with the Sparse Frontier's settings: estimate from
//!   the last 256 queries, 64-token blocks, slashes written as full blocks): one budget `s` for
//!   both the vertical columns and the slash offsets (the Sparse Frontier's preset is
//!   `s = 512`), forced sink columns `min(4, s)` and forced local diagonals `min(64, s)` (the
//!   preset's 4 and 64, shrunk with the budget so low densities stay reachable). `s` is the
//!   smallest budget whose density reaches the target, or the one below it when that is closer,
//!   found by bisection; each probe's density is computed exactly from the estimate's kept
//!   columns and offsets ([`vertical_slash_kept_cells`], checked against the mask itself in the
//!   tests), so the search does not build a mask per probe.
//!
//! Densities are data-independent for the element oracle and block top-k (up to the oracle's
//! choice of the diagonal block), data-dependent for vertical-slash (columns inside slash
//! blocks merge). The achieved density is always measured and reported beside the target.

use sparse_attn::{
    AttentionLayout, AttentionProblem, BlockSize, BlockTopK, Budget, Oracle, RowSelector,
    SparseMask, VerticalSlash, VerticalSlashEstimate,
};

/// A method's mask for one problem, and the setting that produced it.
#[derive(Clone, Debug)]
pub struct CalibratedMask {
    /// The mask.
    pub mask: SparseMask,
    /// The method's own knob at the chosen setting, e.g. `"k = 12 blocks"`.
    pub setting: String,
}

/// A sparse-attention method of the experiments.
#[derive(Clone, Copy, Debug)]
pub struct Method {
    /// Command-line, JSON and legend name.
    pub name: &'static str,
    /// One line: what it is.
    pub description: &'static str,
    /// The mask for a problem at a target density in `(0, 1]`.
    pub build: fn(&AttentionProblem, f64) -> CalibratedMask,
}

/// Tokens per block of block top-k and its oracle (the Sparse Frontier's `chunk_size`).
pub const BLOCK_TOPK_BLOCK: usize = 16;

/// Every method, in the order of tables and legends.
pub const METHODS: &[Method] = &[
    Method {
        name: "oracle-element",
        description: "oracle element top-k: per row the keys of largest exact probability",
        build: oracle_element,
    },
    Method {
        name: "oracle-block",
        description: "oracle block top-k: 16-token key blocks of largest exact mass, block top-k's budget",
        build: oracle_block,
    },
    Method {
        name: "block-topk",
        description: "block top-k from mean-pooled q/k, 16-token blocks, sink + diagonals forced (Sparse Frontier)",
        build: block_topk,
    },
    Method {
        name: "vertical-slash",
        description: "vertical-slash from the last 256 queries, 64-token blocks (MInference / Sparse Frontier)",
        build: vertical_slash,
    },
];

/// The method called `name`.
pub fn method(name: &str) -> Option<Method> {
    METHODS.iter().copied().find(|m| m.name == name)
}

fn oracle_element(p: &AttentionProblem, density: f64) -> CalibratedMask {
    let r = keep_ratio_for_density(&p.layout, density);
    let selector = RowSelector::new(Budget::KeepRatio(r));
    CalibratedMask {
        mask: Oracle::default().element_mask(p, &selector, BlockSize::square(64)),
        setting: format!("keep ratio {r:.4}"),
    }
}

fn oracle_block(p: &AttentionProblem, density: f64) -> CalibratedMask {
    let k = block_topk_budget(&p.layout, BLOCK_TOPK_BLOCK, density);
    let selector = RowSelector::new(Budget::TopK(k));
    CalibratedMask {
        mask: Oracle::default().block_mask(p, BlockSize::square(BLOCK_TOPK_BLOCK), &selector),
        setting: format!("k = {k} blocks"),
    }
}

fn block_topk(p: &AttentionProblem, density: f64) -> CalibratedMask {
    let k = block_topk_budget(&p.layout, BLOCK_TOPK_BLOCK, density);
    CalibratedMask {
        mask: BlockTopK::new(BLOCK_TOPK_BLOCK, k).mask(p),
        setting: format!("k = {k} blocks"),
    }
}

fn vertical_slash(p: &AttentionProblem, density: f64) -> CalibratedMask {
    let s = vertical_slash_budget(p, density);
    CalibratedMask {
        mask: vertical_slash_with_budget(s).mask(p),
        setting: format!("s = {s} columns and offsets"),
    }
}

/// The smallest `x` in `lo..=hi` with `f(x) ≥ target` for a nondecreasing `f`, or `x − 1` when
/// its value is closer to the target (ties go to `x`); `hi` when no value reaches the target.
/// Returns `(x, f(x))`; `f` is called `O(log(hi − lo))` times.
///
/// # Panics
/// If `lo > hi`.
pub fn calibrate(
    lo: usize,
    hi: usize,
    target: f64,
    mut f: impl FnMut(usize) -> f64,
) -> (usize, f64) {
    assert!(lo <= hi, "calibrate: lo {lo} expected ≤ hi {hi}");
    let top = f(hi);
    if top < target {
        return (hi, top);
    }
    // Invariant: f(b) ≥ target; f(x) < target for every x < a.
    let (mut a, mut b, mut fb) = (lo, hi, top);
    while a < b {
        let mid = a + (b - a) / 2;
        let fm = f(mid);
        if fm >= target {
            b = mid;
            fb = fm;
        } else {
            a = mid + 1;
        }
    }
    if b > lo {
        let below = f(b - 1);
        if target - below < fb - target {
            return (b - 1, below);
        }
    }
    (b, fb)
}

/// Exact density of [`Budget::KeepRatio`]`(r)` over every row of `layout`:
/// `Σ_i min(n_i, max(1, ⌊n_i · r⌋ + 1)) / Σ_i n_i`.
///
/// # Panics
/// If `r` is outside `[0, 1]`.
pub fn keep_ratio_density(layout: &AttentionLayout, r: f64) -> f64 {
    let budget = Budget::KeepRatio(r);
    let kept: u64 = (0..layout.q_len)
        .map(|i| budget.fixed_size(layout.valid_keys(i)).unwrap_or(0) as u64)
        .sum();
    kept as f64 / layout.valid_cells().max(1) as f64
}

/// The keep ratio whose [`keep_ratio_density`] is closest to `density` (bisection to 1e-7; the
/// density is a step function of the ratio, so this is the closest step up to that precision).
pub fn keep_ratio_for_density(layout: &AttentionLayout, density: f64) -> f64 {
    let (mut a, mut b) = (0.0f64, 1.0f64);
    if keep_ratio_density(layout, a) >= density {
        return a;
    }
    // Invariant: density(a) < target ≤ density(b).
    while b - a > 1e-7 {
        let mid = 0.5 * (a + b);
        if keep_ratio_density(layout, mid) >= density {
            b = mid;
        } else {
            a = mid;
        }
    }
    let (da, db) = (keep_ratio_density(layout, a), keep_ratio_density(layout, b));
    if density - da < db - density { a } else { b }
}

/// Exact cell density of a causal self-attention block mask of `block × block` blocks that keeps,
/// per query block, `min(k, visible)` key blocks **including the diagonal block** (the other
/// kept blocks below the diagonal, hence full): block top-k with its forced diagonal.
///
/// # Panics
/// If the layout is not causal self-attention (`q_offset` 0, `q_len == k_len`) or `block` is 0.
pub fn block_topk_density(layout: &AttentionLayout, block: usize, k: usize) -> f64 {
    assert!(
        layout.causal && layout.q_offset == 0 && layout.q_len == layout.k_len,
        "block_topk_density: expected causal self-attention, found {layout:?}"
    );
    assert!(block > 0, "block_topk_density: block expected > 0, found 0");
    let mut kept = 0u64;
    for i in 0..layout.q_len {
        let qb = i / block;
        kept += if k > qb {
            i as u64 + 1
        } else {
            // k − 1 full blocks plus the row's part of the diagonal block (at least the
            // diagonal itself, so k ≥ 1 here).
            ((k.max(1) - 1) * block + (i - qb * block + 1)) as u64
        };
    }
    kept as f64 / layout.valid_cells().max(1) as f64
}

/// The key-block budget `k` of block top-k (`block`-token blocks, at least the 3 forced blocks)
/// whose [`block_topk_density`] is closest to `density`.
///
/// # Panics
/// As [`block_topk_density`].
pub fn block_topk_budget(layout: &AttentionLayout, block: usize, density: f64) -> usize {
    let n = layout.k_len.div_ceil(block).max(3);
    calibrate(3, n, density, |k| block_topk_density(layout, block, k)).0
}

/// The vertical-slash estimator at budget `s` (see the [module docs](self)).
pub fn vertical_slash_with_budget(s: usize) -> VerticalSlash {
    VerticalSlash {
        vertical: Budget::TopK(s),
        slash: Budget::TopK(s),
        sinks: s.min(4),
        local: s.min(64),
        ..VerticalSlash::sparse_frontier()
    }
}

/// The budget `s` of [`vertical_slash_with_budget`] whose measured density on `p` is closest to
/// `density` (see the [module docs](self)).
///
/// # Panics
/// As [`VerticalSlash::estimate`].
pub fn vertical_slash_budget(p: &AttentionProblem, density: f64) -> usize {
    let scores = vertical_slash_with_budget(1).estimate(p);
    let heads = scores.verticals.len();
    let valid = p.layout.valid_cells() * heads as u64;
    let tk = p.layout.k_len;
    calibrate(1, tk.max(1), density, |s| {
        let est = reselect(&scores, tk, s);
        let kept: u64 = (0..heads)
            .map(|bh| {
                vertical_slash_kept_cells(
                    &p.layout,
                    vertical_slash_with_budget(s).block,
                    &est.verticals[bh],
                    &est.slashes[bh],
                )
            })
            .sum();
        kept as f64 / valid.max(1) as f64
    })
    .0
}

/// Step 3 of [`VerticalSlash::estimate`] at budget `s`, on scores already computed.
fn reselect(scores: &VerticalSlashEstimate, tk: usize, s: usize) -> VerticalSlashEstimate {
    let vs = vertical_slash_with_budget(s);
    let vsel = RowSelector::new(vs.vertical).with_sinks(vs.sinks);
    let ssel = RowSelector::new(vs.slash).with_sinks(vs.local);
    let heads = scores.verticals.len();
    let mut verticals = vec![Vec::new(); heads];
    let mut slashes = vec![Vec::new(); heads];
    for bh in 0..heads {
        let range = bh * tk..(bh + 1) * tk;
        vsel.select(
            &scores.vertical_scores[range.clone()],
            tk.saturating_sub(1),
            &mut verticals[bh],
        );
        ssel.select(&scores.slash_scores[range], 0, &mut slashes[bh]);
    }
    VerticalSlashEstimate {
        vertical_scores: Vec::new(),
        slash_scores: Vec::new(),
        verticals,
        slashes,
    }
}

/// Valid cells kept by one head of a vertical-slash mask with slashes written as full
/// `block × block` blocks ([`sparse_attn::SlashRaster::Blocks`]): per query block, the union of
/// the blocks covering its slash cells and of the vertical columns outside those blocks,
/// restricted to the causal cells. `verticals` are key indices, `slashes` offsets
/// `position − key`, both sorted and distinct.
///
/// # Panics
/// If the layout is not causal with the queries at the end of the keys, or `block` is 0.
pub fn vertical_slash_kept_cells(
    layout: &AttentionLayout,
    block: usize,
    verticals: &[u32],
    slashes: &[u32],
) -> u64 {
    assert!(
        layout.causal && layout.q_offset + layout.q_len == layout.k_len,
        "vertical_slash_kept_cells: expected causal prefill, found {layout:?}"
    );
    assert!(
        block > 0,
        "vertical_slash_kept_cells: block expected > 0, found 0"
    );
    let (tq, tk, off) = (layout.q_len, layout.k_len, layout.q_offset);
    let n_kb = tk.div_ceil(block);
    let mut marked = vec![false; n_kb];
    let mut kept = 0u64;
    for qb in 0..tq.div_ceil(block) {
        let p0 = off + qb * block;
        let p1 = off + ((qb + 1) * block).min(tq) - 1;
        marked.iter_mut().for_each(|m| *m = false);
        for &d in slashes {
            let d = d as usize;
            if d > p1 {
                continue;
            }
            let lo = p0.saturating_sub(d) / block;
            let hi = (p1 - d) / block;
            marked[lo..=hi].iter_mut().for_each(|m| *m = true);
        }
        for (kb, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
            let (k0, k1) = (kb * block, ((kb + 1) * block).min(tk));
            // Row at position `pos` sees keys 0..=pos.
            kept += (p0..=p1)
                .map(|pos| (k1.min(pos + 1)).saturating_sub(k0) as u64)
                .sum::<u64>();
        }
        for &j in verticals {
            let j = j as usize;
            if j <= p1 && !marked[j / block] {
                kept += (p1 - j.max(p0) + 1) as u64;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use proptest::prelude::*;

    use super::*;

    fn problem(seed: u64, heads: usize, len: usize) -> AttentionProblem {
        let d = Device::flex();
        d.seed(seed);
        let n = Distribution::Normal(0.0, 1.0);
        let q = Tensor::<4>::random([1, heads, len, 16], n, &d);
        // Larger keys sharpen the attention, so the estimators have something to find.
        let k = Tensor::<4>::random([1, heads / 2, len, 16], n, &d).mul_scalar(1.5);
        let v = Tensor::<4>::random([1, heads / 2, len, 16], n, &d);
        AttentionProblem::new(q, k, v, AttentionLayout::causal(len))
    }

    #[test]
    fn calibrate_finds_the_closest_step_of_a_monotone_function() {
        let f = |x: usize| (x * x) as f64;
        assert_eq!(calibrate(0, 10, 49.0, f), (7, 49.0));
        // 50 lies between 49 (x = 7) and 64 (x = 8): 7 is closer.
        assert_eq!(calibrate(0, 10, 50.0, f), (7, 49.0));
        assert_eq!(calibrate(0, 10, 60.0, f), (8, 64.0));
        assert_eq!(calibrate(0, 10, 1e9, f), (10, 100.0));
        assert_eq!(calibrate(3, 10, 0.0, f), (3, 9.0));
        let mut calls = 0;
        calibrate(0, 1 << 20, 12345.0, |x| {
            calls += 1;
            x as f64
        });
        assert!(calls <= 23, "{calls}");
    }

    proptest! {
        #[test]
        fn calibrate_is_never_farther_than_its_neighbours(
            steps in proptest::collection::vec(0u32..5, 1..40),
            target in 0.0f64..100.0,
        ) {
            let values: Vec<f64> = steps
                .iter()
                .scan(0.0, |acc, &s| { *acc += f64::from(s); Some(*acc) })
                .collect();
            let (x, fx) = calibrate(0, values.len() - 1, target, |i| values[i]);
            prop_assert_eq!(fx, values[x]);
            let best = values.iter().map(|v| (v - target).abs()).fold(f64::INFINITY, f64::min);
            prop_assert!((fx - target).abs() <= best + 1e-12);
        }

        #[test]
        fn keep_ratio_calibration_hits_the_target_within_one_key_per_row(
            len in 8usize..300, density in 0.02f64..1.0,
        ) {
            let layout = AttentionLayout::causal(len);
            let r = keep_ratio_for_density(&layout, density);
            let got = keep_ratio_density(&layout, r);
            // Each row is off by at most one key from the ideal, plus the forced minimum of 1.
            let slack = len as f64 / layout.valid_cells() as f64;
            prop_assert!((got - density).abs() <= slack + 1e-9, "{got} vs {density}");
        }
    }

    #[test]
    fn analytic_block_topk_density_is_the_masks_own() {
        for (len, seed) in [(40usize, 1u64), (64, 2), (97, 3)] {
            let p = problem(seed, 4, len);
            let layout = p.layout;
            for k in [3, 4, 5, 7] {
                let m = BlockTopK::new(8, k).mask(&p);
                assert!(
                    (m.density().overall() - block_topk_density(&layout, 8, k)).abs() < 1e-12,
                    "len {len} k {k}"
                );
            }
        }
        let layout = AttentionLayout::causal(64);
        assert_eq!(block_topk_density(&layout, 8, 8), 1.0);
        let k = block_topk_budget(&layout, 8, 0.5);
        let best = (3..=8)
            .map(|k| (block_topk_density(&layout, 8, k) - 0.5).abs())
            .fold(f64::INFINITY, f64::min);
        assert_eq!((block_topk_density(&layout, 8, k) - 0.5).abs(), best);
    }

    #[test]
    fn analytic_vertical_slash_density_is_the_masks_own() {
        for (len, seed) in [(50usize, 4u64), (128, 5), (131, 6)] {
            let p = problem(seed, 4, len);
            for s in [1, 3, 9, 20, 70] {
                let vs = VerticalSlash {
                    block: 16,
                    last_q: 24,
                    ..vertical_slash_with_budget(s)
                };
                let est = vs.estimate(&p);
                let mask = vs.lower(&p, &est);
                let kept: u64 = (0..4)
                    .map(|h| {
                        vertical_slash_kept_cells(&p.layout, 16, &est.verticals[h], &est.slashes[h])
                    })
                    .sum();
                assert_eq!(kept, mask.kept_cells(), "len {len} s {s}");
                // The reselection from s = 1's scores is the estimator's own selection.
                let re = reselect(&vertical_slash_with_budget(1).estimate(&p), len, s);
                let vs_sf = vertical_slash_with_budget(s).estimate(&p);
                assert_eq!(re.verticals, vs_sf.verticals);
                assert_eq!(re.slashes, vs_sf.slashes);
            }
        }
    }

    #[test]
    fn every_method_lands_near_its_target_and_the_oracles_recall_most() {
        let p = problem(9, 4, 512);
        for &target in &[0.2, 0.4] {
            let mut recall = Vec::new();
            for m in METHODS {
                let c = (m.build)(&p, target);
                let q = sparse_attn::mask_quality(&p, &c.mask);
                // Vertical-slash moves in whole 64-token block diagonals: at 512 tokens one
                // more diagonal of blocks is ~1/8 of the cells.
                let tolerance = if m.name == "vertical-slash" {
                    0.13
                } else {
                    0.05
                };
                assert!(
                    (q.overall.density - target).abs() < tolerance,
                    "{} at {target}: density {} ({})",
                    m.name,
                    q.overall.density,
                    c.setting
                );
                recall.push(q.overall.recall_mean);
            }
            // The element oracle keeps the most mass at (about) the same density; the block
            // oracle beats block top-k at the same block budget.
            assert!(recall[0] >= recall[1] - 0.02, "{recall:?}");
            assert!(recall[1] >= recall[2] - 1e-9, "{recall:?}");
        }
        assert_eq!(method("block-topk").unwrap().name, "block-topk");
        assert!(method("nope").is_none());
    }
}
