//! The host passes of the k-sparse TopK step, each one parallel sweep over memory:
//!
//! - [`select_dead`]: per token, the `k_aux` best-scoring dead latents (aux-K's selection);
//! - [`token_pass`]: per token, decode the `k` selected rows, the reconstruction error and its
//!   gradient, the gradients of the selected codes (dot products with the same rows while they
//!   are still in cache) and, for aux-K, the same for the `k_aux` dead rows — one pass where
//!   sae-core's separate decode and backward kernels would gather every row twice;
//! - [`latent_pass`]: per latent, the decoder-row gradient and the encoder-row gradient (and the
//!   encoder bias gradient) from the tokens that selected it, main and auxiliary entries
//!   together.
//!
//! Every reduction runs in a fixed order (per-chunk partial sums combined serially), so a step is
//! a deterministic function of its inputs on any thread count — the trainer's bit-identical
//! resume relies on it.

use rayon::prelude::*;
use sae_core::kernels::{axpy, dot};

/// Tokens per rayon task in the per-token passes.
const TOKENS_PER_TASK: usize = 16;

/// For each row of `scores` (`[rows, m]`), the `k_aux` highest-scoring latents among `dead_ids`
/// (ascending latent ids), as `[rows, k_aux]` row-major.
///
/// Ties go to the lower latent id (sae-core's top-k rule), so the chosen set is exactly that of
/// `top_k_rows` on the dead latents' scores; the ids are returned sorted so the decoder rows are
/// then read in address order. An `O(n_dead)` selection per row (`select_nth_unstable_by`): with
/// `k_aux = d_in / 2` a sizeable fraction of the dead latents is kept, where a size-k heap (the
/// right tool for the main top-k) spends most of its time replacing entries.
pub(super) fn select_dead(scores: &[f32], m: usize, dead_ids: &[u32], k_aux: usize) -> Vec<u32> {
    assert!(
        (1..=dead_ids.len()).contains(&k_aux),
        "select_dead: k_aux must be in 1..={}, found {k_aux}",
        dead_ids.len()
    );
    let rows = scores.len() / m;
    let mut out = vec![0u32; rows * k_aux];
    out.par_chunks_mut(k_aux * TOKENS_PER_TASK)
        .enumerate()
        .for_each_init(
            || Vec::with_capacity(dead_ids.len()),
            |buf: &mut Vec<(f32, u32)>, (task, chunk)| {
                for (r, ids) in chunk.chunks_exact_mut(k_aux).enumerate() {
                    let row = &scores[(task * TOKENS_PER_TASK + r) * m..][..m];
                    buf.clear();
                    buf.extend(dead_ids.iter().map(|&i| (rank_key(row[i as usize]), i)));
                    let better =
                        |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
                    if k_aux < buf.len() {
                        buf.select_nth_unstable_by(k_aux - 1, better);
                    }
                    for (o, &(_, i)) in ids.iter_mut().zip(&buf[..k_aux]) {
                        *o = i;
                    }
                    ids.sort_unstable();
                }
            },
        );
    out
}

/// NaN ranks as `−∞` (sae-core's rule), so the comparison is a total order on scores.
fn rank_key(v: f32) -> f32 {
    if v.is_nan() { f32::NEG_INFINITY } else { v }
}

/// The per-token inputs of [`token_pass`].
pub(super) struct TokenInputs<'a> {
    /// The batch `[b, d]` (the reconstruction target).
    pub x: &'a [f32],
    /// The decoder `[m, d]`.
    pub w_dec: &'a [f32],
    /// The decoder bias `[d]`.
    pub b_dec: &'a [f32],
    /// Selected latents and their codes, `[b, k]`.
    pub idx: &'a [u32],
    /// Codes of the selected latents (`relu(pre)`), `[b, k]`.
    pub vals: &'a [f32],
    /// `k`.
    pub k: usize,
    /// The auxiliary latents and codes, `[b, k_aux]` each, with `k_aux`.
    pub aux: Option<(&'a [u32], &'a [f32], usize)>,
}

