//! Conversions between the architecture modules and the neutral SAELens representation
//! ([`SaeLensConfig`] + named host tensors).
//!
//! Module → files stores every parameter as it is; the SAELens keys carry what SAELens needs and
//! the module's full configuration goes under `sparseland` (so training hyperparameters survive
//! a round trip). Files → module takes SAELens' keys first, then `sparseland`, then SAELens'
//! defaults, checks every hyperparameter (a bad value from a file is an error, never a panic)
//! and builds the module with the architecture's own `from_tensors`.

use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use burn::serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::saelens_config::SaeLensConfig;
use super::tensors::{HostTensor, TensorSet};
use crate::any_sae::each;
use crate::{
    AbsTopKSae, AbsTopKSaeConfig, AnySae, ArchetypalSae, ArchetypalSaeConfig, Architecture,
    BatchTopKSae, BatchTopKSaeConfig, Error, GatedSae, GatedSaeConfig, JumpReluSae,
    JumpReluSaeConfig, JumpReluSparsityLoss, MatchingPursuitSae, MatchingPursuitSaeConfig,
    MatryoshkaSae, MatryoshkaSaeConfig, ReluSae, ReluSaeConfig, Result, SparseAutoencoder,
    TopAfaSae, TopAfaSaeConfig, TopKSae, TopKSaeConfig,
};

/// SAELens' default `k` for TopK and BatchTopK configs.
const SAELENS_DEFAULT_K: f64 = 100.0;

fn host<const D: usize>(p: &Param<Tensor<D>>) -> HostTensor {
    HostTensor::from_tensor(p.val().inner())
}

/// Puts the tensors of a linear SAE under their SAELens names (`W_enc`, `b_enc`, `W_dec`,
/// `b_dec`).
fn put_linear(
    put: &mut impl FnMut(&str, HostTensor),
    w_enc: &Param<Tensor<2>>,
    b_enc: &Param<Tensor<1>>,
    w_dec: &Param<Tensor<2>>,
    b_dec: &Param<Tensor<1>>,
) {
    put("W_enc", host(w_enc));
    put("b_enc", host(b_enc));
    put("W_dec", host(w_dec));
    put("b_dec", host(b_dec));
}

/// `f` of every value, computed in `f64` on the host so the result does not depend on the
/// backend's arithmetic.
fn map_host_f64(t: &HostTensor, f: impl Fn(f64) -> f64) -> HostTensor {
    let data = t.data().iter().map(|&v| f(v as f64) as f32).collect();
    HostTensor::new(t.shape().to_vec(), data)
}

/// `θ = exp(log θ)` per latent, in `f64` on the host so the result does not depend on the
/// backend's `exp`.
fn exp_host(log_threshold: &HostTensor) -> HostTensor {
    map_host_f64(log_threshold, f64::exp)
}

/// `ln θ` per latent, in `f64` on the host (`ln 0 = −∞`, a latent firing whenever `pre > 0`).
fn ln_host(threshold: &HostTensor) -> HostTensor {
    map_host_f64(threshold, f64::ln)
}

/// The module's own configuration, stored under `sparseland`.
pub(crate) fn blob<C: burn::serde::Serialize>(architecture: Architecture, config: &C) -> Value {
    json!({
        "architecture": architecture.name(),
        "version": env!("CARGO_PKG_VERSION"),
        "config": serde_json::to_value(config).expect("module configs serialise to JSON"),
    })
}

