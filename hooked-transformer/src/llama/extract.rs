//! Activation caching to files: token sequences run through the model in batches, chosen hook
//! points written to safetensors shards (`[tokens, d]` per hook, plus `tokens`), a manifest,
//! resumable after a crash, with a progress bar.
//!
//! Each shard is one tensor per hook point, named by the hook (`blocks.12.hook_resid_post`,
//! rank-4 points such as `hook_z` flattened to `[tokens, heads · d_head]` as SAELens does), and
//! `tokens` (i32), rows in sequence order. `sae_train::SafetensorsSource::open(shard, hook)`
//! reads a shard as it is. Shards and the manifest are written through a temporary sibling,
//! fsynced and renamed: after a crash the manifest names only complete shards, and a rerun with
//! the same settings continues after the last one.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::model::Llama;
use crate::atomic::write_atomic;
use crate::hooks::{Activation, Hooks};
use crate::{Error, Result};

/// Element type of the stored activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardDtype {
    /// 32-bit floats (exact).
    F32,
    /// IEEE half precision (half the disk; what SAELens caches of f16 models hold).
    F16,
}

/// What [`extract_activations`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtractConfig {
    /// Hook points to store (TransformerLens names).
    pub hooks: Vec<String>,
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Sequences per shard file.
    pub sequences_per_shard: usize,
    /// Stored element type.
    pub dtype: ShardDtype,
    /// A name for the model, recorded in the manifest and checked on resume.
    pub model_name: String,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// One written shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name inside the output folder.
    pub file: String,
    /// First sequence index it holds.
    pub first_sequence: usize,
    /// Number of sequences.
    pub sequences: usize,
    /// Number of rows (tokens).
    pub tokens: usize,
}

/// One stored hook point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookEntry {
    /// The hook name (= the tensor name in every shard).
    pub name: String,
    /// Row width.
    pub d: usize,
}

/// `manifest.json` of an activation folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtractManifest {
    /// Always `hooked-transformer-activations`.
    pub format: String,
    /// Manifest version (1).
    pub version: u32,
    /// The model's name as given.
    pub model: String,
    /// Stored hook points.
    pub hooks: Vec<HookEntry>,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Stored element type.
    pub dtype: ShardDtype,
    /// Sequences in the whole run.
    pub total_sequences: usize,
    /// Sequences written so far (= the next sequence to run).
    pub sequences_done: usize,
    /// The shards, in order.
    pub shards: Vec<ShardEntry>,
}

const FORMAT: &str = "hooked-transformer-activations";
const MANIFEST: &str = "manifest.json";

impl ExtractManifest {
    /// Reads `dir/manifest.json`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`], [`Error::BadInput`] for another format, version, or a
    /// shard name that is not a plain file name.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: Self = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        let bad = |reason: String| Error::BadInput {
            path: path.clone(),
            reason,
        };
        if manifest.format != FORMAT || manifest.version != 1 {
            return Err(bad(format!(
                "format {:?} version {} (expected {FORMAT:?} version 1)",
                manifest.format, manifest.version
            )));
        }
        for shard in &manifest.shards {
            if shard.file.contains(['/', '\\']) || shard.file.starts_with('.') {
                return Err(bad(format!(
                    "shard name {:?} is not a plain file name",
                    shard.file
                )));
            }
        }
        Ok(manifest)
    }

    /// Paths of the shards.
    pub fn shard_paths(&self, dir: impl AsRef<Path>) -> Vec<PathBuf> {
        self.shards
            .iter()
            .map(|s| dir.as_ref().join(&s.file))
            .collect()
    }
}

