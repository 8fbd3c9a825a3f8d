//! SAELens v6 folders: `cfg.json` + `sae_weights.safetensors` (+ `sparsity.safetensors`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde_json::{Map, Value};

use super::convert::{parts_to_sae, sae_to_parts};
use super::layout::check_layout;
use super::saelens_config::{
    NormalizeActivations, ReshapeActivations, SAELENS_FORMAT_VERSION, SaeLensConfig,
};
use super::tensors::{HostTensor, TensorSet, read_safetensors, safetensors_bytes};
use crate::metrics::SparsityReport;
use crate::{AnySae, Architecture, Error, Result, SparseAutoencoder};

/// The config file of a SAELens folder.
pub const CFG_FILENAME: &str = "cfg.json";
/// The weights file of a SAELens folder.
pub const WEIGHTS_FILENAME: &str = "sae_weights.safetensors";
/// The optional per-latent log-density file of a SAELens folder.
pub const SPARSITY_FILENAME: &str = "sparsity.safetensors";

/// What [`save_saelens`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveMode {
    /// The inference form, as SAELens' `save_inference_model`: the SAE's
    /// [`into_inference`](SparseAutoencoder::into_inference) export (decoder norms folded into
    /// a rescaling TopK, BatchTopK and Matryoshka written as `jumprelu` with
    /// `threshold = θ·1`, archetypal as a plain `topk`).
    #[default]
    Inference,
    /// Every parameter as it is, as SAELens' training `save_model` (BatchTopK stays `batchtopk`
    /// with its `topk_threshold`, Matryoshka stays `matryoshka_batchtopk`, archetypal keeps its
    /// constrained dictionary): loading gives back the same module, bit for bit.
    Checkpoint,
}

/// Options of [`save_saelens`] / [`SaeLensFolder::from_sae`].
///
/// ```
/// use sae_core::io::{SaeLensSaveOptions, SaveMode};
///
/// let options = SaeLensSaveOptions::new()
///     .with_mode(SaveMode::Checkpoint)
///     .with_metadata("hook_name", "blocks.6.hook_resid_post")
///     .with_metadata("model_name", "gpt2");
/// assert_eq!(options.mode, SaveMode::Checkpoint);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SaeLensSaveOptions {
    /// Inference export (default) or full checkpoint.
    pub mode: SaveMode,
    /// Entries merged into `cfg.json`'s `metadata` (`model_name`, `hook_name`,
    /// `context_size`, ...). `sae_lens_version` is always [`SAELENS_FORMAT_VERSION`].
    pub metadata: Map<String, Value>,
    /// `normalize_activations` to record (default `none`).
    pub normalize_activations: NormalizeActivations,
    /// `reshape_activations` to record (default `none`).
    pub reshape_activations: ReshapeActivations,
    /// Per-latent `log10(density + 1e-10)` to write as `sparsity.safetensors`
    /// (see [`SparsityReport::log10_sparsity`]).
    pub log10_sparsity: Option<Vec<f32>>,
    /// Refuse ([`Error::Unrepresentable`]) rather than write an architecture SAELens' inference
    /// loader (`SAE.load_from_disk`, 6.18) cannot read.
    pub require_saelens_loadable: bool,
}

impl SaeLensSaveOptions {
    /// The defaults: inference export, no metadata, no sparsity.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: SaveMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds a `metadata` entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Writes `sparsity.safetensors` from a sparsity report's firing densities.
    pub fn with_sparsity(mut self, report: &SparsityReport) -> Self {
        self.log10_sparsity = Some(report.log10_sparsity());
        self
    }

    /// Records `normalize_activations`.
    pub fn with_normalize_activations(mut self, n: NormalizeActivations) -> Self {
        self.normalize_activations = n;
        self
    }

    /// Records `reshape_activations`.
    pub fn with_reshape_activations(mut self, r: ReshapeActivations) -> Self {
        self.reshape_activations = r;
        self
    }

    /// Refuse architectures SAELens cannot load.
    pub fn require_saelens_loadable(mut self, yes: bool) -> Self {
        self.require_saelens_loadable = yes;
        self
    }
}

/// Whether SAELens' inference loader knows the architecture (`matching_pursuit` is in SAELens
/// after PR #601, `abstopk` in 6.54; checked against SAELens 6.54.12 itself, folders both ways).
fn saelens_loadable(a: Architecture) -> bool {
    matches!(
        a,
        Architecture::Relu
            | Architecture::TopK
            | Architecture::JumpRelu
            | Architecture::Gated
            | Architecture::MatchingPursuit
            | Architecture::AbsTopK
    )
}

