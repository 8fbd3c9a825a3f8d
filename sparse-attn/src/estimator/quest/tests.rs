use burn::tensor::Distribution;
use proptest::prelude::*;

use super::*;
use crate::estimator::test_util::tensor4;
use crate::kernel::{dense_attention, masked_dense_attention};
use crate::problem::AttentionProblem;

fn normal(seed: u64, dims: [usize; 4]) -> Tensor<4> {
    let device = Device::flex();
    device.seed(seed);
    Tensor::random(dims, Distribution::Normal(0.0, 1.0), &device)
}

fn kept_pages(m: &SparseMask, b: usize, h: usize) -> Vec<u32> {
    m.blocks(b, h, 0).map(|blk| blk.index).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn page_score_bounds_every_key_of_its_page(
        t in 1usize..40, p in 1usize..9, d in 1usize..6, seed in 0u64..1000,
    ) {
        let k = normal(seed, [2, 2, t, d]);
        let q = host_f32(normal(seed + 1, [1, 1, 1, d]));
        let bounds = PageBounds::from_keys(&k, p);
        let keys = host_f32(k);
        for bh in 0..4 {
            for j in 0..t {
                let key = &keys[(bh * t + j) * d..][..d];
                let dot: f64 = q.iter().zip(key).map(|(&a, &c)| a as f64 * c as f64).sum();
                let s = bounds.score(bh / 2, bh % 2, j / p, &q) as f64;
                prop_assert!(s + 1e-5 >= dot, "page {} score {s} < q·k {dot}", j / p);
            }
        }
    }

    #[test]
    fn incremental_appends_equal_a_rebuild(
        t0 in 0usize..30, steps in proptest::collection::vec(0usize..5, 0..8),
        p in 1usize..7, seed in 0u64..1000,
    ) {
        let total = t0 + steps.iter().sum::<usize>();
        prop_assume!(total > 0);
        let k = normal(seed, [2, 3, total, 4]);
        let mut grown = PageBounds::from_keys(&k.clone().slice([0..2, 0..3, 0..t0, 0..4]), p);
        let mut at = t0;
        for s in steps {
            grown.append(&k.clone().slice([0..2, 0..3, at..at + s, 0..4]));
            at += s;
        }
        let rebuilt = PageBounds::from_keys(&k, p);
        prop_assert_eq!(grown.len(), total);
        prop_assert_eq!(grown.n_pages(), total.div_ceil(p));
        prop_assert_eq!(grown.n_complete_pages(), total / p);
        prop_assert_eq!(&grown, &rebuilt);
        // And both equal the definition.
        let keys = host_f32(k);
        for bh in 0..6 {
            for page in 0..total.div_ceil(p) {
                for c in 0..4 {
                    let col = (page * p..((page + 1) * p).min(total)).map(|j| keys[(bh * total + j) * 4 + c]);
                    let lo = col.clone().fold(f32::INFINITY, f32::min);
                    let hi = col.fold(f32::NEG_INFINITY, f32::max);
                    prop_assert_eq!(rebuilt.min(bh / 3, bh % 3, page)[c], lo);
                    prop_assert_eq!(rebuilt.max(bh / 3, bh % 3, page)[c], hi);
                }
            }
        }
    }

    #[test]
    fn the_budget_holds_and_the_current_page_is_kept(
        t in 1usize..80, p in 1usize..9, budget in 0usize..80, share: bool, seed in 0u64..1000,
    ) {
        let k = normal(seed, [2, 2, t, 4]);
        let q = normal(seed + 7, [2, 4, 1, 4]);
        let mut quest = Quest::new(p, budget);
        quest.share_pages = share;
        let m = quest.mask(&PageBounds::from_keys(&k, p), &q);
        let n = t.div_ceil(p);
        let heads = if share { 2 } else { 4 };
        prop_assert_eq!(m.heads(), heads);
        prop_assert_eq!(m.layout(), AttentionLayout::causal_suffix(1, t));
        for b in 0..2 {
            for h in 0..heads {
                let kept = kept_pages(&m, b, h);
                // The current page plus the best page_budget − 1 others, at least the current one.
                prop_assert_eq!(kept.len(), (budget / p).max(1).min(n));
                prop_assert!(kept.contains(&(n as u32 - 1)));
                prop_assert_eq!(m.row_count(b, h, 0), kept.iter().map(|&pg| ((pg as usize + 1) * p).min(t) - pg as usize * p).sum::<usize>());
            }
        }
    }
}

#[test]
fn the_pages_kept_are_the_best_scored_others() {
    let (t, p) = (50, 8); // 7 pages, the last holds 2 keys
    let k = normal(3, [1, 1, t, 6]);
    let q = normal(4, [1, 1, 1, 6]);
    let bounds = PageBounds::from_keys(&k, p);
    let quest = Quest::new(p, 3 * p);
    let scores = quest.page_scores(&bounds, &q);
    let mut others: Vec<u32> = (0..6).collect();
    others.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    let mut want = vec![others[0], others[1], 6];
    want.sort_unstable();
    assert_eq!(kept_pages(&quest.mask(&bounds, &q), 0, 0), want);
}

