//! A CPU kernel of our own for element masks: per query row, dot products with the kept keys
//! straight from host memory, a softmax over them and a weighted sum of their values.
//!
//! Why it exists: on burn's CPU backend the portable gather path has to copy every gathered key
//! row into a new tensor and run the row products as broadcast tensor ops, which measured
//! slower than dense attention above ≈ 1.5 % density (`bench_sparse_attn`). Reading the kept
//! rows in place, one row per task over rayon, removes the copies. It is forward-only (no
//! autodiff) and copies q, k, v to host memory first, so it is for CPU backends; the dispatcher
//! uses it only when asked to ([`Crossover::host_columns`](super::Crossover::host_columns)).

use burn::prelude::*;
use rayon::prelude::*;

use crate::mask::SparseMask;
use crate::problem::AttentionProblem;

/// Rows per rayon task: enough work per task to hide scheduling at short rows.
const ROWS_PER_TASK: usize = 16;

/// Attention over the mask's kept cells computed row by row on the host (see the
/// [kernel module](crate::kernel)). Equals [`masked_dense_attention`](super::masked_dense_attention) for
/// every mask; rows with nothing kept give zeros. Not differentiable: the result is a new
/// tensor on `p.q`'s device.
///
/// # Panics
/// If the problem's shapes are inconsistent or the mask does not match its layout, batch or
/// heads.
pub fn host_gather_attention(p: &AttentionProblem, mask: &SparseMask) -> Tensor<4> {
    p.check();
    assert!(
        mask.layout() == p.layout,
        "host_gather_attention: mask layout {:?} differs from the problem's {:?}",
        mask.layout(),
        p.layout
    );
    let [b, h, tq, d] = p.q.dims();
    let [_, hk, tk, dv] = p.v.dims();
    let group = h / hk;
    let host = |t: &Tensor<4>| {
        t.to_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 tensor")
    };
    let (q, k, v) = (host(&p.q), host(&p.k), host(&p.v));
    let padding = p.key_padding.as_ref().map(|t| {
        t.to_data()
            .convert::<bool>()
            .try_into_vec::<bool>()
            .expect("bool padding")
    });
    let mut out = vec![0.0f32; b * h * tq * dv];
    out.par_chunks_mut(dv.max(1) * ROWS_PER_TASK)
        .enumerate()
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(keys, weights), (task, rows)| {
                for (r, o) in rows.chunks_mut(dv.max(1)).enumerate() {
                    let row = task * ROWS_PER_TASK + r;
                    let (bh, i) = (row / tq, row % tq);
                    let (bi, hi) = (bh / h, bh % h);
                    let (mb, mh) = mask.resolve(bi, hi, h);
                    mask.row_keys(mb, mh, i, keys);
                    if let Some(pad) = &padding {
                        keys.retain(|&j| !pad[bi * tk + j as usize]);
                    }
                    if keys.is_empty() {
                        continue;
                    }
                    let qi = &q[row * d..(row + 1) * d];
                    let kv = (bi * hk + hi / group) * tk;
                    weights.clear();
                    weights.extend(keys.iter().map(|&j| {
                        let j = kv + j as usize;
                        dot(qi, &k[j * d..(j + 1) * d]) * p.scale as f32
                    }));
                    let m = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut z = 0.0f32;
                    for w in weights.iter_mut() {
                        *w = (*w - m).exp();
                        z += *w;
                    }
                    for (&j, &w) in keys.iter().zip(weights.iter()) {
                        let j = kv + j as usize;
                        axpy(w / z, &v[j * dv..(j + 1) * dv], o);
                    }
                }
            },
        );
    Tensor::from_data(TensorData::new(out, [b, h, tq, dv]), &p.q.device())
}

/// `a · b` with eight independent accumulators, so the loop vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out += w · x`.
fn axpy(w: f32, x: &[f32], out: &mut [f32]) {
    for (o, &xi) in out.iter_mut().zip(x) {
        *o += w * xi;
    }
}