/// A SAELens folder in memory: the checked config, the weights as named `f32` host tensors,
/// and the optional sparsity. This is the neutral form between files and modules: reading and
/// writing it is bit-exact, and [`to_sae`](Self::to_sae) / [`from_sae`](Self::from_sae)
/// convert to and from the architecture modules.
///
/// Tensor names and orientations are SAELens': `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`,
/// `b_enc`, `b_dec`, JumpReLU `threshold` (θ, not its log), Gated `b_gate`, `r_mag`, `b_mag`,
/// BatchTopK `topk_threshold` (a scalar). Architectures SAELens lacks use this crate's names
/// (`top_afa`, `archetypal` with `candidates`, `mixing`, `relaxation`,
/// `log_multiplier`), which SAELens rejects as unknown instead of misreading.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::io::{SaeLensFolder, SaeLensSaveOptions};
/// use sae_core::{AnySae, SparseAutoencoder, TopKSaeConfig};
///
/// let device = Device::flex();
/// let sae: AnySae = TopKSaeConfig::new(4, 16, 2).init(&device).into();
/// let dir = tempfile::tempdir().unwrap();
/// SaeLensFolder::from_sae(&sae, &SaeLensSaveOptions::new()).unwrap().write(dir.path()).unwrap();
///
/// let folder = SaeLensFolder::read(dir.path()).unwrap();
/// assert_eq!(folder.tensors["W_dec"].shape(), &[16, 4]);
/// let loaded = folder.to_sae(&device).unwrap();
/// assert_eq!(loaded.d_sae(), 16);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SaeLensFolder {
    /// The parsed `cfg.json`.
    pub config: SaeLensConfig,
    /// The weights, by SAELens name.
    pub tensors: TensorSet,
    /// `sparsity.safetensors`' `sparsity` (`log10` firing density, `[d_sae]`), if present.
    pub sparsity: Option<HostTensor>,
    /// Where it was read from (`<memory>` otherwise), for error messages.
    source: PathBuf,
}

impl SaeLensFolder {
    /// A folder from parts built in memory; check it with [`validate`](Self::validate).
    pub fn new(config: SaeLensConfig, tensors: TensorSet, sparsity: Option<HostTensor>) -> Self {
        Self {
            config,
            tensors,
            sparsity,
            source: PathBuf::from(Error::MEMORY),
        }
    }

