use burn::prelude::*;
use proptest::prelude::*;

use super::*;
use crate::estimator::host::host_f32;
use crate::estimator::test_util::{host_probs, problem, tensor4};
use crate::kernel::{dense_attention, masked_dense_attention};
use crate::schedule::StepAction;

fn kept(m: &SparseMask, b: usize, h: usize, qb: usize) -> Vec<u32> {
    m.blocks(b, h, qb).map(|blk| blk.index).collect()
}

/// Two heads (one KV head each), head dim 1: head 0's queries are 0 (uniform attention), head
/// 1's are `q1` with keys `ln w`, so its logits under a scale of `1/q1` are `ln w` and its
/// attention is `w / Σw`.
fn golden(w: &[f64], q1: f32) -> AttentionProblem {
    let t = w.len();
    let mut q = vec![0f32; t];
    q.extend(std::iter::repeat_n(q1, t));
    let mut k = vec![0f32; t];
    k.extend(w.iter().map(|&x| x.ln() as f32));
    let v = vec![1f32; 2 * t];
    AttentionProblem::new(
        tensor4(q, [1, 2, t, 1]),
        tensor4(k, [1, 2, t, 1]),
        tensor4(v, [1, 2, t, 1]),
        AttentionLayout::full(t, t),
    )
}

#[test]
fn tile_means_divide_by_the_whole_tile_including_padding() {
    // 7 tokens, blocks of 2: the last query block has one row, the last key block one key.
    let w = [10.0, 10.0, 10.0, 10.0, 1.0, 1.0, 2.0];
    let (a, b, c) = (1.0 / 7.0, 1.0 / 14.0, 1.0 / 28.0);
    #[rustfmt::skip]
    let head0 = [
        a, a, a, b,
        a, a, a, b,
        a, a, a, b,
        b, b, b, c,
    ];
    let r = |x: f64| x / 44.0;
    #[rustfmt::skip]
    let head1 = [
        r(10.0), r(10.0), r(1.0), r(1.0),
        r(10.0), r(10.0), r(1.0), r(1.0),
        r(10.0), r(10.0), r(1.0), r(1.0),
        r(5.0), r(5.0), r(0.5), r(0.5),
    ];
    // The reference's 1/√H (H = 2) with q = √2, and 1/√d (d = 1) with q = 1: the same logits.
    for (scale, q1) in [
        (SparsedScale::InverseSqrtHeads, 2f32.sqrt()),
        (SparsedScale::InverseSqrtHeadDim, 1.0),
    ] {
        let est = Sparsed::new(2, 0.3).with_scale(scale);
        let got = est.block_importance(&golden(&w, q1), 0);
        assert_eq!(got.len(), 32);
        for (g, want) in got.iter().zip(head0.iter().chain(&head1)) {
            approx::assert_relative_eq!(*g as f64, *want, epsilon = 1e-6, max_relative = 1e-5);
        }
    }
}

#[test]
fn the_scale_is_the_reference_quirk_or_the_head_dim() {
    let p = problem(1, [1, 4, 2, 9, 3], AttentionLayout::full(5, 5));
    approx::assert_relative_eq!(Sparsed::new(2, 0.5).score_scale(&p), 0.5);
    let est = Sparsed::new(2, 0.5).with_scale(SparsedScale::InverseSqrtHeadDim);
    approx::assert_relative_eq!(est.score_scale(&p), 1.0 / 3.0);
    // Different temperatures give different importances.
    let a = Sparsed::new(2, 0.5).block_importance(&p, 0);
    let b = est.block_importance(&p, 0);
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4));
}

