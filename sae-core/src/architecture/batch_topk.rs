//! BatchTopK SAE (Bussmann, Leask, Nanda 2024).
// Parameter fields carry SAELens tensor names (`W_enc`, `W_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::common::{
    check_input, check_linear_shapes, constrain_decoder, fold_norms_into_encoder,
    fold_scale_into_linear, linear_dictionary, linear_pre_activations, mse_output,
    project_decoder_gradient, rescale_by_decoder_norms, row, tied_init_weights, unit_norm_when,
};
use super::config_check::{ConfigError, Rules, expect_valid};
use super::jumprelu::JumpReluSae;
use crate::kernels::{ComputePath, batch_top_k};
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, DecoderConstraint, Result, SparseAutoencoder, StepContext, TrainingOutput,
};

/// Configuration of a [`BatchTopKSae`]; defaults are SAELens'
/// (`BatchTopKTrainingSAEConfig`) except `k`, which is required.
#[derive(Config, Debug)]
pub struct BatchTopKSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Average number of active latents per token; a batch of `B` keeps `⌊k·B⌋` entries
    /// (SAELens `k`, a float).
    pub k: f64,
    /// Rate of the threshold's exponential moving average (SAELens `topk_threshold_lr`,
    /// default 0.01).
    #[config(default = 0.01)]
    pub topk_threshold_lr: f64,
    /// Select and encode on `pre ⊙ ‖W_dec,i‖` (default true, as SAELens).
    #[config(default = true)]
    pub rescale_acts_by_decoder_norm: bool,
    /// Unit-norm decoder rows with gradient projection (default false).
    #[config(default = false)]
    pub unit_norm_decoder: bool,
    /// Subtract `b_dec` from the input before encoding (default true).
    #[config(default = true)]
    pub apply_b_dec_to_input: bool,
    /// Initial decoder row norm for a free decoder (default 0.1).
    #[config(default = 0.1)]
    pub decoder_init_norm: f64,
}

impl BatchTopKSaeConfig {
    /// A freshly initialised SAE: tied weights, zero biases, threshold 0.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> BatchTopKSae {
        expect_valid(self.check());
        let (w_enc, w_dec) = tied_init_weights(
            self.d_in,
            self.d_sae,
            unit_norm_when(self.unit_norm_decoder),
            self.decoder_init_norm,
            device,
        );
        self.build(
            w_enc,
            Tensor::zeros([self.d_sae], device),
            w_dec,
            Tensor::zeros([self.d_in], device),
            0.0,
        )
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `k` in `(0, d_sae]`, `topk_threshold_lr` in `[0, 1]`, `decoder_init_norm` positive and finite.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("BatchTopKSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.in_half_open("k", self.k, self.d_sae, "d_sae")?;
        r.fraction("topk_threshold_lr", self.topk_threshold_lr)?;
        r.positive("decoder_init_norm", self.decoder_init_norm)
    }

    fn build(
        &self,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
        threshold: f64,
    ) -> BatchTopKSae {
        let device = w_enc.device();
        BatchTopKSae {
            topk_threshold: threshold_param(threshold, &device),
            W_enc: Param::from_tensor(w_enc),
            b_enc: Param::from_tensor(b_enc),
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            k: self.k,
            topk_threshold_lr: self.topk_threshold_lr,
            rescale_acts_by_decoder_norm: self.rescale_acts_by_decoder_norm,
            unit_norm_decoder: self.unit_norm_decoder,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
        }
    }
}

/// A `[1]` non-trainable parameter: saved with the module, never given a gradient.
pub(crate) fn threshold_param(value: f64, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::from_floats([value as f32], device)).set_require_grad(false)
}

/// The threshold parameter `param` (same id) holding `theta` instead.
fn replace_threshold(param: Param<Tensor<1>>, theta: f64) -> Param<Tensor<1>> {
    let device = param.val().device();
    param.map(|_| Tensor::from_floats([theta as f32], &device))
}