#[test]
fn shared_pages_rank_the_group_sum() {
    let (t, p) = (64, 4);
    let k = normal(11, [1, 2, t, 5]);
    let q = normal(12, [1, 6, 1, 5]);
    let bounds = PageBounds::from_keys(&k, p);
    let per_head = Quest::new(p, 5 * p);
    let shared = per_head.sharing_pages();
    let s = per_head.page_scores(&bounds, &q);
    let g = shared.page_scores(&bounds, &q);
    let n = bounds.n_pages();
    for kh in 0..2 {
        for page in 0..n {
            let sum: f32 = (0..3).map(|i| s[(kh * 3 + i) * n + page]).sum();
            approx::assert_relative_eq!(g[kh * n + page], sum, epsilon = 1e-4);
        }
    }
    let m = shared.mask(&bounds, &q);
    assert_eq!(m.heads(), 2);
    // Every query head of a group reads its group's page set.
    for h in 0..6 {
        assert_eq!(m.resolve(0, h, 6), (0, h / 3));
    }
    // Per-head sets differ inside a group for these seeds, the shared one does not exist per head.
    let unshared = per_head.mask(&bounds, &q);
    let sets: Vec<Vec<u32>> = (0..3).map(|h| kept_pages(&unshared, 0, h)).collect();
    assert!(
        sets.windows(2).any(|w| w[0] != w[1]),
        "the per-head sets of group 0 should differ"
    );
    // The shared selection is the top of the summed scores.
    let mut others: Vec<u32> = (0..n as u32 - 1).collect();
    others.sort_by(|&a, &b| g[b as usize].total_cmp(&g[a as usize]));
    let mut want: Vec<u32> = others[..4].to_vec();
    want.push(n as u32 - 1);
    want.sort_unstable();
    assert_eq!(kept_pages(&m, 0, 0), want);
}

#[test]
fn a_page_holding_a_key_aligned_with_q_is_selected() {
    let (t, p, d) = (96, 16, 8);
    let q = normal(21, [1, 1, 1, d]);
    let qv = host_f32(q.clone());
    let mut k = host_f32(normal(22, [1, 1, t, d]));
    // Key 37 (page 2) is 4·q: its dot product dwarfs every random page's bound.
    for c in 0..d {
        k[37 * d + c] = 4.0 * qv[c];
    }
    let bounds = PageBounds::from_keys(&tensor4(k, [1, 1, t, d]), p);
    let m = Quest::new(p, 2 * p).mask(&bounds, &q);
    assert_eq!(kept_pages(&m, 0, 0), vec![2, 5]);
}

#[test]
fn a_budget_covering_the_cache_is_dense_decode() {
    for (t, share) in [(37, false), (48, true), (5, false)] {
        let k = normal(31, [2, 2, t, 4]);
        let v = normal(32, [2, 2, t, 3]);
        let q = normal(33, [2, 4, 1, 4]);
        let mut quest = Quest::new(8, t.div_ceil(8) * 8);
        quest.share_pages = share;
        let m = quest.mask(&PageBounds::from_keys(&k, 8), &q);
        let prob = AttentionProblem::new(q, k, v, AttentionLayout::causal_suffix(1, t));
        let dense = host_f32(dense_attention(&prob));
        let sparse = host_f32(masked_dense_attention(&prob, &m));
        for (a, b) in dense.iter().zip(&sparse) {
            approx::assert_abs_diff_eq!(a, b, epsilon = 1e-5);
        }
    }
}

#[test]
fn a_small_budget_attends_only_the_kept_pages() {
    let (t, p) = (40, 8);
    let k = normal(41, [1, 1, t, 4]);
    let v = normal(42, [1, 1, t, 2]);
    let q = normal(43, [1, 1, 1, 4]);
    let m = Quest::new(p, 2 * p).mask(&PageBounds::from_keys(&k, p), &q);
    let kept = kept_pages(&m, 0, 0);
    let prob = AttentionProblem::new(
        q.clone(),
        k.clone(),
        v.clone(),
        AttentionLayout::causal_suffix(1, t),
    );
    let got = host_f32(masked_dense_attention(&prob, &m));
    // The softmax over the kept pages' keys only, on the host.
    let (qh, kh, vh) = (host_f32(q), host_f32(k), host_f32(v));
    let keys: Vec<usize> = kept
        .iter()
        .flat_map(|&pg| pg as usize * p..((pg as usize + 1) * p).min(t))
        .collect();
    let logits: Vec<f64> = keys
        .iter()
        .map(|&j| {
            (0..4)
                .map(|c| qh[c] as f64 * kh[j * 4 + c] as f64)
                .sum::<f64>()
                * 0.5
        })
        .collect();
    let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = logits.iter().map(|l| (l - mx).exp()).sum();
    for c in 0..2 {
        let want: f64 = keys
            .iter()
            .zip(&logits)
            .map(|(&j, l)| (l - mx).exp() / z * vh[j * 2 + c] as f64)
            .sum();
        approx::assert_abs_diff_eq!(got[c] as f64, want, epsilon = 1e-5);
    }
}

#[test]
#[should_panic(expected = "holds no key")]
fn an_empty_cache_panics() {
    Quest::new(16, 64).mask(&PageBounds::new(16, 1, 1, 4), &normal(1, [1, 1, 1, 4]));
}

#[test]
#[should_panic(expected = "PageBounds::append: keys must be")]
fn appending_keys_of_another_shape_panics() {
    PageBounds::new(4, 1, 2, 4).append(&normal(1, [1, 1, 1, 4]));
}
