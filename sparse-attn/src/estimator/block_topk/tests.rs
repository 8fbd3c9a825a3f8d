use proptest::prelude::*;

use super::*;
use crate::estimator::host::host_f32;
use crate::estimator::test_util::{problem, tensor4};
use crate::layout::AttentionLayout;

/// Host mean pooling of `[b, h, t, d]` over blocks.
fn host_pool(x: &[f32], [b, h, t, d]: [usize; 4], bs: usize) -> Vec<f32> {
    let nb = t.div_ceil(bs);
    let mut out = vec![0f32; b * h * nb * d];
    for bh in 0..b * h {
        for blk in 0..nb {
            let rows = blk * bs..((blk + 1) * bs).min(t);
            let cnt = rows.len() as f32;
            for r in rows {
                for c in 0..d {
                    out[(bh * nb + blk) * d + c] += x[(bh * t + r) * d + c] / cnt;
                }
            }
        }
    }
    out
}

#[test]
fn pooled_scores_are_means_dotted() {
    let layout = AttentionLayout::causal(11);
    let p = problem(5, [1, 2, 1, 3, 3], layout);
    let est = BlockTopK::new(4, 2);
    let got = est.pooled_scores(&p);
    let qp = host_pool(&host_f32(p.q.clone()), [1, 2, 11, 3], 4);
    let kp = host_pool(&host_f32(p.k.clone()), [1, 1, 11, 3], 4);
    for h in 0..2 {
        for a in 0..3 {
            for c in 0..3 {
                let want: f32 = (0..3)
                    .map(|x| qp[(h * 3 + a) * 3 + x] * kp[c * 3 + x])
                    .sum();
                approx::assert_relative_eq!(got[(h * 3 + a) * 3 + c], want, epsilon = 1e-5);
            }
        }
    }
}

#[test]
fn sink_and_diagonals_are_forced_and_the_planted_block_kept() {
    // 8 blocks of 4; key block 5 is made of copies of 3 × the mean query of block 7.
    let layout = AttentionLayout::causal(32);
    let p = problem(9, [1, 1, 1, 8, 8], layout);
    let q = host_f32(p.q.clone());
    let mut k = host_f32(p.k.clone());
    let mean: Vec<f32> = (0..8)
        .map(|c| (28..32).map(|r| q[r * 8 + c]).sum::<f32>() / 4.0)
        .collect();
    for r in 20..24 {
        for c in 0..8 {
            k[r * 8 + c] = 3.0 * mean[c];
        }
    }
    let p = AttentionProblem::new(p.q.clone(), tensor4(k, [1, 1, 32, 8]), p.v.clone(), layout);
    let m = BlockTopK::new(4, 4).mask(&p);
    let kept: Vec<u32> = m.blocks(0, 0, 7).map(|b| b.index).collect();
    assert_eq!(kept, vec![0, 5, 6, 7]);
    // Query block 1 sees two blocks and keeps both.
    assert_eq!(
        m.blocks(0, 0, 1).map(|b| b.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn density_search_matches_the_reference_formula() {
    // n = 16 blocks: k = 3 → 93/136, k = 5 → 15 + 55 = 70/136.
    approx::assert_relative_eq!(
        block_density(16, 3),
        3.0 * 4.0 / 2.0 / 136.0 + 13.0 * 3.0 / 136.0
    );
    approx::assert_relative_eq!(block_density(16, 5), 70.0 / 136.0);
    assert_eq!(block_density(16, 40), 1.0);
    for target in [0.1, 0.2, 0.3, 0.5] {
        let BlockTopK {
            budget: Budget::TopK(k),
            ..
        } = BlockTopK::for_density(1024, 16, target)
        else {
            unreachable!()
        };
        // The search finds the best k (the density is monotone in k).
        let best = (3..=64).min_by(|&a, &b| {
            (block_density(64, a) - target)
                .abs()
                .total_cmp(&(block_density(64, b) - target).abs())
        });
        assert_eq!(Some(k), best, "target {target}");
    }
}

#[test]
fn achieved_density_is_close_to_the_request() {
    let layout = AttentionLayout::causal(512);
    let p = problem(1, [1, 2, 1, 8, 8], layout);
    // 32 blocks: the least top_k (3) already gives a block density of 0.18.
    for target in [0.25, 0.5] {
        let est = BlockTopK::for_density(512, 16, target);
        let got = est.mask(&p).density().overall();
        assert!(
            (got - target).abs() < 0.05,
            "target {target}: density {got}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn budgets_hold_per_query_block(
        t in 1usize..40,
        extra in 0usize..8,
        causal in any::<bool>(),
        bs in 1usize..6,
        k in 0usize..6,
        ratio_pct in proptest::option::of(0u32..=100),
        seed in 0u64..1000,
    ) {
        let layout = if causal { AttentionLayout::causal_suffix(t, t + extra) } else { AttentionLayout::full(t, t + extra) };
        let p = problem(seed, [1, 2, 1, 4, 4], layout);
        let mut est = BlockTopK::new(bs, k);
        if let Some(r) = ratio_pct {
            est.budget = Budget::KeepRatio(r as f64 / 100.0);
        }
        let m = est.mask(&p);
        for h in 0..2 {
            for qb in 0..t.div_ceil(bs) {
                let r1 = ((qb + 1) * bs).min(t);
                let visible = layout.valid_keys(r1 - 1).div_ceil(bs);
                let diag = (layout.q_offset + r1 - 1).min(layout.k_len - 1) / bs;
                let mut forced: Vec<u32> = vec![0, diag as u32];
                if diag > 0 { forced.push(diag as u32 - 1); }
                forced.sort_unstable();
                forced.dedup();
                let got: Vec<u32> = m.blocks(0, h, qb).map(|b| b.index).collect();
                let size = est.budget.fixed_size(visible).unwrap();
                prop_assert_eq!(got.len(), size.max(forced.len()).min(visible));
                for f in &forced { prop_assert!(got.contains(f)); }
                prop_assert!(got.iter().all(|&b| (b as usize) < visible));
            }
        }
    }
}
