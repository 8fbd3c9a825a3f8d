//! SAELens `cfg.json`: parsed, type-checked, upgraded from pre-6.0 layouts, and written back.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::json::{Fields, describe};
use crate::{Architecture, Error, Result};

/// The `sae_lens_version` written into `metadata`: the SAELens release whose v6 layout this
/// crate follows. SAELens reads it to decide whether a config needs its pre-6.0 upgrade.
pub const SAELENS_FORMAT_VERSION: &str = "6.18.0";

/// `metadata` keys SAELens' pre-6.0 upgrade moves into `metadata` (`LLM_METADATA_KEYS`).
const LLM_METADATA_KEYS: [&str; 15] = [
    "model_name",
    "hook_name",
    "model_class_name",
    "hook_head_index",
    "model_from_pretrained_kwargs",
    "prepend_bos",
    "exclude_special_tokens",
    "neuronpedia_id",
    "context_size",
    "seqpos_slice",
    "dataset_path",
    "sae_lens_version",
    "sae_lens_training_version",
    "hook_name_out",
    "hook_head_index_out",
];

/// Config keys this type reads itself; every other key of a v6 config goes to
/// [`SaeLensConfig::extra`].
const KNOWN_KEYS: [&str; 18] = [
    "architecture",
    "d_in",
    "d_sae",
    "dtype",
    "device",
    "apply_b_dec_to_input",
    "normalize_activations",
    "reshape_activations",
    "metadata",
    "k",
    "rescale_acts_by_decoder_norm",
    "topk_threshold_lr",
    "matryoshka_widths",
    "residual_threshold",
    "max_iterations",
    "stop_on_duplicate_support",
    "finetuning_scaling_factor",
    "sparseland",
];

/// The dtypes SAELens accepts in `cfg.json` (`DTYPE_MAP`). Weights are loaded as `f32`
/// whatever this says.
const DTYPES: [&str; 8] = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "torch.float32",
    "torch.float64",
    "torch.float16",
    "torch.bfloat16",
];

/// SAELens' runtime input normalisation (`normalize_activations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormalizeActivations {
    /// `"none"`.
    #[default]
    None,
    /// `"expected_average_only_in"`: inputs are scaled by a constant estimated during training
    /// and not stored in the folder (SAELens folds it from its pretrained registry).
    ExpectedAverageOnlyIn,
    /// `"constant_norm_rescale"`: every token rescaled to norm `√d_in` inside the SAE.
    ConstantNormRescale,
    /// `"layer_norm"`: every token layer-normed inside the SAE.
    LayerNorm,
}

impl NormalizeActivations {
    /// The SAELens string.
    pub fn as_str(self) -> &'static str {
        match self {
            NormalizeActivations::None => "none",
            NormalizeActivations::ExpectedAverageOnlyIn => "expected_average_only_in",
            NormalizeActivations::ConstantNormRescale => "constant_norm_rescale",
            NormalizeActivations::LayerNorm => "layer_norm",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            NormalizeActivations::None,
            NormalizeActivations::ExpectedAverageOnlyIn,
            NormalizeActivations::ConstantNormRescale,
            NormalizeActivations::LayerNorm,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }
}

/// SAELens' `reshape_activations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReshapeActivations {
    /// `"none"`.
    #[default]
    None,
    /// `"hook_z"`: attention outputs `[.., n_heads, d_head]` are flattened to `d_in` before
    /// encoding (the SAE itself works on the flattened vectors).
    HookZ,
}

impl ReshapeActivations {
    /// The SAELens string.
    pub fn as_str(self) -> &'static str {
        match self {
            ReshapeActivations::None => "none",
            ReshapeActivations::HookZ => "hook_z",
        }
    }
}

