//! top-AFA SAE (Lee et al., "Evaluating and Designing Sparse Autoencoders by Approximating
//! Quasi-Orthogonality"; reference code `SewoongLee/top-afa-sae`, `training/sae.py TopAFASAE`).
// Parameter fields carry SAELens tensor names (`W_enc`, `W_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rayon::prelude::*;

use super::common::{check_input, check_shape, fold_scale_into_linear, mse_term, row};
use super::config_check::{ConfigError, Rules, expect_valid};
use crate::decoder::{project_param_gradient, renormalize_rows, row_norms, unit_rows};
use crate::kernels::ComputePath;
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, DecoderConstraint, LossKind, LossTerm, Result, SparseAutoencoder,
    SparseCodes, StepContext, TrainingOutput,
};

/// The reference code forces the last cumulative squared norm to this value, so the adaptive k
/// never runs off the end.
const LAST_CUMULATIVE: f32 = 1e8;

/// Configuration of a [`TopAfaSae`]; defaults are the reference code's.
#[derive(Config, Debug)]
pub struct TopAfaSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// Weight of the AFA loss `mean_b (‖f‖₂ − ‖x‖₂)²` (reference `afa_coeff`, swept over
    /// 1/128 … 1/16; default 1/32).
    #[config(default = 0.03125)]
    pub afa_coefficient: f64,
    /// Weight of an L1 penalty on the codes (reference `l1_coeff`, default 0).
    #[config(default = 0.0)]
    pub l1_coefficient: f64,
    /// Standardise each token (`(x − mean_d x)/(std_d x + 1e-5)`, undone on the output;
    /// reference `input_unit_norm`, default true).
    #[config(default = true)]
    pub input_unit_norm: bool,
}

impl TopAfaSaeConfig {
    /// A freshly initialised SAE as the reference builds it: `W_enc` Kaiming-uniform
    /// `[d_in, d_sae]` (torch fan-in = `d_sae` for that shape), `W_dec = W_encᵀ` with unit rows,
    /// `b_dec = 0`.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> TopAfaSae {
        expect_valid(self.check());
        let bound = (6.0 / self.d_sae as f64).sqrt();
        let w_enc = Tensor::<2>::random(
            [self.d_in, self.d_sae],
            burn::tensor::Distribution::Uniform(-bound, bound),
            device,
        );
        let w_dec = unit_rows(w_enc.clone().transpose());
        self.build(w_enc, w_dec, Tensor::zeros([self.d_in], device))
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `afa_coefficient` and `l1_coefficient` non-negative and finite.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("TopAfaSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        r.non_negative("afa_coefficient", self.afa_coefficient)?;
        r.non_negative("l1_coefficient", self.l1_coefficient)
    }

    fn build(&self, w_enc: Tensor<2>, w_dec: Tensor<2>, b_dec: Tensor<1>) -> TopAfaSae {
        TopAfaSae {
            W_enc: Param::from_tensor(w_enc),
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            afa_coefficient: self.afa_coefficient,
            l1_coefficient: self.l1_coefficient,
            input_unit_norm: self.input_unit_norm,
        }
    }
}

/// top-AFA SAE: TopK with a per-token `k` chosen so the codes' decoder-weighted norm
/// approximates the input's norm ("approximate feature activation").
///
/// With `x_c = x − b_dec` and `a = ReLU(x_c W_enc)` (no `b_enc`): sort `s_i = (a_i ‖W_dec,i‖)²`
/// descending, `C_j = √(Σ_{i ≤ j} s_(i))` (the last forced to `√1e8`),
/// `k* = argmin_j |C_j − ‖x_c‖₂| + 1`, keep the `k*` latents with the largest `s`; `f = a` on them,
/// `x̂ = f W_dec + b_dec`. The decoder is unit-norm with gradient projection, as in the reference.
///
/// Loss terms: `"mse"`, `"afa"` = `afa_coefficient · mean_b (‖f‖₂ − ‖x‖₂)²` (`x` after the
/// optional standardisation, as the reference) and `"l1"` when `l1_coefficient > 0`. Scale
/// convention: the reference's reconstruction term is the mean over batch *and* features, ours
/// is SSE per token (`d_in` times larger); the AFA and L1 terms are multiplied by `d_in` so the
/// objective is exactly `d_in ×` the reference's (the same optimum; with Adam the same training up
/// to ε). With `input_unit_norm` the `"mse"` term is measured in the standardised space, where the
/// reference measures it, while [`TrainingOutput::reconstruction`] is in input space.
///
/// [`TrainingOutput::pre_activations`] are `a` (what the reference's aux-K ranks). Ties in the
/// sort go to the lower latent index (host path) or burn's sort (tensor path); ties
/// in the argmin to the first position, as torch's `argmin`.
#[derive(Module, Debug)]
pub struct TopAfaSae {
    /// Encoder weights `[d_in, d_sae]`.
    pub W_enc: Param<Tensor<2>>,
    /// Decoder weights `[d_sae, d_in]`, unit rows.
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// AFA loss weight.
    pub afa_coefficient: f64,
    /// L1 weight.
    pub l1_coefficient: f64,
    /// Per-token standardisation of the input.
    pub input_unit_norm: bool,
}