/// Every parameter and setting of `sae`, as a SAELens config and tensors (no export: a
/// BatchTopK SAE stays a BatchTopK SAE).
pub(crate) fn sae_to_parts(sae: &AnySae) -> (SaeLensConfig, TensorSet) {
    let architecture = sae.architecture();
    let mut cfg = SaeLensConfig::new(architecture, sae.d_in(), sae.d_sae());
    let mut t = TensorSet::new();
    let mut put = |name: &str, v: HostTensor| {
        t.insert(name.to_string(), v);
    };
    // Every architecture stores its own full configuration under `sparseland`.
    cfg.sparseland = Some(each!(sae, s => blob(architecture, &s.config())));
    match sae {
        AnySae::Relu(s) => {
            put_linear(&mut put, &s.W_enc, &s.b_enc, &s.W_dec, &s.b_dec);
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
        }
        AnySae::TopK(s) => {
            put_linear(&mut put, &s.W_enc, &s.b_enc, &s.W_dec, &s.b_dec);
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
            cfg.k = Some(s.k as f64);
            cfg.rescale_acts_by_decoder_norm = Some(s.rescale_acts_by_decoder_norm);
        }
        AnySae::BatchTopK(s) => {
            batch_topk_parts(s, &mut cfg, &mut put);
        }
        AnySae::Matryoshka(s) => {
            batch_topk_parts(&s.base, &mut cfg, &mut put);
            cfg.matryoshka_widths = Some(s.widths.clone());
        }
        AnySae::JumpRelu(s) => {
            put_linear(&mut put, &s.W_enc, &s.b_enc, &s.W_dec, &s.b_dec);
            put("threshold", exp_host(&host(&s.log_threshold)));
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
        }
        AnySae::Gated(s) => {
            put("W_enc", host(&s.W_enc));
            put("b_gate", host(&s.b_gate));
            put("r_mag", host(&s.r_mag));
            put("b_mag", host(&s.b_mag));
            put("W_dec", host(&s.W_dec));
            put("b_dec", host(&s.b_dec));
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
        }
        AnySae::AbsTopK(s) => {
            put_linear(&mut put, &s.W_enc, &s.b_enc, &s.W_dec, &s.b_dec);
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
            cfg.k = Some(s.k as f64);
            cfg.rescale_acts_by_decoder_norm = Some(s.rescale_acts_by_decoder_norm);
        }
        AnySae::MatchingPursuit(s) => {
            put("W_dec", host(&s.W_dec));
            put("b_dec", host(&s.b_dec));
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
            cfg.residual_threshold = Some(s.residual_threshold);
            cfg.max_iterations = Some(s.max_iterations);
            cfg.stop_on_duplicate_support = Some(s.stop_on_duplicate_support);
        }
        AnySae::TopAfa(s) => {
            put("W_enc", host(&s.W_enc));
            put("W_dec", host(&s.W_dec));
            put("b_dec", host(&s.b_dec));
            cfg.apply_b_dec_to_input = true;
        }
        AnySae::Archetypal(s) => {
            put("W_enc", host(&s.W_enc));
            put("b_enc", host(&s.b_enc));
            put("candidates", host(&s.candidates));
            put("mixing", host(&s.mixing));
            put("relaxation", host(&s.relaxation));
            put("log_multiplier", host(&s.log_multiplier));
            put("b_dec", host(&s.b_dec));
            cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
            cfg.k = Some(s.k as f64);
        }
    }
    (cfg, t)
}

fn batch_topk_parts(
    s: &BatchTopKSae,
    cfg: &mut SaeLensConfig,
    put: &mut impl FnMut(&str, HostTensor),
) {
    put_linear(put, &s.W_enc, &s.b_enc, &s.W_dec, &s.b_dec);
    put("topk_threshold", HostTensor::scalar(s.threshold() as f32));
    cfg.apply_b_dec_to_input = s.apply_b_dec_to_input;
    cfg.k = Some(s.k);
    cfg.topk_threshold_lr = Some(s.topk_threshold_lr);
    cfg.rescale_acts_by_decoder_norm = Some(s.rescale_acts_by_decoder_norm);
}

