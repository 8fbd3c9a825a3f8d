//! The gather kernel and the dispatcher against the dense masked oracle.

use burn::prelude::*;
use burn::tensor::Distribution;
use proptest::prelude::*;

use super::*;
use crate::{AttentionLayout, AttentionProblem, BlockEntry, BlockSize, MaskParts, SparseMask};

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn problem(
    dims: [usize; 4],
    layout: AttentionLayout,
    seed: u64,
    device: &Device,
) -> AttentionProblem {
    let [b, h, hk, d] = dims;
    device.seed(seed);
    let n = Distribution::Normal(0.0, 1.0);
    AttentionProblem::new(
        Tensor::random([b, h, layout.q_len, d], n, device),
        Tensor::random([b, hk, layout.k_len, d], n, device),
        Tensor::random([b, hk, layout.k_len, d + 1], n, device),
        layout,
    )
}

/// A seeded pseudo-random keep bitmap of `len` cells with keep probability `p`.
fn bitmap(len: usize, p: f64, seed: u64) -> Vec<bool> {
    (0..len)
        .map(|i| {
            let x = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            (x % 1000) as f64 / 1000.0 < p
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(g.is_finite(), "non-finite output {g}");
        assert!((g - w).abs() <= 1e-4 + 1e-4 * w.abs(), "{g} vs {w}");
    }
}

/// Which representation the test mask uses.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// Full and partial blocks, as `from_dense` makes them.
    Blocks,
    /// Per-row columns only (`to_element`).
    Columns,
    /// Some whole blocks plus extra columns (vertical-slash's shape).
    Mixed,
}

fn make_mask(
    layout: AttentionLayout,
    block: BlockSize,
    batch: usize,
    heads: usize,
    p: f64,
    seed: u64,
    form: Form,
) -> SparseMask {
    let cells = batch * heads * layout.q_len * layout.k_len;
    let dense =
        SparseMask::from_dense(layout, block, batch, heads, &bitmap(cells, p, seed)).unwrap();
    match form {
        Form::Blocks => dense,
        Form::Columns => dense.to_element(),
        Form::Mixed => {
            let n_qb = layout.q_len.div_ceil(block.q);
            let n_kb = layout.k_len.div_ceil(block.k);
            let groups = batch * heads * n_qb;
            let pick = bitmap(groups * n_kb, p, seed ^ 7);
            let blocks = (0..groups)
                .map(|g| {
                    (0..n_kb)
                        .filter(|&kb| pick[g * n_kb + kb])
                        .map(|kb| BlockEntry::full(kb as u32))
                        .collect()
                })
                .collect();
            let rows = batch * heads * layout.q_len;
            let pick = bitmap(rows * layout.k_len, p, seed ^ 11);
            let columns = (0..rows)
                .map(|r| {
                    (0..layout.k_len)
                        .filter(|&j| pick[r * layout.k_len + j])
                        .map(|j| j as u32)
                        .collect()
                })
                .collect();
            SparseMask::from_parts(MaskParts {
                layout,
                block,
                batch,
                heads,
                blocks,
                columns,
            })
            .unwrap()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn gather_equals_masked_dense_for_any_mask(
        q_len in 1usize..12, extra in 0usize..6, causal: bool, seed in 0u64..10_000,
        head_form in 0usize..3, batch_one: bool, pad: bool, p in 0.0f64..1.0,
        bq in 1usize..5, bk in 1usize..5, form in 0usize..3,
    ) {
        let device = Device::flex();
        let k_len = q_len + extra;
        let layout = if causal {
            AttentionLayout::causal_suffix(q_len, k_len)
        } else {
            AttentionLayout::full(q_len, k_len)
        };
        let (b, h, hk) = (2, 6, 2);
        let heads = [1, hk, h][head_form];
        let mb = if batch_one { 1 } else { b };
        let form = [Form::Blocks, Form::Columns, Form::Mixed][form];
        let mask = make_mask(layout, BlockSize::new(bq, bk), mb, heads, p, seed, form);
        let mut prob = problem([b, h, hk, 4], layout, seed, &device);
        if pad {
            let padding: Vec<bool> = (0..b * k_len).map(|i| i % k_len == (seed as usize) % k_len).collect();
            prob = prob.with_key_padding(Tensor::from_data(TensorData::new(padding, [b, k_len]), &device));
        }
        let want = host(masked_dense_attention(&prob, &mask));
        for got in [host(gather_attention(&prob, &mask)), host(host_gather_attention(&prob, &mask))] {
            for (g, w) in got.iter().zip(&want) {
                prop_assert!(g.is_finite());
                prop_assert!((g - w).abs() <= 1e-4 + 1e-4 * w.abs(), "{g} vs {w} ({form:?})");
            }
        }
        // The dispatcher gives the same result whichever kernel it picks.
        for crossover in [Crossover::ALWAYS_GATHER, Crossover { blocks: 0.0, columns: 0.0, host_columns: None }, Crossover { blocks: 0.0, columns: 0.0, host_columns: Some(f64::INFINITY) }, Crossover::default()] {
            let out = host(sparse_attention(&prob, &mask, crossover));
            for (g, w) in out.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-4 + 1e-4 * w.abs());
            }
        }
    }
}

