//! AbsTopK SAE (Zhu, Khalili, Zhu 2025, "AbsTopK: Rethinking Sparse Autoencoders for
//! Bidirectional Features", arXiv 2510.00404).
// Parameter fields carry SAELens tensor names (`W_enc`, `W_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;

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

/// Configuration of an [`AbsTopKSae`] (the same knobs as [`crate::TopKSaeConfig`]).
#[derive(Config, Debug)]
pub struct AbsTopKSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Latents kept per token.
    pub k: usize,
    /// Select on `|pre ⊙ ‖W_dec,i‖|` and decode `codes / ‖W_dec,i‖` (default true).
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

impl AbsTopKSaeConfig {
    /// A freshly initialised SAE: tied weights, zero biases.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> AbsTopKSae {
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
        let r = Rules::of("AbsTopKSaeConfig");
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
    ) -> AbsTopKSae {
        AbsTopKSae {
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

/// AbsTopK SAE: `pre = (x − b_dec) W_enc + b_enc`; keep the `k` entries of largest `|pre|`
/// **with their sign** and zero the rest (no ReLU), `x̂ = f W_dec + b_dec`. One latent can encode
/// both poles of a concept. This is the hard-thresholding operator of the signed ℓ0 constraint
/// `‖z‖₀ ≤ k`, one unrolled proximal-gradient step (the paper's derivation).
///
/// **Exact k**: exactly `k` latents are selected per row; they are all non-zero unless fewer than
/// `k` pre-activations are non-zero. **Tie rule**: equal `|pre|` → lower latent index (host
/// kernel). L0 must count `f ≠ 0` (not `f > 0` as SAELens' L0 does), and aux-K must rank
/// `|pre|`: [`TrainingOutput::signed_codes`] is true. Loss terms: `"mse"`.
///
/// Files name it `abstopk`, SAELens' own name (SAELens ≥ 6.54); the `abs_topk` this crate wrote
/// before SAELens had it still reads.
#[derive(Module, Debug)]
pub struct AbsTopKSae {
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

impl AbsTopKSae {
    /// Builds an SAE from given tensors, checking shapes against the config.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`AbsTopKSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] naming the first tensor whose shape is wrong.
    pub fn from_tensors(
        config: &AbsTopKSaeConfig,
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
    pub fn config(&self) -> AbsTopKSaeConfig {
        AbsTopKSaeConfig::new(self.d_in(), self.d_sae(), self.k)
            .with_rescale_acts_by_decoder_norm(self.rescale_acts_by_decoder_norm)
            .with_unit_norm_decoder(self.unit_norm_decoder)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    /// Signed selection scores (rescaled by decoder norms when enabled), `[batch, d_sae]`.
    pub fn pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        check_input("AbsTopKSae", &x, self.d_in());
        let pre = linear_pre_activations(
            x,
            &self.W_enc,
            &self.b_enc,
            &self.b_dec,
            self.apply_b_dec_to_input,
        );
        rescale_by_decoder_norms(pre, &self.W_dec, self.rescale_acts_by_decoder_norm)
    }

    /// Folds decoder norms into the encoder and turns rescaling off; `forward` is unchanged.
    ///
    /// # Panics
    /// If `rescale_acts_by_decoder_norm` is false (the selection would change).
    pub fn fold_decoder_norms(self) -> Self {
        assert!(
            self.rescale_acts_by_decoder_norm,
            "AbsTopKSae::fold_decoder_norms: without rescale_acts_by_decoder_norm the selection changes when decoder norms are folded"
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

impl SparseAutoencoder for AbsTopKSae {
    fn architecture(&self) -> Architecture {
        Architecture::AbsTopK
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let codes = self.encode_sparse(x).expect("AbsTopK codes are k-sparse");
        codes.to_dense(self.d_sae())
    }

    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        let pre = self.pre_activations(x);
        let path = ComputePath::for_device(&pre.device());
        let (indices, values) = top_k(pre, self.k, Rank::Magnitude, path);
        Some(SparseCodes::new(indices, values))
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.dictionary()) + row(self.b_dec.val())
    }

    fn training_forward(&self, x: Tensor<2>, _ctx: &StepContext) -> TrainingOutput {
        let pre = self.pre_activations(x.clone());
        let path = ComputePath::for_device(&pre.device());
        let (indices, values) = top_k(pre.clone(), self.k, Rank::Magnitude, path);
        let sparse = SparseCodes::new(indices, values);
        let codes = sparse.to_dense(self.d_sae());
        let reconstruction = self.decode(codes.clone());
        TrainingOutput {
            sparse_codes: Some(sparse),
            pre_activations: Some(pre),
            signed_codes: true,
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
            AnySae::AbsTopK(self.fold_decoder_norms())
        } else {
            AnySae::AbsTopK(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::scale_rows;
    use super::*;
    use crate::test_device;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Exactly k selected, the k largest |pre| (lower index on ties), signs kept; exactly k
        /// non-zeros when at least k entries are non-zero.
        #[test]
        fn exact_k_keeps_signs(
            rows in 1usize..5,
            d in 1usize..24,
            k_frac in 0.0f64..=1.0,
            grid in prop::collection::vec(-3i32..=3, 1..200),
        ) {
            let k = (((d as f64) * k_frac).round() as usize).max(1);
            let device = test_device();
            let data: Vec<f32> = (0..rows * d).map(|i| grid[i % grid.len()] as f32).collect();
            let sae = AbsTopKSae::from_tensors(
                &AbsTopKSaeConfig::new(d, d, k).with_rescale_acts_by_decoder_norm(false),
                Tensor::eye(d, &device),
                Tensor::zeros([d], &device),
                Tensor::eye(d, &device),
                Tensor::zeros([d], &device),
            ).unwrap();
            let x = Tensor::<2>::from_data(TensorData::new(data.clone(), [rows, d]), &device);
            let dense = sae.encode(x).into_data().try_to_vec::<f32>().unwrap();
            for r in 0..rows {
                let row = &data[r * d..(r + 1) * d];
                let mut order: Vec<usize> = (0..d).collect();
                order.sort_by(|&a, &b| row[b].abs().partial_cmp(&row[a].abs()).unwrap().then(a.cmp(&b)));
                let nonzero_in = row.iter().filter(|v| **v != 0.0).count();
                let nonzero_out = dense[r * d..(r + 1) * d].iter().filter(|v| **v != 0.0).count();
                prop_assert_eq!(nonzero_out, k.min(nonzero_in));
                for (rank, &i) in order.iter().enumerate() {
                    let expected = if rank < k { row[i] } else { 0.0 };
                    // The sign is kept: the code equals the signed pre-activation.
                    prop_assert_eq!(dense[r * d + i], expected);
                }
            }
        }
    }

    #[test]
    fn export_folds_norms_and_keeps_forward() {
        let device = test_device();
        device.seed(4);
        let sae = AbsTopKSaeConfig::new(6, 20, 4).init(&device);
        let sae = AbsTopKSae {
            W_dec: scale_rows(
                sae.W_dec,
                Tensor::random([20], burn::tensor::Distribution::Uniform(0.5, 3.0), &device),
            ),
            ..sae
        };
        let x = Tensor::<2>::random(
            [10, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = sae.forward(x.clone()).into_data();
        sae.clone()
            .into_inference()
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
        (sae.fold_input_scale(2.5).forward(x.div_scalar(2.5)) * 2.5)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
    }
}
