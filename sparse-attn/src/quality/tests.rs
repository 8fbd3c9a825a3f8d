use approx::assert_abs_diff_eq;
use proptest::prelude::*;

use super::*;
use crate::kernel::{dense_attention, masked_dense_attention};
use crate::layout::AttentionLayout;
use crate::mask::BlockSize;

/// Deterministic values in [-1, 1) from a seed (SplitMix64).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn tensor(v: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v, shape), &Device::flex())
}

/// A seeded problem: `[b, kv·group, tq, d]` queries over `[b, kv, tk, d]` keys.
#[allow(clippy::too_many_arguments)]
fn problem(
    seed: u64,
    b: usize,
    kv: usize,
    group: usize,
    tq: usize,
    tk: usize,
    causal: bool,
    spread: f32,
) -> AttentionProblem {
    let d = 4;
    let h = kv * group;
    let layout = if causal {
        AttentionLayout::causal_suffix(tq, tk)
    } else {
        AttentionLayout::full(tq, tk)
    };
    let q = values(seed, b * h * tq * d)
        .into_iter()
        .map(|x| x * spread)
        .collect();
    AttentionProblem::new(
        tensor(q, [b, h, tq, d]),
        tensor(values(seed ^ 1, b * kv * tk * d), [b, kv, tk, d]),
        tensor(values(seed ^ 2, b * kv * tk * d), [b, kv, tk, d]),
        layout,
    )
}

