//! Matryoshka BatchTopK SAE (Bussmann et al. 2025; Nabeshima 2024).

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::batch_topk::{BatchTopKSae, BatchTopKSaeConfig};
use super::common::row;
use super::config_check::{ConfigError, Rules, expect_valid};
use crate::kernels::{ComputePath, batch_top_k};
use crate::training::sse_per_token;
use crate::{
    AnySae, Architecture, DecoderConstraint, LossKind, LossTerm, SparseAutoencoder, StepContext,
    TrainingOutput,
};

/// Which codes an inner Matryoshka level reconstructs from.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum MatryoshkaLevelCodes {
    /// The full-width codes truncated to the level's prefix: `x̂_w = f[:, :w] W_dec[:w] + b_dec`
    /// (the paper, dictionary_learning `MatryoshkaBatchTopKTrainer`). Default.
    Truncated,
    /// A fresh BatchTopK selection of `⌊k·B⌋` entries among the first `w` latents (SAELens
    /// `MatryoshkaBatchTopKTrainingSAE`, which re-applies its activation to `hidden_pre[:, :w]`).
    Reselected,
}

/// Configuration of a [`MatryoshkaSae`].
#[derive(Config, Debug)]
pub struct MatryoshkaSaeConfig {
    /// The BatchTopK SAE underneath (width, k, threshold EMA, decoder treatment).
    pub base: BatchTopKSaeConfig,
    /// Strictly increasing prefix widths of the levels; the full width `d_sae` is appended when
    /// missing (as SAELens does). The smallest must be at least `k`.
    pub widths: Vec<usize>,
    /// Weights of the inner levels' reconstruction losses, one per width before the last
    /// (default: all 1, SAELens' unweighted sum; dictionary_learning's mean over levels is this sum
    /// divided by the number of levels, the same objective up to a constant factor).
    #[config(default = "None")]
    pub inner_level_weights: Option<Vec<f64>>,
    /// Codes of the inner levels (default [`MatryoshkaLevelCodes::Truncated`]).
    #[config(default = "MatryoshkaLevelCodes::Truncated")]
    pub level_codes: MatryoshkaLevelCodes,
}

impl MatryoshkaSaeConfig {
    /// A freshly initialised SAE (see [`BatchTopKSaeConfig::init`]).
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> MatryoshkaSae {
        expect_valid(self.check());
        MatryoshkaSae::from_base(self, self.base.init(device))
    }

    /// Checks every hyperparameter: the base BatchTopK config ([`BatchTopKSaeConfig::check`],
    /// reported as `base.<field>`); level widths strictly increasing, at most `d_sae` (which
    /// is appended as the last level when missing) and not below `k`; one non-negative, finite
    /// weight per inner level when weights are given.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        const NAME: &str = "MatryoshkaSaeConfig";
        self.base.check().map_err(|e| e.nested_in(NAME, "base"))?;
        let r = Rules::of(NAME);
        let d_sae = self.base.d_sae;
        let widths = self.level_widths();
        r.require(
            widths.windows(2).all(|w| w[0] < w[1]),
            "widths",
            format!("strictly increasing and at most d_sae = {d_sae}"),
            format!("{:?}", self.widths),
        )?;
        r.require(
            widths[0] as f64 >= self.base.k,
            "widths",
            format!("levels no smaller than k = {}", self.base.k),
            format!("{:?}", self.widths),
        )?;
        if let Some(weights) = &self.inner_level_weights {
            let inner = widths.len() - 1;
            r.require(
                weights.len() == inner,
                "inner_level_weights",
                format!("one weight per inner level ({inner})"),
                format!("{} weights", weights.len()),
            )?;
            for (i, &w) in weights.iter().enumerate() {
                r.non_negative(&format!("inner_level_weights[{i}]"), w)?;
            }
        }
        Ok(())
    }

    /// The level widths with `d_sae` appended when the last one is not it.
    fn level_widths(&self) -> Vec<usize> {
        let d_sae = self.base.d_sae;
        let mut widths = self.widths.clone();
        if widths.last() != Some(&d_sae) {
            widths.push(d_sae);
        }
        widths
    }

    /// Widths and inner weights of a checked config.
    fn levels(&self) -> (Vec<usize>, Vec<f64>) {
        let widths = self.level_widths();
        let inner = widths.len() - 1;
        let weights = self
            .inner_level_weights
            .clone()
            .unwrap_or_else(|| vec![1.0; inner]);
        (widths, weights)
    }
}

