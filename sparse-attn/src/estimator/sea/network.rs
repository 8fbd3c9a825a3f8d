//! SEA's estimator network: from one layer's `q`, `k`, `v` to compressed attention scores
//! `Ŝ` `[B, H, T, T_M]` — one row of `T_M` relative key positions per query — and the per-query
//! output scales.
//!
//! 1. `V' = concat(V_pos, v)` `[B, H, T, 2D]` ([`position`](super::position)).
//! 2. `C = Performer(q', k, V')` `[B, H, T, 2D]`, causal for a decoder. `q'` is what the
//!    reference's models hand their Performer: OPT (causal) multiplies its queries by the score
//!    scale before attention, so `q' = scale·q`; BERT (bidirectional) does not, and the softmax
//!    kernel's `D^{-1/4}·D^{-1/4}` supplies `1/√D`, so `q' = scale·√D·q` (= `q` at the usual
//!    scale).
//! 3. `E = GELU(LayerNorm(Linear(concat(C, v))))` `[B, H, T, 2D]` (Linear 3D → 2D).
//! 4. `Ŝ = CNN(RowDecoder(E))` ([`decoder`](super::decoder)).
//! 5. `scales = Linear(E)` `[B, H, T, 2]`: `σ(scales₀)` multiplies the sparse attention
//!    probabilities (`partial_attention_scaler`), `σ(scales₁)` mixes the sparse context with the
//!    running average of `v` (`context_output_method = 'mix'`).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{gelu, sigmoid, softmax};

use super::decoder::{BidirectionalCnnDecoder, CausalCnnDecoder, RowDecoder};
use super::performer::{Performer, PerformerConfig};
use super::position::identity_position_tensor;

/// The estimator's settings; defaults are the reference's (`PerlinAttentionConfig`).
#[derive(Config, Debug)]
pub struct SeaEstimatorConfig {
    /// Query heads `H` (keys and values are repeated to them).
    pub heads: usize,
    /// Head dimension `D`.
    pub head_dim: usize,
    /// Compressed width `T_M` (`attention_predictor_length`; reference default 128, its OPT
    /// scripts 256). A multiple of 4.
    #[config(default = 128)]
    pub compressed_len: usize,
    /// Decoder (causal) attention (reference default false).
    #[config(default = false)]
    pub causal: bool,
    /// Rows of the causal learned position table (the reference uses the model's
    /// `max_position_embeddings`, else 2048).
    #[config(default = 2048)]
    pub max_len: usize,
    /// Performer features `m = ⌊D·ln D / nb_factor⌋` (reference default 1; OPT scripts 8).
    #[config(default = 1)]
    pub performer_nb_factor: usize,
    /// Multiply the sparse probabilities by `σ(scales₀)` (`partial_attention_scaler`, default
    /// true).
    #[config(default = true)]
    pub partial_attention_scaler: bool,
    /// Seed of the Performer's projection (the trainable weights use the device's generator).
    #[config(default = 0)]
    pub seed: u64,
}

impl SeaEstimatorConfig {
    /// A freshly initialised estimator.
    ///
    /// # Panics
    /// If a size is zero, or `compressed_len` is not a multiple of 4 (causal) / 2.
    pub fn init(&self, device: &Device) -> SeaEstimator {
        assert!(
            self.heads > 0 && self.head_dim > 0 && self.max_len > 0,
            "SeaEstimatorConfig: heads, head_dim and max_len must be positive, found {}, {}, {}",
            self.heads,
            self.head_dim,
            self.max_len
        );
        let d = self.head_dim;
        SeaEstimator {
            positions: self.causal.then(|| {
                Param::from_tensor(Tensor::random(
                    [self.max_len, d],
                    Distribution::Normal(0.0, 1.0),
                    device,
                ))
            }),
            performer: PerformerConfig::new(d)
                .with_nb_factor(self.performer_nb_factor)
                .with_generalized(self.causal)
                .with_seed(self.seed)
                .init(device),
            encoder: LinearConfig::new(3 * d, 2 * d).init(device),
            encoder_norm: LayerNormConfig::new(2 * d).init(device),
            row_decoder: RowDecoder::new(d, self.compressed_len, self.causal, device),
            causal_cnn: self
                .causal
                .then(|| CausalCnnDecoder::new(self.heads, self.compressed_len, device)),
            bidirectional_cnn: (!self.causal)
                .then(|| BidirectionalCnnDecoder::new(self.heads, self.compressed_len, device)),
            scaler: LinearConfig::new(2 * d, 2).init(device),
            heads: self.heads,
            head_dim: d,
            compressed_len: self.compressed_len,
            causal: self.causal,
            partial_attention_scaler: self.partial_attention_scaler,
        }
    }
}