/// What [`token_pass`] computes.
pub(super) struct TokenOutputs {
    /// `∂mse/∂x̂ = 2 (x̂ − x) / b`, `[b, d]`.
    pub upstream: Vec<f32>,
    /// `∂mse/∂pre` of the selected latents (zero where the code is zero), `[b, k]`.
    pub g_pre: Vec<f32>,
    /// `Σ_t ‖x̂_t − x_t‖²`.
    pub sse: f64,
    /// `Σ_t upstream_t` (the decoder bias gradient), `[d]`.
    pub upstream_sum: Vec<f32>,
    /// With aux-K: see [`AuxOutputs`].
    pub aux: Option<AuxOutputs>,
}

/// The aux-K half of [`TokenOutputs`], before scaling by the residual variance (which needs the
/// whole batch): the caller multiplies `diff` and `dots` by `−2c / (b · var)`.
pub(super) struct AuxOutputs {
    /// `r_t − ê_t` with `r = x − x̂` the residual and `ê` the dead latents' reconstruction,
    /// `[b, d]`.
    pub diff: Vec<f32>,
    /// `W_dec[j] · diff_t` for the auxiliary latents with a positive code (zero otherwise),
    /// `[b, k_aux]`.
    pub dots: Vec<f32>,
    /// `Σ_t ‖diff_t‖²`.
    pub err: f64,
    /// `Σ_t ‖r_t‖²`.
    pub residual_sq: f64,
    /// `Σ_t r_t`, `[d]`.
    pub residual_sum: Vec<f64>,
}

/// Per-chunk sums, combined in chunk order.
struct Partial {
    sse: f64,
    upstream_sum: Vec<f32>,
    err: f64,
    residual_sq: f64,
    residual_sum: Vec<f64>,
}

/// Decoder forward, loss and code gradients of every token (see the module docs).
pub(super) fn token_pass(inp: &TokenInputs<'_>) -> TokenOutputs {
    let (k, d) = (inp.k, inp.b_dec.len());
    let b = inp.x.len() / d;
    let mut upstream = vec![0f32; b * d];
    let mut g_pre = vec![0f32; b * k];
    let (mut diff, mut dots, k_aux) = match inp.aux {
        Some((_, _, k_aux)) => (vec![0f32; b * d], vec![0f32; b * k_aux], k_aux),
        None => (Vec::new(), Vec::new(), 0),
    };
    let n_tasks = b.div_ceil(TOKENS_PER_TASK);
    let aux_chunks: Vec<Option<(&mut [f32], &mut [f32])>> = if k_aux > 0 {
        diff.chunks_mut(d * TOKENS_PER_TASK)
            .zip(dots.chunks_mut(k_aux * TOKENS_PER_TASK))
            .map(Some)
            .collect()
    } else {
        (0..n_tasks).map(|_| None).collect()
    };
    let g_pre_chunks: Vec<&mut [f32]> = g_pre.chunks_mut(k * TOKENS_PER_TASK).collect();
    let inv_b = 1.0 / b as f32;
    let partials: Vec<Partial> = upstream
        .par_chunks_mut(d * TOKENS_PER_TASK)
        .zip(g_pre_chunks)
        .zip(aux_chunks)
        .enumerate()
        .map(|(task, ((up_chunk, gp_chunk), mut aux_chunk))| {
            let mut p = Partial {
                sse: 0.0,
                upstream_sum: vec![0f32; d],
                err: 0.0,
                residual_sq: 0.0,
                residual_sum: if k_aux > 0 { vec![0f64; d] } else { Vec::new() },
            };
            let mut x_hat = vec![0f32; d];
            for (r, up) in up_chunk.chunks_exact_mut(d).enumerate() {
                let t = task * TOKENS_PER_TASK + r;
                let x = &inp.x[t * d..][..d];
                let idx = &inp.idx[t * k..][..k];
                let vals = &inp.vals[t * k..][..k];
                x_hat.copy_from_slice(inp.b_dec);
                for (&i, &v) in idx.iter().zip(vals) {
                    if v != 0.0 {
                        axpy(v, row(inp.w_dec, i, d), &mut x_hat);
                    }
                }
                for (((u, &xh), &xv), s) in up
                    .iter_mut()
                    .zip(&x_hat)
                    .zip(x)
                    .zip(p.upstream_sum.iter_mut())
                {
                    let e = xh - xv;
                    p.sse += (e as f64) * (e as f64);
                    *u = 2.0 * e * inv_b;
                    *s += *u;
                }
                let gp = &mut gp_chunk[r * k..][..k];
                for ((g, &i), &v) in gp.iter_mut().zip(idx).zip(vals) {
                    *g = if v > 0.0 {
                        dot(row(inp.w_dec, i, d), up)
                    } else {
                        0.0
                    };
                }
                if let (Some((aux_idx, aux_vals, _)), Some((diff_chunk, dots_chunk))) =
                    (inp.aux, aux_chunk.as_mut())
                {
                    let diff = &mut diff_chunk[r * d..][..d];
                    // diff = r − ê = (x − x̂) − Σ v_j W_j.
                    for (((o, &xv), &xh), s) in diff
                        .iter_mut()
                        .zip(x)
                        .zip(&x_hat)
                        .zip(p.residual_sum.iter_mut())
                    {
                        let res = xv - xh;
                        p.residual_sq += (res as f64) * (res as f64);
                        *s += res as f64;
                        *o = res;
                    }
                    let a_idx = &aux_idx[t * k_aux..][..k_aux];
                    let a_val = &aux_vals[t * k_aux..][..k_aux];
                    for (&i, &v) in a_idx.iter().zip(a_val) {
                        if v != 0.0 {
                            axpy(-v, row(inp.w_dec, i, d), diff);
                        }
                    }
                    p.err += diff.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
                    let a_dots = &mut dots_chunk[r * k_aux..][..k_aux];
                    for ((o, &i), &v) in a_dots.iter_mut().zip(a_idx).zip(a_val) {
                        *o = if v > 0.0 {
                            dot(row(inp.w_dec, i, d), diff)
                        } else {
                            0.0
                        };
                    }
                }
            }
            p
        })
        .collect();
    let mut out = TokenOutputs {
        upstream,
        g_pre,
        sse: 0.0,
        upstream_sum: vec![0f32; d],
        aux: None,
    };
    let mut aux = AuxOutputs {
        diff,
        dots,
        err: 0.0,
        residual_sq: 0.0,
        residual_sum: vec![0f64; d],
    };
    for p in partials {
        out.sse += p.sse;
        out.upstream_sum
            .iter_mut()
            .zip(&p.upstream_sum)
            .for_each(|(a, b)| *a += b);
        aux.err += p.err;
        aux.residual_sq += p.residual_sq;
        aux.residual_sum
            .iter_mut()
            .zip(&p.residual_sum)
            .for_each(|(a, b)| *a += b);
    }
    if k_aux > 0 {
        out.aux = Some(aux);
    }
    out
}

