//! TopK SAE (Gao et al. 2024).
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
use crate::kernels::{ComputePath, Rank, top_k};
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, DecoderConstraint, Result, SparseAutoencoder, SparseCodes, StepContext,
    TrainingOutput,
};

/// Configuration of a [`TopKSae`]. Defaults are SAELens' training defaults except `k`, which
/// has no universal default (SAELens 100, OpenAI and sparsify 32) and is required.
#[derive(Config, Debug)]
pub struct TopKSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Latents kept per token.
    pub k: usize,
    /// Select on `pre ⊙ ‖W_dec,i‖` and decode `codes / ‖W_dec,i‖` (SAELens
    /// `rescale_acts_by_decoder_norm`, default true): the codes are those of the equivalent
    /// SAE with unit-norm decoder rows, without constraining the decoder.
    #[config(default = true)]
    pub rescale_acts_by_decoder_norm: bool,
    /// Keep decoder rows at unit norm with gradient projection (OpenAI, sparsify,
    /// dictionary_learning; default false). The decoder then starts at unit norm.
    #[config(default = false)]
    pub unit_norm_decoder: bool,
    /// Subtract `b_dec` from the input before encoding (default true).
    #[config(default = true)]
    pub apply_b_dec_to_input: bool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1) when the decoder is
    /// free.
    #[config(default = 0.1)]
    pub decoder_init_norm: f64,
}

impl TopKSaeConfig {
    /// A freshly initialised SAE: tied weights, zero biases.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> TopKSae {
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
        )
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `k` in `1..=d_sae`, `decoder_init_norm` positive and finite.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("TopKSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.k(self.k, self.d_sae)?;
        r.positive("decoder_init_norm", self.decoder_init_norm)
    }

    fn build(
        &self,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> TopKSae {
        TopKSae {
            W_enc: Param::from_tensor(w_enc),
            b_enc: Param::from_tensor(b_enc),
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            k: self.k,
            rescale_acts_by_decoder_norm: self.rescale_acts_by_decoder_norm,
            unit_norm_decoder: self.unit_norm_decoder,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
        }
    }
}

/// TopK SAE: `pre = (x − b_dec) W_enc + b_enc`, keep the `k` largest entries per token and apply
/// ReLU to them, `x̂ = f W_dec + b_dec`.
///
/// With `rescale_acts_by_decoder_norm` (SAELens' default) the selection and the codes use
/// `pre ⊙ n`, `n_i = ‖W_dec,i‖`, and decoding divides by `n` again — exactly the SAE with
/// decoder rows `W_dec,i / n_i` and encoder columns `W_enc[:, i] · n_i`, which
/// [`TopKSae::fold_decoder_norms`] produces. Training objective: `"mse"` only (aux-K belongs to
/// the trainer, from [`TrainingOutput::pre_activations`]).
///
/// **Exact k**: each row has exactly `k` selected latents; a selected latent whose
/// pre-activation is not positive is zeroed by the ReLU, so the number of non-zeros is
/// `min(k, #positive)`. **Tie rule**: among equal scores the lower latent index is selected
/// (host kernel, the default on CPU); on the tensor-op path ties are broken by burn's unstable
/// sort.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::{SparseAutoencoder, TopKSaeConfig};
///
/// let device = Device::flex();
/// device.seed(0);
/// let sae = TopKSaeConfig::new(8, 64, 4).init(&device);
/// let x = Tensor::<2>::random([3, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
/// let codes = sae.encode_sparse(x.clone()).unwrap();
/// assert_eq!(codes.indices.dims(), [3, 4]);
/// // Decoding the k-sparse codes gathers 4 rows per token and equals the dense path.
/// sae.decode_sparse(&codes)
///     .into_data()
///     .assert_approx_eq::<f32>(&sae.forward(x).into_data(), Default::default());
/// ```
#[derive(Module, Debug)]
#[allow(non_snake_case)]
pub struct TopKSae {
    /// Encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Encoder bias `[d_sae]`.
    pub b_enc: Param<Tensor<1>>,
    /// Decoder weights `[d_sae, d_in]`.
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// Latents kept per token.
    pub k: usize,
    /// Select and encode on decoder-norm-rescaled pre-activations.
    pub rescale_acts_by_decoder_norm: bool,
    /// Unit-norm decoder rows with gradient projection.
    pub unit_norm_decoder: bool,
    /// Whether `b_dec` is subtracted from the input.
    pub apply_b_dec_to_input: bool,
}

