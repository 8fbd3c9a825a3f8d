//! One attention call: q, k, v, the layout, key padding and the score scale.

use burn::prelude::*;

use crate::layout::AttentionLayout;

/// The inputs of one attention call, in burn's layout `[batch, heads, seq, d_head]`.
///
/// Keys and values keep their own (KV) head count; query head `h` reads KV head
/// `h / (heads / kv_heads)` (repeat-interleave, as Hugging Face and TransformerLens do).
#[derive(Clone, Debug)]
pub struct AttentionProblem {
    /// `[batch, heads, q_len, d_head]`.
    pub q: Tensor<4>,
    /// `[batch, kv_heads, k_len, d_head]`.
    pub k: Tensor<4>,
    /// `[batch, kv_heads, k_len, d_value]`.
    pub v: Tensor<4>,
    /// Which cells exist.
    pub layout: AttentionLayout,
    /// `[batch, k_len]`, `true` where the key is padding.
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Score scale, `1/√d_head` by default.
    pub scale: f64,
}

impl AttentionProblem {
    /// A problem with scale `1/√d_head` and no padding.
    ///
    /// # Panics
    /// If the shapes disagree with each other or with `layout` (see [`AttentionProblem::check`]).
    pub fn new(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, layout: AttentionLayout) -> Self {
        let d = q.dims()[3];
        let p = Self {
            q,
            k,
            v,
            layout,
            key_padding: None,
            scale: 1.0 / (d as f64).sqrt(),
        };
        p.check();
        p
    }

    /// Checks the shape contract.
    ///
    /// # Panics
    /// With a message naming the field, the expected and the found shape, when: q/k/v batch
    /// differ, query heads are not a multiple of KV heads, k and v lengths or heads differ, q and
    /// k head dims differ, q/k lengths disagree with the layout, or the padding is not
    /// `[batch, k_len]`.
    pub fn check(&self) {
        let [b, h, tq, d] = self.q.dims();
        let [bk, hk, tk, dk] = self.k.dims();
        let [bv, hv, tv, _] = self.v.dims();
        assert!(
            b == bk && b == bv,
            "AttentionProblem: batch of q, k, v must agree, found {b}, {bk}, {bv}"
        );
        assert!(
            hk == hv && hk > 0 && h % hk == 0,
            "AttentionProblem: k and v heads must agree and divide the {h} query heads, found {hk} and {hv}"
        );
        assert!(
            tk == tv,
            "AttentionProblem: k_len of k and v must agree, found {tk} and {tv}"
        );
        assert!(
            d == dk,
            "AttentionProblem: head dim of q and k must agree, found {d} and {dk}"
        );
        assert!(
            tq == self.layout.q_len && tk == self.layout.k_len,
            "AttentionProblem: layout expects q_len {} and k_len {}, found {tq} and {tk}",
            self.layout.q_len,
            self.layout.k_len
        );
        if let Some(p) = &self.key_padding {
            assert!(
                p.dims() == [b, tk],
                "AttentionProblem: key_padding must be [{b}, {tk}], found {:?}",
                p.dims()
            );
        }
    }

    /// Query heads per KV head.
    pub fn group_size(&self) -> usize {
        self.q.dims()[1] / self.k.dims()[1]
    }

    /// Sets key padding (`[batch, k_len]`, `true` = padding).
    pub fn with_key_padding(mut self, padding: Tensor<2, Bool>) -> Self {
        self.key_padding = Some(padding);
        self.check();
        self
    }

    /// Sets the score scale.
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }
}

/// Repeats KV heads to the query head count by interleaving: `[b, kv, t, d]` → `[b, kv·group, t, d]`.
pub fn repeat_kv(x: Tensor<4>, group: usize) -> Tensor<4> {
    if group == 1 {
        return x;
    }
    let [b, kv, t, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, group, t, d])
        .reshape([b, kv * group, t, d])
}
