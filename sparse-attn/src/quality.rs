//! Model-free quality of a mask against dense attention: how much attention mass it keeps, how
//! far its output is from the dense one, how close its kept set is to the exact top-k, and what
//! density it achieved (the metrics of the research notes, §3).
//!
//! Everything is computed in query chunks, so the dense `q_len × k_len` probabilities of one
//! problem never exist at once (an 8k-token causal problem with 9 heads holds
//! `9 · chunk · 8192` floats per chunk). Several masks are judged in one pass over the dense
//! probabilities ([`evaluate_masks`]): the scores, softmax and the per-row sort the oracle
//! recall needs are computed once per chunk, not once per mask.
//!
//! Definitions, per query row `i` of query head `h` (keys restricted to the valid, non-padded
//! ones; `p` = dense softmax, `K_i` = the mask's kept keys of the row, `n_i = |K_i|`):
//! - **attention-mass recall** `r_i = Σ_{j∈K_i} p_j` (0 for an empty row);
//! - **oracle recall**: `|K_i ∩ T_i| / n_i` with `T_i` the `n_i` keys of largest `p` (ties at the
//!   `n_i`-th value may be filled by any of the tied keys, so the oracle's own recall is exactly
//!   1 whatever order it broke ties in); rows with `n_i = 0` are left out;
//! - **KL**: the divergence of the renormalised sparse distribution `p̃_j = p_j / r_i`
//!   (`j ∈ K_i`) from the dense one. `KL(p ‖ p̃)`, the other direction, is `+∞` for every row that
//!   drops a key of non-zero mass — every sparse row under an exact softmax — so it cannot rank
//!   masks; we report `KL(p̃ ‖ p) = Σ_{j∈K_i} p̃_j ln(p̃_j / p_j) = −ln r_i`, exactly, averaged
//!   over the non-empty rows (SEA distils with KL on dense estimates, where both directions are
//!   finite);
//! - **output relative error** `‖O_sparse − O_dense‖_F / ‖O_dense‖_F` per head and over all
//!   heads, with `O_sparse` the caller's kernel output or, when none is given,
//!   `Σ_{j∈K_i} p̃_j v_j` (what [`masked_dense_attention`](crate::masked_dense_attention) computes,
//!   empty rows 0);
//! - **density**: kept over valid cells (padded keys excluded from both).

use burn::prelude::*;
use burn::tensor::activation::softmax;
use rayon::prelude::*;

use crate::mask::SparseMask;
use crate::problem::{AttentionProblem, repeat_kv};

/// How [`evaluate_masks`] walks the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QualityOptions {
    /// Query rows per chunk (memory ≈ `batch · heads · query_chunk · k_len` floats, a few times).
    pub query_chunk: usize,
}

impl Default for QualityOptions {
    fn default() -> Self {
        Self { query_chunk: 256 }
    }
}

/// A mask to judge and, optionally, the output a kernel produced under it.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// The mask.
    pub mask: &'a SparseMask,
    /// `[batch, heads, q_len, d_value]`; `None` = the exact masked output (computed here).
    pub output: Option<Tensor<4>>,
}

impl<'a> Candidate<'a> {
    /// A mask, judged with its exact masked output.
    pub fn new(mask: &'a SparseMask) -> Self {
        Self { mask, output: None }
    }

    /// A mask and the output a kernel produced under it.
    pub fn with_output(mask: &'a SparseMask, output: Tensor<4>) -> Self {
        Self {
            mask,
            output: Some(output),
        }
    }
}

/// Quality of a mask for one query head of one batch element (or, in [`MaskQuality`], over all
/// of them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadQuality {
    /// Mean attention-mass recall over the rows.
    pub recall_mean: f64,
    /// Smallest row recall.
    pub recall_min: f64,
    /// 5th percentile of the row recalls (nearest rank).
    pub recall_p5: f64,
    /// Mean overlap with the exact top-`n_i` set, over non-empty rows (1 when every row is empty).
    pub oracle_recall: f64,
    /// Mean `KL(p̃ ‖ p) = −ln r_i` in nats over non-empty rows (see the module docs).
    pub kl_mean: f64,
    /// `‖O_sparse − O_dense‖_F / ‖O_dense‖_F` (0 when the dense output is 0).
    pub output_rel_error: f64,
    /// Kept over valid cells.
    pub density: f64,
    /// Judged rows the mask keeps nothing of (their output is 0).
    pub empty_rows: u64,
    /// Rows judged (rows with at least one valid, non-padded key).
    pub rows: u64,
}