    /// Reads and checks a SAELens folder: `cfg.json` (unknown keys ignored, pre-6.0 layouts
    /// upgraded), `sae_weights.safetensors` (F32/F16/BF16/F64, loaded as `f32`) and, if present,
    /// `sparsity.safetensors`.
    ///
    /// A pre-6.0 `scaling_factor` tensor is dropped when all ones and, when
    /// `finetuning_scaling_factor` is true, folded into the rows of `W_dec` (it multiplied the
    /// codes before decoding, so the reconstruction is unchanged).
    ///
    /// # Errors
    /// [`Error::Io`] (with the path) for a missing or unreadable file; the config errors of
    /// [`SaeLensConfig::read`]; [`Error::Safetensors`] for a truncated or corrupt weights file;
    /// [`Error::UnsupportedDtype`]; [`Error::NonFinite`]; [`Error::MissingTensor`],
    /// [`Error::UnexpectedTensor`], [`Error::TensorShape`] and [`Error::InconsistentDim`] when
    /// the tensors do not match the architecture and `d_in`/`d_sae`.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg_path = dir.join(CFG_FILENAME);
        let weights_path = dir.join(WEIGHTS_FILENAME);
        let config = SaeLensConfig::read(&cfg_path)?;
        let mut tensors = read_safetensors(&weights_path, &[])?.floats;
        fold_scaling_factor(&config, &mut tensors, &weights_path)?;
        check_layout(
            &weights_path,
            config.architecture,
            config.d_in,
            config.d_sae,
            CFG_FILENAME,
            &tensors,
        )?;
        let sparsity_path = dir.join(SPARSITY_FILENAME);
        let sparsity = if sparsity_path.exists() {
            let mut t = read_safetensors(&sparsity_path, &[])?.floats;
            let s = t.remove("sparsity").ok_or_else(|| Error::MissingTensor {
                path: sparsity_path.clone(),
                name: "sparsity".into(),
                architecture: config.architecture.name().into(),
            })?;
            if let Some(name) = t.keys().next() {
                return Err(Error::UnexpectedTensor {
                    path: sparsity_path,
                    name: name.clone(),
                    architecture: config.architecture.name().into(),
                });
            }
            check_sparsity(&sparsity_path, &s, config.d_sae)?;
            Some(s)
        } else {
            None
        };
        Ok(Self {
            config,
            tensors,
            sparsity,
            source: dir.to_path_buf(),
        })
    }

    /// Where the config came from, for error messages.
    fn cfg_path(&self) -> PathBuf {
        if self.source == Path::new(Error::MEMORY) {
            self.source.clone()
        } else {
            self.source.join(CFG_FILENAME)
        }
    }

    /// Where the weights came from, for error messages.
    fn weights_path(&self) -> PathBuf {
        if self.source == Path::new(Error::MEMORY) {
            self.source.clone()
        } else {
            self.source.join(WEIGHTS_FILENAME)
        }
    }

    /// Checks the tensors against the config: names, shapes, finite values, sparsity width.
    ///
    /// # Errors
    /// As the tensor checks of [`read`](Self::read).
    pub fn validate(&self) -> Result<()> {
        let c = &self.config;
        let weights = self.weights_path();
        check_layout(
            &weights,
            c.architecture,
            c.d_in,
            c.d_sae,
            "config",
            &self.tensors,
        )?;
        for (name, t) in &self.tensors {
            if let Some((index, value)) = t.first_non_finite() {
                return Err(Error::NonFinite {
                    path: weights.clone(),
                    name: name.clone(),
                    index,
                    value,
                });
            }
        }
        if let Some(s) = &self.sparsity {
            check_sparsity(&weights.with_file_name(SPARSITY_FILENAME), s, c.d_sae)?;
        }
        Ok(())
    }

    /// Writes the folder — `sae_weights.safetensors`, `sparsity.safetensors` when there is a
    /// sparsity, `cfg.json` — as one unit: it is built under a hidden temporary sibling and
    /// replaces an existing folder in one step, so a crash leaves the old SAE or the new one,
    /// never new weights under an old config. Files are 0644. Other files already in the folder
    /// (not a stale `sparsity.safetensors`) are kept; a folder holding a sub-directory is refused.
    ///
    /// # Errors
    /// The checks of [`validate`](Self::validate) (nothing is written that [`read`](Self::read)
    /// would refuse); [`Error::Io`] naming the path that could not be written.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.validate()?;
        let dir = dir.as_ref();
        let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        let weights = safetensors_bytes(&dir.join(WEIGHTS_FILENAME), &self.tensors, &meta)?;
        let sparsity = match &self.sparsity {
            Some(s) => {
                let t = TensorSet::from([("sparsity".to_string(), s.clone())]);
                Some(safetensors_bytes(&dir.join(SPARSITY_FILENAME), &t, &meta)?)
            }
            None => None,
        };
        let json = serde_json::to_vec_pretty(&Value::Object(self.config.to_json()))
            .expect("a JSON map serialises");
        let mut files: Vec<(&str, &[u8])> =
            vec![(WEIGHTS_FILENAME, &weights), (CFG_FILENAME, &json)];
        if let Some(s) = &sparsity {
            files.push((SPARSITY_FILENAME, s));
        }
        // A stale sparsity file from an earlier save is one of ours: never carried over.
        super::atomic::write_folder_atomic(
            dir,
            &files,
            &[WEIGHTS_FILENAME, CFG_FILENAME, SPARSITY_FILENAME],
        )
    }

    /// The SAE module this folder describes.
    ///
    /// Hyperparameters come from SAELens' keys first (`k`, `rescale_acts_by_decoder_norm`,
    /// `apply_b_dec_to_input`, ...), then from the `sparseland` key this crate writes (training
    /// hyperparameters), then SAELens' defaults (`k = 100`, no rescaling for inference TopK).
    /// JumpReLU's stored `threshold` θ becomes the module's `log_threshold` as `ln θ` computed in
    /// `f64`.
    ///
    /// # Errors
    /// The checks of [`validate`](Self::validate); [`Error::InvalidConfigValue`] for a
    /// hyperparameter out of range (`k` above `d_sae`, non-increasing Matryoshka widths, ...)
    /// and for `normalize_activations` `layer_norm` / `constant_norm_rescale`, which SAELens
    /// applies inside its forward pass and these modules do not (set the field to `None` to load
    /// anyway and normalise inputs yourself); [`Error::InvalidValue`] for a negative threshold.
    pub fn to_sae(&self, device: &Device) -> Result<AnySae> {
        self.validate()?;
        let c = &self.config;
        if matches!(
            c.normalize_activations,
            NormalizeActivations::LayerNorm | NormalizeActivations::ConstantNormRescale
        ) {
            return Err(Error::InvalidConfigValue {
                path: self.cfg_path(),
                key: "normalize_activations".into(),
                value: format!("{:?}", c.normalize_activations.as_str()),
                reason: "SAELens normalises inputs inside the SAE for this mode and sae-core's \
                         modules do not; normalise the inputs yourself and set the config's \
                         normalize_activations to None to load"
                    .into(),
            });
        }
        parts_to_sae(c, &self.tensors, &self.cfg_path(), device)
    }

    /// The folder an SAE is saved as; see [`SaveMode`] and [`SaeLensSaveOptions`].
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] when `require_saelens_loadable` is set and the (exported)
    /// architecture is not one SAELens' inference loader reads; [`Error::InconsistentDim`] or
    /// [`Error::NonFinite`] for a bad `log10_sparsity`.
    pub fn from_sae(sae: &AnySae, options: &SaeLensSaveOptions) -> Result<Self> {
        // BatchTopK's θ goes to the file exactly as SAELens writes it (`θ·1`), not through the
        // JumpReLU export's `exp(ln θ)`.
        let theta = match (options.mode, sae) {
            (SaveMode::Inference, AnySae::BatchTopK(s)) => Some(s.threshold()),
            (SaveMode::Inference, AnySae::Matryoshka(s)) => Some(s.base.threshold()),
            _ => None,
        };
        let module = match options.mode {
            SaveMode::Inference => sae.clone().into_inference(),
            SaveMode::Checkpoint => sae.clone(),
        };
        let (mut config, mut tensors) = sae_to_parts(&module);
        if let Some(theta) = theta {
            let d_sae = config.d_sae;
            tensors.insert(
                "threshold".into(),
                HostTensor::new(vec![d_sae], vec![theta as f32; d_sae]),
            );
        }
        if options.require_saelens_loadable && !saelens_loadable(config.architecture) {
            return Err(Error::Unrepresentable {
                architecture: config.architecture.name().into(),
                format: "SAELens",
                reason: match config.architecture {
                    Architecture::BatchTopK | Architecture::Matryoshka => {
                        "SAELens reads it only as a training SAE; save with SaveMode::Inference \
                         to export it as jumprelu"
                            .into()
                    }
                    _ => "SAELens has no such architecture (it is written under this crate's \
                          own name, which SAELens refuses to load)"
                        .into(),
                },
            });
        }
        config.metadata.extend(options.metadata.clone());
        config.metadata.insert(
            "sae_lens_version".into(),
            Value::String(SAELENS_FORMAT_VERSION.into()),
        );
        config.normalize_activations = options.normalize_activations;
        config.reshape_activations = options.reshape_activations;
        let memory = Path::new(Error::MEMORY);
        let sparsity = match &options.log10_sparsity {
            Some(v) => {
                let s = HostTensor::new(vec![v.len()], v.clone());
                check_sparsity(memory, &s, config.d_sae)?;
                Some(s)
            }
            None => None,
        };
        Ok(Self::new(config, tensors, sparsity))
    }
}

