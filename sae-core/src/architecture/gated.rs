//! Gated SAE (Rajamanoharan et al. 2024).
// Parameter fields carry SAELens tensor names (`W_enc`, `W_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::common::{
    check_input, check_shape, constrain_decoder, decoder_norms, encoder_input,
    fold_scale_into_linear, mse_term, project_decoder_gradient, row, scale_columns, scale_rows,
    scale_vector, tied_init_weights,
};
use super::config_check::{ConfigError, Rules, expect_valid};
use super::relu::ReluPenalty;
use crate::sae::check_scale;
use crate::training::sse_per_token;
use crate::{
    AnySae, Architecture, DecoderConstraint, LossKind, LossTerm, Result, SparseAutoencoder,
    StepContext, TrainingOutput,
};

/// Configuration of a [`GatedSae`]. Defaults follow the paper and dictionary_learning
/// (`GatedSAETrainer`): unit-norm decoder, unweighted L1 on the gate, auxiliary reconstruction
/// through a detached decoder. SAELens' variant is
/// `.with_penalty(ReluPenalty::DecoderNormWeighted).with_detach_aux_decoder(false)`.
#[derive(Config, Debug)]
pub struct GatedSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Sparsity coefficient λ (dictionary_learning default 0.1; SAELens 1.0).
    #[config(default = 0.1)]
    pub l1_coefficient: f64,
    /// How decoder norms enter: `ConstrainedDecoder` (paper, default) keeps unit-norm rows and
    /// penalises `‖ReLU(π_gate)‖₁`; `DecoderNormWeighted` (SAELens) leaves the decoder free and
    /// weights the penalty by `‖W_dec,i‖`.
    #[config(default = "ReluPenalty::ConstrainedDecoder")]
    pub penalty: ReluPenalty,
    /// Stop gradients into `W_dec` and `b_dec` through the auxiliary reconstruction (paper and
    /// dictionary_learning: true, default; SAELens: false).
    #[config(default = true)]
    pub detach_aux_decoder: bool,
    /// Subtract `b_dec` from the input before encoding (default true).
    #[config(default = true)]
    pub apply_b_dec_to_input: bool,
    /// Initial decoder row norm for the free-decoder variant (default 0.1).
    #[config(default = 0.1)]
    pub decoder_init_norm: f64,
}

impl GatedSaeConfig {
    /// A freshly initialised SAE: tied weights, `b_gate = r_mag = b_mag = 0`, `b_dec = 0`.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> GatedSae {
        expect_valid(self.check());
        let (w_enc, w_dec) = tied_init_weights(
            self.d_in,
            self.d_sae,
            self.penalty.decoder_constraint(),
            self.decoder_init_norm,
            device,
        );
        let zeros = || Tensor::<1>::zeros([self.d_sae], device);
        self.build(
            w_enc,
            zeros(),
            zeros(),
            zeros(),
            w_dec,
            Tensor::zeros([self.d_in], device),
        )
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `l1_coefficient` non-negative and `decoder_init_norm` positive (both finite).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("GatedSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.non_negative("l1_coefficient", self.l1_coefficient)?;
        r.positive("decoder_init_norm", self.decoder_init_norm)
    }