#[test]
fn isolated_selection_gives_generated_keys_their_own_budget() {
    // Prompt keys 0..4 carry most of the mass; the generated keys 4..8 are tiny.
    let w = [10.0, 10.0, 10.0, 10.0, 1.0, 1.0, 2.0, 2.0];
    let p = golden(&w, 2f32.sqrt());
    let est = Sparsed::new(2, 0.3);
    // One selection: ⌊4 · 0.3⌋ + 1 = 2 blocks, the two prompt blocks for head 1 (ties: lower
    // index, so also blocks 0 and 1 for the uniform head 0).
    let single = est.mask(&p, None);
    for qb in 0..4 {
        assert_eq!(kept(&single, 0, 0, qb), vec![0, 1]);
        assert_eq!(kept(&single, 0, 1, qb), vec![0, 1]);
    }
    // Prompt of 4 keys: last = 2. Prompt part {0, 1}; generation part: a softmax over keys 4..8
    // alone (weights 1, 1, 2, 2 → tiles 1/6, 1/3), ⌊2 · 0.3⌋ + 1 = 1 block: block 3 for head 1,
    // block 2 for the uniform head 0.
    assert_eq!(est.generation_start_block(8, 4), 2);
    let generated = est.block_importance(&p, 4);
    approx::assert_relative_eq!(generated[4 * 2], 1.0 / 6.0, epsilon = 1e-6);
    approx::assert_relative_eq!(generated[4 * 2 + 1], 1.0 / 3.0, epsilon = 1e-6);
    let iso = est.mask(&p, Some(4));
    for qb in 0..4 {
        assert_eq!(kept(&iso, 0, 0, qb), vec![0, 1, 2]);
        assert_eq!(kept(&iso, 0, 1, qb), vec![0, 1, 3]);
    }
    // A prompt ending inside block 2 makes block 3 the first generation block; a prompt
    // covering everything leaves the final block as the generation part.
    assert_eq!(est.generation_start_block(8, 5), 3);
    assert_eq!(est.generation_start_block(8, 8), 3);
    assert_eq!(est.generation_start_block(8, 0), 0);
    let iso = est.mask(&p, Some(5));
    assert_eq!(kept(&iso, 0, 1, 0), vec![0, 1, 3]);
    // A prompt of 0: the prompt part is empty, the generation part is the single selection.
    assert_eq!(est.mask(&p, Some(0)), single);
}

#[test]
fn heads_get_their_own_masks() {
    // Head 0 attends keys 6..8, head 1 keys 0..2 (by planted key norms).
    let mut w0 = [1.0f64; 8];
    w0[6] = 50.0;
    w0[7] = 50.0;
    let t = 8;
    let q = vec![2f32.sqrt(); 2 * t];
    let k: Vec<f32> = w0
        .iter()
        .chain(w0.iter().rev())
        .map(|&x| x.ln() as f32)
        .collect();
    let p = AttentionProblem::new(
        tensor4(q, [1, 2, t, 1]),
        tensor4(k, [1, 2, t, 1]),
        tensor4(vec![1.0; 2 * t], [1, 2, t, 1]),
        AttentionLayout::full(t, t),
    );
    let m = Sparsed::new(2, 0.0).mask(&p, None);
    for qb in 0..4 {
        assert_eq!(kept(&m, 0, 0, qb), vec![3]);
        assert_eq!(kept(&m, 0, 1, qb), vec![0]);
    }
}

#[test]
fn importance_is_the_tiled_softmax_of_the_definition() {
    let p = problem(7, [2, 4, 2, 3, 2], AttentionLayout::full(11, 13));
    for bs in [1, 3, 4, 16] {
        let est = Sparsed::new(bs, 0.5);
        for key_start in [0, bs.min(13), 13] {
            let got = est.block_importance(&p, key_start);
            let sub = 13 - key_start;
            let (n_qb, n_kb) = (11usize.div_ceil(bs), sub.div_ceil(bs));
            let k = p.k.clone().slice([0..2, 0..2, key_start..13, 0..3]);
            let v = p.v.clone().slice([0..2, 0..2, key_start..13, 0..2]);
            let sub_p = AttentionProblem::new(p.q.clone(), k, v, AttentionLayout::full(11, sub))
                .with_scale(est.score_scale(&p));
            let probs = host_probs(&sub_p, None);
            assert_eq!(got.len(), 2 * 4 * n_qb * n_kb);
            for bh in 0..8 {
                for qb in 0..n_qb {
                    for kb in 0..n_kb {
                        let mut s = 0f64;
                        for i in qb * bs..((qb + 1) * bs).min(11) {
                            for j in kb * bs..((kb + 1) * bs).min(sub) {
                                s += probs[(bh * 11 + i) * sub + j];
                            }
                        }
                        let want = s / (bs * bs) as f64;
                        let g = got[(bh * n_qb + qb) * n_kb + kb] as f64;
                        approx::assert_abs_diff_eq!(g, want, epsilon = 1e-6);
                    }
                }
            }
        }
    }
}