impl TopKSae {
    /// Builds an SAE from given tensors, checking shapes against the config.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`TopKSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] naming the first tensor whose shape is wrong.
    pub fn from_tensors(
        config: &TopKSaeConfig,
        w_enc: Tensor<2>,
        b_enc: Tensor<1>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        check_linear_shapes(config.d_in, config.d_sae, &w_enc, &b_enc, &w_dec, &b_dec)?;
        Ok(config.build(w_enc, b_enc, w_dec, b_dec))
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> TopKSaeConfig {
        TopKSaeConfig::new(self.d_in(), self.d_sae(), self.k)
            .with_rescale_acts_by_decoder_norm(self.rescale_acts_by_decoder_norm)
            .with_unit_norm_decoder(self.unit_norm_decoder)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    /// The selection scores, `[batch, d_sae]`: `(x − b_dec) W_enc + b_enc`, times the decoder
    /// row norms when rescaling. The codes are the ReLU of the `k` selected entries.
    pub fn pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        check_input("TopKSae", &x, self.d_in());
        let pre = linear_pre_activations(
            x,
            &self.W_enc,
            &self.b_enc,
            &self.b_dec,
            self.apply_b_dec_to_input,
        );
        rescale_by_decoder_norms(pre, &self.W_dec, self.rescale_acts_by_decoder_norm)
    }

    /// k-sparse codes from pre-activations on the given path.
    fn select(&self, pre: Tensor<2>, path: ComputePath) -> SparseCodes {
        let (indices, values) = top_k(pre, self.k, Rank::Value, path);
        SparseCodes::new(indices, relu(values))
    }

    /// Folds decoder norms into the encoder (rows of `W_dec` become unit vectors, column `i` of
    /// `W_enc` and `b_enc[i]` scale by `‖W_dec,i‖`) and turns rescaling off. `forward` is
    /// unchanged when `rescale_acts_by_decoder_norm` is set (the selection scores and codes are
    /// identical); without it a TopK selection is not invariant to per-latent scaling and this
    /// method panics, as SAELens' `fold_W_dec_norm` refuses.
    ///
    /// # Panics
    /// If `rescale_acts_by_decoder_norm` is false.
    pub fn fold_decoder_norms(self) -> Self {
        assert!(
            self.rescale_acts_by_decoder_norm,
            "TopKSae::fold_decoder_norms: a TopK SAE without rescale_acts_by_decoder_norm changes its selection when decoder norms are folded"
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
}

impl SparseAutoencoder for TopKSae {
    fn architecture(&self) -> Architecture {
        Architecture::TopK
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let codes = self.encode_sparse(x).expect("TopK codes are k-sparse");
        codes.to_dense(self.d_sae())
    }

    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        let pre = self.pre_activations(x);
        let path = ComputePath::for_device(&pre.device());
        Some(self.select(pre, path))
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.dictionary()) + row(self.b_dec.val())
    }

    fn training_forward(&self, x: Tensor<2>, _ctx: &StepContext) -> TrainingOutput {
        let pre = self.pre_activations(x.clone());
        let sparse = self.select(pre.clone(), ComputePath::for_device(&pre.device()));
        let codes = sparse.to_dense(self.d_sae());
        let reconstruction = self.decode(codes.clone());
        TrainingOutput {
            sparse_codes: Some(sparse),
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

    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        // Dividing every decoder row by `scale` leaves the rescaled selection order unchanged
        // (a common factor), so the fold is exact with and without rescaling.
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
        if self.rescale_acts_by_decoder_norm {
            AnySae::TopK(self.fold_decoder_norms())
        } else {
            AnySae::TopK(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::scale_rows;
    use super::*;
    use crate::decoder::row_norms;
    use crate::test_device;
    use burn::tensor::Distribution;
    use proptest::prelude::*;

    fn identity_sae(d: usize, k: usize, device: &Device) -> TopKSae {
        // W_enc = I, W_dec = I, zero biases: the pre-activations are the input itself.
        let eye = Tensor::<2>::eye(d, device);
        TopKSae::from_tensors(
            &TopKSaeConfig::new(d, d, k).with_rescale_acts_by_decoder_norm(false),
            eye.clone(),
            Tensor::zeros([d], device),
            eye,
            Tensor::zeros([d], device),
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Exactly k selected per row, non-zeros = min(k, #positive); with at least k positive
        /// entries, exactly k non-zeros, and they are the k largest (lower index on ties).
        #[test]
        fn exact_k_with_tie_rule(
            rows in 1usize..5,
            d in 1usize..24,
            k_frac in 0.0f64..=1.0,
            grid in prop::collection::vec(-3i32..=3, 1..200),
        ) {
            let k = (((d as f64) * k_frac).round() as usize).max(1);
            let device = test_device();
            let data: Vec<f32> = (0..rows * d).map(|i| grid[i % grid.len()] as f32).collect();
            let sae = identity_sae(d, k, &device);
            let x = Tensor::<2>::from_data(TensorData::new(data.clone(), [rows, d]), &device);
            let codes = sae.encode_sparse(x.clone()).unwrap();
            prop_assert_eq!(codes.indices.dims(), [rows, k]);
            let dense = sae.encode(x).into_data().try_to_vec::<f32>().unwrap();
            for r in 0..rows {
                let row = &data[r * d..(r + 1) * d];
                let mut order: Vec<usize> = (0..d).collect();
                order.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap().then(a.cmp(&b)));
                let positive = row.iter().filter(|v| **v > 0.0).count();
                let nonzero = dense[r * d..(r + 1) * d].iter().filter(|v| **v != 0.0).count();
                prop_assert_eq!(nonzero, k.min(positive));
                for (rank, &i) in order.iter().enumerate() {
                    let expected = if rank < k { row[i].max(0.0) } else { 0.0 };
                    prop_assert_eq!(dense[r * d + i], expected);
                }
            }
        }
    }

    #[test]
    fn rescaled_selection_uses_decoder_norms() {
        let device = test_device();
        // pre = [3, 2]; decoder norms [1, 2] → scores [3, 4]: k = 1 picks latent 1 (value 4).
        let sae = TopKSae::from_tensors(
            &TopKSaeConfig::new(2, 2, 1),
            Tensor::eye(2, &device),
            Tensor::zeros([2], &device),
            Tensor::from_floats([[1.0, 0.0], [0.0, 2.0]], &device),
            Tensor::zeros([2], &device),
        )
        .unwrap();
        let x = Tensor::<2>::from_floats([[3.0, 2.0]], &device);
        sae.encode(x.clone())
            .into_data()
            .assert_eq(&TensorData::from([[0.0f32, 4.0]]), false);
        // decode: 4 / 2 · [0, 2] = [0, 4].
        sae.forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[0.0f32, 4.0]]), Default::default());
    }

    #[test]
    fn folding_and_inference_export_keep_forward() {
        let device = test_device();
        device.seed(3);
        let sae = TopKSaeConfig::new(6, 20, 3).init(&device);
        // Give the decoder uneven norms and the biases values so the fold is exercised.
        let sae = TopKSae {
            W_dec: scale_rows(
                sae.W_dec,
                Tensor::random([20], Distribution::Uniform(0.5, 3.0), &device),
            ),
            b_enc: sae
                .b_enc
                .map(|b| b + Tensor::random([20], Distribution::Normal(0.0, 0.1), &device)),
            b_dec: sae
                .b_dec
                .map(|b| b + Tensor::random([6], Distribution::Normal(0.0, 0.1), &device)),
            ..sae
        };
        let x = Tensor::<2>::random([10, 6], Distribution::Normal(0.0, 1.0), &device);
        let expected = sae.forward(x.clone()).into_data();
        let AnySae::TopK(folded) = sae.clone().into_inference() else {
            panic!("TopK exports as TopK")
        };
        assert!(!folded.rescale_acts_by_decoder_norm);
        folded
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        let scaled = sae.fold_input_scale(0.25);
        (scaled.forward(x.clone().mul_scalar(4.0)) * 0.25)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
    }

    #[test]
    fn unit_norm_training_step_keeps_rows_on_the_sphere() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = test_device().autodiff();
        device.seed(5);
        let mut sae = TopKSaeConfig::new(6, 12, 2)
            .with_unit_norm_decoder(true)
            .init(&device);
        let mut optim = AdamConfig::new().init();
        let x = Tensor::<2>::random([8, 6], Distribution::Normal(0.0, 1.0), &device);
        let before = sae
            .training_forward(x.clone(), &StepContext::new(0))
            .total_loss()
            .into_scalar::<f32>();
        for step in 0..20 {
            let out = sae.training_forward(x.clone(), &StepContext::new(step));
            let mut grads = GradientsParams::from_grads(out.total_loss().backward(), &sae);
            sae.project_gradients(&mut grads);
            let g = grads.get::<2>(sae.W_dec.id).unwrap();
            // The projected gradient is orthogonal to every row.
            let radial = (g * sae.W_dec.val().inner())
                .sum_dim(1)
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(radial < 1e-4, "radial gradient component {radial}");
            sae = optim.step(1e-2, sae, grads).apply_constraints();
        }
        row_norms(sae.W_dec.val().inner())
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([1.0f32; 12]), Default::default());
        let after = sae
            .training_forward(x, &StepContext::new(20))
            .total_loss()
            .into_scalar::<f32>();
        assert!(after < before, "loss did not decrease: {before} -> {after}");
    }
}
