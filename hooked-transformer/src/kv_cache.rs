//! The key/value cache of incremental decoding.

use burn::prelude::*;

/// Keys (after RoPE) and values of every layer for the positions run so far, with the padding
/// of each sequence, so that a decoding step runs only its new tokens.
///
/// Keys are cached after the rotation (the same scores as TransformerLens, which caches them
/// before and rotates all positions each step); `hook_rot_k` reports the whole cached range.
#[derive(Clone, Debug)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
    /// `[batch, len]`, `true` where the cached position is padding; `None` while none is.
    padding: Option<Tensor<2, Bool>>,
    /// Real (non-padding) tokens per sequence so far: the next token's RoPE position.
    real_counts: Vec<usize>,
}

impl KvCache {
    /// An empty cache for a model of `n_layers` blocks.
    pub fn new(n_layers: usize) -> Self {
        Self {
            layers: vec![None; n_layers],
            len: 0,
            padding: None,
            real_counts: Vec::new(),
        }
    }

    /// Cached positions (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The batch size of the cached run, `None` before the first call.
    pub fn batch(&self) -> Option<usize> {
        (!self.real_counts.is_empty()).then_some(self.real_counts.len())
    }

    pub(crate) fn real_counts(&self) -> &[usize] {
        &self.real_counts
    }

    pub(crate) fn padding(&self) -> Option<&Tensor<2, Bool>> {
        self.padding.as_ref()
    }

    /// Appends `k`, `v` (`[batch, kv_heads, new, d_head]`) for `layer` and returns the whole
    /// cached range.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor<4>,
        v: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let entry = match self.layers[layer].take() {
            None => (k, v),
            Some((k0, v0)) => (Tensor::cat(vec![k0, k], 2), Tensor::cat(vec![v0, v], 2)),
        };
        self.layers[layer] = Some(entry.clone());
        entry
    }

    /// Records that `new` positions were added, with their padding (`None` = all real) and the
    /// per-sequence real-token counts after them.
    pub(crate) fn advance(
        &mut self,
        new: usize,
        padding: Option<Tensor<2, Bool>>,
        real_counts: Vec<usize>,
        device: &Device,
    ) {
        let batch = real_counts.len();
        let no_padding = |n: usize| Tensor::<2, Int>::zeros([batch, n], device).bool();
        self.padding = match (self.padding.take(), padding) {
            (None, None) => None,
            (old, new_pad) => {
                let new_pad = new_pad.unwrap_or_else(|| no_padding(new));
                Some(match (self.len, old) {
                    (0, _) => new_pad,
                    (len, old) => {
                        Tensor::cat(vec![old.unwrap_or_else(|| no_padding(len)), new_pad], 1)
                    }
                })
            }
        };
        self.len += new;
        self.real_counts = real_counts;
    }
}
