//! JumpReLU SAE (Rajamanoharan et al. 2024, Gemma Scope; Anthropic's January-2025 update).
// Parameter fields carry SAELens tensor names (`W_enc`, `W_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::common::{
    check_input, check_linear_shapes, check_shape, constrain_decoder, decoder_norms,
    fold_scale_into_linear, host_values, linear_pre_activations, mse_term,
    project_decoder_gradient, row, scale_columns, scale_rows, scale_vector, tied_init_weights,
    unit_norm_when,
};
use super::config_check::{ConfigError, Rules, expect_valid};
use crate::decoder::row_norms;
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, DecoderConstraint, Error, LossKind, LossTerm, Result, SparseAutoencoder,
    StepContext, TrainingOutput,
};

/// The sparsity penalty of a JumpReLU SAE.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum JumpReluSparsityLoss {
    /// Google DeepMind's L0: `λ·s·mean_b Σ_i H(pre_i − θ_i)`, differentiated with the step
    /// straight-through estimator (SAELens `"step"`).
    Step,
    /// Anthropic's `λ·s·mean_b Σ_i tanh(c · f_i · ‖W_dec,i‖)` with `c = tanh_scale` (SAELens
    /// `"tanh"`, `jumprelu_tanh_scale`, default 4).
    Tanh {
        /// The scale `c` inside the tanh.
        tanh_scale: f64,
    },
    /// dictionary_learning's target-L0 penalty `λ·s·(L0/target − 1)²` with `L0` the batch-mean
    /// step-STE L0 (`JumpReluTrainer`, target 20).
    TargetL0 {
        /// The L0 the penalty pulls towards.
        target: f64,
    },
}

/// Configuration of a [`JumpReluSae`]; defaults are SAELens' `JumpReLUTrainingSAEConfig`.
#[derive(Config, Debug)]
pub struct JumpReluSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Initial threshold θ₀ (SAELens `jumprelu_init_threshold`, default 0.01).
    #[config(default = 0.01)]
    pub init_threshold: f64,
    /// Kernel bandwidth ε of the straight-through estimators (SAELens `jumprelu_bandwidth`,
    /// default 0.05).
    #[config(default = 0.05)]
    pub bandwidth: f64,
    /// Sparsity coefficient λ (SAELens `l0_coefficient`, default 1.0).
    #[config(default = 1.0)]
    pub l0_coefficient: f64,
    /// The sparsity penalty (default [`JumpReluSparsityLoss::Step`]).
    #[config(default = "JumpReluSparsityLoss::Step")]
    pub sparsity_loss: JumpReluSparsityLoss,
    /// Coefficient of Anthropic's pre-activation loss on dead latents; `None` (default)
    /// disables it (SAELens `pre_act_loss_coefficient`, 3e-6 in Anthropic's setup).
    #[config(default = "None")]
    pub pre_act_loss_coefficient: Option<f64>,
    /// Subtract `b_dec` from the input before encoding (default true; Gemma Scope files set
    /// false).
    #[config(default = true)]
    pub apply_b_dec_to_input: bool,
    /// Keep decoder rows at unit norm with gradient projection (dictionary_learning's
    /// `JumpReluTrainer`; default false, as SAELens).
    #[config(default = false)]
    pub unit_norm_decoder: bool,
    /// Initial decoder row norm for a free decoder (default 0.1).
    #[config(default = 0.1)]
    pub decoder_init_norm: f64,
}