/// Dense probabilities on the host, `[b, h, tq, tk]` (0 at invalid cells), in f64.
fn dense_probs(p: &AttentionProblem) -> Vec<f64> {
    let [b, h, tq, d] = p.q.dims();
    let tk = p.layout.k_len;
    let group = p.group_size();
    let q: Vec<f32> = host(p.q.clone());
    let k: Vec<f32> = host(p.k.clone());
    let kv = h / group;
    let mut out = vec![0.0f64; b * h * tq * tk];
    for bi in 0..b {
        for hi in 0..h {
            for i in 0..tq {
                let valid = p.layout.valid_keys(i);
                let qi = &q[((bi * h + hi) * tq + i) * d..][..d];
                let s: Vec<f64> = (0..valid)
                    .map(|j| {
                        let kj = &k[((bi * kv + hi / group) * tk + j) * d..][..d];
                        qi.iter()
                            .zip(kj)
                            .map(|(&a, &b)| f64::from(a * b))
                            .sum::<f64>()
                            * p.scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for (j, x) in s.iter().enumerate() {
                    out[((bi * h + hi) * tq + i) * tk + j] = (x - m).exp() / z;
                }
            }
        }
    }
    out
}

/// Per query row, the `n` most probable valid keys (`n` = `counts[row]`).
fn top_rows(p: &AttentionProblem, counts: &[usize]) -> Vec<Vec<u32>> {
    let tk = p.layout.k_len;
    let probs = dense_probs(p);
    let tq = p.layout.q_len;
    counts
        .iter()
        .enumerate()
        .map(|(row, &n)| {
            let valid = p.layout.valid_keys(row % tq);
            let r = &probs[row * tk..row * tk + valid];
            let mut idx: Vec<u32> = (0..valid as u32).collect();
            idx.sort_by(|&a, &b| r[b as usize].total_cmp(&r[a as usize]));
            idx.truncate(n);
            idx
        })
        .collect()
}

fn per_query_head_mask(p: &AttentionProblem, keep: &[bool]) -> SparseMask {
    let [b, h, _, _] = p.q.dims();
    SparseMask::from_dense(p.layout, BlockSize::new(3, 2), b, h, keep).unwrap()
}

fn shapes() -> impl Strategy<Value = (u64, usize, usize, usize, usize, usize, bool)> {
    (
        any::<u64>(),
        1usize..3,
        1usize..3,
        1usize..3,
        1usize..9,
        0usize..4,
        any::<bool>(),
    )
        .prop_map(|(seed, b, kv, g, tq, extra, causal)| (seed, b, kv, g, tq, tq + extra, causal))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_full_mask_recalls_everything_exactly(
        (seed, b, kv, g, tq, tk, causal) in shapes(),
        chunk in 1usize..5,
    ) {
        let p = problem(seed, b, kv, g, tq, tk, causal, 3.0);
        let full = SparseMask::all(p.layout, BlockSize::square(2), 1, 1);
        let dense = dense_attention(&p);
        let r = evaluate_masks(
            &p,
            &[Candidate::new(&full), Candidate::with_output(&full, dense)],
            &QualityOptions { query_chunk: chunk },
        );
        for q in &r {
            let o = q.overall;
            prop_assert!((o.recall_mean - 1.0).abs() < 1e-5, "{o:?}");
            prop_assert!((o.recall_min - 1.0).abs() < 1e-5);
            prop_assert_eq!(o.oracle_recall, 1.0);
            prop_assert!(o.kl_mean.abs() < 1e-5);
            prop_assert!(o.output_rel_error < 1e-5, "{o:?}");
            prop_assert_eq!(o.density, 1.0);
            prop_assert_eq!(o.empty_rows, 0);
            prop_assert_eq!(o.rows, (b * kv * g * tq) as u64);
        }
    }

    #[test]
    fn metrics_stay_in_range_and_match_the_masked_oracle(
        (seed, b, kv, g, tq, tk, causal) in shapes(),
        keep_seed in any::<u64>(),
        rate in 0.0f32..1.0,
        chunk in 1usize..5,
    ) {
        let p = problem(seed, b, kv, g, tq, tk, causal, 2.0);
        let h = kv * g;
        let keep: Vec<bool> = values(keep_seed, b * h * tq * tk)
            .into_iter()
            .map(|x| (x + 1.0) / 2.0 < rate)
            .collect();
        let mask = per_query_head_mask(&p, &keep);
        let oracle_out = masked_dense_attention(&p, &mask);
        let r = evaluate_masks(
            &p,
            &[Candidate::new(&mask), Candidate::with_output(&mask, oracle_out)],
            &QualityOptions { query_chunk: chunk },
        );
        let (own, given) = (&r[0], &r[1]);
        for q in own.per_head.iter().chain(std::iter::once(&own.overall)) {
            prop_assert!(q.recall_min >= 0.0 && q.recall_min <= q.recall_p5 + 1e-12);
            prop_assert!(q.recall_mean <= 1.0 + 1e-9);
            prop_assert!((0.0..=1.0).contains(&q.oracle_recall));
            prop_assert!(q.kl_mean >= 0.0);
            prop_assert!((0.0..=1.0).contains(&q.density));
        }
        // The exact masked output computed in chunks is masked_dense_attention's.
        prop_assert!(
            (own.overall.output_rel_error - given.overall.output_rel_error).abs() < 1e-4,
            "{} vs {}", own.overall.output_rel_error, given.overall.output_rel_error
        );
        prop_assert_eq!(own.overall.recall_mean, given.overall.recall_mean);
        // Density counts what the mask keeps.
        prop_assert!((own.overall.density - mask.density().overall()).abs() < 1e-12);
    }

    #[test]
    fn the_oracle_has_the_best_recall_for_its_row_sizes(
        (seed, b, kv, g, tq, tk, causal) in shapes(),
        keep_seed in any::<u64>(),
        rate in 0.0f32..1.0,
    ) {
        let p = problem(seed, b, kv, g, tq, tk, causal, 4.0);
        let h = kv * g;
        let keep: Vec<bool> = values(keep_seed, b * h * tq * tk)
            .into_iter()
            .map(|x| (x + 1.0) / 2.0 < rate)
            .collect();
        let mask = per_query_head_mask(&p, &keep);
        let counts: Vec<usize> = (0..b * h * tq)
            .map(|row| mask.row_count(row / (h * tq), (row / tq) % h, row % tq))
            .collect();
        let oracle = SparseMask::from_rows(p.layout, BlockSize::new(3, 2), b, h, top_rows(&p, &counts)).unwrap();
        let r = evaluate_masks(
            &p,
            &[Candidate::new(&mask), Candidate::new(&oracle)],
            &QualityOptions::default(),
        );
        for (m, o) in r[0].per_head.iter().zip(&r[1].per_head) {
            prop_assert!(o.recall_mean >= m.recall_mean - 1e-6, "{o:?} vs {m:?}");
            prop_assert!(o.oracle_recall >= m.oracle_recall - 1e-9);
            prop_assert!((o.density - m.density).abs() < 1e-12);
        }
    }
}

#[test]
fn the_oracle_of_well_separated_scores_has_oracle_recall_one() {
    // Keys on a grid along one axis and queries pointing along it: no two probabilities of a
    // row are close, so the host and burn agree on every top-k.
    let (tq, tk, d) = (6, 9, 2);
    let mut q = vec![0.0f32; tq * d];
    let mut k = vec![0.0f32; tk * d];
    for i in 0..tq {
        q[i * d] = 1.0 + i as f32 * 0.5;
    }
    for j in 0..tk {
        k[j * d] = ((j * 5) % tk) as f32 * 0.7 - 3.0;
        k[j * d + 1] = 1.0;
    }
    let v = values(7, tk * d);
    let p = AttentionProblem::new(
        tensor(q, [1, 1, tq, d]),
        tensor(k, [1, 1, tk, d]),
        tensor(v, [1, 1, tk, d]),
        AttentionLayout::full(tq, tk),
    );
    for n in 1..=tk {
        let oracle = SparseMask::from_rows(
            p.layout,
            BlockSize::square(4),
            1,
            1,
            top_rows(&p, &vec![n; tq]),
        )
        .unwrap();
        let q = mask_quality(&p, &oracle);
        assert_eq!(q.overall.oracle_recall, 1.0, "n = {n}");
        assert_abs_diff_eq!(q.overall.density, n as f64 / tk as f64, epsilon = 1e-12);
    }
    // The two least probable keys share nothing with the top two.
    let worst: Vec<Vec<u32>> = top_rows(&p, &vec![tk; tq])
        .into_iter()
        .map(|r| r[tk - 2..].to_vec())
        .collect();
    let worst = SparseMask::from_rows(p.layout, BlockSize::square(4), 1, 1, worst).unwrap();
    assert_eq!(mask_quality(&p, &worst).overall.oracle_recall, 0.0);
}

#[test]
fn one_kept_key_has_its_probability_as_recall_and_its_value_as_output() {
    // Two keys with scores 0 and ln 3: p = (1/4, 3/4). Keeping key 0 only: recall 1/4,
    // KL = ln 4, output = v0.
    let ln3 = 3.0f32.ln();
    let p = AttentionProblem::new(
        tensor(vec![1.0], [1, 1, 1, 1]),
        tensor(vec![0.0, ln3], [1, 1, 2, 1]),
        tensor(vec![2.0, 6.0], [1, 1, 2, 1]),
        AttentionLayout::full(1, 2),
    )
    .with_scale(1.0);
    let mask = SparseMask::from_rows(p.layout, BlockSize::square(1), 1, 1, vec![vec![0]]).unwrap();
    let q = mask_quality(&p, &mask).overall;
    assert_abs_diff_eq!(q.recall_mean, 0.25, epsilon = 1e-6);
    assert_abs_diff_eq!(q.kl_mean, 4.0f64.ln(), epsilon = 1e-5);
    assert_eq!(q.oracle_recall, 0.0);
    assert_abs_diff_eq!(q.density, 0.5);
    // Dense output 0.25·2 + 0.75·6 = 5, sparse 2: |2 − 5| / 5.
    assert_abs_diff_eq!(q.output_rel_error, 0.6, epsilon = 1e-5);
}

#[test]
fn an_empty_mask_has_zero_recall_and_full_output_error() {
    let p = problem(3, 1, 1, 2, 5, 5, true, 1.0);
    let empty = SparseMask::empty(p.layout, BlockSize::square(2), 1, 1);
    let q = mask_quality(&p, &empty);
    assert_eq!(q.overall.recall_mean, 0.0);
    assert_eq!(q.overall.empty_rows, 10);
    assert_abs_diff_eq!(q.overall.output_rel_error, 1.0, epsilon = 1e-6);
    assert_eq!(q.head(0, 1).density, 0.0);
}

#[test]
fn padded_keys_are_neither_valid_nor_kept() {
    let p = problem(11, 2, 1, 1, 4, 4, false, 1.0);
    let pad = Tensor::<2, Bool>::from_data(
        TensorData::new(
            vec![false, false, true, true, false, false, false, false],
            [2, 4],
        ),
        &Device::flex(),
    );
    let p = p.with_key_padding(pad);
    let full = SparseMask::all(p.layout, BlockSize::square(2), 1, 1);
    let q = mask_quality(&p, &full);
    assert_abs_diff_eq!(q.overall.recall_mean, 1.0, epsilon = 1e-5);
    assert_eq!(q.overall.density, 1.0);
    assert!(q.overall.output_rel_error < 1e-5);
    // Keeping keys 0 and 2: batch 0 keeps one of its 2 valid keys, batch 1 two of its 4.
    let rows = vec![vec![0, 2]; 4 * 2];
    let m = SparseMask::from_rows(p.layout, BlockSize::square(2), 2, 1, rows).unwrap();
    let q = mask_quality(&p, &m);
    assert_abs_diff_eq!(q.head(0, 0).density, 0.5);
    assert_abs_diff_eq!(q.head(1, 0).density, 0.5);
}