    fn build(
        &self,
        w_enc: Tensor<2>,
        b_gate: Tensor<1>,
        r_mag: Tensor<1>,
        b_mag: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> GatedSae {
        GatedSae {
            W_enc: Param::from_tensor(w_enc),
            b_gate: Param::from_tensor(b_gate),
            r_mag: Param::from_tensor(r_mag),
            b_mag: Param::from_tensor(b_mag),
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            l1_coefficient: self.l1_coefficient,
            penalty: self.penalty,
            detach_aux_decoder: self.detach_aux_decoder,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
        }
    }
}

/// Gated SAE: a gate decides which latents fire, a magnitude path how much, sharing `W_enc`:
/// `π_gate = x̃ W_enc + b_gate`, `π_mag = x̃ (W_enc ⊙ exp(r_mag)) + b_mag`,
/// `f = 1[π_gate > 0] ⊙ ReLU(π_mag)`, `x̂ = f W_dec + b_dec`, `x̃ = x − b_dec`. No `b_enc`.
///
/// Training objective (paper eq. 8; SAELens `GatedTrainingSAE`, dictionary_learning `gdm.py`):
/// `"mse"` + `"l1"`: `λ·s·mean_b Σ_i ReLU(π_gate)_i (· ‖W_dec,i‖ when the decoder is free)` +
/// `"aux_reconstruction"`: `mean_b ‖x − (ReLU(π_gate) W_dec' + b_dec')‖²`, where `W_dec'`,
/// `b_dec'` are detached copies when `detach_aux_decoder` (the paper's "frozen decoder"). The gate
/// `1[π_gate > 0]` has no gradient: `W_enc` and `b_gate` learn through the magnitude path, the L1
/// and the auxiliary term.
///
/// Where anchors disagree: the paper and dictionary_learning detach the decoder in the
/// auxiliary term and constrain it to unit norm; SAELens does neither (SAELens issue #543) —
/// both are available, the paper's is the default. SAELens' `fold_W_dec_norm` multiplies
/// `r_mag` by the norms, which changes the output (`r_mag` is a log-scale); this crate's
/// [`GatedSae::fold_decoder_norms`] leaves `r_mag` alone, which keeps `forward` unchanged.
#[derive(Module, Debug)]
pub struct GatedSae {
    /// Shared encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Gate bias `[d_sae]`.
    pub b_gate: Param<Tensor<1>>,
    /// Log-scale of the magnitude path's weights `[d_sae]`.
    pub r_mag: Param<Tensor<1>>,
    /// Magnitude bias `[d_sae]`.
    pub b_mag: Param<Tensor<1>>,
    /// Decoder weights `[d_sae, d_in]`.
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// Sparsity coefficient λ.
    pub l1_coefficient: f64,
    /// Decoder-norm treatment.
    #[module(skip)]
    pub penalty: ReluPenalty,
    /// Detach the decoder in the auxiliary reconstruction.
    pub detach_aux_decoder: bool,
    /// Whether `b_dec` is subtracted from the input.
    pub apply_b_dec_to_input: bool,
}

impl GatedSae {
    /// Builds an SAE from given tensors (SAELens names and orientations), checking shapes.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`GatedSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] naming the first tensor whose shape is wrong.
    #[allow(clippy::too_many_arguments)]
    pub fn from_tensors(
        config: &GatedSaeConfig,
        w_enc: Tensor<2>,
        b_gate: Tensor<1>,
        r_mag: Tensor<1>,
        b_mag: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        let (d_in, d_sae) = (config.d_in, config.d_sae);
        check_shape("W_enc", &w_enc, [d_in, d_sae])?;
        check_shape("b_gate", &b_gate, [d_sae])?;
        check_shape("r_mag", &r_mag, [d_sae])?;
        check_shape("b_mag", &b_mag, [d_sae])?;
        check_shape("W_dec", &w_dec, [d_sae, d_in])?;
        check_shape("b_dec", &b_dec, [d_in])?;
        Ok(config.build(w_enc, b_gate, r_mag, b_mag, w_dec, b_dec))
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> GatedSaeConfig {
        GatedSaeConfig::new(self.d_in(), self.d_sae())
            .with_l1_coefficient(self.l1_coefficient)
            .with_penalty(self.penalty)
            .with_detach_aux_decoder(self.detach_aux_decoder)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    /// `(π_gate, π_mag)`, each `[batch, d_sae]`.
    pub fn pre_activations(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        check_input("GatedSae", &x, self.d_in());
        let x = encoder_input(x, &self.b_dec, self.apply_b_dec_to_input);
        let w = self.W_enc.val();
        let gate = x.clone().matmul(w.clone()) + row(self.b_gate.val());
        let mag = x.matmul(w * row(self.r_mag.val().exp())) + row(self.b_mag.val());
        (gate, mag)
    }

    /// Folds decoder norms into the encoder: `W_dec` rows become unit vectors, `W_enc[:, i]`,
    /// `b_gate[i]` and `b_mag[i]` scale by `‖W_dec,i‖`, `r_mag` is unchanged. Both
    /// pre-activations scale by the (positive) norm, so the gate is unchanged and the codes scale
    /// exactly as the decoder shrinks: `forward` is unchanged.
    pub fn fold_decoder_norms(self) -> Self {
        let norms = decoder_norms(&self.W_dec);
        Self {
            W_enc: scale_columns(self.W_enc, norms.clone()),
            b_gate: scale_vector(self.b_gate, norms.clone()),
            b_mag: scale_vector(self.b_mag, norms.clone()),
            W_dec: scale_rows(self.W_dec, norms.recip()),
            ..self
        }
    }
}

impl SparseAutoencoder for GatedSae {
    fn architecture(&self) -> Architecture {
        Architecture::Gated
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let (gate, mag) = self.pre_activations(x);
        relu(mag).mask_fill(gate.lower_equal_elem(0.0), 0.0)
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.W_dec.val()) + row(self.b_dec.val())
    }

    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput {
        let (gate, mag) = self.pre_activations(x.clone());
        let active = gate.clone().greater_elem(0.0).float().detach();
        let codes = active * relu(mag.clone());
        let reconstruction = self.decode(codes.clone());
        let gate_acts = relu(gate);
        let l1 = self
            .penalty
            .weighted(gate_acts.clone(), &self.W_dec)
            .sum_dim(1)
            .mean()
            .mul_scalar(self.l1_coefficient * ctx.sparsity_scale);
        let (w_dec, b_dec) = if self.detach_aux_decoder {
            (self.W_dec.val().detach(), self.b_dec.val().detach())
        } else {
            (self.W_dec.val(), self.b_dec.val())
        };
        let via_gate = gate_acts.matmul(w_dec) + row(b_dec);
        TrainingOutput {
            losses: vec![
                mse_term(x.clone(), reconstruction.clone()),
                LossTerm {
                    name: "l1",
                    kind: LossKind::Sparsity,
                    value: l1,
                },
                LossTerm {
                    name: "aux_reconstruction",
                    kind: LossKind::Auxiliary,
                    value: sse_per_token(x, via_gate),
                },
            ],
            reconstruction,
            codes,
            sparse_codes: None,
            pre_activations: Some(mag),
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
        AnySae::Gated(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;

    fn small(detach: bool, device: &Device) -> GatedSae {
        let cfg = GatedSaeConfig::new(2, 2)
            .with_l1_coefficient(0.5)
            .with_detach_aux_decoder(detach);
        GatedSae::from_tensors(
            &cfg,
            Tensor::from_floats([[1.0, 0.0], [0.0, 1.0]], device),
            Tensor::from_floats([0.0, -3.0], device),
            Tensor::from_floats([2f32.ln(), 0.0], device),
            Tensor::from_floats([-1.0, 0.0], device),
            Tensor::from_floats([[1.0, 0.0], [0.0, 1.0]], device),
            Tensor::zeros([2], device),
        )
        .unwrap()
    }

    #[test]
    fn forward_losses_and_detached_aux_by_hand() {
        let device = test_device().autodiff();
        let sae = small(true, &device);
        let x = Tensor::<2>::from_floats([[2.0, 1.0]], &device);
        // π_gate = [2, 1 − 3] = [2, −2]; π_mag = [2·2 − 1, 1·1 + 0] = [3, 1];
        // f = [1, 0] ⊙ ReLU([3, 1]) = [3, 0]; x̂ = [3, 0].
        let out = sae.training_forward(x, &StepContext::new(0));
        out.codes
            .clone()
            .inner()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[3.0f32, 0.0]]), Default::default());
        // mse = 1 + 1 = 2; l1 = 0.5 · (2 + 0) = 1; aux: ReLU(π_gate) = [2, 0] → x̂_gate = [2, 0],
        // ‖[2,1] − [2,0]‖² = 1.
        assert_relative_eq!(
            out.loss("mse").unwrap().value.clone().into_scalar::<f32>(),
            2.0,
            epsilon = 1e-5
        );
        assert_relative_eq!(
            out.loss("l1").unwrap().value.clone().into_scalar::<f32>(),
            1.0,
            epsilon = 1e-6
        );
        let aux = out.loss("aux_reconstruction").unwrap().value.clone();
        assert_relative_eq!(aux.clone().into_scalar::<f32>(), 1.0, epsilon = 1e-6);
        // Detached: the auxiliary term sends no gradient to the decoder, but does to b_gate:
        // ∂aux/∂π_gate,0 = 2·(x̂_gate − x)·W_dec,0 = 2·([2,0] − [2,1])·[1,0] = 0; latent 1 gated off.
        let grads = aux.backward();
        assert!(sae.W_dec.val().grad(&grads).is_none());
        // Undetached (SAELens): ∂aux/∂W_dec,0 = 2·ReLU(π_gate)_0·(x̂_gate − x) = 2·2·[0, −1].
        let sae = small(false, &device);
        let out = sae.training_forward(
            Tensor::<2>::from_floats([[2.0, 1.0]], &device),
            &StepContext::new(0),
        );
        let grads = out
            .loss("aux_reconstruction")
            .unwrap()
            .value
            .clone()
            .backward();
        sae.W_dec
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[0.0f32, -4.0], [0.0, 0.0]]),
                Default::default(),
            );
    }

    #[test]
    fn folding_keeps_forward() {
        let device = test_device();
        device.seed(9);
        let sae = GatedSaeConfig::new(5, 11)
            .with_penalty(ReluPenalty::DecoderNormWeighted)
            .init(&device);
        let d = burn::tensor::Distribution::Normal(0.0, 0.5);
        let sae = GatedSae {
            r_mag: sae.r_mag.map(|t| t + Tensor::random([11], d, &device)),
            b_gate: sae.b_gate.map(|t| t + Tensor::random([11], d, &device)),
            b_mag: sae.b_mag.map(|t| t + Tensor::random([11], d, &device)),
            W_dec: scale_rows(
                sae.W_dec,
                Tensor::random([11], burn::tensor::Distribution::Uniform(0.5, 3.0), &device),
            ),
            ..sae
        };
        let x = Tensor::<2>::random(
            [9, 5],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = sae.forward(x.clone()).into_data();
        sae.clone()
            .fold_decoder_norms()
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        (sae.fold_input_scale(5.0).forward(x.div_scalar(5.0)) * 5.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
    }
}