/// Checks that the per-latent tensor `name` of the file at `path` is a `[d_sae]` vector, with
/// `d_sae` from the folder's config.
fn check_per_latent(path: &Path, name: &str, t: &HostTensor, d_sae: usize) -> Result<()> {
    if t.shape() == [d_sae] {
        return Ok(());
    }
    Err(Error::InconsistentDim {
        path: path.to_path_buf(),
        dim: "d_sae",
        expected: d_sae,
        expected_from: CFG_FILENAME.into(),
        tensor: name.into(),
        found: t.shape().first().copied().unwrap_or(0),
    })
}

fn check_sparsity(path: &Path, s: &HostTensor, d_sae: usize) -> Result<()> {
    check_per_latent(path, "sparsity", s, d_sae)?;
    if let Some((index, value)) = s.first_non_finite() {
        return Err(Error::NonFinite {
            path: path.to_path_buf(),
            name: "sparsity".into(),
            index,
            value,
        });
    }
    Ok(())
}

/// SAELens' handling of the pre-6.0 `scaling_factor` tensor (`read_sae_components_from_disk`).
fn fold_scaling_factor(config: &SaeLensConfig, tensors: &mut TensorSet, path: &Path) -> Result<()> {
    let Some(scale) = tensors.remove("scaling_factor") else {
        return Ok(());
    };
    if scale.data().iter().all(|&v| v == 1.0) {
        return Ok(());
    }
    if !config.finetuning_scaling_factor {
        return Err(Error::InvalidConfigValue {
            path: path.with_file_name(CFG_FILENAME),
            key: "finetuning_scaling_factor".into(),
            value: "false".into(),
            reason: format!(
                "{} holds a `scaling_factor` that is not all ones, which only applies when this is true",
                path.display()
            ),
        });
    }
    let d_sae = config.d_sae;
    check_per_latent(path, "scaling_factor", &scale, d_sae)?;
    let Some(w_dec) = tensors.get_mut("W_dec") else {
        return Ok(()); // reported as missing by the layout check
    };
    if w_dec.shape().len() != 2 || w_dec.shape()[0] != d_sae {
        return Ok(()); // reported by the layout check
    }
    let d_in = w_dec.shape()[1];
    let mut data = w_dec.data().to_vec();
    for (row, &s) in data.chunks_exact_mut(d_in).zip(scale.data()) {
        row.iter_mut().for_each(|v| *v *= s);
    }
    *w_dec = HostTensor::new(vec![d_sae, d_in], data);
    Ok(())
}

