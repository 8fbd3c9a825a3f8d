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
    let plain_causal =
        p.layout.causal && p.key_padding.is_none() && p.layout.q_offset + tq == tk;
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