/// SEA's attention estimator for one layer (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct SeaEstimator {
    /// Causal: the learned position table `[max_len, D]`.
    pub positions: Option<Param<Tensor<2>>>,
    /// Random-feature attention over `concat(V_pos, v)`.
    pub performer: Performer,
    /// Linear(3D → 2D).
    pub encoder: Linear,
    /// LayerNorm(2D).
    pub encoder_norm: LayerNorm,
    /// Linear(2D → (T_M/r)·s) + channel split.
    pub row_decoder: RowDecoder,
    /// Causal CNN decoder.
    pub causal_cnn: Option<CausalCnnDecoder>,
    /// Bidirectional CNN decoder.
    pub bidirectional_cnn: Option<BidirectionalCnnDecoder>,
    /// Linear(2D → 2): probability scale and context mix, per query.
    pub scaler: Linear,
    /// Query heads.
    pub heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// T_M.
    pub compressed_len: usize,
    /// Causal estimator.
    pub causal: bool,
    /// Whether `σ(scales₀)` multiplies the sparse probabilities.
    pub partial_attention_scaler: bool,
}

/// What the estimator says about one attention call.
#[derive(Clone, Debug)]
pub struct SeaEstimate {
    /// Compressed scores `Ŝ` `[B, H, T, T_M]`.
    pub scores: Tensor<4>,
    /// Encoder features `E` `[B, H, T, 2D]`.
    pub features: Tensor<4>,
    /// Raw output scales `[B, H, T, 2]` (before the sigmoid).
    pub scales: Tensor<4>,
    /// Whether the probability scale applies.
    pub partial_attention_scaler: bool,
}

impl SeaEstimate {
    /// `P̂ = softmax_{T_M}(Ŝ)`.
    pub fn probs(&self) -> Tensor<4> {
        softmax(self.scores.clone(), 3)
    }

    /// The factor on the sparse probabilities `[B, H, T, 1]`: `σ(scales₀)`, or 1.
    pub fn probability_scale(&self) -> Tensor<4> {
        let [b, h, t, _] = self.scales.dims();
        if self.partial_attention_scaler {
            sigmoid(self.scales.clone().slice([0..b, 0..h, 0..t, 0..1]))
        } else {
            Tensor::ones([b, h, t, 1], &self.scales.device())
        }
    }

    /// The weight of the sparse context against the average context, `σ(scales₁)` `[B, H, T, 1]`.
    pub fn context_mix(&self) -> Tensor<4> {
        let [b, h, t, _] = self.scales.dims();
        sigmoid(self.scales.clone().slice([0..b, 0..h, 0..t, 1..2]))
    }
}