/// Per-token standardisation: `(x, mean, std)` with `std` the unbiased standard deviation (torch
/// `x.std(dim=-1)`).
fn standardise(x: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let [_, d] = x.dims();
    let mean = x.clone().mean_dim(1);
    let centred = x - mean.clone();
    let var = centred
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .div_scalar((d.max(2) - 1) as f64);
    let std = var.sqrt();
    let x = centred / std.clone().add_scalar(1e-5);
    (x, mean, std)
}

impl TopAfaSae {
    /// Builds an SAE from given tensors (`W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`,
    /// `b_dec [d_in]`).
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`TopAfaSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] naming the first tensor whose shape is wrong.
    pub fn from_tensors(
        config: &TopAfaSaeConfig,
        w_enc: Tensor<2>,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        let (d_in, d_sae) = (config.d_in, config.d_sae);
        check_shape("W_enc", &w_enc, [d_in, d_sae])?;
        check_shape("W_dec", &w_dec, [d_sae, d_in])?;
        check_shape("b_dec", &b_dec, [d_in])?;
        Ok(config.build(w_enc, w_dec, b_dec))
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> TopAfaSaeConfig {
        TopAfaSaeConfig::new(self.d_in(), self.d_sae())
            .with_afa_coefficient(self.afa_coefficient)
            .with_l1_coefficient(self.l1_coefficient)
            .with_input_unit_norm(self.input_unit_norm)
    }

    /// The preprocessed input and what undoes it: `(x', mean, std)` (mean 0, std 1 without
    /// standardisation).
    fn preprocess(&self, x: Tensor<2>) -> (Tensor<2>, Option<(Tensor<2>, Tensor<2>)>) {
        check_input("TopAfaSae", &x, self.d_in());
        if self.input_unit_norm {
            let (x, mean, std) = standardise(x);
            (x, Some((mean, std)))
        } else {
            (x, None)
        }
    }

    /// The adaptive-k codes of a preprocessed input, k-sparse (padded with zeros to the batch's
    /// largest `k*`), and the activations `a = ReLU(x_c W_enc)` they were selected from.
    fn select(&self, x: Tensor<2>, path: ComputePath) -> (SparseCodes, Tensor<2>) {
        let x_c = x - row(self.b_dec.val());
        let acts = relu(x_c.clone().matmul(self.W_enc.val()));
        let [batch, d_sae] = acts.dims();
        let norms = row_norms(self.W_dec.val()).detach();
        let scores = (acts.clone().detach() * row(norms)).powi_scalar(2);
        let target = x_c.detach().powi_scalar(2).sum_dim(1).sqrt(); // [batch, 1]
        let device = acts.device();
        let (order, ks) = match path {
            ComputePath::HostKernels => {
                let s = scores.into_data().try_into_vec_as::<f32>().expect("scores");
                let t = target.into_data().try_into_vec_as::<f32>().expect("norms");
                afa_select_host(&s, &t, d_sae)
            }
            ComputePath::TensorOps => {
                let (sorted, order) = scores.sort_descending_with_indices(1);
                let cumulative = sorted.cumsum(1).slice_assign(
                    [0..batch, d_sae - 1..d_sae],
                    Tensor::full([batch, 1], LAST_CUMULATIVE, &device),
                );
                let k = (cumulative.sqrt() - target).abs().argmin(1).add_scalar(1);
                let ks: Vec<usize> = k
                    .into_data()
                    .try_into_vec_as::<i64>()
                    .expect("k")
                    .into_iter()
                    .map(|k| k as usize)
                    .collect();
                let order: Vec<i64> = order.into_data().try_into_vec_as::<i64>().expect("order");
                (order, ks)
            }
        };
        let k_max = ks.iter().copied().max().unwrap_or(1);
        let mut idx = vec![0i64; batch * k_max];
        let mut keep = vec![0f32; batch * k_max];
        for b in 0..batch {
            for j in 0..k_max {
                idx[b * k_max + j] = order[b * d_sae + j];
                keep[b * k_max + j] = if j < ks[b] { 1.0 } else { 0.0 };
            }
        }
        let indices = Tensor::<2, Int>::from_data(TensorData::new(idx, [batch, k_max]), &device);
        let keep = Tensor::<2>::from_data(TensorData::new(keep, [batch, k_max]), &device);
        let values = acts.clone().gather(1, indices.clone()) * keep;
        (SparseCodes::new(indices, values), acts)
    }

    fn postprocess(&self, x_hat: Tensor<2>, stats: Option<(Tensor<2>, Tensor<2>)>) -> Tensor<2> {
        match stats {
            Some((mean, std)) => x_hat * std + mean,
            None => x_hat,
        }
    }
}

/// Host adaptive-k: per row the latents sorted by score (descending, lower index first on ties)
/// and `k*`. Returns `(order, k)` with `order` `batch × d_sae` row-major.
fn afa_select_host(scores: &[f32], target: &[f32], d_sae: usize) -> (Vec<i64>, Vec<usize>) {
    let batch = target.len();
    let mut order = vec![0i64; batch * d_sae];
    let mut ks = vec![0usize; batch];
    order
        .par_chunks_mut(d_sae)
        .zip(ks.par_iter_mut())
        .enumerate()
        .for_each(|(b, (out, k))| {
            let s = &scores[b * d_sae..(b + 1) * d_sae];
            let mut idx: Vec<u32> = (0..d_sae as u32).collect();
            idx.sort_unstable_by(|&i, &j| s[j as usize].total_cmp(&s[i as usize]).then(i.cmp(&j)));
            let mut cumulative = 0f32;
            let mut best = (f32::INFINITY, 0usize);
            for (pos, &i) in idx.iter().enumerate() {
                cumulative += s[i as usize];
                let c = if pos + 1 == d_sae {
                    LAST_CUMULATIVE
                } else {
                    cumulative
                };
                let gap = (c.sqrt() - target[b]).abs();
                if gap < best.0 {
                    best = (gap, pos);
                }
                out[pos] = i as i64;
            }
            *k = best.1 + 1;
        });
    (order, ks)
}

impl SparseAutoencoder for TopAfaSae {
    fn architecture(&self) -> Architecture {
        Architecture::TopAfa
    }