/// Quality of a mask over a whole problem.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskQuality {
    /// Batch size of the problem.
    pub batch: usize,
    /// Query heads of the problem.
    pub heads: usize,
    /// Per (batch, query head), row-major `[batch, heads]`.
    pub per_head: Vec<HeadQuality>,
    /// Over every row of every head (`output_rel_error` over all heads' outputs together).
    pub overall: HeadQuality,
}

impl MaskQuality {
    /// The quality of batch `b`, query head `h`.
    ///
    /// # Panics
    /// If `b` or `h` is out of range.
    pub fn head(&self, b: usize, h: usize) -> &HeadQuality {
        assert!(
            b < self.batch && h < self.heads,
            "MaskQuality::head: expected b < {} and h < {}, found b {b}, h {h}",
            self.batch,
            self.heads
        );
        &self.per_head[b * self.heads + h]
    }
}

/// The quality of one mask with its exact masked output (see [`evaluate_masks`]).
///
/// # Panics
/// As [`evaluate_masks`].
pub fn mask_quality(problem: &AttentionProblem, mask: &SparseMask) -> MaskQuality {
    evaluate_masks(problem, &[Candidate::new(mask)], &QualityOptions::default())
        .pop()
        .expect("one candidate gives one result")
}

/// Per-head running sums of one candidate.
#[derive(Clone, Default)]
struct Acc {
    recalls: Vec<f32>,
    oracle_sum: f64,
    kl_sum: f64,
    nonempty: u64,
    empty: u64,
    err2: f64,
    ref2: f64,
    kept: u64,
    valid: u64,
}

/// What one row contributes to its head's [`Acc`].
#[derive(Clone, Copy)]
struct RowStat {
    recall: f64,
    oracle: f64,
    kept: u64,
    valid: u64,
}