/// A parsed and type-checked SAELens v6 `cfg.json`.
///
/// Reading follows SAELens' loader: keys this type does not know are kept in
/// [`extra`](Self::extra) and otherwise ignored, and a config without a `sae_lens_version` of
/// at least 6 (top level or in `metadata`) is first upgraded the way SAELens'
/// `handle_pre_6_0_config` does (key renames, `activation_fn: "topk"` → `architecture: "topk"`,
/// boolean `normalize_activations`, metadata gathering). Architecture-specific keys are kept as
/// read; whether they fit the architecture is checked when the folder is turned into an SAE.
///
/// ```
/// use sae_core::io::SaeLensConfig;
/// use sae_core::Architecture;
///
/// let json = serde_json::json!({
///     "architecture": "topk", "d_in": 8, "d_sae": 32, "k": 4,
///     "dtype": "float32", "metadata": {"sae_lens_version": "6.5.0", "hook_name": "blocks.0"},
///     "some_future_key": [1, 2, 3]
/// });
/// let cfg = SaeLensConfig::from_json(json.as_object().unwrap(), "cfg.json".as_ref()).unwrap();
/// assert_eq!(cfg.architecture, Architecture::TopK);
/// assert_eq!((cfg.d_in, cfg.d_sae, cfg.k), (8, 32, Some(4.0)));
/// assert!(cfg.extra.contains_key("some_future_key"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SaeLensConfig {
    /// The architecture (`architecture`; pre-6.0 configs default to `standard`).
    pub architecture: Architecture,
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
    /// The dtype SAELens would load the weights in (`float32` by default). This crate always
    /// loads `f32`.
    pub dtype: String,
    /// SAELens' device string (`cpu` by default); not used by this crate.
    pub device: String,
    /// Whether `b_dec` is subtracted from the input before encoding (default true).
    pub apply_b_dec_to_input: bool,
    /// Runtime input normalisation.
    pub normalize_activations: NormalizeActivations,
    /// Attention-output reshaping.
    pub reshape_activations: ReshapeActivations,
    /// `metadata` (model and hook names, versions, ...), kept verbatim.
    pub metadata: Map<String, Value>,
    /// `k`: per-token (TopK, AbsTopK, archetypal; an integer) or average (BatchTopK,
    /// Matryoshka) number of active latents.
    pub k: Option<f64>,
    /// `rescale_acts_by_decoder_norm` (TopK family).
    pub rescale_acts_by_decoder_norm: Option<bool>,
    /// `topk_threshold_lr` (BatchTopK family).
    pub topk_threshold_lr: Option<f64>,
    /// `matryoshka_widths` (Matryoshka).
    pub matryoshka_widths: Option<Vec<usize>>,
    /// `residual_threshold` (matching pursuit).
    pub residual_threshold: Option<f64>,
    /// `max_iterations` (matching pursuit; `null` means `d_in`).
    pub max_iterations: Option<usize>,
    /// `stop_on_duplicate_support` (matching pursuit).
    pub stop_on_duplicate_support: Option<bool>,
    /// Pre-6.0 `finetuning_scaling_factor`: whether a `scaling_factor` tensor multiplies the codes.
    pub finetuning_scaling_factor: bool,
    /// This crate's full module configuration (`sparseland` key, ignored by SAELens), used to
    /// restore training hyperparameters SAELens' keys do not carry.
    pub sparseland: Option<Value>,
    /// Every other key of a v6 config, written back unchanged.
    pub extra: Map<String, Value>,
    /// Whether the file had the pre-6.0 layout and was upgraded.
    pub upgraded_from_pre_6: bool,
}

impl SaeLensConfig {
    /// A config for an SAE of the given architecture and widths, with SAELens' defaults and
    /// `metadata.sae_lens_version` set to [`SAELENS_FORMAT_VERSION`].
    pub fn new(architecture: Architecture, d_in: usize, d_sae: usize) -> Self {
        let mut metadata = Map::new();
        metadata.insert(
            "sae_lens_version".into(),
            Value::String(SAELENS_FORMAT_VERSION.into()),
        );
        Self {
            architecture,
            d_in,
            d_sae,
            dtype: "float32".into(),
            device: "cpu".into(),
            apply_b_dec_to_input: true,
            normalize_activations: NormalizeActivations::None,
            reshape_activations: ReshapeActivations::None,
            metadata,
            k: None,
            rescale_acts_by_decoder_norm: None,
            topk_threshold_lr: None,
            matryoshka_widths: None,
            residual_threshold: None,
            max_iterations: None,
            stop_on_duplicate_support: None,
            finetuning_scaling_factor: false,
            sparseland: None,
            extra: Map::new(),
            upgraded_from_pre_6: false,
        }
    }