    fn d_in(&self) -> usize {
        self.W_enc.dims()[0]
    }

    fn d_sae(&self) -> usize {
        self.W_enc.dims()[1]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encode_sparse(x)
            .expect("top-AFA codes are k-sparse")
            .to_dense(self.d_sae())
    }

    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        let (x, _) = self.preprocess(x);
        let path = ComputePath::for_device(&x.device());
        Some(self.select(x, path).0)
    }

    /// `codes · W_dec + b_dec`, in the standardised space when `input_unit_norm` (the
    /// per-token statistics are not known from codes alone); [`SparseAutoencoder::forward`]
    /// undoes the standardisation.
    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.W_dec.val()) + row(self.b_dec.val())
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let (x, stats) = self.preprocess(x);
        let path = ComputePath::for_device(&x.device());
        let (codes, _) = self.select(x, path);
        self.postprocess(self.decode_sparse(&codes), stats)
    }

    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput {
        let (x_pre, stats) = self.preprocess(x);
        let path = ComputePath::for_device(&x_pre.device());
        let (sparse, acts) = self.select(x_pre.clone(), path);
        let codes = sparse.to_dense(self.d_sae());
        let x_hat = self.decode(codes.clone());
        let [batch, _] = codes.dims();
        let d_in = self.d_in() as f64;
        let code_norm = codes.clone().powi_scalar(2).sum_dim(1).sqrt();
        let input_norm = x_pre.clone().powi_scalar(2).sum_dim(1).sqrt();
        let afa = (code_norm - input_norm)
            .powi_scalar(2)
            .reshape([batch])
            .mean()
            .mul_scalar(self.afa_coefficient * d_in * ctx.sparsity_scale);
        let mut losses = vec![
            mse_term(x_pre, x_hat.clone()),
            LossTerm {
                name: "afa",
                kind: LossKind::Sparsity,
                value: afa,
            },
        ];
        if self.l1_coefficient > 0.0 {
            losses.push(LossTerm {
                name: "l1",
                kind: LossKind::Sparsity,
                value: codes
                    .clone()
                    .abs()
                    .sum_dim(1)
                    .reshape([batch])
                    .mean()
                    .mul_scalar(self.l1_coefficient * d_in * ctx.sparsity_scale),
            });
        }
        TrainingOutput {
            losses,
            reconstruction: self.postprocess(x_hat, stats),
            codes,
            sparse_codes: Some(sparse),
            pre_activations: Some(acts),
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
        DecoderConstraint::UnitNorm
    }

    fn project_gradients(&self, grads: &mut GradientsParams) {
        project_param_gradient(grads, &self.W_dec);
    }

    fn apply_constraints(self) -> Self {
        Self {
            W_dec: renormalize_rows(self.W_dec),
            ..self
        }
    }

    /// With `input_unit_norm` the SAE is invariant to the input's scale (standardisation removes
    /// it and the output is rescaled by the token's own statistics), so the fold is the identity
    /// (exact up to the reference's `1e-5` in the denominator); without it the weights absorb
    /// the scale like every other architecture.
    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        if self.input_unit_norm {
            return self;
        }
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
        AnySae::TopAfa(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;

    /// Identity encoder and decoder (d = 4), no bias, no standardisation: a = ReLU(x), s = a²,
    /// so k* is the smallest prefix of the sorted activations whose norm is closest to ‖x‖.
    fn identity(device: &Device) -> TopAfaSae {
        TopAfaSae::from_tensors(
            &TopAfaSaeConfig::new(4, 4)
                .with_input_unit_norm(false)
                .with_afa_coefficient(0.5),
            Tensor::eye(4, device),
            Tensor::eye(4, device),
            Tensor::zeros([4], device),
        )
        .unwrap()
    }

    #[test]
    fn adaptive_k_by_hand_on_both_paths() {
        let device = test_device();
        let sae = identity(&device);
        // Row 0: x = [3, −4, 0, 0]: a = [3, 0, 0, 0], ‖x‖ = 5; C = [3, 3, 3, 1e4]:
        // |C − 5| = [2, 2, 2, ~1e4] → first minimum, k* = 1: f = [3, 0, 0, 0].
        // Row 1: x = [1, 2, 2, 0]: a = x, ‖x‖ = 3; sorted s = [4, 4, 1, 0] (indices 1, 2, 0, 3);
        // C = [2, √8, 3, 1e4] → k* = 3: f = [1, 2, 2, 0].
        let x = Tensor::<2>::from_floats([[3.0, -4.0, 0.0, 0.0], [1.0, 2.0, 2.0, 0.0]], &device);
        for path in [ComputePath::HostKernels, ComputePath::TensorOps] {
            let codes = sae.select(x.clone(), path).0.to_dense(4);
            codes.into_data().assert_approx_eq::<f32>(
                &TensorData::from([[3.0f32, 0.0, 0.0, 0.0], [1.0, 2.0, 2.0, 0.0]]),
                Default::default(),
            );
        }
        // Losses: row 0 x̂ = [3, 0, 0, 0], SSE 16; row 1 exact, 0 → mse 8.
        // afa: (‖f‖ − ‖x‖)² = (3 − 5)² = 4 and 0 → mean 2; × 0.5 × d_in 4 = 4.
        let out = sae.training_forward(x, &StepContext::new(0));
        assert_relative_eq!(
            out.loss("mse").unwrap().value.clone().into_scalar::<f32>(),
            8.0,
            epsilon = 1e-5
        );
        assert_relative_eq!(
            out.loss("afa").unwrap().value.clone().into_scalar::<f32>(),
            4.0,
            epsilon = 1e-5
        );
    }

    #[test]
    fn standardised_forward_is_scale_invariant() {
        let device = test_device();
        device.seed(6);
        let sae = TopAfaSaeConfig::new(6, 24).init(&device);
        let x = Tensor::<2>::random(
            [5, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = sae.forward(x.clone()).into_data();
        let folded = sae.fold_input_scale(3.0);
        (folded.forward(x.div_scalar(3.0)) * 3.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::rel_abs(1e-3, 1e-4));
    }
}
