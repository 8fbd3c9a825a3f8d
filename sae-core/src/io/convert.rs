//! Conversions between the architecture modules and the neutral SAELens representation
//! ([`SaeLensConfig`] + named host tensors).
//!
//! Module → files stores every parameter as it is; the SAELens keys carry what SAELens needs and
//! the module's full configuration goes under `sparseland` (so training hyperparameters survive
//! a round trip). Files → module takes SAELens' keys first, then `sparseland`, then SAELens'
//! defaults, checks the assembled config with the architecture's own `check` (the one range
//! check `init` panics on; here a bad value from a file is an error naming its key, never a
//! panic) and builds the module with the architecture's own `from_tensors`.

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
    BatchTopKSae, BatchTopKSaeConfig, ConfigError, Error, GatedSae, GatedSaeConfig, JumpReluSae,
    JumpReluSaeConfig, MatchingPursuitSae, MatchingPursuitSaeConfig, MatryoshkaSae,
    MatryoshkaSaeConfig, ReluSae, ReluSaeConfig, Result, SparseAutoencoder, TopAfaSae,
    TopAfaSaeConfig, TopKSae, TopKSaeConfig,
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
    let built = |r: Result<AnySae>| r.map_err(|e| c.in_file(e));
    let sae: AnySae = match cfg.architecture {
        Architecture::Relu => {
            let mut config = c
                .blob::<ReluSaeConfig>()?
                .unwrap_or_else(|| ReluSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            c.checked(config.check())?;
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
            c.checked(config.check())?;
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
            c.checked(config.check())?;
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
            let config = c.batch_topk_config(c.blob::<BatchTopKSaeConfig>()?);
            c.checked(config.check())?;
            AnySae::BatchTopK(c.batch_topk(&config, t, device)?)
        }
        Architecture::Matryoshka => {
            let blob = c.blob::<MatryoshkaSaeConfig>()?;
            let base_blob = blob.as_ref().map(|b| b.base.clone());
            let base_config = c.batch_topk_config(base_blob);
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
            c.checked(config.check())?;
            let base = c.batch_topk(&config.base, t, device)?;
            AnySae::Matryoshka(MatryoshkaSae::from_base(&config, base))
        }
        Architecture::JumpRelu => {
            let mut config = c
                .blob::<JumpReluSaeConfig>()?
                .unwrap_or_else(|| JumpReluSaeConfig::new(d_in, d_sae));
            (config.d_in, config.d_sae) = (d_in, d_sae);
            config.apply_b_dec_to_input = cfg.apply_b_dec_to_input;
            c.checked(config.check())?;
            let sae = JumpReluSae::from_tensors(
                &config,
                t2("W_enc"),
                t1("b_enc"),
                t2("W_dec"),
                t1("b_dec"),
                t1("threshold"),
            )
            .map_err(|e| c.in_file(e))?;
            let threshold = &t["threshold"];
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
            c.checked(config.check())?;
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
            c.checked(config.check())?;
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
            c.checked(config.check())?;
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
            c.checked(config.check())?;
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

/// What a config's `check` found, reported as the file `path`'s key `key`.
pub(crate) fn invalid_config(path: &Path, key: String, e: ConfigError) -> Error {
    Error::InvalidConfigValue {
        path: path.to_path_buf(),
        key,
        value: e.found,
        reason: format!("{}.{} must be {}", e.config, e.field, e.expected),
    }
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

    /// The key of `cfg.json` a config field was read from: SAELens' own key when the file
    /// has it, else the `sparseland.config` entry (a Matryoshka `base.` field is its base
    /// BatchTopK's).
    fn key_of(&self, field: &str) -> String {
        let c = self.cfg;
        let plain = field.strip_prefix("base.").unwrap_or(field);
        let saelens_key = match plain {
            "d_in" | "d_sae" => Some(plain),
            "k" => c.k.map(|_| "k"),
            "topk_threshold_lr" => c.topk_threshold_lr.map(|_| "topk_threshold_lr"),
            "residual_threshold" => c.residual_threshold.map(|_| "residual_threshold"),
            "max_iterations" => c.max_iterations.map(|_| "max_iterations"),
            "widths" => c.matryoshka_widths.as_ref().map(|_| "matryoshka_widths"),
            _ => None,
        };
        match saelens_key {
            Some(key) => key.to_string(),
            None => format!("sparseland.config.{field}"),
        }
    }

    /// A config's own check, as an error naming this file's key.
    fn checked(&self, checked: std::result::Result<(), ConfigError>) -> Result<()> {
        checked.map_err(|e| self.config_error(e))
    }

    fn config_error(&self, e: ConfigError) -> Error {
        let key = self.key_of(&e.field);
        invalid_config(self.path, key, e)
    }

    /// An error of an in-memory constructor, reported for this file.
    fn in_file(&self, e: Error) -> Error {
        let path = self.path.to_path_buf();
        match e {
            // The layout check makes shape errors unreachable here; keep the path if one
            // ever surfaces.
            Error::TensorShape {
                name,
                expected,
                found,
                ..
            } => Error::TensorShape {
                path,
                name,
                expected,
                found,
            },
            Error::InvalidValue { what, reason } => Error::InvalidValue {
                what: format!("{what} in {}", path.display()),
                reason,
            },
            Error::Config(e) => self.config_error(e),
            other => other,
        }
    }

    /// `k` as a per-token count: `cfg.json`'s `k`, else the module config's, else SAELens'
    /// default 100. Its range (`1..=d_sae`) is the architecture config's `check`.
    fn k_integer(&self, from_blob: Option<usize>) -> Result<usize> {
        let k = self
            .cfg
            .k
            .or(from_blob.map(|k| k as f64))
            .unwrap_or(SAELENS_DEFAULT_K);
        if !(k.fract() == 0.0 && k >= 0.0 && k <= usize::MAX as f64) {
            return Err(self.invalid(
                "k",
                json!(k),
                format!(
                    "must be an integer in 1..={} (d_sae): a per-token count",
                    self.cfg.d_sae
                ),
            ));
        }
        Ok(k as usize)
    }

    /// The BatchTopK config: `cfg.json`'s keys over the `sparseland` blob over SAELens'
    /// defaults (range-checked by the caller with [`BatchTopKSaeConfig::check`]).
    fn batch_topk_config(&self, blob: Option<BatchTopKSaeConfig>) -> BatchTopKSaeConfig {
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
        config
    }

    fn batch_topk(
        &self,
        config: &BatchTopKSaeConfig,
        t: &TensorSet,
        device: &Device,
    ) -> Result<BatchTopKSae> {
        BatchTopKSae::from_tensors(
            config,
            t["W_enc"].to_tensor::<2>(device),
            t["b_enc"].to_tensor::<1>(device),
            t["W_dec"].to_tensor::<2>(device),
            t["b_dec"].to_tensor::<1>(device),
            t["topk_threshold"].data()[0] as f64,
        )
        .map_err(|e| self.in_file(e))
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