#[test]
fn an_empty_mask_gives_zeros_and_a_full_one_dense_attention() {
    let device = Device::flex();
    for layout in [
        AttentionLayout::causal(9),
        AttentionLayout::causal_suffix(3, 10),
        AttentionLayout::full(5, 7),
    ] {
        let p = problem([2, 4, 2, 8], layout, 5, &device);
        let empty = SparseMask::empty(layout, BlockSize::square(4), 1, 1);
        assert!(host(gather_attention(&p, &empty)).iter().all(|&x| x == 0.0));
        let full = SparseMask::all(layout, BlockSize::new(2, 3), 1, 2);
        assert_close(
            &host(gather_attention(&p, &full)),
            &host(dense_attention(&p)),
        );
    }
}

#[test]
fn chunks_split_long_problems_without_changing_the_result() {
    // 1 × 2 heads × 600 queries of block 1 against 600 keys in blocks of 64: several chunks of
    // the 2^24-slot budget would need far more; force many units instead with block_q 1.
    let device = Device::flex();
    let layout = AttentionLayout::causal(600);
    let p = problem([1, 2, 1, 4], layout, 9, &device);
    let mask = make_mask(layout, BlockSize::new(1, 64), 1, 1, 0.5, 3, Form::Blocks);
    let plan = GatherPlan::new(&mask, 1, 2, 1);
    assert_eq!(
        plan.stacked_heads, 2,
        "a mask shared by the GQA group stacks its heads"
    );
    assert_eq!(plan.units(), 600);
    assert_close(
        &host(gather_attention(&p, &mask)),
        &host(masked_dense_attention(&p, &mask)),
    );
}

#[test]
fn gradients_through_gather_equal_the_dense_masked_gradients() {
    let device = Device::flex().autodiff();
    let layout = AttentionLayout::causal(10);
    let base = problem([2, 4, 2, 4], layout, 21, &Device::flex());
    let mask = make_mask(layout, BlockSize::new(3, 2), 1, 2, 0.4, 17, Form::Mixed);
    let leaf = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &device).require_grad();
    let grads_of = |gather: bool| {
        let (q, k, v) = (leaf(&base.q), leaf(&base.k), leaf(&base.v));
        let p = AttentionProblem::new(q.clone(), k.clone(), v.clone(), layout);
        let out = if gather {
            gather_attention(&p, &mask)
        } else {
            masked_dense_attention(&p, &mask)
        };
        let weights = Tensor::<4>::from_data(
            Tensor::<4>::random(out.dims(), Distribution::Normal(0.0, 1.0), &Device::flex())
                .to_data(),
            &device,
        );
        let grads = (out * weights).sum().backward();
        [q, k, v].map(|t| {
            t.grad(&grads)
                .expect("gradient")
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        })
    };
    Device::flex().seed(1);
    let dense = grads_of(false);
    Device::flex().seed(1);
    let gather = grads_of(true);
    for (g, d) in gather.iter().zip(&dense) {
        assert_close(g, d);
    }
}

#[test]
fn the_dispatcher_gathers_sparse_masks_and_falls_back_above_the_crossover() {
    let device = Device::flex();
    let layout = AttentionLayout::causal(256);
    let p = problem([1, 2, 2, 8], layout, 2, &device);
    let block = BlockSize::square(32);
    // One diagonal block per query block: 8 of 36 valid blocks.
    let diag = SparseMask::from_parts(MaskParts {
        layout,
        block,
        batch: 1,
        heads: 1,
        blocks: (0..8).map(|qb| vec![BlockEntry::full(qb)]).collect(),
        columns: Vec::new(),
    })
    .unwrap();
    let (choice, _) = choose_kernel(&p, &diag, Crossover::default());
    match choice {
        KernelChoice::Gather { work } => assert!((0.0..0.3).contains(&work), "{work}"),
        other => panic!("expected gather, got {other:?}"),
    }
    let full = SparseMask::all(layout, block, 1, 1);
    let (choice, _) = choose_kernel(&p, &full, Crossover::default());
    assert!(
        matches!(choice, KernelChoice::Dense { work } if work > 1.0),
        "{choice:?}"
    );
    // Columns are judged by the column crossover.
    let cols = diag.to_element();
    let (choice, _) = choose_kernel(
        &p,
        &cols,
        Crossover {
            blocks: 1.0,
            columns: 0.0,
            host_columns: None,
        },
    );
    assert!(matches!(choice, KernelChoice::Dense { .. }), "{choice:?}");
    let host_first = Crossover {
        blocks: 1.0,
        columns: 0.0,
        host_columns: Some(1.0),
    };
    let (choice, _) = choose_kernel(&p, &cols, host_first);
    assert!(matches!(choice, KernelChoice::Host { .. }), "{choice:?}");
    // Never the host kernel when autodiff tracks an input: it has no backward.
    let ad = Device::flex().autodiff();
    let tracked = AttentionProblem::new(
        Tensor::<4>::from_data(p.q.to_data(), &ad).require_grad(),
        Tensor::<4>::from_data(p.k.to_data(), &ad),
        Tensor::<4>::from_data(p.v.to_data(), &ad),
        layout,
    );
    let (choice, _) = choose_kernel(&tracked, &cols, host_first);
    assert!(!matches!(choice, KernelChoice::Host { .. }), "{choice:?}");
}