/// One group of sparse entries for [`latent_pass`]: token `t` selected latent `idx[t·k + j]`
/// with decoder coefficient `dec[t·k + j]` (its code) against row `t` of `dec_rows`, and encoder
/// coefficient `enc[t·k + j]` (the gradient of its pre-activation).
pub(super) struct Entries<'a> {
    pub idx: &'a [u32],
    pub k: usize,
    pub dec: &'a [f32],
    pub enc: &'a [f32],
    /// `[b, d]`: the gradient wrt the reconstruction this group decodes into.
    pub dec_rows: &'a [f32],
}

/// Entries of one group bucketed by latent: `(token, dec coefficient, enc coefficient)`, each
/// latent's in token order.
struct Buckets {
    offsets: Vec<usize>,
    entries: Vec<(u32, f32, f32)>,
}

fn bucket(e: &Entries<'_>, m: usize) -> Buckets {
    let mut offsets = vec![0usize; m + 1];
    for &i in e.idx {
        offsets[i as usize + 1] += 1;
    }
    for i in 0..m {
        offsets[i + 1] += offsets[i];
    }
    let mut cursor = offsets.clone();
    let mut entries = vec![(0u32, 0f32, 0f32); e.idx.len()];
    for (flat, &i) in e.idx.iter().enumerate() {
        let slot = &mut cursor[i as usize];
        entries[*slot] = ((flat / e.k) as u32, e.dec[flat], e.enc[flat]);
        *slot += 1;
    }
    Buckets { offsets, entries }
}

