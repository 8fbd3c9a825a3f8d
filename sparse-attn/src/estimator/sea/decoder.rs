//! SEA's decoders from the encoder's per-query features `E` `[B, H, T, 2D]` to compressed
//! attention scores `Ŝ` `[B, H, T, T_M]`: a row decoder (one Linear per query) whose output is
//! split into `s` channels per head, then a small CNN over the (query × compressed key) image
//! with the heads as channels.
//!
//! Shapes and layers are the reference's (`perlin_attention/attention.py`, `modules.py`):
//!
//! | | causal | bidirectional |
//! |---|---|---|
//! | row decoder | Linear(2D → (T_M/4)·2), split s = 2 | Linear(2D → (T_M/2)·4), split s = 4 |
//! | CNN | LayerNorm(T_M/4) → causal conv 3×3 dil 2 (2H→2H) → ReLU → causal conv 3×3 dil 2 → ReLU → nearest ×4 in width → 1×1 conv (2H→H, width padding 1) → area resize to width T_M → LayerNorm(T_M) | conv 3×3 stride (2,1) (4H→4H) → ReLU → conv 3×3 (4H→4H) → ReLU → nearest ×2 in height → conv 3×3 (4H→H) → bilinear resize to (T, T_M) |
//!
//! A **causal conv** here is a 3×3 kernel with dilation 2 whose rows read queries `t − 4`,
//! `t − 2`, `t`: the input is zero-padded by 4 rows at the top only (and 2 columns each side).
//! The reference writes the same function as a 5-row kernel with its last two rows masked to
//! zero and symmetric padding; the masked rows never carry weight, so the parameters here are
//! exactly its live ones. Neither path lets an estimate of query `t` read queries after `t`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::resample::{Resample, repeat_height, repeat_width, resample_height, resample_width};

/// Width down-scale `r` and channel split `s` of the row decoder.
pub fn row_decoder_shape(causal: bool) -> (usize, usize) {
    if causal { (4, 2) } else { (2, 4) }
}

/// `[B, H, T, s·W]` → `[B, H·s, T, W]`: the `i`-th contiguous chunk of `W` features of head `h`
/// becomes channel `h·s + i` (the reference's `ChannelSplit`).
pub fn channel_split(x: Tensor<4>, splits: usize) -> Tensor<4> {
    let [b, h, t, f] = x.dims();
    assert!(
        f.is_multiple_of(splits),
        "channel_split: features ({f}) must be a multiple of the split ({splits})"
    );
    x.reshape([b, h, t, splits, f / splits])
        .swap_dims(2, 3)
        .reshape([b, h * splits, t, f / splits])
}

/// The row decoder: Linear(2D → (T_M/r)·s) then [`channel_split`].
#[derive(Module, Debug)]
pub struct RowDecoder {
    /// The per-query projection.
    pub linear: Linear,
    /// Channel split `s`.
    pub splits: usize,
}

impl RowDecoder {
    /// A row decoder for `head_dim` D and compressed width `T_M`.
    pub fn new(head_dim: usize, compressed_len: usize, causal: bool, device: &Device) -> Self {
        let (r, s) = row_decoder_shape(causal);
        Self {
            linear: LinearConfig::new(2 * head_dim, (compressed_len / r) * s).init(device),
            splits: s,
        }
    }

    /// `[B, H, T, 2D]` → `[B, H·s, T, T_M/r]`.
    pub fn forward(&self, e: Tensor<4>) -> Tensor<4> {
        channel_split(self.linear.forward(e), self.splits)
    }
}

/// The causal CNN decoder (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct CausalCnnDecoder {
    /// LayerNorm over the T_M/4 input columns.
    pub norm_in: LayerNorm,
    /// First causal conv, 2H → 2H.
    pub conv1: Conv2d,
    /// Second causal conv, 2H → 2H.
    pub conv2: Conv2d,
    /// 1×1 conv to one channel per head (width padded by 1 each side, as the reference).
    pub conv_out: Conv2d,
    /// LayerNorm over the T_M output columns.
    pub norm_out: LayerNorm,
    /// T_M.
    pub width: usize,
}

/// A 3×3, dilation-2 conv that only reads the current and earlier query rows.
fn causal_conv(channels: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels, channels], [3, 3])
        .with_dilation([2, 2])
        // (top, left, bottom, right): rows t-4, t-2, t; columns c-2, c, c+2.
        .with_padding(PaddingConfig2d::Explicit(4, 2, 0, 2))
        .init(device)
}

