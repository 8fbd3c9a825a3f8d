//! Relaxed archetypal SAE (RA-SAE; Fel et al. 2025, "Archetypal SAE: Adaptive and Stable
//! Dictionary Learning for Concept Extraction in Large Vision Models", arXiv 2502.12892; used at
//! scale in "Uncovering Conceptual Blindspots in Generative Image Models Using Sparse
//! Autoencoders"). Reference code: KempnerInstitute/overcomplete
//! `sae/archetypal_dictionary.py` (`RelaxedArchetypalDictionary`) and `sae/ra_sae.py`.
// Parameter fields carry SAELens tensor names (`W_enc`, `b_enc`, `b_dec`) where SAELens has them.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::common::{
    check_input, check_shape, host_values, linear_pre_activations, mse_output, row, scale_param,
};
use super::config_check::{ConfigError, Rules, expect_valid};
use super::topk::{TopKSae, TopKSaeConfig};
use crate::decoder::{NORM_EPS, map_param, unit_rows};
use crate::kernels::{ComputePath, Rank, top_k};
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, Error, Result, SparseAutoencoder, SparseCodes, StepContext,
    TrainingOutput,
};

/// Added to the row sums of the mixing weights before dividing (overcomplete's `1e-8`).
const SIMPLEX_EPS: f64 = 1e-8;

/// Configuration of an [`ArchetypalSae`]; defaults are overcomplete's.
#[derive(Config, Debug)]
pub struct ArchetypalSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents (dictionary atoms).
    pub d_sae: usize,
    /// Latents kept per token (the RA-SAE encoder is a TopK encoder).
    pub k: usize,
    /// Bound on each atom's relaxation, `‖Λ_i‖₂ ≤ δ` (overcomplete `delta`, default 1.0).
    #[config(default = 1.0)]
    pub delta: f64,
    /// Learn a positive scale `exp(m)` of the dictionary, so atoms live in the conical rather
    /// than convex hull (overcomplete `use_multiplier`, default true).
    #[config(default = true)]
    pub use_multiplier: bool,
    /// Use a decoder bias `b_dec` (subtracted before encoding, added after decoding). The
    /// reference has none (default false).
    #[config(default = false)]
    pub apply_b_dec_to_input: bool,
}

impl ArchetypalSaeConfig {
    /// A fresh SAE over the candidate points `candidates [n_candidates, d_in]` — data points or
    /// points in their convex hull; the paper uses k-means centroids of the data, and a random
    /// sample of rows also works. As in the reference, the mixing matrix starts as the
    /// rectangular identity (atom `i` = candidate `i`; atoms beyond `n_candidates` start at zero,
    /// so use `n_candidates ≥ d_sae`), `Λ = 0`, `m = 0`. The encoder starts tied to the initial
    /// dictionary (`W_enc = unit(D)ᵀ`), biases at zero.
    ///
    /// # Errors
    /// [`Error::Empty`] without candidates, [`Error::TensorShape`] when their width is not
    /// `d_in`, [`Error::NonFinite`] for NaN or infinite values.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, candidates: Tensor<2>, device: &Device) -> Result<ArchetypalSae> {
        expect_valid(self.check());
        let [n, d] = candidates.dims();
        if n == 0 {
            return Err(Error::Empty {
                what: "archetypal candidate points".into(),
            });
        }
        if d != self.d_in {
            return Err(Error::TensorShape {
                path: Error::MEMORY.into(),
                name: "candidates".into(),
                expected: vec![n, self.d_in],
                found: vec![n, d],
            });
        }
        let candidates = candidates.dequantize();
        let host = host_values(&candidates, "archetypal candidate points")?;
        if let Some(index) = host.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                path: Error::MEMORY.into(),
                name: "candidates".into(),
                index,
                value: host[index],
            });
        }
        let candidates = candidates.to_device(device);
        let mut eye = vec![0f32; self.d_sae * n];
        for i in 0..self.d_sae.min(n) {
            eye[i * n + i] = 1.0;
        }
        let mixing = Tensor::<2>::from_data(TensorData::new(eye, [self.d_sae, n]), device);
        let dictionary = mixing.clone().matmul(candidates.clone());
        let w_enc = unit_rows(dictionary).transpose();
        Ok(self.build(
            w_enc,
            Tensor::zeros([self.d_sae], device),
            candidates,
            mixing,
            Tensor::zeros([self.d_sae, self.d_in], device),
            0.0,
            Tensor::zeros([self.d_in], device),
        ))
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `k` in `1..=d_sae`, `delta` non-negative and finite.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("ArchetypalSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.k(self.k, self.d_sae)?;
        r.non_negative("delta", self.delta)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        candidates: Tensor<2>,
        mixing: Tensor<2>,
        relaxation: Tensor<2>,
        log_multiplier: f64,
        b_dec: Tensor<1>,
    ) -> ArchetypalSae {
        let device = w_enc.device();
        let multiplier = Param::from_tensor(Tensor::from_floats([log_multiplier as f32], &device))
            .set_require_grad(self.use_multiplier);
        ArchetypalSae {
            W_enc: Param::from_tensor(w_enc),
            b_enc: Param::from_tensor(b_enc),
            candidates: Param::from_tensor(candidates).set_require_grad(false),
            mixing: Param::from_tensor(mixing),
            relaxation: Param::from_tensor(relaxation),
            log_multiplier: multiplier,
            b_dec: Param::from_tensor(b_dec),
            k: self.k,
            delta: self.delta,
            use_multiplier: self.use_multiplier,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
        }
    }
}

