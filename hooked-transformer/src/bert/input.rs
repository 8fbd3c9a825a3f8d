//! A batch of token sequences for a BERT encoder: ids, token types and the padding mask.

use burn::prelude::*;

/// BERT's input: a right-padded batch of token ids, optional token-type ids and a padding mask.
///
/// Positions are absolute (`0..pos` in every row), so padding must be on the right, which is
/// what [`BertInput::from_sequences`] builds.
#[derive(Clone, Debug)]
pub struct BertInput {
    /// Token ids, `[batch, pos]`.
    pub ids: Tensor<2, Int>,
    /// Token-type (segment) ids, `[batch, pos]`; `None` means all 0.
    pub type_ids: Option<Tensor<2, Int>>,
    /// `[batch, pos]`, `true` at padding positions (never attended to); `None` means no padding.
    pub padding: Option<Tensor<2, Bool>>,
}

impl BertInput {
    /// One unpadded batch of ids `[batch, pos]`, token types 0.
    pub fn new(ids: Tensor<2, Int>) -> Self {
        Self {
            ids,
            type_ids: None,
            padding: None,
        }
    }

    /// With token-type ids `[batch, pos]`.
    pub fn with_type_ids(mut self, type_ids: Tensor<2, Int>) -> Self {
        self.type_ids = Some(type_ids);
        self
    }

    /// With a padding mask `[batch, pos]` (`true` = padding).
    pub fn with_padding(mut self, padding: Tensor<2, Bool>) -> Self {
        self.padding = Some(padding);
        self
    }

    /// Right-pads `sequences` with `pad_id` to the longest one and builds the padding mask
    /// (no mask when all have the same length). Token types are 0, or `type_ids` when given
    /// (one per token, same lengths as `sequences`).
    ///
    /// # Panics
    /// If `sequences` is empty, a sequence is empty, or `type_ids` lengths differ from the
    /// sequences'.
    pub fn from_sequences(
        sequences: &[Vec<u32>],
        type_ids: Option<&[Vec<u32>]>,
        pad_id: u32,
        device: &Device,
    ) -> Self {
        assert!(
            !sequences.is_empty(),
            "from_sequences: expected at least one sequence, found 0"
        );
        let b = sequences.len();
        let p = sequences.iter().map(Vec::len).max().unwrap_or(0);
        assert!(
            sequences.iter().all(|s| !s.is_empty()),
            "from_sequences: every sequence needs at least one token"
        );
        let mut ids = Vec::with_capacity(b * p);
        let mut pad = Vec::with_capacity(b * p);
        for s in sequences {
            ids.extend(s.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(pad_id as i64, p - s.len()));
            pad.extend(std::iter::repeat_n(false, s.len()));
            pad.extend(std::iter::repeat_n(true, p - s.len()));
        }
        let mut input = Self::new(Tensor::from_data(TensorData::new(ids, [b, p]), device));
        if let Some(types) = type_ids {
            assert_eq!(
                types.iter().map(Vec::len).collect::<Vec<_>>(),
                sequences.iter().map(Vec::len).collect::<Vec<_>>(),
                "from_sequences: type_ids lengths must equal the sequences' lengths"
            );
            let mut t = Vec::with_capacity(b * p);
            for s in types {
                t.extend(s.iter().map(|&x| x as i64));
                t.extend(std::iter::repeat_n(0i64, p - s.len()));
            }
            input = input.with_type_ids(Tensor::from_data(TensorData::new(t, [b, p]), device));
        }
        if sequences.iter().any(|s| s.len() < p) {
            input = input.with_padding(Tensor::from_data(TensorData::new(pad, [b, p]), device));
        }
        input
    }

    /// `[batch, pos]`.
    pub fn dims(&self) -> [usize; 2] {
        self.ids.dims()
    }
}