impl JumpReluSaeConfig {
    /// A freshly initialised SAE: tied weights, zero biases, `log θ = ln θ₀` everywhere.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> JumpReluSae {
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
            Tensor::full([self.d_sae], self.init_threshold.ln(), device),
        )
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1; `init_threshold`, `bandwidth`, `decoder_init_norm` and the sparsity loss's `tanh_scale` or `target` positive; `l0_coefficient` and `pre_act_loss_coefficient` non-negative (all finite).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("JumpReluSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.positive("init_threshold", self.init_threshold)?;
        r.positive("bandwidth", self.bandwidth)?;
        r.non_negative("l0_coefficient", self.l0_coefficient)?;
        match self.sparsity_loss {
            JumpReluSparsityLoss::Step => {}
            JumpReluSparsityLoss::Tanh { tanh_scale } => {
                r.positive("sparsity_loss.tanh_scale", tanh_scale)?;
            }
            JumpReluSparsityLoss::TargetL0 { target } => {
                r.positive("sparsity_loss.target", target)?;
            }
        }
        if let Some(c) = self.pre_act_loss_coefficient {
            r.non_negative("pre_act_loss_coefficient", c)?;
        }
        r.positive("decoder_init_norm", self.decoder_init_norm)
    }

    fn build(
        &self,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
        log_threshold: Tensor<1>,
    ) -> JumpReluSae {
        JumpReluSae {
            W_enc: Param::from_tensor(w_enc),
            b_enc: Param::from_tensor(b_enc),
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            log_threshold: Param::from_tensor(log_threshold),
            bandwidth: self.bandwidth,
            l0_coefficient: self.l0_coefficient,
            sparsity_loss: self.sparsity_loss,
            pre_act_loss_coefficient: self.pre_act_loss_coefficient,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
            unit_norm_decoder: self.unit_norm_decoder,
        }
    }
}

/// JumpReLU SAE: `pre = (x − b_dec) W_enc + b_enc`, `f = ReLU(pre) · H(pre − θ)`,
/// `x̂ = f W_dec + b_dec`, one threshold `θ_i = exp(log_threshold_i) > 0` per latent.
///
/// Training uses the rectangle-kernel straight-through estimators of the paper (SAELens
/// `JumpReLU`/`Step`, `K(u) = 1[|u| < ½]`, bandwidth ε):
/// - JumpReLU: `∂f/∂pre = H(pre − θ)`, `∂f/∂θ = −(θ/ε)·K((pre − θ)/ε)`;
/// - step (L0): `∂H/∂pre = 0`, `∂H/∂θ = −(1/ε)·K((pre − θ)/ε)`;
///
/// and the chain rule through `θ = exp(log θ)` multiplies the θ-gradients by θ. Loss terms:
/// `"mse"`, `"l0"` ([`JumpReluSparsityLoss`]) and, when enabled, `"pre_act"`:
/// `coef · mean_b Σ_i ReLU(θ_i − pre_i) · dead_i · ‖W_dec,i‖` over the latents
/// [`StepContext::dead_latents`] marks dead (zero without a mask, as SAELens).
///
/// On disk the threshold is `threshold = θ` (SAELens); [`JumpReluSae::from_tensors`] takes θ and
/// [`JumpReluSae::threshold`] returns it.
#[derive(Module, Debug)]
pub struct JumpReluSae {
    /// Encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Encoder bias `[d_sae]`.
    pub b_enc: Param<Tensor<1>>,
    /// Decoder weights `[d_sae, d_in]`.
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// `ln θ`, `[d_sae]` (trained; saved to SAELens files as `threshold = exp(·)`).
    pub log_threshold: Param<Tensor<1>>,
    /// STE bandwidth ε.
    pub bandwidth: f64,
    /// Sparsity coefficient λ.
    pub l0_coefficient: f64,
    /// Sparsity penalty.
    #[module(skip)]
    pub sparsity_loss: JumpReluSparsityLoss,
    /// Pre-activation loss coefficient, if enabled.
    #[module(skip)]
    pub pre_act_loss_coefficient: Option<f64>,
    /// Whether `b_dec` is subtracted from the input.
    pub apply_b_dec_to_input: bool,
    /// Unit-norm decoder rows with gradient projection.
    pub unit_norm_decoder: bool,
}

/// The JumpReLU activation `z · H(z − θ)` with the rectangle-kernel STE for θ.
///
/// # Shapes
/// `pre`: `[batch, d_sae]`, `threshold`: `[d_sae]` → `[batch, d_sae]`.
pub fn jumprelu(pre: Tensor<2>, threshold: Tensor<1>, bandwidth: f64) -> Tensor<2> {
    let theta = row(threshold);
    let step = pre.clone().greater(theta.clone()).float().detach();
    // d/dθ of (θ ⊙ c) is c = −(θ/ε)·K((pre − θ)/ε); value zero after subtracting its detached copy.
    let c = (theta.clone().detach().div_scalar(-bandwidth) * rectangle(&pre, &theta, bandwidth))
        .detach();
    let surrogate = theta * c;
    pre * step + (surrogate.clone() - surrogate.detach())
}