/// BatchTopK SAE: ReLU pre-activations, and over the whole batch only the `⌊k·B⌋` largest
/// entries are kept, so `k` is the *average* L0 per token.
///
/// Training keeps an EMA of the smallest kept activation in [`BatchTopKSae::topk_threshold`]
/// (a non-trainable parameter, so `save_file` checkpoints it):
/// `θ ← (1 − lr)·θ + lr·min{f > 0}` after every step ([`SparseAutoencoder::update_running_state`],
/// SAELens `update_topk_threshold`). At inference BatchTopK *is* a JumpReLU with the global
/// threshold θ: [`SparseAutoencoder::encode`] returns `f = a · 1[a > θ]`, `a = ReLU(pre)` —
/// batch-independent — and [`SparseAutoencoder::into_inference`] exports a [`JumpReluSae`] with
/// `threshold = θ·1` (decoder norms folded first), as SAELens saves it. The batch-level
/// selection itself is [`BatchTopKSae::encode_batch`].
///
/// Training objective: `"mse"` (aux-K is the trainer's). Threshold precision: SAELens keeps θ in
/// float64; here it is stored as f32 and updated in f64 arithmetic.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::{BatchTopKSaeConfig, SparseAutoencoder, StepContext};
///
/// let device = Device::flex();
/// device.seed(0);
/// let sae = BatchTopKSaeConfig::new(8, 32, 2.0).init(&device);
/// let x = Tensor::<2>::random([4, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
/// let out = sae.training_forward(x, &StepContext::new(0));
/// // 2 active latents per token on average: 8 over the batch of 4 (fewer only if < 8 are positive).
/// let nonzero = out.codes.clone().not_equal_elem(0.0).int().sum().into_scalar::<i64>();
/// assert!(nonzero <= 8);
/// let sae = sae.update_running_state(&out);
/// assert!(sae.threshold() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct BatchTopKSae {
    /// Encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Encoder bias `[d_sae]`.
    pub b_enc: Param<Tensor<1>>,
    /// Decoder weights `[d_sae, d_in]`.
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// The global threshold θ, `[1]`, not trainable (SAELens `topk_threshold`).
    pub topk_threshold: Param<Tensor<1>>,
    /// Average active latents per token.
    pub k: f64,
    /// EMA rate of the threshold.
    pub topk_threshold_lr: f64,
    /// Select and encode on decoder-norm-rescaled pre-activations.
    pub rescale_acts_by_decoder_norm: bool,
    /// Unit-norm decoder rows with gradient projection.
    pub unit_norm_decoder: bool,
    /// Whether `b_dec` is subtracted from the input.
    pub apply_b_dec_to_input: bool,
}

