//! ReLU + L1 ("standard") SAE.
// Parameter fields carry SAELens tensor names (`W_enc`, `W_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::common::{
    check_input, check_linear_shapes, constrain_decoder, fold_norms_into_encoder,
    fold_scale_into_linear, linear_pre_activations, mse_term, project_decoder_gradient,
    rescale_by_decoder_norms, row, tied_init_weights,
};
use super::config_check::{ConfigError, Rules, expect_valid};
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, DecoderConstraint, LossKind, LossTerm, Result, SparseAutoencoder,
    StepContext, TrainingOutput,
};

/// How the ReLU SAE's sparsity penalty treats decoder norms.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ReluPenalty {
    /// `λ · mean_b ‖f ⊙ ‖W_dec,i‖‖_p` with a free decoder: SAELens `standard`, the Anthropic
    /// April-2024 update (dictionary_learning `StandardTrainerAprilUpdate`).
    DecoderNormWeighted,
    /// `λ · mean_b ‖f‖_p` with unit-norm decoder rows kept by gradient projection and
    /// renormalisation: "Towards Monosemanticity" (dictionary_learning `StandardTrainer` with
    /// `ConstrainedAdam`).
    ConstrainedDecoder,
}

impl ReluPenalty {
    /// The decoder treatment this penalty implies: unit-norm rows for
    /// [`ReluPenalty::ConstrainedDecoder`], a free decoder otherwise.
    pub(crate) fn decoder_constraint(self) -> DecoderConstraint {
        match self {
            ReluPenalty::DecoderNormWeighted => DecoderConstraint::Free,
            ReluPenalty::ConstrainedDecoder => DecoderConstraint::UnitNorm,
        }
    }

    /// What the penalty's norm is taken of: `acts ⊙ ‖W_dec,i‖` for
    /// [`ReluPenalty::DecoderNormWeighted`], `acts` for [`ReluPenalty::ConstrainedDecoder`].
    pub(crate) fn weighted(self, acts: Tensor<2>, w_dec: &Param<Tensor<2>>) -> Tensor<2> {
        rescale_by_decoder_norms(acts, w_dec, self == ReluPenalty::DecoderNormWeighted)
    }
}

/// Configuration of a [`ReluSae`]. Defaults are SAELens' (`standard` architecture).
#[derive(Config, Debug)]
pub struct ReluSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Sparsity coefficient λ (SAELens `l1_coefficient`, default 1.0).
    #[config(default = 1.0)]
    pub l1_coefficient: f64,
    /// The `p` of the penalty's norm (SAELens `lp_norm`, default 1.0; 0.7 is also used).
    #[config(default = 1.0)]
    pub lp_norm: f64,
    /// Decoder-norm treatment (default [`ReluPenalty::DecoderNormWeighted`]).
    #[config(default = "ReluPenalty::DecoderNormWeighted")]
    pub penalty: ReluPenalty,
    /// Subtract `b_dec` from the input before encoding (SAELens `apply_b_dec_to_input`,
    /// default true).
    #[config(default = true)]
    pub apply_b_dec_to_input: bool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1). The constrained
    /// variant always starts at 1.
    #[config(default = 0.1)]
    pub decoder_init_norm: f64,
}

impl ReluSaeConfig {
    /// A freshly initialised SAE: tied weights ([`crate::init::tied_weights`]), zero biases.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> ReluSae {
        expect_valid(self.check());
        let (w_enc, w_dec) = tied_init_weights(
            self.d_in,
            self.d_sae,
            self.penalty.decoder_constraint(),
            self.decoder_init_norm,
            device,
        );
        self.build(
            w_enc,
            Tensor::zeros([self.d_sae], device),
            w_dec,
            Tensor::zeros([self.d_in], device),
        )
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `l1_coefficient` non-negative, `lp_norm` and `decoder_init_norm` positive (all finite).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("ReluSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.non_negative("l1_coefficient", self.l1_coefficient)?;
        r.positive("lp_norm", self.lp_norm)?;
        r.positive("decoder_init_norm", self.decoder_init_norm)
    }