/// An SAE read from a SAELens folder, with the config and sparsity that came with it.
#[derive(Debug)]
pub struct LoadedSae {
    /// The module.
    pub sae: AnySae,
    /// The folder's config (metadata, normalisation, ...).
    pub config: SaeLensConfig,
    /// `log10` firing density per latent, if the folder had `sparsity.safetensors`.
    pub log10_sparsity: Option<Vec<f32>>,
}

/// Loads an SAE from a SAELens v6 (or older) folder; see [`SaeLensFolder::read`] and
/// [`SaeLensFolder::to_sae`] for what is checked.
///
/// # Errors
/// Those of [`SaeLensFolder::read`] and [`SaeLensFolder::to_sae`].
///
/// ```
/// use burn::prelude::*;
/// use sae_core::io::{SaeLensSaveOptions, load_saelens, save_saelens};
/// use sae_core::{AnySae, ReluSaeConfig, SparseAutoencoder};
///
/// let device = Device::flex();
/// let sae: AnySae = ReluSaeConfig::new(8, 32).init(&device).into();
/// let dir = tempfile::tempdir().unwrap();
/// save_saelens(&sae, dir.path(), &SaeLensSaveOptions::new().with_metadata("hook_name", "h")).unwrap();
/// let loaded = load_saelens(dir.path(), &device).unwrap();
/// assert_eq!(loaded.config.metadata["hook_name"], "h");
/// // Every parameter comes back bit for bit.
/// assert_eq!(loaded.sae.dictionary().into_data(), sae.dictionary().into_data());
/// let x = Tensor::<2>::ones([2, 8], &device);
/// loaded.sae.forward(x.clone()).into_data().assert_approx_eq::<f32>(
///     &sae.forward(x).into_data(),
///     burn::tensor::Tolerance::default(),
/// );
/// ```
pub fn load_saelens(dir: impl AsRef<Path>, device: &Device) -> Result<LoadedSae> {
    let folder = SaeLensFolder::read(dir)?;
    let sae = folder.to_sae(device)?;
    Ok(LoadedSae {
        sae,
        log10_sparsity: folder.sparsity.map(HostTensor::into_data),
        config: folder.config,
    })
}

/// Saves an SAE as a SAELens v6 folder (atomically per file); see [`SaeLensFolder::from_sae`]
/// and [`SaeLensFolder::write`].
///
/// # Errors
/// Those of [`SaeLensFolder::from_sae`] and [`SaeLensFolder::write`].
pub fn save_saelens(
    sae: &AnySae,
    dir: impl AsRef<Path>,
    options: &SaeLensSaveOptions,
) -> Result<()> {
    SaeLensFolder::from_sae(sae, options)?.write(dir)
}