impl BatchTopKSae {
    /// Builds an SAE from given tensors and threshold θ, checking shapes against the config.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`BatchTopKSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] for a wrong shape, [`crate::Error::InvalidValue`] for a
    /// negative or non-finite threshold.
    pub fn from_tensors(
        config: &BatchTopKSaeConfig,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
        topk_threshold: f64,
    ) -> Result<Self> {
        config.check()?;
        check_linear_shapes(config.d_in, config.d_sae, &w_enc, &b_enc, &w_dec, &b_dec)?;
        if !(topk_threshold.is_finite() && topk_threshold >= 0.0) {
            return Err(crate::Error::InvalidValue {
                what: "topk_threshold".into(),
                reason: format!("must be finite and non-negative, found {topk_threshold}"),
            });
        }
        Ok(config.build(w_enc, b_enc, w_dec, b_dec, topk_threshold))
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> BatchTopKSaeConfig {
        BatchTopKSaeConfig::new(self.d_in(), self.d_sae(), self.k)
            .with_topk_threshold_lr(self.topk_threshold_lr)
            .with_rescale_acts_by_decoder_norm(self.rescale_acts_by_decoder_norm)
            .with_unit_norm_decoder(self.unit_norm_decoder)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    /// The current global threshold θ.
    pub fn threshold(&self) -> f64 {
        self.topk_threshold.val().into_scalar::<f64>()
    }

    /// `ReLU` of the (rescaled) pre-activations, `[batch, d_sae]`: the values the batch-level
    /// selection ranks and the codes are made of.
    pub fn activations(&self, x: Tensor<2>) -> Tensor<2> {
        relu(self.rescaled_pre_activations(x))
    }

    /// `(x − b_dec) W_enc + b_enc`, times the decoder row norms when rescaling.
    fn rescaled_pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        check_input("BatchTopKSae", &x, self.d_in());
        let pre = linear_pre_activations(
            x,
            &self.W_enc,
            &self.b_enc,
            &self.b_dec,
            self.apply_b_dec_to_input,
        );
        rescale_by_decoder_norms(pre, &self.W_dec, self.rescale_acts_by_decoder_norm)
    }

    /// Number of entries a batch of `batch` tokens keeps: `⌊k·batch⌋`, at most `batch·d_sae`.
    pub fn k_total(&self, batch: usize) -> usize {
        ((self.k * batch as f64).floor() as usize).min(batch * self.d_sae())
    }

    /// The training-time encoding: the `⌊k·B⌋` largest activations of the whole batch
    /// (ties: lower flat index), `[batch, d_sae]`.
    pub fn encode_batch(&self, x: Tensor<2>) -> Tensor<2> {
        let acts = self.activations(x);
        let [batch, _] = acts.dims();
        let path = ComputePath::for_device(&acts.device());
        batch_top_k(acts, self.k_total(batch), path)
    }

    /// Folds decoder norms into the encoder (see [`crate::TopKSae::fold_decoder_norms`]) and
    /// turns rescaling off; codes, threshold and `forward` are unchanged.
    ///
    /// # Panics
    /// If `rescale_acts_by_decoder_norm` is false (the selection would change).
    pub fn fold_decoder_norms(self) -> Self {
        assert!(
            self.rescale_acts_by_decoder_norm,
            "BatchTopKSae::fold_decoder_norms: without rescale_acts_by_decoder_norm the selection changes when decoder norms are folded"
        );
        let (W_enc, b_enc, W_dec) = fold_norms_into_encoder(self.W_enc, self.b_enc, self.W_dec);
        Self {
            W_enc,
            b_enc,
            W_dec,
            rescale_acts_by_decoder_norm: false,
            ..self
        }
    }

    /// The inference form: a JumpReLU SAE with `threshold = θ` for every latent.
    pub fn to_jumprelu(self) -> JumpReluSae {
        let sae = if self.rescale_acts_by_decoder_norm {
            self.fold_decoder_norms()
        } else {
            self
        };
        let theta = sae.threshold();
        let d_sae = sae.d_sae();
        let device = sae.W_enc.val().device();
        JumpReluSae::inference_from_parts(
            sae.W_enc.val().inner(),
            sae.b_enc.val().inner(),
            sae.W_dec.val().inner(),
            sae.b_dec.val().inner(),
            Tensor::full([d_sae], theta, &device),
            sae.apply_b_dec_to_input,
        )
    }
}

/// `θ ← (1 − lr)·θ + lr·min{codes > 0}`; unchanged when no code is positive.
pub(crate) fn ema_threshold(theta: f64, lr: f64, codes: &Tensor<2>) -> f64 {
    let codes = codes.clone().detach();
    let min_positive = codes
        .clone()
        .mask_fill(codes.lower_equal_elem(0.0), f32::INFINITY)
        .min()
        .into_scalar::<f64>();
    if min_positive.is_finite() {
        (1.0 - lr) * theta + lr * min_positive
    } else {
        theta
    }
}

/// `a · 1[a > θ]` for a scalar θ.
pub(crate) fn threshold_codes(acts: Tensor<2>, theta: f64) -> Tensor<2> {
    let keep = acts.clone().greater_elem(theta);
    acts.mask_fill(keep.bool_not(), 0.0)
}

impl SparseAutoencoder for BatchTopKSae {
    fn architecture(&self) -> Architecture {
        Architecture::BatchTopK
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        threshold_codes(self.activations(x), self.threshold())
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.dictionary()) + row(self.b_dec.val())
    }

    fn training_forward(&self, x: Tensor<2>, _ctx: &StepContext) -> TrainingOutput {
        let pre = self.rescaled_pre_activations(x.clone());
        let [batch, _] = pre.dims();
        let path = ComputePath::for_device(&pre.device());
        let codes = batch_top_k(relu(pre.clone()), self.k_total(batch), path);
        let reconstruction = self.decode(codes.clone());
        TrainingOutput {
            pre_activations: Some(pre),
            ..mse_output(x, reconstruction, codes)
        }
    }

    fn dictionary(&self) -> Tensor<2> {
        linear_dictionary(&self.W_dec, self.rescale_acts_by_decoder_norm)
    }

    fn decoder_bias(&self) -> Tensor<1> {
        self.b_dec.val()
    }

    fn decoder_constraint(&self) -> DecoderConstraint {
        unit_norm_when(self.unit_norm_decoder)
    }

    fn project_gradients(&self, grads: &mut GradientsParams) {
        project_decoder_gradient(grads, &self.W_dec, self.decoder_constraint());
    }

