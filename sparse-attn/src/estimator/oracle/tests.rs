use burn::prelude::*;
use proptest::prelude::*;

use super::*;
use crate::budget::Budget;
use crate::estimator::host::host_f32;
use crate::estimator::test_util::{host_probs, problem, tensor4};
use crate::layout::AttentionLayout;

fn layouts() -> impl Strategy<Value = AttentionLayout> {
    (1usize..12, 0usize..5, any::<bool>()).prop_map(|(q, extra, causal)| {
        if causal {
            AttentionLayout::causal_suffix(q, q + extra)
        } else {
            AttentionLayout::full(q, q + extra)
        }
    })
}

/// The keys of a host row ranked by probability (descending, lower index on ties), top `k`.
fn host_top(row: &[f64], valid: usize, k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..valid as u32).collect();
    idx.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

#[test]
fn planted_key_is_always_kept() {
    // Key 3 is 4× the last query: by far the largest q·k of the last row.
    let layout = AttentionLayout::causal(10);
    let p = problem(7, [1, 1, 1, 8, 8], layout);
    let mut k = host_f32(p.k.clone());
    let q = host_f32(p.q.clone());
    for c in 0..8 {
        k[3 * 8 + c] = 4.0 * q[9 * 8 + c];
    }
    let p = AttentionProblem::new(p.q.clone(), tensor4(k, [1, 1, 10, 8]), p.v.clone(), layout);
    let top1 = RowSelector::new(Budget::TopK(1));
    let m = Oracle::default().element_mask(&p, &top1, BlockSize::square(4));
    let bm = Oracle::default().block_mask(&p, BlockSize::square(4), &top1);
    assert_eq!(m.columns(0, 0, 9), &[3]);
    assert_eq!(
        bm.blocks(0, 0, 2).map(|b| b.index).collect::<Vec<_>>(),
        vec![0]
    );
}

#[test]
fn coverage_rows_reach_alpha_of_the_mass() {
    let layout = AttentionLayout::causal(16);
    let p = problem(3, [1, 2, 2, 8, 8], layout);
    let probs = host_probs(&p, None);
    let alpha = 0.9;
    let sel = RowSelector::new(Budget::Coverage {
        alpha,
        min_budget: 0,
    });
    let m = Oracle::new(5).element_mask(&p, &sel, BlockSize::square(4));
    let mut keys = Vec::new();
    for h in 0..2 {
        for i in 0..16 {
            m.row_keys(0, h, i, &mut keys);
            let row = &probs[(h * 16 + i) * 16..][..16];
            let recall: f64 = keys.iter().map(|&j| row[j as usize]).sum();
            assert!(recall >= alpha - 1e-5, "head {h} row {i}: recall {recall}");
            // Minimal: without its smallest key the row falls short.
            let smallest = keys
                .iter()
                .map(|&j| row[j as usize])
                .fold(f64::INFINITY, f64::min);
            assert!(recall - smallest < alpha + 1e-5);
        }
    }
}

#[test]
fn padded_keys_are_never_selected() {
    let layout = AttentionLayout::full(4, 6);
    let p = problem(11, [2, 1, 1, 4, 4], layout);
    let pad = Tensor::<2, Bool>::from_data(
        TensorData::new(
            vec![
                false, true, false, false, true, false, true, true, true, false, false, false,
            ],
            [2, 6],
        ),
        &Device::flex(),
    );
    let p = p.with_key_padding(pad);
    let m = Oracle::default().element_mask(
        &p,
        &RowSelector::new(Budget::TopK(6)),
        BlockSize::square(2),
    );
    let mut keys = Vec::new();
    for i in 0..4 {
        m.row_keys(0, 0, i, &mut keys);
        assert_eq!(keys, vec![0, 2, 3, 5]);
        m.row_keys(1, 0, i, &mut keys);
        assert_eq!(keys, vec![3, 4, 5]);
    }
    // Block (0..2, 2..4, 4..6) of batch 1: the first holds only padding.
    let bm =
        Oracle::default().block_mask(&p, BlockSize::square(2), &RowSelector::new(Budget::TopK(3)));
    assert_eq!(
        bm.blocks(1, 0, 0).map(|b| b.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn element_top_k_is_the_exact_top_k(
        layout in layouts(),
        (h, group) in (1usize..3, 1usize..3),
        k in 0usize..8,
        chunk in 1usize..7,
        seed in 0u64..1000,
    ) {
        let p = problem(seed, [1, h * group, h, 4, 4], layout);
        let m = Oracle::new(chunk).element_mask(&p, &RowSelector::new(Budget::TopK(k)), BlockSize::square(3));
        let probs = host_probs(&p, None);
        let tk = layout.k_len;
        let mut keys = Vec::new();
        for hq in 0..h * group {
            for i in 0..layout.q_len {
                m.row_keys(0, hq, i, &mut keys);
                let row = &probs[(hq * layout.q_len + i) * tk..][..tk];
                prop_assert_eq!(&keys, &host_top(row, layout.valid_keys(i), k));
            }
        }
    }

    #[test]
    fn block_oracle_ranks_blocks_by_exact_mass(
        layout in layouts(),
        bq in 1usize..4,
        bk in 1usize..4,
        k in 1usize..4,
        chunk in 1usize..9,
        seed in 0u64..1000,
    ) {
        let p = problem(seed, [1, 2, 1, 4, 4], layout);
        let block = BlockSize::new(bq, bk);
        let oracle = Oracle::new(chunk);
        let m = oracle.block_mask(&p, block, &RowSelector::new(Budget::TopK(k)));
        let probs = host_probs(&p, None);
        let (tq, tk) = (layout.q_len, layout.k_len);
        let n_kb = tk.div_ceil(bk);
        let masses = oracle.block_masses(&p, block);
        for h in 0..2 {
            for qb in 0..tq.div_ceil(bq) {
                let mut mass = vec![0f64; n_kb];
                for i in qb * bq..((qb + 1) * bq).min(tq) {
                    for j in 0..tk {
                        mass[j / bk] += probs[(h * tq + i) * tk + j];
                    }
                }
                let g = h * tq.div_ceil(bq) + qb;
                for kb in 0..n_kb {
                    prop_assert!((masses[g * n_kb + kb] - mass[kb]).abs() < 1e-5);
                }
                let r1 = ((qb + 1) * bq).min(tq);
                let visible = layout.valid_keys(r1 - 1).div_ceil(bk);
                let got: Vec<u32> = m.blocks(0, h, qb).map(|b| b.index).collect();
                prop_assert_eq!(got.len(), k.min(visible));
                // Every kept block outweighs every dropped visible one (up to f32 rounding).
                let min_kept = got.iter().map(|&b| mass[b as usize]).fold(f64::INFINITY, f64::min);
                for (kb, &w) in mass.iter().enumerate().take(visible) {
                    if !got.contains(&(kb as u32)) {
                        prop_assert!(w <= min_kept + 1e-6);
                    }
                }
            }
        }
    }
}