/// Judges every candidate mask against the dense attention of `problem`, in one pass.
///
/// # Panics
/// If the problem's shapes are inconsistent, a mask's layout differs from the problem's, a mask
/// does not broadcast to the problem's batch and heads, a candidate output is not
/// `[batch, heads, q_len, d_value]`, or `options.query_chunk` is 0.
pub fn evaluate_masks(
    problem: &AttentionProblem,
    candidates: &[Candidate<'_>],
    options: &QualityOptions,
) -> Vec<MaskQuality> {
    problem.check();
    assert!(
        options.query_chunk > 0,
        "evaluate_masks: query_chunk expected > 0, found 0"
    );
    let [b, h, tq, _] = problem.q.dims();
    let dv = problem.v.dims()[3];
    let layout = problem.layout;
    let tk = layout.k_len;
    for (n, c) in candidates.iter().enumerate() {
        assert!(
            c.mask.layout() == layout,
            "evaluate_masks: candidate {n}'s mask layout {:?} differs from the problem's {:?}",
            c.mask.layout(),
            layout
        );
        assert!(
            (c.mask.batch() == 1 || c.mask.batch() == b) && h.is_multiple_of(c.mask.heads()),
            "evaluate_masks: candidate {n}'s mask (batch {}, heads {}) does not broadcast to batch {b}, heads {h}",
            c.mask.batch(),
            c.mask.heads()
        );
        if let Some(o) = &c.output {
            assert!(
                o.dims() == [b, h, tq, dv],
                "evaluate_masks: candidate {n}'s output expected {:?}, found {:?}",
                [b, h, tq, dv],
                o.dims()
            );
        }
    }
    let device = problem.q.device();
    let group = problem.group_size();
    let k = repeat_kv(problem.k.clone(), group);
    let v = repeat_kv(problem.v.clone(), group);
    let padding: Option<Vec<bool>> = problem.key_padding.clone().map(|p| {
        p.into_data()
            .convert::<bool>()
            .try_into_vec::<bool>()
            .expect("bool tensor data")
    });
    let padded = |bi: usize, j: usize| padding.as_ref().is_some_and(|p| p[bi * tk + j]);
    let mut accs = vec![vec![Acc::default(); b * h]; candidates.len()];

    for i0 in (0..tq).step_by(options.query_chunk) {
        let i1 = (i0 + options.query_chunk).min(tq);
        let c = i1 - i0;
        // Keys any row of this chunk may see.
        let kmax = if layout.causal {
            layout.valid_keys(i1 - 1)
        } else {
            tk
        };
        if kmax == 0 {
            continue;
        }
        let qc = problem.q.clone().slice(s![.., .., i0..i1, ..]);
        let kc = k.clone().slice(s![.., .., 0..kmax, ..]);
        let vc = v.clone().slice(s![.., .., 0..kmax, ..]);
        let mut invalid = vec![false; b * c * kmax];
        for bi in 0..b {
            for r in 0..c {
                let valid = layout.valid_keys(i0 + r);
                for j in 0..kmax {
                    invalid[(bi * c + r) * kmax + j] = j >= valid || padded(bi, j);
                }
            }
        }
        let invalid =
            Tensor::<4, Bool>::from_data(TensorData::new(invalid, [b, 1, c, kmax]), &device)
                .expand([b, h, c, kmax]);
        let scores = qc
            .matmul(kc.swap_dims(2, 3))
            .mul_scalar(problem.scale)
            .mask_fill(invalid.clone(), f32::NEG_INFINITY);
        // A row without any valid key is NaN after the softmax; filling every invalid cell with
        // 0 clears it (such rows are left out of every statistic).
        let probs = softmax(scores, 3).mask_fill(invalid, 0.0);
        let p: Vec<f32> = host(probs.clone());
        let dense_out: Vec<f32> = host(probs.matmul(vc.clone()));

        // Per row: valid (non-padded) key count and the valid probabilities sorted descending.
        let n_rows = b * h * c;
        let row_valid: Vec<usize> = (0..n_rows)
            .map(|row| {
                let bi = row / (h * c);
                let i = i0 + row % c;
                (0..layout.valid_keys(i).min(kmax))
                    .filter(|&j| !padded(bi, j))
                    .count()
            })
            .collect();
        let mut sorted = vec![0.0f32; n_rows * kmax];
        sorted
            .par_chunks_mut(kmax)
            .enumerate()
            .for_each(|(row, out)| {
                let bi = row / (h * c);
                let i = i0 + row % c;
                let src = &p[row * kmax..(row + 1) * kmax];
                let mut n = 0;
                for (j, &value) in src.iter().enumerate().take(layout.valid_keys(i)) {
                    if !padded(bi, j) {
                        out[n] = value;
                        n += 1;
                    }
                }
                out[..n].sort_unstable_by(|a, b| b.total_cmp(a));
            });

        for (ci, cand) in candidates.iter().enumerate() {
            let mask = cand.mask;
            // Row statistics and (without a caller output) the kept probabilities.
            let want_probs = cand.output.is_none();
            let mut kept_p = if want_probs {
                vec![0.0f32; n_rows * kmax]
            } else {
                Vec::new()
            };
            let stats: Vec<RowStat> = if want_probs {
                kept_p
                    .par_chunks_mut(kmax)
                    .enumerate()
                    .map_init(Vec::new, |keys, (row, out)| {
                        row_stat(
                            mask,
                            (b, h, c, kmax, i0),
                            row,
                            &p,
                            &sorted,
                            &row_valid,
                            &padded,
                            keys,
                            Some(out),
                        )
                    })
                    .collect()
            } else {
                (0..n_rows)
                    .into_par_iter()
                    .map_init(Vec::new, |keys, row| {
                        row_stat(
                            mask,
                            (b, h, c, kmax, i0),
                            row,
                            &p,
                            &sorted,
                            &row_valid,
                            &padded,
                            keys,
                            None,
                        )
                    })
                    .collect()
            };
            let sparse_out: Vec<f32> = match &cand.output {
                Some(o) => host(o.clone().slice(s![.., .., i0..i1, ..])),
                None => {
                    let mut o = host(
                        Tensor::<4>::from_data(TensorData::new(kept_p, [b, h, c, kmax]), &device)
                            .matmul(vc.clone()),
                    );
                    for (row, st) in stats.iter().enumerate() {
                        let scale = if st.recall > 0.0 {
                            (1.0 / st.recall) as f32
                        } else {
                            0.0
                        };
                        o[row * dv..(row + 1) * dv]
                            .iter_mut()
                            .for_each(|x| *x *= scale);
                    }
                    o
                }
            };
            for (row, st) in stats.iter().enumerate() {
                let acc = &mut accs[ci][row / c];
                if st.valid == 0 {
                    continue;
                }
                acc.recalls.push(st.recall as f32);
                acc.kept += st.kept;
                acc.valid += st.valid;
                if st.kept == 0 {
                    acc.empty += 1;
                } else {
                    acc.nonempty += 1;
                    acc.oracle_sum += st.oracle;
                    acc.kl_sum += -st.recall.max(f64::MIN_POSITIVE).ln();
                }
                let (d, s) = (
                    &dense_out[row * dv..(row + 1) * dv],
                    &sparse_out[row * dv..(row + 1) * dv],
                );
                for (&x, &y) in d.iter().zip(s) {
                    acc.err2 += f64::from(y - x).powi(2);
                    acc.ref2 += f64::from(x).powi(2);
                }
            }
        }
    }

    accs.into_iter()
        .map(|per| {
            let mut all = Acc::default();
            let per_head = per
                .iter()
                .map(|a| {
                    all.recalls.extend_from_slice(&a.recalls);
                    all.oracle_sum += a.oracle_sum;
                    all.kl_sum += a.kl_sum;
                    all.nonempty += a.nonempty;
                    all.empty += a.empty;
                    all.err2 += a.err2;
                    all.ref2 += a.ref2;
                    all.kept += a.kept;
                    all.valid += a.valid;
                    summarise(a.clone())
                })
                .collect();
            MaskQuality {
                batch: b,
                heads: h,
                per_head,
                overall: summarise(all),
            }
        })
        .collect()
}

/// One row's statistics; with `kept_out`, also writes the row's kept dense probabilities.
#[allow(clippy::too_many_arguments)]
fn row_stat(
    mask: &SparseMask,
    (b, h, c, kmax, i0): (usize, usize, usize, usize, usize),
    row: usize,
    p: &[f32],
    sorted: &[f32],
    row_valid: &[usize],
    padded: &(impl Fn(usize, usize) -> bool + Sync),
    keys: &mut Vec<u32>,
    kept_out: Option<&mut [f32]>,
) -> RowStat {
    debug_assert!(row < b * h * c);
    let bi = row / (h * c);
    let hi = (row / c) % h;
    let i = i0 + row % c;
    let valid = row_valid[row];
    let (mb, mh) = mask.resolve(bi, hi, h);
    mask.row_keys(mb, mh, i, keys);
    keys.retain(|&j| !padded(bi, j as usize));
    let probs = &p[row * kmax..(row + 1) * kmax];
    let n = keys.len();
    let mut recall = 0.0f64;
    for &j in keys.iter() {
        recall += f64::from(probs[j as usize]);
    }
    if let Some(out) = kept_out {
        for &j in keys.iter() {
            out[j as usize] = probs[j as usize];
        }
    }
    let oracle = if n == 0 {
        0.0
    } else {
        // Top-n threshold; kept keys above it all count, tied keys fill the remaining places.
        let desc = &sorted[row * kmax..row * kmax + valid];
        let t = desc[n - 1];
        let above = desc.partition_point(|&x| x > t);
        let tie_places = n - above;
        let kept_above = keys.iter().filter(|&&j| probs[j as usize] > t).count();
        let kept_tied = keys.iter().filter(|&&j| probs[j as usize] == t).count();
        (kept_above + kept_tied.min(tie_places)) as f64 / n as f64
    };
    RowStat {
        recall: recall.min(1.0),
        oracle,
        kept: n as u64,
        valid: valid as u64,
    }
}

fn summarise(mut a: Acc) -> HeadQuality {
    a.recalls.sort_unstable_by(f32::total_cmp);
    let rows = a.recalls.len() as u64;
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    let recall_sum: f64 = a.recalls.iter().map(|&r| f64::from(r)).sum();
    let p5 = if a.recalls.is_empty() {
        0.0
    } else {
        let rank = ((0.05 * a.recalls.len() as f64).ceil() as usize).max(1);
        f64::from(a.recalls[rank - 1])
    };
    HeadQuality {
        recall_mean: ratio(recall_sum, rows as f64),
        recall_min: a.recalls.first().map_or(0.0, |&r| f64::from(r)),
        recall_p5: p5,
        oracle_recall: if a.nonempty == 0 {
            1.0
        } else {
            a.oracle_sum / a.nonempty as f64
        },
        kl_mean: ratio(a.kl_sum, a.nonempty as f64),
        output_rel_error: ratio(a.err2.sqrt(), a.ref2.sqrt()),
        density: ratio(a.kept as f64, a.valid as f64),
        empty_rows: a.empty,
        rows,
    }
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor data")
}

#[cfg(test)]
mod tests;