    /// Reads and checks `path` (a `cfg.json`).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`] for invalid JSON, [`Error::MissingConfigKey`],
    /// [`Error::ConfigType`] for a value of the wrong JSON type, [`Error::InvalidConfigValue`],
    /// [`Error::UnknownArchitecture`].
    pub fn read(path: &Path) -> Result<Self> {
        let map = super::json::read_json_object(path)?;
        Self::from_json(&map, path)
    }

    /// Checks a config already parsed as JSON; `path` is only used in error messages.
    ///
    /// # Errors
    /// As [`read`](Self::read), without the I/O and JSON-syntax errors.
    pub fn from_json(map: &Map<String, Value>, path: &Path) -> Result<Self> {
        if is_pre_6(map, path)? {
            let upgraded = upgrade_pre_6(map, path)?;
            let mut cfg = Self::parse_v6(&upgraded, path)?;
            cfg.extra.clear();
            cfg.upgraded_from_pre_6 = true;
            Ok(cfg)
        } else {
            Self::parse_v6(map, path)
        }
    }

    fn parse_v6(map: &Map<String, Value>, path: &Path) -> Result<Self> {
        let f = Fields::new(path, map);
        let name = f.str("architecture")?;
        let architecture =
            Architecture::from_name(name).ok_or_else(|| Error::UnknownArchitecture {
                path: path.to_path_buf(),
                name: name.to_string(),
                known: Architecture::ALL.map(|a| a.name()).join(", "),
            })?;
        let dtype = f.opt_str("dtype")?.unwrap_or("float32");
        if !DTYPES.contains(&dtype) {
            return Err(f.invalid(
                "dtype",
                &map["dtype"],
                format!("expected one of {}", DTYPES.join(", ")),
            ));
        }
        let normalize_activations = match f.opt_str("normalize_activations")? {
            None => NormalizeActivations::None,
            Some(s) => NormalizeActivations::parse(s).ok_or_else(|| {
                f.invalid(
                    "normalize_activations",
                    &map["normalize_activations"],
                    "expected none, expected_average_only_in, constant_norm_rescale or layer_norm",
                )
            })?,
        };
        let reshape_activations = match f.opt_str("reshape_activations")? {
            None | Some("none") => ReshapeActivations::None,
            Some("hook_z") => ReshapeActivations::HookZ,
            Some(_) => {
                return Err(f.invalid(
                    "reshape_activations",
                    &map["reshape_activations"],
                    "expected none or hook_z",
                ));
            }
        };
        let metadata = f
            .opt_object("metadata")?
            .map(|m| m.map().clone())
            .unwrap_or_default();
        let sparseland = match f.raw("sparseland") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(other) => {
                return Err(Error::ConfigType {
                    path: path.to_path_buf(),
                    key: "sparseland".into(),
                    expected: "a JSON object",
                    found: describe(other),
                });
            }
        };
        let extra = map
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            architecture,
            d_in: f.usize("d_in")?,
            d_sae: f.usize("d_sae")?,
            dtype: dtype.to_string(),
            device: f.opt_str("device")?.unwrap_or("cpu").to_string(),
            apply_b_dec_to_input: f.opt_bool("apply_b_dec_to_input")?.unwrap_or(true),
            normalize_activations,
            reshape_activations,
            metadata,
            k: f.opt_f64("k")?,
            rescale_acts_by_decoder_norm: f.opt_bool("rescale_acts_by_decoder_norm")?,
            topk_threshold_lr: f.opt_f64("topk_threshold_lr")?,
            matryoshka_widths: f.opt_usize_list("matryoshka_widths")?,
            residual_threshold: f.opt_f64("residual_threshold")?,
            max_iterations: f.opt_usize("max_iterations")?,
            stop_on_duplicate_support: f.opt_bool("stop_on_duplicate_support")?,
            finetuning_scaling_factor: f.opt_bool("finetuning_scaling_factor")?.unwrap_or(false),
            sparseland,
            extra,
            upgraded_from_pre_6: false,
        })
    }

    /// The config as the JSON object SAELens v6 writes (plus the `sparseland` and
    /// [`extra`](Self::extra) keys, which SAELens ignores).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = self.extra.clone();
        out.remove("sae_lens_version");
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_string(), v);
        };
        put("architecture", json!(self.architecture.name()));
        put("d_in", json!(self.d_in));
        put("d_sae", json!(self.d_sae));
        put("dtype", json!(self.dtype));
        put("device", json!(self.device));
        put("apply_b_dec_to_input", json!(self.apply_b_dec_to_input));
        put(
            "normalize_activations",
            json!(self.normalize_activations.as_str()),
        );
        put(
            "reshape_activations",
            json!(self.reshape_activations.as_str()),
        );
        // The layout written is v6, so the version SAELens checks must say so (a config upgraded
        // from pre-6.0 would otherwise be "upgraded" again on every read).
        let mut metadata = self.metadata.clone();
        let is_v6 = metadata
            .get("sae_lens_version")
            .and_then(Value::as_str)
            .and_then(major_version)
            .is_some_and(|m| m >= 6);
        if !is_v6 {
            metadata.insert(
                "sae_lens_version".into(),
                Value::String(SAELENS_FORMAT_VERSION.into()),
            );
        }
        put("metadata", Value::Object(metadata));
        if let Some(k) = self.k {
            // SAELens types `k` as int for TopK and as float for the BatchTopK family.
            let integral = matches!(
                self.architecture,
                Architecture::TopK | Architecture::AbsTopK | Architecture::Archetypal
            );
            if integral && k.fract() == 0.0 && k >= 0.0 {
                put("k", json!(k as u64));
            } else {
                put("k", json!(k));
            }
        }
        if let Some(v) = self.rescale_acts_by_decoder_norm {
            put("rescale_acts_by_decoder_norm", json!(v));
        }
        if let Some(v) = self.topk_threshold_lr {
            put("topk_threshold_lr", json!(v));
        }
        if let Some(v) = &self.matryoshka_widths {
            put("matryoshka_widths", json!(v));
        }
        if let Some(v) = self.residual_threshold {
            put("residual_threshold", json!(v));
        }
        if let Some(v) = self.max_iterations {
            put("max_iterations", json!(v));
        }
        if let Some(v) = self.stop_on_duplicate_support {
            put("stop_on_duplicate_support", json!(v));
        }
        if self.finetuning_scaling_factor {
            put("finetuning_scaling_factor", json!(true));
        }
        if let Some(v) = &self.sparseland {
            put("sparseland", v.clone());
        }
        out
    }
}