impl SeaEstimator {
    /// Estimates self-attention of `q`, `k`, `v` `[B, H, T, D]` (keys and values already at
    /// the query head count) with score scale `scale`. `lengths[b]` = unpadded tokens of
    /// batch `b` (bidirectional only; `None` = none padded).
    ///
    /// # Panics
    /// If the shapes differ from `[B, heads, T, head_dim]`, a causal `T` exceeds `max_len`, or
    /// `lengths` is given for a causal estimator or is inconsistent.
    pub fn forward(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        scale: f64,
        lengths: Option<&[usize]>,
    ) -> SeaEstimate {
        let [b, h, t, d] = q.dims();
        assert!(
            h == self.heads
                && d == self.head_dim
                && k.dims() == [b, h, t, d]
                && v.dims() == [b, h, t, d],
            "SeaEstimator: q, k, v expected [B, {}, T, {}] each, found {:?}, {:?}, {:?}",
            self.heads,
            self.head_dim,
            q.dims(),
            k.dims(),
            v.dims()
        );
        let device = q.device();
        let (positions, q_in, valid) = match &self.positions {
            Some(table) => {
                assert!(
                    lengths.is_none(),
                    "SeaEstimator: key padding is only supported bidirectionally"
                );
                let max_len = table.dims()[0];
                assert!(
                    t <= max_len,
                    "SeaEstimator: sequence length must be at most max_len {max_len}, found {t}"
                );
                let pos = table
                    .val()
                    .slice([0..t, 0..d])
                    .reshape([1, 1, t, d])
                    .expand([b, h, t, d]);
                (pos, q.mul_scalar(scale), None)
            }
            None => {
                let lens: Vec<usize> = lengths.map_or_else(|| vec![t; b], <[usize]>::to_vec);
                assert!(
                    lens.len() == b && lens.iter().all(|&l| l <= t),
                    "SeaEstimator: lengths expected {b} values ≤ {t}, found {lens:?}"
                );
                let valid: Vec<f32> = (0..b)
                    .flat_map(|bi| (0..t).map(move |i| (bi, i)))
                    .map(|(bi, i)| if i < lens[bi] { 1.0 } else { 0.0 })
                    .collect();
                let valid = Tensor::<4>::from_data(TensorData::new(valid, [b, 1, t, 1]), &device);
                let pos = identity_position_tensor(&lens, h, t, d, &device);
                (pos, q.mul_scalar(scale * (d as f64).sqrt()), Some(valid))
            }
        };
        let v = match &valid {
            Some(m) => v * m.clone(),
            None => v,
        };
        let values = Tensor::cat(vec![positions, v.clone()], 3);
        let values = match &valid {
            Some(m) => values * m.clone(),
            None => values,
        };
        let context = self.performer.forward(q_in, k, values, self.causal);
        let features = gelu(
            self.encoder_norm
                .forward(self.encoder.forward(Tensor::cat(vec![context, v], 3))),
        );
        let image = self.row_decoder.forward(features.clone());
        let scores = match (&self.causal_cnn, &self.bidirectional_cnn) {
            (Some(cnn), _) => cnn.forward(image),
            (None, Some(cnn)) => cnn.forward(image),
            (None, None) => unreachable!("SeaEstimator has one CNN decoder by construction"),
        };
        SeaEstimate {
            scales: self.scaler.forward(features.clone()),
            scores,
            features,
            partial_attention_scaler: self.partial_attention_scaler,
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tolerance;

    use super::*;

    fn inputs(b: usize, h: usize, t: usize, d: usize, device: &Device) -> [Tensor<4>; 3] {
        [0.0, 0.0, 0.0]
            .map(|_| Tensor::random([b, h, t, d], Distribution::Normal(0.0, 1.0), device))
    }

    #[test]
    fn shapes_follow_the_reference() {
        let device = Device::flex();
        for causal in [true, false] {
            let est = SeaEstimatorConfig::new(3, 8)
                .with_compressed_len(16)
                .with_causal(causal)
                .with_max_len(32)
                .init(&device);
            let [q, k, v] = inputs(2, 3, 10, 8, &device);
            let e = est.forward(q, k, v, 8f64.powf(-0.5), None);
            assert_eq!(e.scores.dims(), [2, 3, 10, 16]);
            assert_eq!(e.features.dims(), [2, 3, 10, 16]);
            assert_eq!(e.scales.dims(), [2, 3, 10, 2]);
        }
    }

    #[test]
    fn causal_estimates_ignore_future_queries_keys_and_values() {
        let device = Device::flex();
        let est = SeaEstimatorConfig::new(2, 4)
            .with_compressed_len(8)
            .with_causal(true)
            .with_max_len(16)
            .init(&device);
        let (t, cut) = (12, 7);
        let [q, k, v] = inputs(1, 2, t, 4, &device);
        let change = |x: Tensor<4>| {
            x.slice_assign(
                [0..1, 0..2, cut..t, 0..4],
                Tensor::random([1, 2, t - cut, 4], Distribution::Normal(2.0, 1.0), &device),
            )
        };
        let a = est.forward(q.clone(), k.clone(), v.clone(), 0.5, None);
        let b = est.forward(change(q), change(k), change(v), 0.5, None);
        let early = |x: Tensor<4>| {
            let [bb, h, _, w] = x.dims();
            x.slice([0..bb, 0..h, 0..cut, 0..w]).into_data()
        };
        early(a.scores).assert_approx_eq::<f32>(&early(b.scores), Tolerance::rel_abs(1e-5, 1e-5));
        early(a.scales).assert_approx_eq::<f32>(&early(b.scales), Tolerance::rel_abs(1e-5, 1e-5));
    }

    #[test]
    fn gradients_reach_every_trainable_parameter() {
        let device = Device::flex().autodiff();
        let est = SeaEstimatorConfig::new(2, 4)
            .with_compressed_len(8)
            .with_causal(true)
            .with_max_len(8)
            .init(&device);
        let [q, k, v] = inputs(1, 2, 6, 4, &device);
        let e = est.forward(q, k, v, 0.5, None);
        let loss = e.scores.powi_scalar(2).mean() + e.scales.powi_scalar(2).mean();
        let grads = loss.backward();
        let table = est.positions.as_ref().expect("causal table");
        assert!(table.val().grad(&grads).is_some(), "position table");
        assert!(est.encoder.weight.val().grad(&grads).is_some(), "encoder");
        let cnn = est.causal_cnn.as_ref().expect("causal cnn");
        assert!(cnn.conv1.weight.val().grad(&grads).is_some(), "conv1");
        assert!(est.scaler.weight.val().grad(&grads).is_some(), "scaler");
        assert!(
            est.performer.projection.val().grad(&grads).is_none(),
            "projection is fixed"
        );
    }
}