/// The Heaviside step `H(z − θ)` with the rectangle-kernel STE for θ (no gradient to z).
pub fn step(pre: Tensor<2>, threshold: Tensor<1>, bandwidth: f64) -> Tensor<2> {
    let theta = row(threshold);
    let h = pre.clone().detach().greater(theta.clone().detach()).float();
    let c = rectangle(&pre, &theta, bandwidth)
        .div_scalar(-bandwidth)
        .detach();
    let surrogate = theta * c;
    h + (surrogate.clone() - surrogate.detach())
}

/// `K((pre − θ)/ε)` with `K(u) = 1[−½ < u < ½]`, detached.
fn rectangle(pre: &Tensor<2>, theta: &Tensor<2>, bandwidth: f64) -> Tensor<2> {
    let u = (pre.clone().detach() - theta.clone().detach()).div_scalar(bandwidth);
    u.clone()
        .greater_elem(-0.5)
        .float()
        .mul(u.lower_elem(0.5).float())
}

impl JumpReluSae {
    /// Builds an SAE from given tensors; `threshold` is θ (SAELens' on-disk form), stored as
    /// `ln θ`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`JumpReluSaeConfig::check`] fails;
    /// [`Error::TensorShape`] for a wrong shape; [`Error::InvalidValue`] when a threshold is
    /// negative or not finite (θ = 0 is accepted: `ln 0 = −∞`, a latent that fires whenever
    /// `pre > 0`) or cannot be read as `f32` (a quantized threshold is dequantized first).
    pub fn from_tensors(
        config: &JumpReluSaeConfig,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
        threshold: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        check_linear_shapes(config.d_in, config.d_sae, &w_enc, &b_enc, &w_dec, &b_dec)?;
        check_shape("threshold", &threshold, [config.d_sae])?;
        // Dequantized so that the check and the stored `ln θ` see the same values.
        let threshold = threshold.dequantize();
        let values = host_values(&threshold, "JumpReLU `threshold`")?;
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(Error::InvalidValue {
                what: "JumpReLU `threshold`".into(),
                reason: format!("must be finite and non-negative, found {v} at index {i}"),
            });
        }
        Ok(config.build(w_enc, b_enc, w_dec, b_dec, threshold.log()))
    }

    /// An inference SAE from parts (BatchTopK export); thresholds must be valid.
    pub(crate) fn inference_from_parts(
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
        threshold: Tensor<1>,
        apply_b_dec_to_input: bool,
    ) -> Self {
        let [d_in, d_sae] = w_enc.dims();
        JumpReluSaeConfig::new(d_in, d_sae)
            .with_apply_b_dec_to_input(apply_b_dec_to_input)
            .build(w_enc, b_enc, w_dec, b_dec, threshold.log())
    }

    /// The configuration of this SAE (`init_threshold` is not recoverable and left at its
    /// default).
    pub fn config(&self) -> JumpReluSaeConfig {
        JumpReluSaeConfig::new(self.d_in(), self.d_sae())
            .with_bandwidth(self.bandwidth)
            .with_l0_coefficient(self.l0_coefficient)
            .with_sparsity_loss(self.sparsity_loss)
            .with_pre_act_loss_coefficient(self.pre_act_loss_coefficient)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
            .with_unit_norm_decoder(self.unit_norm_decoder)
    }

    /// θ = `exp(log_threshold)`, `[d_sae]`.
    pub fn threshold(&self) -> Tensor<1> {
        self.log_threshold.val().exp()
    }

    /// Pre-activations `(x − b_dec) W_enc + b_enc`, `[batch, d_sae]`.
    pub fn pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        check_input("JumpReluSae", &x, self.d_in());
        linear_pre_activations(
            x,
            &self.W_enc,
            &self.b_enc,
            &self.b_dec,
            self.apply_b_dec_to_input,
        )
    }

    /// Folds decoder norms into the encoder: `W_dec` rows become unit vectors, `W_enc[:, i]`,
    /// `b_enc[i]` and `θ_i` scale by `‖W_dec,i‖` (SAELens `fold_W_dec_norm`). `forward` is
    /// unchanged.
    pub fn fold_decoder_norms(self) -> Self {
        let norms = decoder_norms(&self.W_dec);
        let log_norms = norms.clone().log();
        Self {
            W_enc: scale_columns(self.W_enc, norms.clone()),
            b_enc: scale_vector(self.b_enc, norms.clone()),
            log_threshold: crate::decoder::map_param(self.log_threshold, |t| {
                t + log_norms.detach()
            }),
            W_dec: scale_rows(self.W_dec, norms.recip()),
            ..self
        }
    }
}