/// Latents per rayon task in [`latent_pass`], and tokens per tile: a task keeps the gradient
/// rows of its latents and the input rows of one token tile in cache while it applies every
/// entry that falls in both, instead of fetching a token row from memory for every entry.
const LATENTS_PER_TASK: usize = 32;
const TOKENS_PER_TILE: usize = 256;

/// Per latent `i`: `∂L/∂W_dec[i] = Σ dec · dec_rows[t]`, `∂L/∂W_encᵀ[i] = Σ enc · u[t]` and
/// `∂L/∂b_enc[i] = Σ enc` over every group's entries for `i`. Returns `(g_w_dec [m, d],
/// g_w_enc_t [m, d], g_b_enc [m])`.
///
/// Each latent's entries are summed in (group, token) order whatever the tiling, so the result
/// does not depend on the thread count.
pub(super) fn latent_pass(
    groups: &[Entries<'_>],
    u: &[f32],
    m: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let buckets: Vec<Buckets> = groups.iter().map(|g| bucket(g, m)).collect();
    let tokens = u.len() / d.max(1);
    let mut g_w_dec = vec![0f32; m * d];
    let mut g_w_enc_t = vec![0f32; m * d];
    let mut g_b_enc = vec![0f32; m];
    g_w_dec
        .par_chunks_mut(d * LATENTS_PER_TASK)
        .zip(g_w_enc_t.par_chunks_mut(d * LATENTS_PER_TASK))
        .zip(g_b_enc.par_chunks_mut(LATENTS_PER_TASK))
        .enumerate()
        .for_each(|(task, ((dec_rows, enc_rows), b_enc))| {
            let first = task * LATENTS_PER_TASK;
            let n = b_enc.len();
            for (g, bk) in groups.iter().zip(&buckets) {
                // One cursor per latent into its token-sorted entries.
                let mut cursor: Vec<usize> = (first..first + n).map(|i| bk.offsets[i]).collect();
                for tile_end in (TOKENS_PER_TILE..tokens + TOKENS_PER_TILE).step_by(TOKENS_PER_TILE)
                {
                    for (l, cur) in cursor.iter_mut().enumerate() {
                        let end = bk.offsets[first + l + 1];
                        let dec_row = &mut dec_rows[l * d..][..d];
                        let enc_row = &mut enc_rows[l * d..][..d];
                        while *cur < end && (bk.entries[*cur].0 as usize) < tile_end {
                            let (t, dc, ec) = bk.entries[*cur];
                            if dc != 0.0 {
                                axpy(dc, &g.dec_rows[t as usize * d..][..d], dec_row);
                            }
                            if ec != 0.0 {
                                axpy(ec, &u[t as usize * d..][..d], enc_row);
                                b_enc[l] += ec;
                            }
                            *cur += 1;
                        }
                    }
                }
            }
        });
    (g_w_dec, g_w_enc_t, g_b_enc)
}

/// `Σ v²` in `f64`, in a fixed order (per-chunk sums combined serially).
pub(super) fn sum_squares(v: &[f32]) -> f64 {
    v.par_chunks(1 << 16)
        .map(|c| c.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>())
        .collect::<Vec<f64>>()
        .into_iter()
        .sum()
}

/// Removes from each `d`-wide row of `g` its component along the same row of `w`
/// (sae-core's `remove_parallel_component`: `g_i − (g_i · ŵ_i) ŵ_i`).
pub(super) fn project_rows(g: &mut [f32], w: &[f32], d: usize, norm_eps: f32) {
    g.par_chunks_mut(d)
        .zip(w.par_chunks(d))
        .with_min_len(64)
        .for_each(|(g, w)| {
            let norm = dot(w, w).sqrt().max(norm_eps);
            let along = dot(g, w) / (norm * norm);
            axpy(-along, w, g);
        });
}

/// Multiplies every element by `c`.
pub(super) fn scale(v: &mut [f32], c: f32) {
    v.par_chunks_mut(1 << 16)
        .for_each(|chunk| chunk.iter_mut().for_each(|g| *g *= c));
}

#[inline(always)]
fn row(w: &[f32], i: u32, d: usize) -> &[f32] {
    &w[i as usize * d..][..d]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The untiled reference of [`latent_pass`]: one latent at a time, its entries in
    /// (group, token) order.
    fn latent_pass_untiled(
        groups: &[Entries<'_>],
        u: &[f32],
        m: usize,
        d: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let buckets: Vec<Buckets> = groups.iter().map(|g| bucket(g, m)).collect();
        let mut g_w_dec = vec![0f32; m * d];
        let mut g_w_enc_t = vec![0f32; m * d];
        let mut g_b_enc = vec![0f32; m];
        g_w_dec
            .par_chunks_mut(d)
            .zip(g_w_enc_t.par_chunks_mut(d))
            .zip(g_b_enc.par_iter_mut())
            .enumerate()
            .with_min_len(8)
            .for_each(|(i, ((dec_row, enc_row), b_enc))| {
                for (g, bk) in groups.iter().zip(&buckets) {
                    for &(t, dc, ec) in &bk.entries[bk.offsets[i]..bk.offsets[i + 1]] {
                        if dc != 0.0 {
                            axpy(dc, &g.dec_rows[t as usize * d..][..d], dec_row);
                        }
                        if ec != 0.0 {
                            axpy(ec, &u[t as usize * d..][..d], enc_row);
                            *b_enc += ec;
                        }
                    }
                }
            });
        (g_w_dec, g_w_enc_t, g_b_enc)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The dead-latent selection keeps exactly the set a full sort would (ties to the lower
        /// id), ids ascending.
        #[test]
        fn select_dead_equals_sorting(
            scores in prop::collection::vec(prop_oneof![-3i8..3, Just(0)], 5 * 23),
            dead in prop::collection::vec(any::<bool>(), 23),
            k_frac in 0.0f64..1.0,
        ) {
            let m = 23;
            let scores: Vec<f32> = scores.into_iter().map(f32::from).collect();
            let dead_ids: Vec<u32> = (0..m as u32).filter(|&i| dead[i as usize]).collect();
            prop_assume!(!dead_ids.is_empty());
            let k_aux = 1 + ((dead_ids.len() - 1) as f64 * k_frac) as usize;
            let got = select_dead(&scores, m, &dead_ids, k_aux);
            for (r, ids) in got.chunks_exact(k_aux).enumerate() {
                let row = &scores[r * m..][..m];
                let mut order = dead_ids.clone();
                order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
                let mut want = order[..k_aux].to_vec();
                want.sort_unstable();
                prop_assert_eq!(ids, &want[..]);
            }
        }
    }

    /// Random sparse entries: `[b, k]` latent ids (distinct per token), coefficients with some
    /// zeros, and `[b, d]` rows.
    fn entries(
        b: usize,
        k: usize,
        m: usize,
        d: usize,
        seed: u64,
    ) -> (Vec<u32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut idx = Vec::with_capacity(b * k);
        for _ in 0..b {
            let mut row: Vec<u32> = Vec::with_capacity(k);
            while row.len() < k {
                let i = next() % m as u32;
                if !row.contains(&i) {
                    row.push(i);
                }
            }
            idx.extend(row);
        }
        let mut coef = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| match next() % 5 {
                    0 => 0.0,
                    r => (r as f32 - 2.5) * 0.37,
                })
                .collect()
        };
        let (dec, enc, rows) = (coef(b * k), coef(b * k), coef(b * d));
        (idx, dec, enc, rows)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]

        /// The tiled latent pass equals the one-latent-at-a-time reference bit for bit (same
        /// summation order), across several token tiles and latent tasks, with two groups.
        #[test]
        fn latent_pass_equals_untiled_reference(seed in any::<u64>(), b in 1usize..600) {
            let (m, d, k, k_aux) = (70, 5, 3, 6);
            let (idx, dec, enc, rows) = entries(b, k, m, d, seed);
            let (aidx, adec, aenc, arows) = entries(b, k_aux, m, d, seed ^ 0x9e37);
            let (_, _, _, u) = entries(b, 1, m, d, seed ^ 0x51);
            let groups = [
                Entries { idx: &idx, k, dec: &dec, enc: &enc, dec_rows: &rows },
                Entries { idx: &aidx, k: k_aux, dec: &adec, enc: &aenc, dec_rows: &arows },
            ];
            let tiled = latent_pass(&groups, &u, m, d);
            let reference = latent_pass_untiled(&groups, &u, m, d);
            prop_assert_eq!(tiled, reference);
        }
    }
}