#[test]
fn padded_key_blocks_are_no_candidates() {
    let p = problem(3, [1, 2, 1, 4, 4], AttentionLayout::full(8, 8));
    let pad: Vec<bool> = (0..8).map(|j| j >= 6).collect();
    let p = p.with_key_padding(Tensor::from_data(
        TensorData::new(pad, [1, 8]),
        &Device::flex(),
    ));
    // Ratio 1: ⌊3⌋ + 1 = 4 of the 3 live blocks → all 3; block 3 holds only padding.
    let m = Sparsed::new(2, 1.0).mask(&p, None);
    for h in 0..2 {
        for qb in 0..4 {
            assert_eq!(kept(&m, 0, h, qb), vec![0, 1, 2]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn keep_ratios_hold_per_head_and_query_block(
        tq in 1usize..24, tk in 1usize..30, bs in 1usize..6, ratio_pct in 0u32..=100,
        prompt in proptest::option::of(0usize..30), seed in 0u64..1000,
    ) {
        let p = problem(seed, [2, 4, 2, 3, 3], AttentionLayout::full(tq, tk));
        let ratio = ratio_pct as f64 / 100.0;
        let est = Sparsed::new(bs, ratio);
        let single = est.mask(&p, None);
        let n_kb = tk.div_ceil(bs);
        let budget = Budget::KeepRatio(ratio);
        prop_assert_eq!(single.block_size(), BlockSize::square(bs));
        prop_assert_eq!((single.batch(), single.heads()), (2, 4));
        for b in 0..2 {
            for h in 0..4 {
                for qb in 0..tq.div_ceil(bs) {
                    prop_assert_eq!(single.block_count(b, h, qb), budget.fixed_size(n_kb).unwrap());
                }
            }
        }
        if let Some(pl) = prompt {
            let pl = pl.min(tk);
            let last = est.generation_start_block(tk, pl);
            let iso = est.mask(&p, Some(pl));
            for b in 0..2 {
                for h in 0..4 {
                    for qb in 0..tq.div_ceil(bs) {
                        let got = kept(&iso, b, h, qb);
                        let one = kept(&single, b, h, qb);
                        let (prompt_part, gen_part): (Vec<u32>, Vec<u32>) =
                            got.iter().partition(|&&kb| (kb as usize) < last);
                        // The prompt part is the single selection below `last`, the generation
                        // part exactly its own keep ratio of the blocks from `last` on.
                        let want: Vec<u32> = one.into_iter().filter(|&kb| (kb as usize) < last).collect();
                        prop_assert_eq!(prompt_part, want);
                        prop_assert_eq!(gen_part.len(), budget.fixed_size(n_kb - last).unwrap());
                    }
                }
            }
        }
    }
}

#[test]
fn the_layer_state_follows_the_sparsed_schedule() {
    let est = Sparsed::new(2, 0.3);
    let total = 10;
    let mut layer = SparsedAttention::sparsed(est, total, 4);
    let expected = Schedule::sparsed(total, 0.2).actions(total);
    assert_eq!(layer.schedule, Schedule::sparsed(total, 0.2));
    let steps: Vec<AttentionProblem> = (0..total as u64)
        .map(|s| problem(100 + s, [1, 2, 1, 4, 3], AttentionLayout::full(9, 9)))
        .collect();
    let mut built: Option<SparseMask> = None;
    let mut reused_differs = false;
    for (step, p) in steps.iter().enumerate() {
        let out = host_f32(layer.forward(step, p));
        let action = expected[step];
        match action {
            StepAction::Dense => {
                assert!(step < 3 && layer.mask().is_none(), "step {step}");
                assert_eq!(out, host_f32(dense_attention(p)));
            }
            StepAction::DenseAndBuild => {
                assert_eq!(step, 3, "E = ⌊10 · 0.2⌋ + 1");
                let want = est.mask(p, Some(4));
                assert_eq!(layer.mask(), Some(&want));
                assert_eq!(out, host_f32(dense_attention(p)));
                built = Some(want);
            }
            StepAction::Reuse => {
                let m = built.as_ref().expect("built before reuse");
                assert_eq!(layer.mask(), Some(m), "step {step} keeps the step-3 mask");
                assert_eq!(out, host_f32(masked_dense_attention(p, m)));
                reused_differs |= est.mask(p, Some(4)) != *m;
            }
        }
    }
    assert!(
        reused_differs,
        "some later step would have built another mask"
    );
    // A new generation starts at step 0 and clears the mask; plan reports the schedule's action.
    assert_eq!(layer.plan(0, &steps[0]), StepAction::Dense);
    assert!(layer.mask().is_none());
}

#[test]
#[should_panic(expected = "none was built since step 0")]
fn reusing_before_any_build_panics() {
    let mut layer = SparsedAttention::sparsed(Sparsed::new(2, 0.3), 10, 4);
    let p = problem(1, [1, 1, 1, 2, 2], AttentionLayout::full(4, 4));
    layer.forward(7, &p);
}

#[test]
#[should_panic(expected = "bidirectional attention")]
fn causal_layouts_are_refused() {
    let p = problem(1, [1, 1, 1, 2, 2], AttentionLayout::causal(4));
    Sparsed::new(2, 0.3).mask(&p, None);
}