/// Builds the module a checked config and tensor set describe. The tensors must already have
/// passed [`super::layout::check_layout`].
pub(crate) fn parts_to_sae(
    cfg: &SaeLensConfig,
    t: &TensorSet,
    path: &Path,
    device: &Device,
) -> Result<AnySae> {
    let c = Checker { cfg, path };
    let t2 = |name: &str| t[name].to_tensor::<2>(device);
    let t1 = |name: &str| t[name].to_tensor::<1>(device);
    let (d_in, d_sae) = (cfg.d_in, cfg.d_sae);
    let built = |r: Result<AnySae>| {
        r.map_err(|e| match e {
            // `from_tensors` reports in-memory shapes; the layout check makes these unreachable,
            // but keep the file's path if one ever surfaces.
            Error::TensorShape {
                name,
                expected,
                found,
                ..
            } => Error::TensorShape {
                path: path.to_path_buf(),
                name,
                expected,
                found,
            },
            other => other,
        })
    };
    let sae: AnySae = match cfg.architecture {
        Architecture::Relu => {
            let mut config = c
                .blob::<ReluSaeConfig>()?
                .unwrap_or_else(|| ReluSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            c.positive("sparseland.config.lp_norm", config.lp_norm)?;
            c.non_negative("sparseland.config.l1_coefficient", config.l1_coefficient)?;
            built(
                ReluSae::from_tensors(&config, t2("W_enc"), t1("b_enc"), t2("W_dec"), t1("b_dec"))
                    .map(Into::into),
            )?
        }
        Architecture::TopK => {
            let blob = c.blob::<TopKSaeConfig>()?;
            let k = c.k_integer(blob.as_ref().map(|b| b.k))?;
            let from_blob = blob.is_some();
            let mut config = blob.unwrap_or_else(|| TopKSaeConfig::new(d_in, d_sae, k));
            (config.d_in, config.d_sae, config.k) = (d_in, d_sae, k);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            config.rescale_acts_by_decoder_norm = match cfg.rescale_acts_by_decoder_norm {
                Some(r) => r,
                None if from_blob => config.rescale_acts_by_decoder_norm,
                // SAELens' inference TopK defaults to no rescaling.
                None => false,
            };
            built(
                TopKSae::from_tensors(&config, t2("W_enc"), t1("b_enc"), t2("W_dec"), t1("b_dec"))
                    .map(Into::into),
            )?
        }
        Architecture::AbsTopK => {
            let blob = c.blob::<AbsTopKSaeConfig>()?;
            let k = c.k_integer(blob.as_ref().map(|b| b.k))?;
            let mut config = blob.unwrap_or_else(|| AbsTopKSaeConfig::new(d_in, d_sae, k));
            (config.d_in, config.d_sae, config.k) = (d_in, d_sae, k);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            if let Some(r) = cfg.rescale_acts_by_decoder_norm {
                config.rescale_acts_by_decoder_norm = r;
            }
            built(
                AbsTopKSae::from_tensors(
                    &config,
                    t2("W_enc"),
                    t1("b_enc"),
                    t2("W_dec"),
                    t1("b_dec"),
                )
                .map(Into::into),
            )?
        }
        Architecture::BatchTopK => {
            let config = c.batch_topk_config(c.blob::<BatchTopKSaeConfig>()?)?;
            AnySae::BatchTopK(c.batch_topk(&config, t, device)?)
        }
        Architecture::Matryoshka => {
            let blob = c.blob::<MatryoshkaSaeConfig>()?;
            let base_blob = blob.as_ref().map(|b| b.base.clone());
            let base_config = c.batch_topk_config(base_blob)?;
            let widths = cfg
                .matryoshka_widths
                .clone()
                .or_else(|| blob.as_ref().map(|b| b.widths.clone()))
                .ok_or_else(|| Error::MissingConfigKey {
                    path: path.to_path_buf(),
                    key: "matryoshka_widths".into(),
                })?;
            let mut config = blob
                .unwrap_or_else(|| MatryoshkaSaeConfig::new(base_config.clone(), widths.clone()));
            config.base = base_config;
            config.widths = widths;
            c.matryoshka_levels(&config)?;
            let base = c.batch_topk(&config.base, t, device)?;
            AnySae::Matryoshka(MatryoshkaSae::from_base(&config, base))
        }
        Architecture::JumpRelu => {
            let mut config = c
                .blob::<JumpReluSaeConfig>()?
                .unwrap_or_else(|| JumpReluSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            c.positive("sparseland.config.init_threshold", config.init_threshold)?;
            c.positive("sparseland.config.bandwidth", config.bandwidth)?;
            if let JumpReluSparsityLoss::TargetL0 { target } = config.sparsity_loss {
                c.positive("sparseland.config.sparsity_loss.target", target)?;
            }
            let threshold = &t["threshold"];
            if let Some((i, v)) = threshold.data().iter().enumerate().find(|(_, v)| **v < 0.0) {
                return Err(Error::InvalidValue {
                    what: format!("tensor `threshold` in {}", path.display()),
                    reason: format!(
                        "a JumpReLU threshold must be non-negative, found {v} at index {i}"
                    ),
                });
            }
            let sae = JumpReluSae::from_tensors(
                &config,
                t2("W_enc"),
                t1("b_enc"),
                t2("W_dec"),
                t1("b_dec"),
                t1("threshold"),
            )?;
            // ln θ on the host in f64, the inverse of how it is written.
            let log_threshold = ln_host(threshold).to_tensor::<1>(device);
            let sae = JumpReluSae {
                log_threshold: sae.log_threshold.map(|_| log_threshold),
                ..sae
            };
            AnySae::JumpRelu(sae)
        }
        Architecture::Gated => {
            let mut config = c
                .blob::<GatedSaeConfig>()?
                .unwrap_or_else(|| GatedSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            c.non_negative("sparseland.config.l1_coefficient", config.l1_coefficient)?;
            built(
                GatedSae::from_tensors(
                    &config,
                    t2("W_enc"),
                    t1("b_gate"),
                    t1("r_mag"),
                    t1("b_mag"),
                    t2("W_dec"),
                    t1("b_dec"),
                )
                .map(Into::into),
            )?
        }
        Architecture::MatchingPursuit => {
            let mut config = c
                .blob::<MatchingPursuitSaeConfig>()?
                .unwrap_or_else(|| MatchingPursuitSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            if let Some(r) = cfg.residual_threshold {
                config.residual_threshold = r;
            }
            if cfg.max_iterations.is_some() {
                config.max_iterations = cfg.max_iterations;
            }
            if let Some(s) = cfg.stop_on_duplicate_support {
                config.stop_on_duplicate_support = s;
            }
            c.non_negative("residual_threshold", config.residual_threshold)?;
            if config.max_iterations == Some(0) {
                return Err(c.invalid("max_iterations", json!(0), "must be at least 1"));
            }
            built(
                MatchingPursuitSae::from_tensors(&config, t2("W_dec"), t1("b_dec")).map(Into::into),
            )?
        }
        Architecture::TopAfa => {
            if !cfg.apply_b_dec_to_input {
                return Err(c.invalid(
                    "apply_b_dec_to_input",
                    json!(false),
                    "top-AFA always subtracts b_dec from its input",
                ));
            }
            let mut config = c
                .blob::<TopAfaSaeConfig>()?
                .unwrap_or_else(|| TopAfaSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            c.non_negative("sparseland.config.afa_coefficient", config.afa_coefficient)?;
            c.non_negative("sparseland.config.l1_coefficient", config.l1_coefficient)?;
            built(
                TopAfaSae::from_tensors(&config, t2("W_enc"), t2("W_dec"), t1("b_dec"))
                    .map(Into::into),
            )?
        }
        Architecture::Archetypal => {
            let blob = c.blob::<ArchetypalSaeConfig>()?;
            let k = c.k_integer(blob.as_ref().map(|b| b.k))?;
            let mut config = blob.unwrap_or_else(|| ArchetypalSaeConfig::new(d_in, d_sae, k));
            (config.d_in, config.d_sae, config.k) = (d_in, d_sae, k);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            c.non_negative("sparseland.config.delta", config.delta)?;
            built(
                ArchetypalSae::from_tensors(
                    &config,
                    t2("W_enc"),
                    t1("b_enc"),
                    t2("candidates"),
                    t2("mixing"),
                    t2("relaxation"),
                    t["log_multiplier"].data()[0] as f64,
                    t1("b_dec"),
                )
                .map(Into::into),
            )?
        }
    };
    Ok(sae)
}

/// Reads hyperparameters with their precedence and turns bad values into errors.
struct Checker<'a> {
    cfg: &'a SaeLensConfig,
    path: &'a Path,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, value: Value, reason: impl Into<String>) -> Error {
        Error::InvalidConfigValue {
            path: self.path.to_path_buf(),
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The `sparseland.config` object as the architecture's config, if present.
    fn blob<C: DeserializeOwned>(&self) -> Result<Option<C>> {
        let Some(Value::Object(obj)) = &self.cfg.sparseland else {
            return Ok(None);
        };
        let name = self.cfg.architecture.name();
        match obj.get("architecture") {
            Some(Value::String(a)) if a == name => {}
            other => {
                return Err(self.invalid(
                    "sparseland.architecture",
                    other.cloned().unwrap_or(Value::Null),
                    format!("must name the config's architecture `{name}`"),
                ));
            }
        }
        let config = obj.get("config").cloned().unwrap_or(Value::Null);
        serde_json::from_value::<C>(config.clone())
            .map(Some)
            .map_err(|e| {
                self.invalid(
                    "sparseland.config",
                    config,
                    format!("not a valid `{name}` configuration: {e}"),
                )
            })
    }

    fn positive(&self, key: &str, v: f64) -> Result<()> {
        if v > 0.0 && v.is_finite() {
            Ok(())
        } else {
            Err(self.invalid(key, json!(v), "must be positive and finite"))
        }
    }

    fn non_negative(&self, key: &str, v: f64) -> Result<()> {
        if v >= 0.0 && v.is_finite() {
            Ok(())
        } else {
            Err(self.invalid(key, json!(v), "must be non-negative and finite"))
        }
    }

    /// `k` as a per-token count in `1..=d_sae`: `cfg.json`'s `k`, else the module config's,
    /// else SAELens' default 100.
    fn k_integer(&self, from_blob: Option<usize>) -> Result<usize> {
        let k = self
            .cfg
            .k
            .or(from_blob.map(|k| k as f64))
            .unwrap_or(SAELENS_DEFAULT_K);
        if k.fract() != 0.0 || k < 1.0 || k > self.cfg.d_sae as f64 {
            return Err(self.invalid(
                "k",
                json!(k),
                format!("must be an integer in 1..={} (d_sae)", self.cfg.d_sae),
            ));
        }
        Ok(k as usize)
    }

    fn batch_topk_config(&self, blob: Option<BatchTopKSaeConfig>) -> Result<BatchTopKSaeConfig> {
        let cfg = self.cfg;
        let k = cfg
            .k
            .or(blob.as_ref().map(|b| b.k))
            .unwrap_or(SAELENS_DEFAULT_K);
        let mut config = blob.unwrap_or_else(|| BatchTopKSaeConfig::new(cfg.d_in, cfg.d_sae, k));
        (config.d_in, config.d_sae, config.k) = (cfg.d_in, cfg.d_sae, k);
        config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
        if let Some(lr) = cfg.topk_threshold_lr {
            config.topk_threshold_lr = lr;
        }
        if let Some(r) = cfg.rescale_acts_by_decoder_norm {
            config.rescale_acts_by_decoder_norm = r;
        }
        if !(k > 0.0 && k <= cfg.d_sae as f64) {
            return Err(self.invalid(
                "k",
                json!(k),
                format!("must be in (0, {}] (d_sae)", cfg.d_sae),
            ));
        }
        if !(0.0..=1.0).contains(&config.topk_threshold_lr) {
            return Err(self.invalid(
                "topk_threshold_lr",
                json!(config.topk_threshold_lr),
                "must be in [0, 1]",
            ));
        }
        Ok(config)
    }

    fn batch_topk(
        &self,
        config: &BatchTopKSaeConfig,
        t: &TensorSet,
        device: &Device,
    ) -> Result<BatchTopKSae> {
        let theta = t["topk_threshold"].data()[0];
        if theta < 0.0 {
            return Err(Error::InvalidValue {
                what: format!("tensor `topk_threshold` in {}", self.path.display()),
                reason: format!("must be non-negative, found {theta}"),
            });
        }
        BatchTopKSae::from_tensors(
            config,
            t["W_enc"].to_tensor::<2>(device),
            t["b_enc"].to_tensor::<1>(device),
            t["W_dec"].to_tensor::<2>(device),
            t["b_dec"].to_tensor::<1>(device),
            theta as f64,
        )
    }

    /// The checks `MatryoshkaSaeConfig` would otherwise panic on.
    fn matryoshka_levels(&self, config: &MatryoshkaSaeConfig) -> Result<()> {
        let d_sae = self.cfg.d_sae;
        let mut widths = config.widths.clone();
        if widths.last() != Some(&d_sae) {
            widths.push(d_sae);
        }
        let increasing = widths.windows(2).all(|w| w[0] < w[1]);
        if !increasing || widths[0] as f64 > d_sae as f64 || (widths[0] as f64) < config.base.k {
            return Err(self.invalid(
                "matryoshka_widths",
                json!(config.widths),
                format!(
                    "must increase strictly, end at most at d_sae = {d_sae} and start at least at k = {}",
                    config.base.k
                ),
            ));
        }
        if let Some(w) = &config.inner_level_weights
            && w.len() != widths.len() - 1
        {
            return Err(self.invalid(
                "sparseland.config.inner_level_weights",
                json!(w),
                format!("needs one weight per inner level ({})", widths.len() - 1),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn one(v: f32) -> HostTensor {
        HostTensor::new(vec![1], vec![v])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Module → file → module: `log θ → θ → log θ` is bit-exact when `|ln θ| ≥ 1` (θ ≤ 0.37
        /// or θ ≥ 2.7, which covers the JumpReLU thresholds used in practice). Closer to θ = 1,
        /// `ln` compresses and some `f32` logs have no `f32` θ that maps back to them; there the
        /// threshold θ itself (what the forward pass and SAELens use) still comes back bit-exact
        /// and `log θ` is within 2⁻²³ of the original.
        #[test]
        fn module_to_file_to_module(l in -12.0f32..3.0) {
            let theta = exp_host(&one(l));
            let back = ln_host(&theta).data()[0];
            if l.abs() >= 1.0 {
                prop_assert_eq!(back.to_bits(), l.to_bits(), "l = {}", l);
            } else {
                prop_assert!((back - l).abs() <= f32::EPSILON, "l = {}, back = {}", l, back);
                let again = exp_host(&one(back)).data()[0];
                prop_assert_eq!(again.to_bits(), theta.data()[0].to_bits(), "l = {}", l);
            }
        }

        /// File → module → file: a stored θ comes back bit-exact when θ is within e^±1 of 1, and
        /// otherwise to within `(|ln θ| + 1)·2⁻²⁴` relative (a few ulps for thresholds in
        /// [1e-4, 1]).
        #[test]
        fn file_to_module_to_file(theta in 1e-5f32..10.0) {
            let again = exp_host(&ln_host(&one(theta))).data()[0];
            let l = (theta as f64).ln().abs();
            if l < 1.0 {
                prop_assert_eq!(again.to_bits(), theta.to_bits(), "θ = {}", theta);
            } else {
                let rel = ((again - theta) / theta).abs() as f64;
                prop_assert!(rel <= (l + 1.0) * 2f64.powi(-24), "θ = {}, again = {}", theta, again);
            }
        }
    }
}
