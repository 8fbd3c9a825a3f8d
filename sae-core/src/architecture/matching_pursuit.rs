//! Matching-pursuit SAE (Costa, Fel, Lubana, Tolooshams, Ba 2025, "From Flat to Hierarchical:
//! Extracting Sparse Representations with Matching Pursuit", arXiv 2506.03093).
// Parameter fields carry SAELens tensor names (`W_dec`, `b_dec`), so burn-store files match SAELens.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::common::{check_input, check_shape, mse_output, row, scale_param};
use super::config_check::{ConfigError, Rules, expect_valid};
use crate::decoder::{project_param_gradient, renormalize_rows};
use crate::sae::check_scale;
use crate::{
    AnySae, Architecture, DecoderConstraint, Result, SparseAutoencoder, SparseCodes, StepContext,
    TrainingOutput,
};

/// Configuration of a [`MatchingPursuitSae`]; defaults are SAELens' `matching_pursuit`.
#[derive(Config, Debug)]
pub struct MatchingPursuitSaeConfig {
    /// Input width.
    pub d_in: usize,
    /// Number of dictionary atoms.
    pub d_sae: usize,
    /// Stop a token's pursuit once its residual norm is below this (SAELens
    /// `residual_threshold`, default 1e-2; `0` disables the rule).
    #[config(default = 1e-2)]
    pub residual_threshold: f64,
    /// Maximum pursuit steps (SAELens `max_iterations`, default `d_in` when `None`).
    #[config(default = "None")]
    pub max_iterations: Option<usize>,
    /// Stop a token's pursuit when a step leaves its support unchanged (re-selects an atom or
    /// adds nothing; SAELens `stop_on_duplicate_support`, default true — the paper's rule).
    #[config(default = true)]
    pub stop_on_duplicate_support: bool,
    /// Subtract `b_dec` before the pursuit and add it back after decoding (SAELens default
    /// true; the paper uses no bias: false).
    #[config(default = true)]
    pub apply_b_dec_to_input: bool,
}

impl MatchingPursuitSaeConfig {
    /// A freshly initialised SAE: Kaiming-uniform dictionary with unit-norm rows, `b_dec = 0`.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails, with its message.
    pub fn init(&self, device: &Device) -> MatchingPursuitSae {
        expect_valid(self.check());
        let (_, w_dec) = crate::init::tied_weights(self.d_in, self.d_sae, 1.0, device);
        self.build(w_dec, Tensor::zeros([self.d_in], device))
    }

    /// Checks every hyperparameter: `d_in`, `d_sae` ≥ 1, `max_iterations` (when set) ≥ 1, `residual_threshold` non-negative and finite.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field out of range, the range and the value found.
    pub fn check(&self) -> Result<(), ConfigError> {
        let r = Rules::of("MatchingPursuitSaeConfig");
        r.dims(self.d_in, self.d_sae)?;
        if let Some(m) = self.max_iterations {
            r.count("max_iterations", m)?;
        }
        r.non_negative("residual_threshold", self.residual_threshold)
    }

    fn build(&self, w_dec: Tensor<2>, b_dec: Tensor<1>) -> MatchingPursuitSae {
        MatchingPursuitSae {
            W_dec: Param::from_tensor(w_dec),
            b_dec: Param::from_tensor(b_dec),
            residual_threshold: self.residual_threshold,
            max_iterations: self.max_iterations.unwrap_or(self.d_in),
            stop_on_duplicate_support: self.stop_on_duplicate_support,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
        }
    }
}