    fn apply_constraints(self) -> Self {
        let constraint = self.decoder_constraint();
        Self {
            W_dec: constrain_decoder(self.W_dec, constraint),
            ..self
        }
    }

    fn update_running_state(self, output: &TrainingOutput) -> Self {
        let theta = ema_threshold(self.threshold(), self.topk_threshold_lr, &output.codes);
        Self {
            topk_threshold: replace_threshold(self.topk_threshold, theta),
            ..self
        }
    }

    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        // With rescaling the codes scale by 1/scale (they carry the decoder norms), so θ does too.
        let theta = if self.rescale_acts_by_decoder_norm {
            self.threshold() / scale
        } else {
            self.threshold()
        };
        let (W_enc, W_dec, b_dec) =
            fold_scale_into_linear(self.W_enc, self.W_dec, self.b_dec, scale);
        Self {
            W_enc,
            W_dec,
            b_dec,
            topk_threshold: replace_threshold(self.topk_threshold, theta),
            ..self
        }
    }

    fn into_inference(self) -> AnySae {
        AnySae::JumpRelu(self.to_jumprelu())
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::scale_rows;
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;
    use burn::tensor::Distribution;

    #[test]
    fn keeps_exactly_k_times_batch_over_the_batch() {
        let device = test_device();
        // Identity encoder: the codes are the ReLU of the input itself.
        let cfg = BatchTopKSaeConfig::new(4, 4, 1.5).with_rescale_acts_by_decoder_norm(false);
        let sae = BatchTopKSae::from_tensors(
            &cfg,
            Tensor::eye(4, &device),
            Tensor::zeros([4], &device),
            Tensor::eye(4, &device),
            Tensor::zeros([4], &device),
            0.0,
        )
        .unwrap();
        let x = Tensor::<2>::from_floats([[9.0, 1.0, 8.0, 2.0], [7.0, 3.0, 0.5, 6.0]], &device);
        // ⌊1.5·2⌋ = 3 entries over the batch: 9, 8, 7 — row 0 keeps two, row 1 one.
        let out = sae.training_forward(x, &StepContext::new(0));
        out.codes.clone().into_data().assert_eq(
            &TensorData::from([[9.0f32, 0.0, 8.0, 0.0], [7.0, 0.0, 0.0, 0.0]]),
            false,
        );
        // θ ← 0.99·0 + 0.01·7.
        let sae = sae.update_running_state(&out);
        assert_relative_eq!(sae.threshold(), 0.07, epsilon = 1e-6);
        // Inference: a·1[a > θ] with θ = 0.07.
        let x = Tensor::<2>::from_floats([[0.05, 0.08, -1.0, 3.0]], &device);
        sae.encode(x)
            .into_data()
            .assert_eq(&TensorData::from([[0.0f32, 0.08, 0.0, 3.0]]), false);
    }

    #[test]
    fn jumprelu_export_and_scale_fold_keep_forward() {
        let device = test_device();
        device.seed(11);
        let sae = BatchTopKSaeConfig::new(6, 24, 3.0).init(&device);
        let sae = BatchTopKSae {
            W_dec: scale_rows(
                sae.W_dec,
                Tensor::random([24], Distribution::Uniform(0.5, 3.0), &device),
            ),
            b_dec: sae
                .b_dec
                .map(|b| b + Tensor::random([6], Distribution::Normal(0.0, 0.1), &device)),
            topk_threshold: threshold_param(0.05, &device),
            ..sae
        };
        let x = Tensor::<2>::random([12, 6], Distribution::Normal(0.0, 1.0), &device);
        let expected = sae.forward(x.clone()).into_data();
        let exported = sae.clone().into_inference();
        assert_eq!(exported.architecture(), Architecture::JumpRelu);
        exported
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        let scaled = sae.fold_input_scale(3.0);
        (scaled.forward(x.clone().div_scalar(3.0)) * 3.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
    }

    #[test]
    fn threshold_is_saved_with_the_module() {
        use burn::module::Module;
        let device = test_device();
        let sae = BatchTopKSaeConfig::new(3, 6, 1.0).init(&device);
        let sae = BatchTopKSae {
            topk_threshold: threshold_param(0.25, &device),
            ..sae
        };
        let record = sae.clone().into_record();
        let fresh = BatchTopKSaeConfig::new(3, 6, 1.0).init(&device);
        let loaded = fresh.load_record(record);
        assert_relative_eq!(loaded.threshold(), 0.25);
    }
}