/// Relaxed archetypal SAE: a TopK encoder over a dictionary constrained to (a relaxation of) the
/// convex hull of data points,
/// `D = (W C + Λ) · exp(m)`,
/// with `C [n_candidates, d_in]` fixed candidate points, `W [d_sae, n_candidates]` row-stochastic
/// (non-negative, rows sum to 1), `‖Λ_i‖₂ ≤ δ` and `m` a learned log-scale. Each atom is a convex
/// combination of real data points, moved at most δ — which makes the dictionary stable across
/// runs and its atoms interpretable as "archetypes".
///
/// Encoder: `pre = (x − b_dec) W_enc + b_enc`, keep the top `k` (ReLU), `x̂ = f D (+ b_dec)`.
/// Loss terms: `"mse"`. The constraints are re-imposed after every optimiser step by
/// [`SparseAutoencoder::apply_constraints`] — `W ← ReLU(W) / (Σ_j ReLU(W)_j + 1e-8)`,
/// `Λ_i ← Λ_i · min(1, δ/‖Λ_i‖)` — exactly what the reference does (under `no_grad`) at the
/// start of each training forward.
///
/// Export: [`SparseAutoencoder::into_inference`] fuses `D` into a plain [`TopKSae`], which
/// SAELens reads as `topk`.
#[derive(Module, Debug)]
pub struct ArchetypalSae {
    /// Encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Encoder bias `[d_sae]`.
    pub b_enc: Param<Tensor<1>>,
    /// Candidate points `C [n_candidates, d_in]`, fixed (not trained; saved with the module).
    pub candidates: Param<Tensor<2>>,
    /// Mixing weights `W [d_sae, n_candidates]`, row-stochastic after each constraint step.
    pub mixing: Param<Tensor<2>>,
    /// Relaxation `Λ [d_sae, d_in]`, row norms at most `delta`.
    pub relaxation: Param<Tensor<2>>,
    /// Log-scale `m` of the dictionary, `[1]` (trained when `use_multiplier`).
    pub log_multiplier: Param<Tensor<1>>,
    /// Decoder bias `[d_in]` (zero and unused unless `apply_b_dec_to_input`).
    pub b_dec: Param<Tensor<1>>,
    /// Latents kept per token.
    pub k: usize,
    /// Relaxation bound δ.
    pub delta: f64,
    /// Whether `m` is trained.
    pub use_multiplier: bool,
    /// Whether `b_dec` is used.
    pub apply_b_dec_to_input: bool,
}