    fn build(
        &self,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> ReluSae {
        ReluSae {
            W_enc: Param::from_tensor(w_enc),
            b_enc: Param::from_tensor(b_enc),
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            l1_coefficient: self.l1_coefficient,
            lp_norm: self.lp_norm,
            penalty: self.penalty,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
        }
    }
}

/// ReLU SAE: `f = ReLU((x − b_dec) W_enc + b_enc)`, `x̂ = f W_dec + b_dec`.
///
/// Training objective (SAELens `StandardTrainingSAE`): `mse + λ·s·mean_b ‖f ⊙ n‖_p` with
/// `n_i = ‖W_dec,i‖` ([`ReluPenalty::DecoderNormWeighted`]), or `mse + λ·s·mean_b ‖f‖_p` with a
/// unit-norm decoder ([`ReluPenalty::ConstrainedDecoder`]); `s` is the step's
/// [`StepContext::sparsity_scale`]. Loss terms: `"mse"`, `"l1"`.
///
/// Parameters carry SAELens names and orientations, so they save under the names SAELens reads.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::{ReluSaeConfig, SparseAutoencoder};
///
/// let device = Device::flex();
/// device.seed(0);
/// let sae = ReluSaeConfig::new(4, 16).init(&device);
/// let x = Tensor::<2>::ones([2, 4], &device);
/// assert_eq!(sae.encode(x.clone()).dims(), [2, 16]);
/// assert_eq!(sae.forward(x).dims(), [2, 4]);
/// ```
#[derive(Module, Debug)]
#[allow(non_snake_case)]
pub struct ReluSae {
    /// Encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Encoder bias `[d_sae]`.
    pub b_enc: Param<Tensor<1>>,
    /// Decoder weights `[d_sae, d_in]`, one row per latent.
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// Sparsity coefficient λ.
    pub l1_coefficient: f64,
    /// The `p` of the penalty norm.
    pub lp_norm: f64,
    /// Decoder-norm treatment.
    #[module(skip)]
    pub penalty: ReluPenalty,
    /// Whether `b_dec` is subtracted from the input.
    pub apply_b_dec_to_input: bool,
}

impl ReluSae {
    /// Builds an SAE from given tensors (e.g. read from a file), checking their shapes against
    /// `config.d_in` / `config.d_sae`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`ReluSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] naming the first tensor whose shape is wrong.
    pub fn from_tensors(
        config: &ReluSaeConfig,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        check_linear_shapes(config.d_in, config.d_sae, &w_enc, &b_enc, &w_dec, &b_dec)?;
        Ok(config.build(w_enc, b_enc, w_dec, b_dec))
    }

    /// The configuration this SAE was built with (dimensions read from the weights).
    pub fn config(&self) -> ReluSaeConfig {
        ReluSaeConfig::new(self.d_in(), self.d_sae())
            .with_l1_coefficient(self.l1_coefficient)
            .with_lp_norm(self.lp_norm)
            .with_penalty(self.penalty)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    /// Pre-activations `(x − b_dec) W_enc + b_enc`, `[batch, d_sae]`.
    pub fn pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        check_input("ReluSae", &x, self.d_in());
        linear_pre_activations(
            x,
            &self.W_enc,
            &self.b_enc,
            &self.b_dec,
            self.apply_b_dec_to_input,
        )
    }

    /// Folds the decoder row norms into the encoder: rows of `W_dec` become unit vectors, column
    /// `i` of `W_enc` and `b_enc[i]` are multiplied by `‖W_dec,i‖`. `forward` is unchanged
    /// (ReLU is positively homogeneous); codes are rescaled by the norms.
    pub fn fold_decoder_norms(self) -> Self {
        let (W_enc, b_enc, W_dec) = fold_norms_into_encoder(self.W_enc, self.b_enc, self.W_dec);
        Self {
            W_enc,
            b_enc,
            W_dec,
            ..self
        }
    }
}

impl SparseAutoencoder for ReluSae {
    fn architecture(&self) -> Architecture {
        Architecture::Relu
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        relu(self.pre_activations(x))
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.W_dec.val()) + row(self.b_dec.val())
    }

    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput {
        let pre = self.pre_activations(x.clone());
        let codes = relu(pre.clone());
        let reconstruction = self.decode(codes.clone());
        let weighted = self.penalty.weighted(codes.clone(), &self.W_dec);
        let penalty = lp_norm_rows(weighted, self.lp_norm).mean();
        let l1 = penalty.mul_scalar(self.l1_coefficient * ctx.sparsity_scale);
        TrainingOutput {
            losses: vec![
                mse_term(x, reconstruction.clone()),
                LossTerm {
                    name: "l1",
                    kind: LossKind::Sparsity,
                    value: l1,
                },
            ],
            reconstruction,
            codes,
            sparse_codes: None,
            pre_activations: Some(pre),
            signed_codes: false,
        }
    }

    fn dictionary(&self) -> Tensor<2> {
        self.W_dec.val()
    }

    fn decoder_bias(&self) -> Tensor<1> {
        self.b_dec.val()
    }

    fn decoder_constraint(&self) -> DecoderConstraint {
        self.penalty.decoder_constraint()
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

    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        let (W_enc, W_dec, b_dec) =
            fold_scale_into_linear(self.W_enc, self.W_dec, self.b_dec, scale);
        Self {
            W_enc,
            W_dec,
            b_dec,
            ..self
        }
    }

    fn into_inference(self) -> AnySae {
        AnySae::Relu(self)
    }
}

