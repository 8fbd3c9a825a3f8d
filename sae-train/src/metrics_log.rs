//! Training metrics: one record per logged step and SAE, written as JSON Lines.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomic;
use crate::{Error, Result};

/// What the trainer logs for one SAE at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// The step (0-based) this record was measured at.
    pub step: u64,
    /// Tokens trained on so far (after this step).
    pub tokens: u64,
    /// The SAE's name in the run.
    pub sae: String,
    /// Total training loss.
    pub loss: f64,
    /// Reconstruction term (sum of squared errors per token, on normalised inputs).
    pub mse: f64,
    /// Auxiliary (dead-latent) loss, before its coefficient.
    pub aux_loss: f64,
    /// Fraction of variance unexplained on the batch.
    pub fvu: f64,
    /// Mean number of non-zero latents per token.
    pub l0: f64,
    /// Share of latents that have not fired for the dead-token threshold.
    pub dead_fraction: f64,
    /// Share of latents firing on more than 10 % of the batch's tokens ("dense").
    pub dense_fraction: f64,
    /// The learning rate used.
    pub lr: f64,
    /// The sparsity coefficient used (0 for architectures without one).
    pub sparsity_coefficient: f64,
}

/// A JSON Lines log of [`MetricRecord`]s, flushed after every record.
///
/// ```
/// use sae_train::{MetricRecord, MetricsLog};
/// let dir = tempfile::tempdir()?;
/// let mut log = MetricsLog::create(dir.path().join("metrics.jsonl"))?;
/// let r = MetricRecord { step: 0, tokens: 64, sae: "topk".into(), loss: 1.0, mse: 1.0,
///     aux_loss: 0.0, fvu: 0.5, l0: 8.0, dead_fraction: 0.0, dense_fraction: 0.0, lr: 1e-3,
///     sparsity_coefficient: 0.0 };
/// log.append(&r)?;
/// assert_eq!(MetricsLog::read(log.path())?, vec![r]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self { path, file })
    }

    /// Opens the log at `path` for a run resumed after step `resumed_step`: records measured at
    /// later steps (written by the interrupted run after its last checkpoint) are dropped, so the
    /// log reads as one uninterrupted run. The trimmed file replaces the old one atomically.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Json`] for a corrupt line.
    pub fn resume(path: impl Into<PathBuf>, resumed_step: u64) -> Result<Self> {
        let path = path.into();
        let kept: Vec<MetricRecord> = if path.exists() {
            Self::read(&path)?
                .into_iter()
                .filter(|r| r.step < resumed_step)
                .collect()
        } else {
            Vec::new()
        };
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Json {
                path: path.clone(),
                source: e,
            })?);
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self { path, file })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn append(&mut self, record: &MetricRecord) -> Result<()> {
        let mut line = serde_json::to_string(record).map_err(|e| Error::Json {
            path: self.path.clone(),
            source: e,
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Reads every record of a log.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Json`] naming the file for a corrupt line.
    pub fn read(path: &Path) -> Result<Vec<MetricRecord>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::io(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            out.push(serde_json::from_str(&line).map_err(|e| Error::Json {
                path: path.to_path_buf(),
                source: e,
            })?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: u64) -> MetricRecord {
        MetricRecord {
            step,
            tokens: step * 10,
            sae: "a".into(),
            loss: 1.0 / (step + 1) as f64,
            mse: 0.5,
            aux_loss: 0.0,
            fvu: 0.1,
            l0: 4.0,
            dead_fraction: 0.0,
            dense_fraction: 0.0,
            lr: 1e-3,
            sparsity_coefficient: 0.0,
        }
    }

    #[test]
    fn resume_drops_records_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let mut log = MetricsLog::create(&p).unwrap();
        for s in 0..6 {
            log.append(&rec(s)).unwrap();
        }
        drop(log);
        let mut log = MetricsLog::resume(&p, 3).unwrap();
        log.append(&rec(3)).unwrap();
        let steps: Vec<u64> = MetricsLog::read(&p)
            .unwrap()
            .iter()
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, vec![0, 1, 2, 3]);
        std::fs::write(&p, "{not json\n").unwrap();
        assert!(matches!(MetricsLog::read(&p), Err(Error::Json { .. })));
    }
}
