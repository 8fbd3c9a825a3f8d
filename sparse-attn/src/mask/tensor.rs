//! Masks as burn tensors, for the dense masked path and for callers that want a bool tensor.

use burn::prelude::*;

use super::SparseMask;

impl SparseMask {
    /// The keep-bitmap as a bool tensor `[batch, heads, q_len, k_len]` of the mask's own
    /// (possibly broadcast) batch and heads, `true` = keep.
    pub fn to_keep_tensor(&self, device: &Device) -> Tensor<4, Bool> {
        let data = TensorData::new(
            self.to_dense(),
            [self.batch, self.heads, self.layout.q_len, self.layout.k_len],
        );
        Tensor::from_data(data, device)
    }

    /// burn's attention mask for `batch × query_heads` (`true` = **masked**): every cell the
    /// mask does not keep, including the layout's invalid cells and, when given, key padding
    /// (`[batch, k_len]`, `true` = padding).
    ///
    /// # Panics
    /// If the mask's batch or heads do not broadcast to `batch`/`query_heads`, or the padding
    /// shape is not `[batch, k_len]`.
    pub fn to_masked_tensor(
        &self,
        batch: usize,
        query_heads: usize,
        key_padding: Option<Tensor<2, Bool>>,
        device: &Device,
    ) -> Tensor<4, Bool> {
        assert!(
            self.batch == 1 || self.batch == batch,
            "SparseMask::to_masked_tensor: mask batch must be 1 or {batch}, found {}",
            self.batch
        );
        assert!(
            query_heads.is_multiple_of(self.heads),
            "SparseMask::to_masked_tensor: query heads ({query_heads}) must be a multiple of the mask's heads ({})",
            self.heads
        );
        let (q_len, k_len) = (self.layout.q_len, self.layout.k_len);
        let keep = self.to_keep_tensor(device);
        let group = query_heads / self.heads;
        // Repeat-interleave mask heads to query heads (head h reads mask head h / group).
        let keep = if group > 1 {
            keep.unsqueeze_dim::<5>(2)
                .expand([self.batch, self.heads, group, q_len, k_len])
                .reshape([self.batch, query_heads, q_len, k_len])
        } else {
            keep
        };
        let masked = keep.bool_not().expand([batch, query_heads, q_len, k_len]);
        match key_padding {
            None => masked,
            Some(pad) => {
                let dims = pad.dims();
                assert!(
                    dims == [batch, k_len],
                    "SparseMask::to_masked_tensor: key_padding must be [{batch}, {k_len}], found {dims:?}"
                );
                masked.bool_or(pad.reshape([batch, 1, 1, k_len]).expand([
                    batch,
                    query_heads,
                    q_len,
                    k_len,
                ]))
            }
        }
    }
}
