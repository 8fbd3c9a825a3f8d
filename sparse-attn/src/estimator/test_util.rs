//! Seeded problems and host-side reference computations for the estimators' tests.

use burn::prelude::*;
use burn::tensor::Distribution;

use super::host::host_f32;
use crate::layout::AttentionLayout;
use crate::problem::AttentionProblem;

/// A seeded problem with standard-normal q, k, v.
pub(crate) fn problem(seed: u64, dims: [usize; 5], layout: AttentionLayout) -> AttentionProblem {
    let [b, h, hkv, d, dv] = dims;
    let device = Device::flex();
    device.seed(seed);
    let n = Distribution::Normal(0.0, 1.0);
    let q = Tensor::random([b, h, layout.q_len, d], n, &device);
    let k = Tensor::random([b, hkv, layout.k_len, d], n, &device);
    let v = Tensor::random([b, hkv, layout.k_len, dv], n, &device);
    AttentionProblem::new(q, k, v, layout)
}

/// Replaces q or k of a problem with host values.
pub(crate) fn tensor4(values: Vec<f32>, dims: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, dims), &Device::flex())
}

/// Exact probabilities `[b, h, q_len, k_len]` in f64 on the host (invalid and padded cells 0).
pub(crate) fn host_probs(p: &AttentionProblem, padding: Option<&[bool]>) -> Vec<f64> {
    let [b, h, tq, d] = p.q.dims();
    let hkv = p.k.dims()[1];
    let tk = p.layout.k_len;
    let q = host_f32(p.q.clone());
    let k = host_f32(p.k.clone());
    let group = h / hkv;
    let mut out = vec![0f64; b * h * tq * tk];
    for bi in 0..b {
        for hi in 0..h {
            let kh = hi / group;
            for i in 0..tq {
                let qi = &q[((bi * h + hi) * tq + i) * d..][..d];
                let valid = p.layout.valid_keys(i);
                let logits: Vec<f64> = (0..tk)
                    .map(|j| {
                        if j >= valid || padding.is_some_and(|pd| pd[bi * tk + j]) {
                            f64::NEG_INFINITY
                        } else {
                            let kj = &k[((bi * hkv + kh) * tk + j) * d..][..d];
                            qi.iter()
                                .zip(kj)
                                .map(|(&a, &c)| a as f64 * c as f64)
                                .sum::<f64>()
                                * p.scale
                        }
                    })
                    .collect();
                let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let z: f64 = logits.iter().map(|&l| (l - m).exp()).sum();
                let row = &mut out[((bi * h + hi) * tq + i) * tk..][..tk];
                for (o, &l) in row.iter_mut().zip(&logits) {
                    *o = (l - m).exp() / z;
                }
            }
        }
    }
    out
}