impl SparseAutoencoder for JumpReluSae {
    fn architecture(&self) -> Architecture {
        Architecture::JumpRelu
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let pre = self.pre_activations(x);
        let keep = pre.clone().greater(row(self.threshold()));
        relu(pre).mask_fill(keep.bool_not(), 0.0)
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.W_dec.val()) + row(self.b_dec.val())
    }

    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput {
        let pre = self.pre_activations(x.clone());
        let theta = self.threshold();
        let codes = jumprelu(pre.clone(), theta.clone(), self.bandwidth);
        let reconstruction = self.decode(codes.clone());
        let lambda = self.l0_coefficient * ctx.sparsity_scale;
        let [batch, _] = pre.dims();
        let l0 = match self.sparsity_loss {
            JumpReluSparsityLoss::Step => step(pre.clone(), theta.clone(), self.bandwidth)
                .sum_dim(1)
                .mean()
                .mul_scalar(lambda),
            JumpReluSparsityLoss::Tanh { tanh_scale } => (codes.clone()
                * row(row_norms(self.W_dec.val())))
            .mul_scalar(tanh_scale)
            .tanh()
            .sum_dim(1)
            .mean()
            .mul_scalar(lambda),
            JumpReluSparsityLoss::TargetL0 { target } => {
                let mean_l0 = step(pre.clone(), theta.clone(), self.bandwidth)
                    .sum_dim(1)
                    .mean();
                mean_l0
                    .div_scalar(target)
                    .sub_scalar(1.0)
                    .powi_scalar(2)
                    .mul_scalar(lambda)
            }
        };
        let mut losses = vec![
            mse_term(x, reconstruction.clone()),
            LossTerm {
                name: "l0",
                kind: LossKind::Sparsity,
                value: l0.reshape([1]),
            },
        ];
        if let (Some(coef), Some(dead)) = (self.pre_act_loss_coefficient, &ctx.dead_latents) {
            let dead = row(dead.clone().float());
            let per_latent =
                relu(row(theta) - pre.clone()) * dead * row(row_norms(self.W_dec.val()));
            losses.push(LossTerm {
                name: "pre_act",
                kind: LossKind::Auxiliary,
                value: per_latent
                    .sum_dim(1)
                    .reshape([batch])
                    .mean()
                    .mul_scalar(coef),
            });
        }
        TrainingOutput {
            losses,
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

    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        // Pre-activations are unchanged, so θ is too (SAELens `fold_activation_norm_scaling_factor`).
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
        AnySae::JumpRelu(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    /// z = [1.9, 2.2, 5.0], θ = 2, ε = 0.5, upstream g = [1, 10, 100].
    fn case(device: &Device) -> (Tensor<2>, Tensor<1>, Tensor<1>, Tensor<2>) {
        let z = Tensor::<2>::from_floats([[1.9, 2.2, 5.0]], device).require_grad();
        let log_theta = Tensor::<1>::from_floats([2f32.ln(); 3], device).require_grad();
        let g = Tensor::<2>::from_floats([[1.0, 10.0, 100.0]], device);
        (z, log_theta.clone(), log_theta, g)
    }

    #[test]
    fn jumprelu_ste_matches_hand_computed_gradients() {
        let device = test_device().autodiff();
        let (z, log_theta, _, g) = case(&device);
        let f = jumprelu(z.clone(), log_theta.clone().exp(), 0.5);
        // Forward: z · 1[z > 2] = [0, 2.2, 5].
        f.clone()
            .inner()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[0.0f32, 2.2, 5.0]]), Default::default());
        let grads = (f * g).sum().backward();
        // ∂/∂z = H(z − θ)·g = [0, 10, 100].
        z.grad(&grads).unwrap().into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.0f32, 10.0, 100.0]]),
            Default::default(),
        );
        // ∂/∂θ = −(θ/ε)·K((z−θ)/ε)·g: (z−θ)/ε = [−0.2, 0.4, 6] → K = [1, 1, 0];
        // −(2/0.5)·[1, 10, 0] = [−4, −40, 0]; ∂/∂logθ = θ·∂/∂θ = [−8, −80, 0].
        log_theta
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([-8.0f32, -80.0, 0.0]), Default::default());
    }

    #[test]
    fn step_ste_matches_hand_computed_gradients() {
        let device = test_device().autodiff();
        let (z, log_theta, _, g) = case(&device);
        let h = step(z.clone(), log_theta.clone().exp(), 0.5);
        h.clone()
            .inner()
            .into_data()
            .assert_eq(&TensorData::from([[0.0f32, 1.0, 1.0]]), false);
        let grads = (h * g).sum().backward();
        // No gradient reaches z through the step.
        let dz = z
            .grad(&grads)
            .map(|t| t.abs().sum().into_scalar::<f32>())
            .unwrap_or(0.0);
        assert_eq!(dz, 0.0);
        // ∂/∂θ = −(1/ε)·K·g = [−2, −20, 0]; ∂/∂logθ = θ·that = [−4, −40, 0].
        log_theta
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([-4.0f32, -40.0, 0.0]), Default::default());
    }

    /// An SAE whose pre-activations are `b_enc` (zero encoder), to reach the STE through the
    /// whole training forward.
    fn bias_driven(loss: JumpReluSparsityLoss, device: &Device) -> JumpReluSae {
        let cfg = JumpReluSaeConfig::new(2, 3)
            .with_bandwidth(0.5)
            .with_sparsity_loss(loss)
            .with_l0_coefficient(0.1)
            .with_pre_act_loss_coefficient(Some(0.01));
        JumpReluSae::from_tensors(
            &cfg,
            Tensor::zeros([2, 3], device),
            Tensor::from_floats([1.9, 2.2, 5.0], device),
            Tensor::from_floats([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], device),
            Tensor::zeros([2], device),
            Tensor::from_floats([2.0, 2.0, 2.0], device),
        )
        .unwrap()
    }

    #[test]
    fn training_terms_and_their_gradients_by_hand() {
        let device = test_device().autodiff();
        let sae = bias_driven(JumpReluSparsityLoss::Step, &device);
        let x = Tensor::<2>::zeros([1, 2], &device);
        let dead = Tensor::<1, Bool>::from_data([true, false, false], &device);
        let out = sae.training_forward(x, &StepContext::new(0).with_dead_latents(dead));
        // f = [0, 2.2, 5]; x̂ = 2.2·[0, 2] = [0, 4.4]; mse = 19.36.
        assert_relative_eq!(
            out.loss("mse").unwrap().value.clone().into_scalar::<f32>(),
            19.36,
            epsilon = 1e-4
        );
        // l0 = 0.1 · (0 + 1 + 1) = 0.2.
        assert_relative_eq!(
            out.loss("l0").unwrap().value.clone().into_scalar::<f32>(),
            0.2,
            epsilon = 1e-6
        );
        // pre_act = 0.01 · ReLU(2 − 1.9) · 1 · ‖W_dec,0‖ = 0.01 · 0.1 · 1 = 0.001.
        assert_relative_eq!(
            out.loss("pre_act")
                .unwrap()
                .value
                .clone()
                .into_scalar::<f32>(),
            0.001,
            epsilon = 1e-6
        );
        let grads = out.loss("l0").unwrap().value.backward();
        // ∂l0/∂logθ = 0.1 · θ · (−1/ε) · K = 0.1 · 2 · (−2) · [1, 1, 0] = [−0.4, −0.4, 0].
        sae.log_threshold
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([-0.4f32, -0.4, 0.0]), Default::default());
        // tanh mode: 0.1 · Σ tanh(4 · f · ‖W_dec‖) = 0.1 · (0 + tanh(17.6) + tanh(0)) ≈ 0.1.
        let sae = bias_driven(JumpReluSparsityLoss::Tanh { tanh_scale: 4.0 }, &device);
        let out = sae.training_forward(Tensor::zeros([1, 2], &device), &StepContext::new(0));
        assert_relative_eq!(
            out.loss("l0").unwrap().value.clone().into_scalar::<f32>(),
            0.1 * 17.6f32.tanh(),
            epsilon = 1e-6
        );
        assert!(
            out.loss("pre_act").is_none(),
            "no dead mask, no pre-act loss"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Outputs are zero wherever pre ≤ θ and equal pre above it.
        #[test]
        fn zero_below_threshold(
            pre in prop::collection::vec(-3.0f32..3.0, 12),
            theta in prop::collection::vec(0.0f32..2.0, 4),
        ) {
            let device = test_device();
            let cfg = JumpReluSaeConfig::new(4, 4).with_apply_b_dec_to_input(false);
            let sae = JumpReluSae::from_tensors(
                &cfg,
                Tensor::eye(4, &device),
                Tensor::zeros([4], &device),
                Tensor::eye(4, &device),
                Tensor::zeros([4], &device),
                Tensor::from_data(TensorData::new(theta.clone(), [4]), &device),
            ).unwrap();
            let x = Tensor::<2>::from_data(TensorData::new(pre.clone(), [3, 4]), &device);
            let f = sae.encode(x).into_data().try_to_vec::<f32>().unwrap();
            for (i, (&p, &v)) in pre.iter().zip(&f).enumerate() {
                // θ is stored as ln θ; compare against the threshold the SAE actually holds.
                let t = theta[i % 4].ln().exp();
                if p > t { prop_assert_eq!(v, p.max(0.0)); } else { prop_assert_eq!(v, 0.0); }
            }
        }
    }

    #[test]
    fn folding_keeps_forward_and_rejects_bad_thresholds() {
        let device = test_device();
        device.seed(2);
        let sae = JumpReluSaeConfig::new(5, 9)
            .with_init_threshold(0.05)
            .init(&device);
        let sae = JumpReluSae {
            W_dec: scale_rows(
                sae.W_dec,
                Tensor::random([9], burn::tensor::Distribution::Uniform(0.5, 3.0), &device),
            ),
            ..sae
        };
        let x = Tensor::<2>::random(
            [7, 5],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = sae.forward(x.clone()).into_data();
        sae.clone()
            .fold_decoder_norms()
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        (sae.fold_input_scale(2.0).forward(x.div_scalar(2.0)) * 2.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        let err = JumpReluSae::from_tensors(
            &JumpReluSaeConfig::new(1, 2),
            Tensor::zeros([1, 2], &device),
            Tensor::zeros([2], &device),
            Tensor::zeros([2, 1], &device),
            Tensor::zeros([1], &device),
            Tensor::from_floats([0.5, -1.0], &device),
        )
        .unwrap_err();
        assert!(err.to_string().contains("found -1 at index 1"), "{err}");
    }

    /// A threshold tensor whose values cannot be converted to `f32` as they are (a quantized
    /// one) is still checked: a negative threshold is refused, not passed unseen.
    #[test]
    fn quantized_thresholds_are_checked_too() {
        use burn::tensor::quantization::QuantScheme;
        let device = test_device();
        let threshold = Tensor::<1>::from_floats([0.5, -1.0], &device)
            .quantize_dynamic(&QuantScheme::default());
        assert!(
            threshold
                .clone()
                .into_data()
                .try_into_vec_as::<f32>()
                .is_err(),
            "the test needs a tensor whose data does not convert to f32 directly"
        );
        let result = JumpReluSae::from_tensors(
            &JumpReluSaeConfig::new(1, 2),
            Tensor::zeros([1, 2], &device),
            Tensor::zeros([2], &device),
            Tensor::zeros([2, 1], &device),
            Tensor::zeros([1], &device),
            threshold,
        );
        match result {
            Err(Error::InvalidValue { reason, .. }) => {
                assert!(reason.contains("at index 1"), "{reason}")
            }
            Err(other) => panic!("expected InvalidValue, got {other}"),
            Ok(_) => panic!("a negative quantized threshold was accepted"),
        }
    }
}