/// Matching-pursuit SAE: a tied, unit-norm dictionary `W_dec` and an encoder that is greedy
/// residual pursuit rather than a matrix. From `r = x − b_dec`, each step selects
/// `j = argmax_j ReLU(r · W_j)`, adds `c = ReLU(r · W_j)` to `z_j` and subtracts `c W_j` from `r`;
/// a token stops when its support is unchanged by a step or `‖r‖ <` `residual_threshold`, and
/// the loop ends after `max_iterations` steps. `x̂ = z W_dec + b_dec`. Loss terms: `"mse"` (no
/// sparsity term: sparsity comes from the stopping rule).
///
/// **Memory.** Each step computes the `[batch, d_sae]` correlations *outside* the autodiff graph
/// (the argmax needs no gradient) and records only the selected rows and the residual,
/// `[batch, d_in]` each, for the backward pass, so memory grows by `O(batch·d_in)` per step — what
/// the gradient needs — instead of the `O(batch·d_sae)` per step of a naive implementation
/// (SAELens PR #601 measured ~L0× the memory for that). The codes are assembled with one scatter
/// at the end.
///
/// The decoder is kept at unit norm during training ([`DecoderConstraint::UnitNorm`]); the
/// pursuit itself uses `W_dec` as stored, like SAELens, so files with other norms give SAELens'
/// codes. There are no pre-activations, so [`TrainingOutput::pre_activations`] is `None` (SAELens
/// hands its aux-K loss zeros, which gives dead latents no signal). Ties in the argmax follow
/// burn's `argmax`.
#[derive(Module, Debug)]
pub struct MatchingPursuitSae {
    /// The tied dictionary `[d_sae, d_in]` (the encoder is its transpose).
    pub W_dec: Param<Tensor<2>>,
    /// Decoder bias `[d_in]`.
    pub b_dec: Param<Tensor<1>>,
    /// Residual-norm stopping threshold.
    pub residual_threshold: f64,
    /// Maximum pursuit steps.
    pub max_iterations: usize,
    /// Stop on an unchanged support.
    pub stop_on_duplicate_support: bool,
    /// Whether `b_dec` is subtracted before and added after.
    pub apply_b_dec_to_input: bool,
}

/// The steps of one pursuit: per step the selected atoms and added coefficients, `[batch, 1]`.
struct Pursuit {
    indices: Vec<Tensor<2, Int>>,
    values: Vec<Tensor<2>>,
}

impl Pursuit {
    /// `[batch, steps]` pairs (duplicates and zero padding possible).
    fn stacked(&self) -> SparseCodes {
        SparseCodes::new(
            Tensor::cat(self.indices.clone(), 1),
            Tensor::cat(self.values.clone(), 1),
        )
    }
}

impl MatchingPursuitSae {
    /// Builds an SAE from given tensors (`W_dec [d_sae, d_in]`, `b_dec [d_in]`).
    ///
    /// # Errors
    /// [`crate::Error::Config`] when [`MatchingPursuitSaeConfig::check`] fails;
    /// [`crate::Error::TensorShape`] naming the first tensor whose shape is wrong.
    pub fn from_tensors(
        config: &MatchingPursuitSaeConfig,
        w_dec: Tensor<2>,
        b_dec: Tensor<1>,
    ) -> Result<Self> {
        config.check()?;
        check_shape("W_dec", &w_dec, [config.d_sae, config.d_in])?;
        check_shape("b_dec", &b_dec, [config.d_in])?;
        Ok(config.build(w_dec, b_dec))
    }

    /// The configuration of this SAE.
    pub fn config(&self) -> MatchingPursuitSaeConfig {
        MatchingPursuitSaeConfig::new(self.d_in(), self.d_sae())
            .with_residual_threshold(self.residual_threshold)
            .with_max_iterations(Some(self.max_iterations))
            .with_stop_on_duplicate_support(self.stop_on_duplicate_support)
            .with_apply_b_dec_to_input(self.apply_b_dec_to_input)
    }