/// Whether a config predates SAELens 6.0 (no `sae_lens_version`, or one below 6).
fn is_pre_6(map: &Map<String, Value>, path: &Path) -> Result<bool> {
    let f = Fields::new(path, map);
    let (key, version) = match f.opt_str("sae_lens_version")? {
        Some(v) => ("sae_lens_version", Some(v)),
        None => match f.opt_object("metadata")? {
            Some(meta) => (
                "metadata.sae_lens_version",
                meta.opt_str("sae_lens_version")?,
            ),
            None => ("sae_lens_version", None),
        },
    };
    let Some(version) = version else {
        return Ok(true);
    };
    match major_version(version) {
        Some(major) => Ok(major < 6),
        None => Err(Error::InvalidConfigValue {
            path: path.to_path_buf(),
            key: key.into(),
            value: format!("{version:?}"),
            reason: "not a version number".into(),
        }),
    }
}

/// The major number of a version string such as `6.18.0` or `v3.5.0-rc.1`.
fn major_version(version: &str) -> Option<u64> {
    version
        .trim_start_matches('v')
        .split(['.', '-'])
        .next()
        .and_then(|m| m.parse::<u64>().ok())
}

/// SAELens' `handle_pre_6_0_config`: renames, defaults, TopK detection, metadata gathering.
fn upgrade_pre_6(map: &Map<String, Value>, path: &Path) -> Result<Map<String, Value>> {
    fn rename(k: &str) -> &str {
        match k {
            "hook_point" => "hook_name",
            "hook_point_head_index" => "hook_head_index",
            "activation_fn_str" => "activation_fn",
            other => other,
        }
    }
    let mut cfg: Map<String, Value> = map
        .iter()
        .map(|(k, v)| (rename(k).to_string(), v.clone()))
        .collect();
    let f = Fields::new(path, map);
    let mut set_default = |k: &str, v: Value| {
        if cfg.get(k).is_none_or(Value::is_null) {
            cfg.insert(k.to_string(), v);
        }
    };
    set_default("apply_b_dec_to_input", json!(true));
    set_default("architecture", json!("standard"));
    let upgraded = Fields::new(path, &cfg);
    let hook_z = upgraded
        .opt_str("hook_name")?
        .is_some_and(|h| h.contains("hook_z"));
    let activation_fn = upgraded.opt_str("activation_fn")?.map(str::to_string);
    let topk_k = match upgraded.opt_object("activation_fn_kwargs")? {
        Some(kwargs) => kwargs.opt_usize("k")?,
        None => None,
    };
    let normalize = match upgraded.raw("normalize_activations") {
        None => json!("none"),
        Some(Value::Bool(b)) => json!(if *b {
            "expected_average_only_in"
        } else {
            "none"
        }),
        Some(v) => v.clone(),
    };
    if cfg.get("reshape_activations").is_none_or(Value::is_null) {
        cfg.insert(
            "reshape_activations".into(),
            json!(if hook_z { "hook_z" } else { "none" }),
        );
    }
    cfg.insert("normalize_activations".into(), normalize);
    match (activation_fn.as_deref(), topk_k) {
        (Some("topk"), Some(k)) => {
            cfg.insert("architecture".into(), json!("topk"));
            cfg.insert("k".into(), json!(k));
        }
        (Some("topk"), None) => {
            return Err(Error::MissingConfigKey {
                path: path.to_path_buf(),
                key: "activation_fn_kwargs.k".into(),
            });
        }
        (None | Some("relu"), _) => {}
        (Some(other), _) => {
            // SAELens would load any other activation as a plain ReLU SAE; refuse instead.
            let key = if f.raw("activation_fn_str").is_some() {
                "activation_fn_str"
            } else {
                "activation_fn"
            };
            return Err(Error::InvalidConfigValue {
                path: path.to_path_buf(),
                key: key.into(),
                value: format!("{other:?}"),
                reason: "pre-6.0 configs are supported with activation relu or topk only".into(),
            });
        }
    }
    let mut metadata = match cfg.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for key in LLM_METADATA_KEYS {
        if let Some(v) = cfg.get(key) {
            metadata.insert(key.to_string(), v.clone());
        }
    }
    cfg.insert("metadata".into(), Value::Object(metadata));
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<SaeLensConfig> {
        SaeLensConfig::from_json(v.as_object().unwrap(), Path::new("cfg.json"))
    }

    #[test]
    fn v6_config_round_trips_through_json() {
        let v = json!({
            "architecture": "jumprelu", "d_in": 4, "d_sae": 8, "dtype": "bfloat16",
            "device": "cuda", "apply_b_dec_to_input": false,
            "normalize_activations": "expected_average_only_in", "reshape_activations": "hook_z",
            "metadata": {"sae_lens_version": "6.3.1", "hook_name": "blocks.3.attn.hook_z"},
            "unknown": {"nested": 1}
        });
        let cfg = parse(v.clone()).unwrap();
        assert_eq!(cfg.architecture, Architecture::JumpRelu);
        assert!(!cfg.apply_b_dec_to_input);
        assert_eq!(
            cfg.normalize_activations,
            NormalizeActivations::ExpectedAverageOnlyIn
        );
        assert_eq!(cfg.reshape_activations, ReshapeActivations::HookZ);
        assert!(!cfg.upgraded_from_pre_6);
        let again = parse(Value::Object(cfg.to_json())).unwrap();
        assert_eq!(again, cfg);
        assert_eq!(cfg.to_json()["unknown"], json!({"nested": 1}));
    }

    #[test]
    fn pre_6_topk_config_is_upgraded_like_saelens() {
        let cfg = parse(json!({
            "d_in": 16, "d_sae": 64, "hook_point": "blocks.2.hook_resid_pre",
            "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 8},
            "normalize_activations": true, "sae_lens_version": "3.12.0",
            "dtype": "torch.float16", "context_size": 128, "lr": 0.0004
        }))
        .unwrap();
        assert!(cfg.upgraded_from_pre_6);
        assert_eq!(cfg.architecture, Architecture::TopK);
        assert_eq!(cfg.k, Some(8.0));
        assert!(cfg.apply_b_dec_to_input);
        assert_eq!(
            cfg.normalize_activations,
            NormalizeActivations::ExpectedAverageOnlyIn
        );
        assert_eq!(cfg.reshape_activations, ReshapeActivations::None);
        assert_eq!(cfg.metadata["hook_name"], json!("blocks.2.hook_resid_pre"));
        assert_eq!(cfg.metadata["context_size"], json!(128));
        assert!(
            cfg.extra.is_empty(),
            "pre-6 leftovers such as `lr` are dropped"
        );
    }

    #[test]
    fn pre_6_defaults_standard_and_hook_z() {
        let cfg = parse(json!({
            "d_in": 8, "d_sae": 8, "hook_point": "blocks.0.attn.hook_z", "normalize_activations": null
        }))
        .unwrap();
        assert_eq!(cfg.architecture, Architecture::Relu);
        assert_eq!(cfg.reshape_activations, ReshapeActivations::HookZ);
        assert_eq!(cfg.normalize_activations, NormalizeActivations::None);
    }

    #[test]
    fn bad_values_give_typed_errors() {
        let base = json!({"architecture": "standard", "d_in": 4, "d_sae": 8,
                          "metadata": {"sae_lens_version": "6.0.0"}});
        let with = |k: &str, v: Value| {
            let mut m = base.as_object().unwrap().clone();
            m.insert(k.into(), v);
            parse(Value::Object(m))
        };
        assert!(
            matches!(with("d_in", json!(-4)), Err(Error::ConfigType { ref key, .. }) if key == "d_in")
        );
        assert!(matches!(
            with("d_sae", json!("8")),
            Err(Error::ConfigType { .. })
        ));
        assert!(matches!(
            with("apply_b_dec_to_input", json!(1)),
            Err(Error::ConfigType { .. })
        ));
        assert!(matches!(
            with("architecture", json!("transcoder")),
            Err(Error::UnknownArchitecture { .. })
        ));
        assert!(matches!(
            with("architecture", json!(3)),
            Err(Error::ConfigType { .. })
        ));
        assert!(matches!(
            with("dtype", json!("int8")),
            Err(Error::InvalidConfigValue { .. })
        ));
        assert!(matches!(
            with("normalize_activations", json!("zscore")),
            Err(Error::InvalidConfigValue { .. })
        ));
        assert!(matches!(
            with("metadata", json!([1])),
            Err(Error::ConfigType { .. })
        ));
        assert!(matches!(
            with("matryoshka_widths", json!([4, "8"])),
            Err(Error::ConfigType { .. })
        ));
        assert!(matches!(
            with("sparseland", json!(true)),
            Err(Error::ConfigType { .. })
        ));
        let mut m = base.as_object().unwrap().clone();
        m.remove("d_sae");
        assert!(
            matches!(parse(Value::Object(m)), Err(Error::MissingConfigKey { ref key, .. }) if key == "d_sae")
        );
        let e =
            parse(json!({"d_in": 4, "d_sae": 4, "activation_fn_str": "tanh-relu"})).unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "activation_fn_str")
        );
        let e = parse(
            json!({"d_in": 4, "d_sae": 4, "architecture": "standard", "sae_lens_version": "six"}),
        );
        assert!(matches!(e, Err(Error::InvalidConfigValue { .. })));
    }
}