impl ArchetypalSae {
    /// Builds an SAE from given tensors: `W_enc [d_in, d_sae]`, `b_enc [d_sae]`,
    /// `candidates [n, d_in]`, `mixing [d_sae, n]`, `relaxation [d_sae, d_in]`, the log-scale `m`
    /// and `b_dec [d_in]`. The constraints are not re-imposed (call
    /// [`SparseAutoencoder::apply_constraints`] for that).
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`ArchetypalSaeConfig::check`] fails;
    /// [`Error::TensorShape`] naming the first tensor whose shape is wrong.
    #[allow(clippy::too_many_arguments)]
    pub fn from_tensors(
        config: &ArchetypalSaeConfig,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        candidates: Tensor<2>,
        mixing: Tensor<2>,
        relaxation: Tensor<2>,
        log_multiplier: f64,
        b_dec: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        let (d_in, d_sae) = (config.d_in, config.d_sae);
        let [n, _] = candidates.dims();
        check_shape("W_enc", &w_enc, [d_in, d_sae])?;
        check_shape("b_enc", &b_enc, [d_sae])?;
        check_shape("candidates", &candidates, [n, d_in])?;
        check_shape("mixing", &mixing, [d_sae, n])?;
        check_shape("relaxation", &relaxation, [d_sae, d_in])?;
        check_shape("b_dec", &b_dec, [d_in])?;
        Ok(config.build(
            w_enc,
            b_enc,
            candidates,
            mixing,
            relaxation,
            log_multiplier,
            b_dec,
        ))
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> ArchetypalSaeConfig {
        ArchetypalSaeConfig::new(self.d_in(), self.d_sae(), self.k)
            .with_delta(self.delta)
            .with_use_multiplier(self.use_multiplier)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    /// Pre-activations `(x − b_dec) W_enc + b_enc`, `[batch, d_sae]`.
    pub fn pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        check_input("ArchetypalSae", &x, self.d_in());
        linear_pre_activations(
            x,
            &self.W_enc,
            &self.b_enc,
            &self.b_dec,
            self.apply_b_dec_to_input,
        )
    }

    fn select(&self, pre: Tensor<2>) -> SparseCodes {
        let path = ComputePath::for_device(&pre.device());
        let (indices, values) = top_k(pre, self.k, Rank::Value, path);
        SparseCodes::new(indices, relu(values))
    }
}