/// Runs `sequences` (equal length) through `model` and writes the chosen hook points to
/// `out_dir`; resumes a run that `out_dir`'s manifest describes with the same settings.
///
/// # Errors
/// [`Error::UnknownHookPoint`], [`Error::Io`], [`Error::BadInput`] (a manifest from other
/// settings, sequences of unequal length), and the model's run errors.
///
/// # Panics
/// If `batch_size` or `sequences_per_shard` is 0, or `hooks` is empty.
pub fn extract_activations(
    model: &Llama,
    sequences: &[Vec<u32>],
    out_dir: impl AsRef<Path>,
    config: &ExtractConfig,
    device: &Device,
) -> Result<ExtractManifest> {
    let out_dir = out_dir.as_ref();
    assert!(
        config.batch_size > 0,
        "ExtractConfig.batch_size expected > 0, found 0"
    );
    assert!(
        config.sequences_per_shard > 0,
        "ExtractConfig.sequences_per_shard expected > 0, found 0"
    );
    assert!(
        !config.hooks.is_empty(),
        "ExtractConfig.hooks expected at least one hook point"
    );
    let seq_len = sequences.first().map_or(0, Vec::len);
    if let Some(i) = sequences.iter().position(|s| s.len() != seq_len) {
        return Err(Error::BadInput {
            path: out_dir.to_path_buf(),
            reason: format!(
                "sequence {i} has {} tokens, the first has {seq_len}",
                sequences[i].len()
            ),
        });
    }
    let points = model.hook_points();
    Hooks::new()
        .cache(config.hooks.clone())
        .check_names(&points, model.config().n_layers)?;
    // Stop after the last block any stored hook belongs to.
    let stop = config
        .hooks
        .iter()
        .map(|h| hook_layer(h).map_or(model.config().n_layers, |l| l + 1))
        .max()
        .expect("at least one hook");

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut manifest = match ExtractManifest::read(out_dir) {
        Ok(m) => {
            check_resumable(&m, config, seq_len, sequences.len(), out_dir)?;
            m
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            ExtractManifest {
                format: FORMAT.into(),
                version: 1,
                model: config.model_name.clone(),
                hooks: Vec::new(),
                seq_len,
                dtype: config.dtype,
                total_sequences: sequences.len(),
                sequences_done: 0,
                shards: Vec::new(),
            }
        }
        Err(e) => return Err(e),
    };

    let bar = config.progress.then(|| {
        let bar = indicatif::ProgressBar::new((sequences.len() * seq_len) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} tokens ({per_sec}, eta {eta})",
            )
            .expect("static template"),
        );
        bar.set_position((manifest.sequences_done * seq_len) as u64);
        bar
    });

    while manifest.sequences_done < sequences.len() {
        let first = manifest.sequences_done;
        let end = (first + config.sequences_per_shard).min(sequences.len());
        let mut rows: Vec<Vec<f32>> = vec![Vec::new(); config.hooks.len()];
        let mut widths = vec![0usize; config.hooks.len()];
        for batch in sequences[first..end].chunks(config.batch_size) {
            let ids: Vec<i64> = batch.iter().flatten().map(|&t| i64::from(t)).collect();
            let tokens =
                Tensor::<2, Int>::from_data(TensorData::new(ids, [batch.len(), seq_len]), device);
            let mut hooks = Hooks::new().cache(config.hooks.clone());
            if stop < model.config().n_layers {
                hooks = hooks.stop_at_layer(stop);
            }
            let out = model.run(tokens, &mut hooks)?;
            for (i, name) in config.hooks.iter().enumerate() {
                let value = out.cache.get(name).cloned().expect("cached hook point");
                let flat = flatten_rows(value);
                let [n, d] = flat.dims();
                widths[i] = d;
                let data: Vec<f32> = flat
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec()
                    .expect("f32 rows");
                debug_assert_eq!(data.len(), n * d);
                rows[i].extend(data);
            }
            if let Some(bar) = &bar {
                bar.inc((batch.len() * seq_len) as u64);
            }
        }
        let file = format!("shard-{:05}.safetensors", manifest.shards.len());
        let token_ids: Vec<i32> = sequences[first..end]
            .iter()
            .flatten()
            .map(|&t| t as i32)
            .collect();
        write_shard(
            &out_dir.join(&file),
            &config.hooks,
            &rows,
            &widths,
            &token_ids,
            config.dtype,
        )?;
        manifest.hooks = config
            .hooks
            .iter()
            .zip(&widths)
            .map(|(name, &d)| HookEntry {
                name: name.clone(),
                d,
            })
            .collect();
        manifest.shards.push(ShardEntry {
            file,
            first_sequence: first,
            sequences: end - first,
            tokens: token_ids.len(),
        });
        manifest.sequences_done = end;
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        write_atomic(&out_dir.join(MANIFEST), &json)?;
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(manifest)
}

fn check_resumable(
    m: &ExtractManifest,
    config: &ExtractConfig,
    seq_len: usize,
    total: usize,
    dir: &Path,
) -> Result<()> {
    let names: Vec<&str> = m.hooks.iter().map(|h| h.name.as_str()).collect();
    let wanted: Vec<&str> = config.hooks.iter().map(String::as_str).collect();
    let mismatch = if m.model != config.model_name {
        Some(format!(
            "model {:?}, this run {:?}",
            m.model, config.model_name
        ))
    } else if !names.is_empty() && names != wanted {
        Some(format!("hooks {names:?}, this run {wanted:?}"))
    } else if m.seq_len != seq_len {
        Some(format!("seq_len {}, this run {seq_len}", m.seq_len))
    } else if m.dtype != config.dtype {
        Some(format!("dtype {:?}, this run {:?}", m.dtype, config.dtype))
    } else if m.total_sequences != total {
        Some(format!("{} sequences, this run {total}", m.total_sequences))
    } else {
        None
    };
    match mismatch {
        Some(what) => Err(Error::BadInput {
            path: dir.join(MANIFEST),
            reason: format!("cannot resume: the folder holds a run with {what}"),
        }),
        None => Ok(()),
    }
}

/// The block a hook name belongs to (`blocks.L.…`), `None` for embedding/final hooks.
fn hook_layer(name: &str) -> Option<usize> {
    name.strip_prefix("blocks.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// `[batch, pos, d]` or `[batch, pos, heads, d_head]` as `[batch · pos, width]`.
fn flatten_rows(value: Activation) -> Tensor<2> {
    let t = value.flatten_heads();
    let [b, p, d] = t.dims();
    t.reshape([b * p, d])
}

fn write_shard(
    path: &Path,
    hooks: &[String],
    rows: &[Vec<f32>],
    widths: &[usize],
    tokens: &[i32],
    dtype: ShardDtype,
) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let n = tokens.len();
    let payloads: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| match dtype {
            ShardDtype::F32 => r.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ShardDtype::F16 => r
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        })
        .collect();
    let token_bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    let st_dtype = match dtype {
        ShardDtype::F32 => Dtype::F32,
        ShardDtype::F16 => Dtype::F16,
    };
    let mut views = Vec::new();
    for ((name, bytes), &d) in hooks.iter().zip(&payloads).zip(widths) {
        views.push((
            name.clone(),
            TensorView::new(st_dtype, vec![n, d], bytes).expect("row bytes match the shape"),
        ));
    }
    views.push((
        "tokens".to_string(),
        TensorView::new(Dtype::I32, vec![n], &token_bytes).expect("token bytes match the shape"),
    ));
    let bytes = safetensors::serialize(views, None).map_err(|source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}