    fn pursue(&self, x: Tensor<2>) -> Pursuit {
        check_input("MatchingPursuitSae", &x, self.d_in());
        let [batch, _] = x.dims();
        let device = x.device();
        let w = self.W_dec.val();
        let w_const = w.clone().detach();
        let mut residual = if self.apply_b_dec_to_input {
            x - row(self.b_dec.val())
        } else {
            x
        };
        let mut done = vec![false; batch];
        let mut support: Vec<Vec<i64>> = vec![Vec::new(); batch];
        let mut pursuit = Pursuit {
            indices: Vec::new(),
            values: Vec::new(),
        };
        for _ in 0..self.max_iterations {
            // Selection needs no gradient: the [batch, d_sae] correlations stay off the graph.
            let correlations = residual
                .clone()
                .detach()
                .matmul(w_const.clone().transpose());
            let index = relu(correlations).argmax(1); // [batch, 1]
            let selected = w.clone().select(0, index.clone().reshape([batch])); // [batch, d_in]
            let active: Vec<f32> = done.iter().map(|&d| if d { 0.0 } else { 1.0 }).collect();
            let active = Tensor::<2>::from_data(TensorData::new(active, [batch, 1]), &device);
            let value = relu((residual.clone() * selected.clone()).sum_dim(1)) * active;
            residual = residual - value.clone() * selected;

            let index_host = index
                .clone()
                .into_data()
                .try_into_vec_as::<i64>()
                .expect("argmax indices");
            let value_host = value
                .clone()
                .detach()
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("pursuit coefficients");
            let norms_host = if self.residual_threshold > 0.0 {
                residual
                    .clone()
                    .detach()
                    .powi_scalar(2)
                    .sum_dim(1)
                    .sqrt()
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .expect("residual norms")
            } else {
                Vec::new()
            };
            pursuit.indices.push(index);
            pursuit.values.push(value);
            for b in 0..batch {
                if done[b] {
                    continue;
                }
                let (j, c) = (index_host[b], value_host[b]);
                let grew = c > 0.0 && !support[b].contains(&j);
                if grew {
                    support[b].push(j);
                }
                if (self.stop_on_duplicate_support && !grew)
                    || (self.residual_threshold > 0.0
                        && (norms_host[b] as f64) < self.residual_threshold)
                {
                    done[b] = true;
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
        }
        pursuit
    }

    /// Merges repeated atoms of each row and pads with zeros: `[batch, max distinct atoms]`.
    fn merged(&self, stacked: SparseCodes) -> SparseCodes {
        let [batch, steps] = stacked.values.dims();
        let device = stacked.values.device();
        let idx = stacked
            .indices
            .into_data()
            .try_into_vec_as::<i64>()
            .expect("indices");
        let val = stacked
            .values
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("values");
        let mut rows: Vec<Vec<(i64, f32)>> = vec![Vec::new(); batch];
        for b in 0..batch {
            for s in 0..steps {
                let (j, c) = (idx[b * steps + s], val[b * steps + s]);
                if c == 0.0 {
                    continue;
                }
                match rows[b].iter_mut().find(|(i, _)| *i == j) {
                    Some(entry) => entry.1 += c,
                    None => rows[b].push((j, c)),
                }
            }
        }
        let k = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut out_idx = vec![0i64; batch * k];
        let mut out_val = vec![0f32; batch * k];
        for (b, entries) in rows.iter().enumerate() {
            for (slot, &(j, c)) in entries.iter().enumerate() {
                out_idx[b * k + slot] = j;
                out_val[b * k + slot] = c;
            }
        }
        SparseCodes::new(
            Tensor::from_data(TensorData::new(out_idx, [batch, k]), &device),
            Tensor::from_data(TensorData::new(out_val, [batch, k]), &device),
        )
    }
}

impl SparseAutoencoder for MatchingPursuitSae {
    fn architecture(&self) -> Architecture {
        Architecture::MatchingPursuit
    }

    fn d_in(&self) -> usize {
        self.W_dec.dims()[1]
    }

    fn d_sae(&self) -> usize {
        self.W_dec.dims()[0]
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.pursue(x).stacked().to_dense(self.d_sae())
    }

    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        let stacked = self.pursue(x).stacked();
        Some(self.merged(stacked))
    }

    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        codes.matmul(self.W_dec.val()) + row(self.decoder_bias())
    }

    fn training_forward(&self, x: Tensor<2>, _ctx: &StepContext) -> TrainingOutput {
        let stacked = self.pursue(x.clone()).stacked();
        let codes = stacked.to_dense(self.d_sae());
        let reconstruction = self.decode(codes.clone());
        TrainingOutput {
            sparse_codes: Some(stacked),
            ..mse_output(x, reconstruction, codes)
        }
    }

    fn dictionary(&self) -> Tensor<2> {
        self.W_dec.val()
    }