impl SparseAutoencoder for ArchetypalSae {
    fn architecture(&self) -> Architecture {
        Architecture::Archetypal
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.select(self.pre_activations(x)).to_dense(self.d_sae())
    }

    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        Some(self.select(self.pre_activations(x)))
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.dictionary()) + row(self.decoder_bias())
    }

    fn training_forward(&self, x: Tensor<2>, _ctx: &StepContext) -> TrainingOutput {
        let pre = self.pre_activations(x.clone());
        let sparse = self.select(pre.clone());
        let codes = sparse.to_dense(self.d_sae());
        let reconstruction = self.decode(codes.clone());
        TrainingOutput {
            sparse_codes: Some(sparse),
            pre_activations: Some(pre),
            ..mse_output(x, reconstruction, codes)
        }
    }

    /// `D = (W C + Λ) · exp(m)`, `[d_sae, d_in]`.
    fn dictionary(&self) -> Tensor<2> {
        let hull = self.mixing.val().matmul(self.candidates.val()) + self.relaxation.val();
        hull * row(self.log_multiplier.val().exp())
    }

    fn decoder_bias(&self) -> Tensor<1> {
        if self.apply_b_dec_to_input {
            self.b_dec.val()
        } else {
            self.b_dec.val().zeros_like()
        }
    }

    fn apply_constraints(self) -> Self {
        let delta = self.delta;
        Self {
            mixing: map_param(self.mixing, |w| {
                let w = relu(w);
                let sums = w.clone().sum_dim(1).add_scalar(SIMPLEX_EPS);
                w / sums
            }),
            relaxation: map_param(self.relaxation, |l| {
                let norms = l
                    .clone()
                    .powi_scalar(2)
                    .sum_dim(1)
                    .sqrt()
                    .clamp_min(NORM_EPS);
                let factor = norms.recip().mul_scalar(delta).clamp_max(1.0);
                l * factor
            }),
            ..self
        }
    }

    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        // The dictionary shrinks by 1/scale through its points and relaxation (and δ with it),
        // so it stays the relaxed hull of the *raw* data points.
        Self {
            W_enc: scale_param(self.W_enc, scale),
            candidates: scale_param(self.candidates, 1.0 / scale),
            relaxation: scale_param(self.relaxation, 1.0 / scale),
            b_dec: scale_param(self.b_dec, 1.0 / scale),
            delta: self.delta / scale,
            ..self
        }
    }

    fn into_inference(self) -> AnySae {
        let config = TopKSaeConfig::new(self.d_in(), self.d_sae(), self.k)
            .with_rescale_acts_by_decoder_norm(false)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input);
        let fused = TopKSae::from_tensors(
            &config,
            self.W_enc.val().inner(),
            self.b_enc.val().inner(),
            self.dictionary().inner(),
            self.decoder_bias().inner(),
        )
        .expect("shapes of an archetypal SAE match its TopK export");
        AnySae::TopK(fused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use burn::tensor::Distribution;

    #[test]
    fn constraints_project_onto_simplex_and_ball() {
        let device = test_device();
        let cfg = ArchetypalSaeConfig::new(2, 2, 1).with_delta(0.5);
        let sae = ArchetypalSae::from_tensors(
            &cfg,
            Tensor::eye(2, &device),
            Tensor::zeros([2], &device),
            Tensor::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], &device),
            Tensor::from_floats([[2.0, -1.0, 2.0], [0.0, 0.0, 3.0]], &device),
            Tensor::from_floats([[3.0, 4.0], [0.1, 0.0]], &device),
            0.0,
            Tensor::zeros([2], &device),
        )
        .unwrap()
        .apply_constraints();
        // ReLU then normalise: [2, 0, 2]/4 = [0.5, 0, 0.5]; [0, 0, 3]/3.
        sae.mixing.val().into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.5f32, 0.0, 0.5], [0.0, 0.0, 1.0]]),
            Default::default(),
        );
        // ‖[3, 4]‖ = 5 > 0.5 → scaled to norm 0.5: [0.3, 0.4]; [0.1, 0] is inside: unchanged.
        sae.relaxation.val().into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.3f32, 0.4], [0.1, 0.0]]),
            Default::default(),
        );
        // D = W C + Λ = [[1, 0.5] + [0.3, 0.4], [1, 1] + [0.1, 0]].
        sae.dictionary().into_data().assert_approx_eq::<f32>(
            &TensorData::from([[1.3f32, 0.9], [1.1, 1.0]]),
            Default::default(),
        );
    }

    #[test]
    fn training_keeps_atoms_in_the_relaxed_hull_and_export_keeps_forward() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = test_device().autodiff();
        device.seed(12);
        let data = Tensor::<2>::random([64, 5], Distribution::Normal(0.0, 1.0), &device);
        let candidates = data.clone().slice([0..16, 0..5]).inner();
        let cfg = ArchetypalSaeConfig::new(5, 12, 3).with_delta(0.1);
        let mut sae = cfg.init(candidates, &device).unwrap();
        let mut optim = AdamConfig::new().init();
        for step in 0..5 {
            let out = sae.training_forward(data.clone(), &StepContext::new(step));
            let grads = GradientsParams::from_grads(out.total_loss().backward(), &sae);
            sae = optim.step(1e-2, sae, grads).apply_constraints();
        }
        let w = sae.mixing.val().inner();
        assert!(w.clone().min().into_scalar::<f32>() >= 0.0);
        w.sum_dim(1)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[1.0f32]; 12]), Default::default());
        let max_norm = sae
            .relaxation
            .val()
            .inner()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .max()
            .into_scalar::<f32>();
        assert!(
            max_norm <= 0.1 + 1e-6,
            "relaxation norm {max_norm} exceeds δ"
        );
        let x = data.inner().slice([0..8, 0..5]);
        let plain = sae.valid();
        let expected = plain.forward(x.clone()).into_data();
        let exported = plain.clone().into_inference();
        assert_eq!(exported.architecture(), Architecture::TopK);
        exported
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        (plain.fold_input_scale(2.0).forward(x.div_scalar(2.0)) * 2.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
    }
}