/// Matryoshka SAE: a [`BatchTopKSae`] whose first `w` latents must reconstruct the input on
/// their own for every level width `w`, so early latents learn general features and later ones
/// refine them.
///
/// Loss terms: `"mse"` (full width), `"matryoshka_inner_mse"` = `Σ_levels weight · SSE_w` over
/// the inner levels. Running state and inference export are the base BatchTopK's: the EMA
/// threshold, and a [`crate::JumpReluSae`] (as SAELens saves `matryoshka_batchtopk`).
///
/// ```
/// use burn::prelude::*;
/// use sae_core::{BatchTopKSaeConfig, MatryoshkaSaeConfig, SparseAutoencoder, StepContext};
///
/// let device = Device::flex();
/// let cfg = MatryoshkaSaeConfig::new(BatchTopKSaeConfig::new(8, 32, 2.0), vec![4, 16]);
/// let sae = cfg.init(&device);
/// assert_eq!(sae.widths, vec![4, 16, 32]);
/// let x = Tensor::<2>::ones([3, 8], &device);
/// let out = sae.training_forward(x, &StepContext::new(0));
/// assert!(out.loss("matryoshka_inner_mse").is_some());
/// ```
#[derive(Module, Debug)]
pub struct MatryoshkaSae {
    /// The BatchTopK SAE (parameters, threshold).
    pub base: BatchTopKSae,
    /// Level widths, strictly increasing, ending at `d_sae`.
    #[module(skip)]
    pub widths: Vec<usize>,
    /// Weights of the inner levels.
    #[module(skip)]
    pub inner_level_weights: Vec<f64>,
    /// Codes of the inner levels.
    #[module(skip)]
    pub level_codes: MatryoshkaLevelCodes,
}

impl MatryoshkaSae {
    /// Wraps a BatchTopK SAE (e.g. built with [`BatchTopKSae::from_tensors`]) with the levels of
    /// `config` (whose `base` must describe the same widths and k).
    ///
    /// # Panics
    /// If [`MatryoshkaSaeConfig::check`] fails (with its message; readers of files call `check`
    /// first and report a typed error), or when `base` does not match `config.base`'s
    /// dimensions.
    pub fn from_base(config: &MatryoshkaSaeConfig, base: BatchTopKSae) -> Self {
        expect_valid(config.check());
        assert_eq!(
            (base.d_in(), base.d_sae()),
            (config.base.d_in, config.base.d_sae),
            "MatryoshkaSae::from_base: base SAE dimensions (d_in, d_sae) differ from the config"
        );
        let (widths, inner_level_weights) = config.levels();
        Self {
            base,
            widths,
            inner_level_weights,
            level_codes: config.level_codes,
        }
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> MatryoshkaSaeConfig {
        MatryoshkaSaeConfig::new(self.base.config(), self.widths.clone())
            .with_inner_level_weights(Some(self.inner_level_weights.clone()))
            .with_level_codes(self.level_codes)
    }

    /// The reconstruction of each inner level from `codes` (truncated), cumulatively: one pass
    /// over the dictionary in total.
    fn truncated_reconstructions(
        &self,
        codes: &Tensor<2>,
        dictionary: &Tensor<2>,
    ) -> Vec<Tensor<2>> {
        let [batch, _] = codes.dims();
        let [_, d_in] = dictionary.dims();
        let mut out = Vec::with_capacity(self.widths.len() - 1);
        let mut acc = row(self.base.b_dec.val()).expand([batch, d_in]);
        let mut start = 0;
        for &w in &self.widths[..self.widths.len() - 1] {
            let part = codes
                .clone()
                .slice([0..batch, start..w])
                .matmul(dictionary.clone().slice([start..w, 0..d_in]));
            acc = acc + part;
            out.push(acc.clone());
            start = w;
        }
        out
    }
}

impl SparseAutoencoder for MatryoshkaSae {
    fn architecture(&self) -> Architecture {
        Architecture::Matryoshka
    }

    fn d_in(&self) -> usize {
        self.base.d_in()
    }

