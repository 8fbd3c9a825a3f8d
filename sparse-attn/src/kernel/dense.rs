//! The dense paths: burn's attention, unmasked (layout + padding only) or with a mask's
//! equivalent bool mask.

use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::mask::SparseMask;
use crate::problem::{AttentionProblem, repeat_kv};

/// Dense attention over every valid cell (causal layout and key padding applied): the quality
/// reference of every method.
pub fn dense_attention(p: &AttentionProblem) -> Tensor<4> {
    let [b, h, tq, _] = p.q.dims();
    let tk = p.layout.k_len;
    let group = p.group_size();
    let k = repeat_kv(p.k.clone(), group);
    let v = repeat_kv(p.v.clone(), group);
    let plain_causal = p.layout.causal && p.key_padding.is_none() && p.layout.q_offset + tq == tk;
    if plain_causal || (!p.layout.causal && p.key_padding.is_none()) {
        let options = AttentionModuleOptions {
            scale: Some(p.scale),
            softcap: None,
            is_causal: plain_causal,
        };
        return attention(p.q.clone(), k, v, None, None, options);
    }
    let full = SparseMask::all(p.layout, crate::BlockSize::new(tq.max(1), tk.max(1)), 1, 1);
    masked_dense_attention(p, &full).reshape([b, h, tq, p.v.dims()[3]])
}

/// burn's attention with the mask's equivalent bool mask (plus layout and padding). Rows with
/// nothing kept give zeros.
///
/// Memory is `batch · heads · q_len · k_len` booleans: this is the fallback and the oracle, not
/// the fast path.
///
/// # Panics
/// If the problem's shapes are inconsistent or the mask does not match its layout, batch or
/// heads.
pub fn masked_dense_attention(p: &AttentionProblem, mask: &SparseMask) -> Tensor<4> {
    p.check();
    assert!(
        mask.layout() == p.layout,
        "masked_dense_attention: mask layout {:?} differs from the problem's {:?}",
        mask.layout(),
        p.layout
    );
    let [b, h, tq, _] = p.q.dims();
    let device = p.q.device();
    let group = p.group_size();
    let k = repeat_kv(p.k.clone(), group);
    let v = repeat_kv(p.v.clone(), group);
    let masked = mask.to_masked_tensor(b, h, p.key_padding.clone(), &device);
    // A row with nothing kept must give 0 on every backend, whatever its softmax does.
    let empty_row = masked
        .clone()
        .bool_not()
        .int()
        .sum_dim(3)
        .equal_elem(0)
        .expand([b, h, tq, p.v.dims()[3]]);
    let options = AttentionModuleOptions {
        scale: Some(p.scale),
        softcap: None,
        is_causal: false,
    };
    attention(p.q.clone(), k, v, Some(masked), None, options).mask_fill(empty_row, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttentionLayout, BlockSize};
    use burn::tensor::Distribution;
    use proptest::prelude::*;

    fn host(t: &Tensor<4>) -> Vec<f32> {
        t.to_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    /// Softmax attention over the mask's kept cells, on the host, straight from the definition.
    fn reference(p: &AttentionProblem, mask: &SparseMask, padding: Option<&[bool]>) -> Vec<f32> {
        let [b, h, tq, d] = p.q.dims();
        let [_, hk, tk, dv] = p.v.dims();
        let (q, k, v) = (host(&p.q), host(&p.k), host(&p.v));
        let mut out = vec![0.0f32; b * h * tq * dv];
        let mut keys = Vec::new();
        for bi in 0..b {
            for hi in 0..h {
                let kh = hi / (h / hk);
                let (mb, mh) = mask.resolve(bi, hi, h);
                for i in 0..tq {
                    mask.row_keys(mb, mh, i, &mut keys);
                    keys.retain(|&j| padding.is_none_or(|pad| !pad[bi * tk + j as usize]));
                    let scores: Vec<f64> = keys
                        .iter()
                        .map(|&j| {
                            let qo = ((bi * h + hi) * tq + i) * d;
                            let ko = ((bi * hk + kh) * tk + j as usize) * d;
                            (0..d)
                                .map(|c| q[qo + c] as f64 * k[ko + c] as f64)
                                .sum::<f64>()
                                * p.scale
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                    for (s, &j) in scores.iter().zip(&keys) {
                        let w = (s - m).exp() / z;
                        let vo = ((bi * hk + kh) * tk + j as usize) * dv;
                        let oo = ((bi * h + hi) * tq + i) * dv;
                        for c in 0..dv {
                            out[oo + c] += (w * v[vo + c] as f64) as f32;
                        }
                    }
                }
            }
        }
        out
    }

    fn problem(
        b: usize,
        h: usize,
        hk: usize,
        layout: AttentionLayout,
        seed: u64,
    ) -> AttentionProblem {
        let dev = Device::flex();
        dev.seed(seed);
        let n = Distribution::Normal(0.0, 1.0);
        AttentionProblem::new(
            Tensor::random([b, h, layout.q_len, 4], n, &dev),
            Tensor::random([b, hk, layout.k_len, 4], n, &dev),
            Tensor::random([b, hk, layout.k_len, 3], n, &dev),
            layout,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn masked_dense_equals_the_definition(
            q_len in 1usize..7, extra in 0usize..4, causal: bool, seed in 0u64..1000,
            mask_heads in 0usize..3, mask_batch_one: bool, pad: bool, p in 0.0f64..1.0,
        ) {
            let k_len = q_len + extra;
            let layout = if causal { AttentionLayout::causal_suffix(q_len, k_len) } else { AttentionLayout::full(q_len, k_len) };
            let (b, h, hk) = (2, 4, 2);
            let mh = [1, hk, h][mask_heads];
            let mb = if mask_batch_one { 1 } else { b };
            let mut prob = problem(b, h, hk, layout, seed);
            // A seeded pseudo-random keep bitmap.
            let keep: Vec<bool> = (0..mb * mh * q_len * k_len)
                .map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f64 / 1000.0 < p)
                .collect();
            let mask = SparseMask::from_dense(layout, BlockSize::new(2, 3), mb, mh, &keep).unwrap();
            let padding: Vec<bool> = (0..b * k_len).map(|i| pad && i % k_len == 0).collect();
            if pad {
                let t = Tensor::<2, Bool>::from_data(TensorData::new(padding.clone(), [b, k_len]), &Device::flex());
                prob = prob.with_key_padding(t);
            }
            let got = host(&masked_dense_attention(&prob, &mask));
            let want = reference(&prob, &mask, pad.then_some(&padding[..]));
            for (g, w) in got.iter().zip(&want) {
                prop_assert!(g.is_finite());
                prop_assert!((g - w).abs() <= 1e-4 + 1e-4 * w.abs(), "{g} vs {w}");
            }
        }
    }

    #[test]
    fn the_full_mask_is_dense_attention_and_the_empty_mask_is_zero() {
        for layout in [
            AttentionLayout::causal(6),
            AttentionLayout::causal_suffix(2, 7),
            AttentionLayout::full(3, 5),
        ] {
            let p = problem(1, 4, 2, layout, 3);
            let dense = host(&dense_attention(&p));
            let full = host(&masked_dense_attention(
                &p,
                &SparseMask::all(layout, BlockSize::square(4), 1, 1),
            ));
            for (a, b) in dense.iter().zip(&full) {
                approx::assert_abs_diff_eq!(a, b, epsilon = 1e-5);
            }
            let empty = host(&masked_dense_attention(
                &p,
                &SparseMask::empty(layout, BlockSize::square(4), 1, 1),
            ));
            assert!(empty.iter().all(|&x| x == 0.0));
        }
    }
}