impl CausalCnnDecoder {
    /// The decoder for `heads` heads and compressed width `width` (a multiple of 4).
    ///
    /// # Panics
    /// If `width` is not a positive multiple of 4.
    pub fn new(heads: usize, width: usize, device: &Device) -> Self {
        assert!(
            width > 0 && width.is_multiple_of(4),
            "CausalCnnDecoder: compressed_len must be a positive multiple of 4, found {width}"
        );
        let (_, s) = row_decoder_shape(true);
        Self {
            norm_in: LayerNormConfig::new(width / 4).init(device),
            conv1: causal_conv(s * heads, device),
            conv2: causal_conv(s * heads, device),
            conv_out: Conv2dConfig::new([s * heads, heads], [1, 1])
                .with_padding(PaddingConfig2d::Explicit(0, 1, 0, 1))
                .init(device),
            norm_out: LayerNormConfig::new(width).init(device),
            width,
        }
    }

    /// `[B, 2H, T, T_M/4]` → `[B, H, T, T_M]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.norm_in.forward(x);
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x = self.conv_out.forward(repeat_width(x, 4)); // width T_M + 2
        let x = resample_width(x, self.width, Resample::Area);
        self.norm_out.forward(x)
    }
}

/// The bidirectional CNN decoder (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct BidirectionalCnnDecoder {
    /// 3×3 conv, stride 2 over queries, 4H → 4H.
    pub conv1: Conv2d,
    /// 3×3 conv, 4H → 4H.
    pub conv2: Conv2d,
    /// 3×3 conv, 4H → H.
    pub conv_out: Conv2d,
    /// T_M.
    pub width: usize,
}

impl BidirectionalCnnDecoder {
    /// The decoder for `heads` heads and compressed width `width` (a multiple of 2).
    ///
    /// # Panics
    /// If `width` is not a positive multiple of 2.
    pub fn new(heads: usize, width: usize, device: &Device) -> Self {
        assert!(
            width > 0 && width.is_multiple_of(2),
            "BidirectionalCnnDecoder: compressed_len must be a positive multiple of 2, found {width}"
        );
        let (_, s) = row_decoder_shape(false);
        let same = PaddingConfig2d::Explicit(1, 1, 1, 1);
        Self {
            conv1: Conv2dConfig::new([s * heads, 4 * heads], [3, 3])
                .with_stride([2, 1])
                .with_padding(same.clone())
                .init(device),
            conv2: Conv2dConfig::new([4 * heads, 4 * heads], [3, 3])
                .with_padding(same.clone())
                .init(device),
            conv_out: Conv2dConfig::new([4 * heads, heads], [3, 3])
                .with_padding(same)
                .init(device),
            width,
        }
    }

    /// `[B, 4H, T, T_M/2]` → `[B, H, T, T_M]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let t = x.dims()[2];
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x = self.conv_out.forward(repeat_height(x, 2));
        // The reference resizes to (T, T_M) with one mode chosen by the width: bilinear.
        let mode = Resample::reference_choice(x.dims()[3], self.width);
        resample_width(resample_height(x, t, mode), self.width, mode)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    #[test]
    fn channel_split_moves_feature_chunks_to_channels() {
        let device = Device::flex();
        // One head, one query, features [0 1 | 2 3] → channels [0 1], [2 3].
        let x = Tensor::<4>::from_floats([[[[0.0, 1.0, 2.0, 3.0]]]], &device);
        let y = channel_split(x, 2);
        assert_eq!(y.dims(), [1, 2, 1, 2]);
        y.into_data()
            .assert_eq(&TensorData::from([[[[0.0f32, 1.0]], [[2.0, 3.0]]]]), false);
    }

    #[test]
    fn decoders_produce_one_compressed_row_per_query() {
        let device = Device::flex();
        let (h, tm, t) = (3, 16, 7);
        let causal = CausalCnnDecoder::new(h, tm, &device);
        let x = Tensor::<4>::random(
            [2, 2 * h, t, tm / 4],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        assert_eq!(causal.forward(x).dims(), [2, h, t, tm]);
        let bidir = BidirectionalCnnDecoder::new(h, tm, &device);
        let x = Tensor::<4>::random(
            [2, 4 * h, t, tm / 2],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        assert_eq!(bidir.forward(x).dims(), [2, h, t, tm]);
    }

    #[test]
    fn causal_decoder_never_reads_later_queries() {
        let device = Device::flex();
        let (h, tm, t) = (2, 8, 9);
        let dec = CausalCnnDecoder::new(h, tm, &device);
        let x = Tensor::<4>::random(
            [1, 2 * h, t, tm / 4],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let changed = x.clone().slice_assign(
            [0..1, 0..2 * h, 5..t, 0..tm / 4],
            Tensor::random(
                [1, 2 * h, t - 5, tm / 4],
                Distribution::Normal(3.0, 1.0),
                &device,
            ),
        );
        let a = dec.forward(x).slice([0..1, 0..h, 0..5, 0..tm]);
        let b = dec.forward(changed).slice([0..1, 0..h, 0..5, 0..tm]);
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::strict());
    }
}