    fn decoder_bias(&self) -> Tensor<1> {
        if self.apply_b_dec_to_input {
            self.b_dec.val()
        } else {
            self.b_dec.val().zeros_like()
        }
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

    fn fold_input_scale(self, scale: f64) -> Self {
        check_scale(scale);
        // The tied dictionary cannot absorb the scale; the residual (and so every coefficient)
        // scales by 1/scale, and so must the stopping threshold.
        Self {
            b_dec: scale_param(self.b_dec, 1.0 / scale),
            residual_threshold: self.residual_threshold / scale,
            ..self
        }
    }

    fn into_inference(self) -> AnySae {
        AnySae::MatchingPursuit(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    fn dictionary(rows: &[[f32; 2]], max_iterations: usize, device: &Device) -> MatchingPursuitSae {
        let n = rows.len();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        MatchingPursuitSae::from_tensors(
            &MatchingPursuitSaeConfig::new(2, n)
                .with_apply_b_dec_to_input(false)
                .with_max_iterations(Some(max_iterations)),
            Tensor::from_data(TensorData::new(flat, [n, 2]), device),
            Tensor::zeros([2], device),
        )
        .unwrap()
    }

    #[test]
    fn pursuit_by_hand_residual_rule() {
        let device = test_device();
        let sae = dictionary(&[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], 10, &device);
        // x = [3, 1]: correlations [3, 1, 2.6] → atom 0, c = 3, r = [0, 1];
        // then [0, 1, 0.8] → atom 1, c = 1, r = [0, 0] → ‖r‖ < 0.01, stop.
        let x = Tensor::<2>::from_floats([[3.0, 1.0]], &device);
        sae.encode(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[3.0f32, 1.0, 0.0]]), Default::default());
        let codes = sae.encode_sparse(x).unwrap();
        assert_eq!(codes.k(), 2);
    }

    #[test]
    fn pursuit_by_hand_support_rule() {
        let device = test_device();
        let sae = dictionary(&[[1.0, 0.0], [0.6, 0.8]], 10, &device);
        // x = [1, 1]: correlations [1, 1.4] → atom 1, c = 1.4, r = [0.16, −0.12];
        // then [0.16, 0] → atom 0, c = 0.16, r = [0, −0.12];
        // then [0, −0.096] → ReLU → all 0: c = 0, support unchanged → stop.
        let x = Tensor::<2>::from_floats([[1.0, 1.0]], &device);
        sae.encode(x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[0.16f32, 1.4]]), Default::default());
    }

    #[test]
    fn max_iterations_bounds_the_steps() {
        let device = test_device();
        let sae = dictionary(&[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], 1, &device);
        let x = Tensor::<2>::from_floats([[3.0, 1.0]], &device);
        sae.encode(x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[3.0f32, 0.0, 0.0]]), Default::default());
    }

    #[test]
    fn one_step_gradient_by_hand() {
        // One atom w, one step: x̂ = (x·w) w, L = ‖x − x̂‖²,
        // ∇_w L = −2[(e·w) x + (x·w) e], e = x − x̂. For x = [2, 1], w = [1, 0]:
        // x·w = 2, e = [0, 1], e·w = 0 → ∇ = [0, −4].
        let device = test_device().autodiff();
        let sae = dictionary(&[[1.0, 0.0]], 1, &device);
        let out = sae.training_forward(
            Tensor::<2>::from_floats([[2.0, 1.0]], &device),
            &StepContext::new(0),
        );
        let grads = out.total_loss().backward();
        sae.W_dec
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[0.0f32, -4.0]]), Default::default());
    }

    #[test]
    fn input_scale_fold_keeps_forward() {
        let device = test_device();
        device.seed(8);
        let sae = MatchingPursuitSaeConfig::new(6, 16).init(&device);
        let sae = MatchingPursuitSae {
            b_dec: sae.b_dec.map(|b| {
                b + Tensor::random([6], burn::tensor::Distribution::Normal(0.0, 0.3), &device)
            }),
            ..sae
        };
        let x = Tensor::<2>::random(
            [5, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = sae.forward(x.clone()).into_data();
        (sae.fold_input_scale(4.0).forward(x.div_scalar(4.0)) * 4.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Default::default());
    }
}