    fn d_sae(&self) -> usize {
        self.base.d_sae()
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.base.encode(x)
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        self.base.decode(codes)
    }

    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput {
        let mut out = self.base.training_forward(x.clone(), ctx);
        let dictionary = self.base.dictionary();
        let inner: Vec<Tensor<2>> = match self.level_codes {
            MatryoshkaLevelCodes::Truncated => {
                self.truncated_reconstructions(&out.codes, &dictionary)
            }
            MatryoshkaLevelCodes::Reselected => {
                let pre = out
                    .pre_activations
                    .clone()
                    .expect("BatchTopK exposes its pre-activations");
                let [batch, _] = pre.dims();
                let [_, d_in] = dictionary.dims();
                let k_total = self.base.k_total(batch);
                let path = ComputePath::for_device(&pre.device());
                self.widths[..self.widths.len() - 1]
                    .iter()
                    .map(|&w| {
                        let codes =
                            batch_top_k(relu(pre.clone().slice([0..batch, 0..w])), k_total, path);
                        codes.matmul(dictionary.clone().slice([0..w, 0..d_in]))
                            + row(self.base.b_dec.val())
                    })
                    .collect()
            }
        };
        let inner_loss = inner
            .into_iter()
            .zip(&self.inner_level_weights)
            .map(|(recon, &weight)| sse_per_token(x.clone(), recon).mul_scalar(weight))
            .reduce(|a, b| a + b);
        if let Some(value) = inner_loss {
            out.losses.push(LossTerm {
                name: "matryoshka_inner_mse",
                kind: LossKind::Reconstruction,
                value,
            });
        }
        out
    }

    fn dictionary(&self) -> Tensor<2> {
        self.base.dictionary()
    }

    fn decoder_bias(&self) -> Tensor<1> {
        self.base.decoder_bias()
    }

    fn decoder_constraint(&self) -> DecoderConstraint {
        self.base.decoder_constraint()
    }

    fn project_gradients(&self, grads: &mut GradientsParams) {
        self.base.project_gradients(grads);
    }

    fn apply_constraints(self) -> Self {
        Self {
            base: self.base.apply_constraints(),
            ..self
        }
    }

    fn update_running_state(self, output: &TrainingOutput) -> Self {
        Self {
            base: self.base.update_running_state(output),
            ..self
        }
    }

    fn fold_input_scale(self, scale: f64) -> Self {
        Self {
            base: self.base.fold_input_scale(scale),
            ..self
        }
    }

    fn into_inference(self) -> AnySae {
        self.base.into_inference()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;

    fn identity(level_codes: MatryoshkaLevelCodes, device: &Device) -> MatryoshkaSae {
        let base_cfg = BatchTopKSaeConfig::new(4, 4, 2.0).with_rescale_acts_by_decoder_norm(false);
        let base = BatchTopKSae::from_tensors(
            &base_cfg,
            Tensor::eye(4, device),
            Tensor::zeros([4], device),
            Tensor::eye(4, device),
            Tensor::zeros([4], device),
            0.0,
        )
        .unwrap();
        let cfg = MatryoshkaSaeConfig::new(base_cfg, vec![2, 3])
            .with_inner_level_weights(Some(vec![1.0, 0.5]))
            .with_level_codes(level_codes);
        MatryoshkaSae::from_base(&cfg, base)
    }

    #[test]
    fn prefix_losses_by_hand() {
        let device = test_device();
        // One token, k = 2: the two largest of [1, 4, 3, 2] are kept → f = [0, 4, 3, 0].
        let x = Tensor::<2>::from_floats([[1.0, 4.0, 3.0, 2.0]], &device);
        let sae = identity(MatryoshkaLevelCodes::Truncated, &device);
        let out = sae.training_forward(x.clone(), &StepContext::new(0));
        // Full: x̂ = [0, 4, 3, 0], SSE = 1 + 4 = 5.
        assert_relative_eq!(
            out.loss("mse").unwrap().value.clone().into_scalar::<f32>(),
            5.0
        );
        // Width 2: x̂ = [0, 4, 0, 0], SSE = 1 + 9 + 4 = 14; width 3: x̂ = [0, 4, 3, 0], SSE 5.
        // 1·14 + 0.5·5 = 16.5.
        assert_relative_eq!(
            out.loss("matryoshka_inner_mse")
                .unwrap()
                .value
                .clone()
                .into_scalar::<f32>(),
            16.5
        );
        // Reselected (SAELens): width 2 selects the top 2 of [1, 4] → x̂ = [1, 4, 0, 0], SSE 13;
        // width 3: top 2 of [1, 4, 3] → x̂ = [0, 4, 3, 0], SSE 5. 13 + 2.5 = 15.5.
        let sae = identity(MatryoshkaLevelCodes::Reselected, &device);
        let out = sae.training_forward(x, &StepContext::new(0));
        assert_relative_eq!(
            out.loss("matryoshka_inner_mse")
                .unwrap()
                .value
                .clone()
                .into_scalar::<f32>(),
            15.5
        );
    }

    #[test]
    #[should_panic(expected = "strictly increasing")]
    fn widths_must_increase() {
        let device = test_device();
        let _ =
            MatryoshkaSaeConfig::new(BatchTopKSaeConfig::new(4, 8, 1.0), vec![4, 2]).init(&device);
    }
}