/// `‖row‖_p` of every row, `[batch]`; `p = 1` is the plain sum of absolute values.
pub(crate) fn lp_norm_rows(x: Tensor<2>, p: f64) -> Tensor<1> {
    let [batch, _] = x.dims();
    let sums = if p == 1.0 {
        x.abs().sum_dim(1)
    } else {
        x.abs().powf_scalar(p).sum_dim(1).powf_scalar(1.0 / p)
    };
    sums.reshape([batch])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::row_norms;
    use crate::test_device;
    use approx::assert_relative_eq;

    /// A 2-in, 3-latent SAE with hand-picked weights.
    fn small(penalty: ReluPenalty, device: &Device) -> ReluSae {
        let cfg = ReluSaeConfig::new(2, 3)
            .with_penalty(penalty)
            .with_l1_coefficient(0.5);
        ReluSae::from_tensors(
            &cfg,
            Tensor::from_floats([[1.0, -1.0, 0.5], [0.0, 2.0, 0.5]], device),
            Tensor::from_floats([0.0, -1.5, 0.0], device),
            Tensor::from_floats([[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]], device),
            Tensor::from_floats([1.0, 0.0], device),
        )
        .unwrap()
    }

    #[test]
    fn forward_and_losses_match_hand_computation() {
        let device = test_device();
        let sae = small(ReluPenalty::DecoderNormWeighted, &device);
        let x = Tensor::<2>::from_floats([[2.0, 1.0]], &device);
        // x − b_dec = [1, 1]; pre = [1, −1 + 2 − 1.5, 0.5 + 0.5] = [1, −0.5, 1].
        // f = [1, 0, 1]; x̂ = [2, 0] + [3, 4] + [1, 0] = [6, 4].
        let out = sae.training_forward(x, &StepContext::new(0));
        out.codes
            .clone()
            .into_data()
            .assert_eq(&TensorData::from([[1.0f32, 0.0, 1.0]]), false);
        out.reconstruction
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[6.0f32, 4.0]]), Default::default());
        // mse = (6−2)² + (4−1)² = 25; l1 = 0.5 · (1·2 + 0·1 + 1·5) = 3.5.
        assert_relative_eq!(
            out.loss("mse").unwrap().value.clone().into_scalar::<f32>(),
            25.0
        );
        assert_relative_eq!(
            out.loss("l1").unwrap().value.clone().into_scalar::<f32>(),
            3.5
        );
        assert_relative_eq!(out.total_loss().into_scalar::<f32>(), 28.5);

        let constrained = small(ReluPenalty::ConstrainedDecoder, &device);
        let out = constrained.training_forward(
            Tensor::<2>::from_floats([[2.0, 1.0]], &device),
            &StepContext::new(0).with_sparsity_scale(0.5),
        );
        // l1 = 0.5 · 0.5 · (1 + 0 + 1) = 0.5.
        assert_relative_eq!(
            out.loss("l1").unwrap().value.clone().into_scalar::<f32>(),
            0.5
        );
    }

    #[test]
    fn l1_gradient_reaches_encoder_and_decoder_norms() {
        let device = test_device().autodiff();
        let sae = small(ReluPenalty::DecoderNormWeighted, &device);
        let out = sae.training_forward(
            Tensor::<2>::from_floats([[2.0, 1.0]], &device),
            &StepContext::new(0),
        );
        let grads = out.loss("l1").unwrap().value.backward();
        // ∂l1/∂b_enc_i = λ · n_i · 1[pre_i > 0] = 0.5·[2, 0, 5] (latent 1 is inactive).
        sae.b_enc
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([1.0f32, 0.0, 2.5]), Default::default());
    }

    #[test]
    fn from_tensors_names_the_wrong_tensor() {
        let device = test_device();
        let cfg = ReluSaeConfig::new(2, 3);
        let err = ReluSae::from_tensors(
            &cfg,
            Tensor::zeros([2, 3], &device),
            Tensor::zeros([3], &device),
            Tensor::zeros([2, 3], &device),
            Tensor::zeros([2], &device),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "<memory>: tensor `W_dec` has shape [2, 3], expected [3, 2]"
        );
    }

    #[test]
    fn folding_keeps_forward() {
        let device = test_device();
        let sae = small(ReluPenalty::DecoderNormWeighted, &device);
        let x = Tensor::<2>::from_floats([[2.0, 1.0], [-1.0, 3.0], [0.5, 0.5]], &device);
        let before = sae.forward(x.clone());
        let folded = sae.fold_decoder_norms();
        folded
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&before.clone().into_data(), Default::default());
        row_norms(folded.W_dec.val())
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([1.0f32; 3]), Default::default());
        let scaled = folded.fold_input_scale(4.0);
        (scaled.forward(x) * 4.0)
            .into_data()
            .assert_approx_eq::<f32>(
                &small(ReluPenalty::DecoderNormWeighted, &device)
                    .forward(Tensor::<2>::from_floats(
                        [[8.0, 4.0], [-4.0, 12.0], [2.0, 2.0]],
                        &device,
                    ))
                    .into_data(),
                Default::default(),
            );
    }
}
