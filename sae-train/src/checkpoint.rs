//! Crash-safe checkpoint directories: files are written into a temporary sibling, checksummed,
//! renamed into place, and only then named in `LATEST` (itself replaced atomically).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary sibling, flushed to disk, then renamed over
/// `path`. A crash leaves either the old file or the new one, never a mix.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Flushes a directory entry change (rename) to disk where the platform allows it.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

/// The list of files of a checkpoint with their lengths and CRC-32s.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, (u64, u32)>,
}

/// The files of a checkpoint by name.
pub type CheckpointFiles = BTreeMap<String, Vec<u8>>;

const MANIFEST: &str = "manifest.json";
const LATEST: &str = "LATEST";

/// A directory of checkpoints `step-0000000123/`, with `LATEST` naming the newest complete one.
///
/// Saving writes every file into `.step-…tmp-<pid>/` with a manifest of lengths and CRC-32s,
/// flushes, renames the directory into place and then atomically replaces `LATEST`; older
/// checkpoints beyond `keep` are removed last. A crash at any point leaves `LATEST` naming a
/// complete, verified checkpoint (or no `LATEST` before the first save). Loading verifies every
/// checksum, so a damaged file is an error, not silently wrong weights.
///
/// ```
/// use sae_train::CheckpointDir;
/// let dir = tempfile::tempdir()?;
/// let ckpt = CheckpointDir::new(dir.path(), 2);
/// ckpt.save(10, &[("state.json", b"{}".to_vec())])?;
/// let (step, files) = ckpt.load_latest()?.unwrap();
/// assert_eq!((step, files["state.json"].as_slice()), (10, &b"{}"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    root: PathBuf,
    keep: usize,
}

impl CheckpointDir {
    /// Checkpoints under `root`, keeping the newest `keep` (at least 1).
    pub fn new(root: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            root: root.into(),
            keep: keep.max(1),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn step_dir(&self, step: u64) -> PathBuf {
        self.root.join(format!("step-{step:010}"))
    }

    /// Saves `files` (name, bytes) as the checkpoint of `step`; returns its directory.
    ///
    /// # Errors
    /// [`Error::Io`] on a failed write; the previous checkpoint stays the latest.
    pub fn save(&self, step: u64, files: &[(&str, Vec<u8>)]) -> Result<PathBuf> {
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let tmp = self
            .root
            .join(format!(".step-{step:010}.tmp-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut manifest = Manifest {
            files: BTreeMap::new(),
        };
        for (name, bytes) in files {
            let path = tmp.join(name);
            let mut f = File::create(&path).map_err(|e| Error::io(&path, e))?;
            f.write_all(bytes).map_err(|e| Error::io(&path, e))?;
            f.sync_all().map_err(|e| Error::io(&path, e))?;
            manifest.files.insert(
                name.to_string(),
                (bytes.len() as u64, crc32fast::hash(bytes)),
            );
        }
        let manifest_path = tmp.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Json {
            path: manifest_path.clone(),
            source: e,
        })?;
        fs::write(&manifest_path, json).map_err(|e| Error::io(&manifest_path, e))?;
        sync_parent(&manifest_path);
        let dir = self.step_dir(step);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        sync_parent(&dir);
        write_atomic(
            &self.root.join(LATEST),
            dir.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .as_bytes(),
        )?;
        self.prune()?;
        Ok(dir)
    }

    /// Removes all but the newest `keep` checkpoints (and stale temporaries).
    fn prune(&self) -> Result<()> {
        let mut steps = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(step) = name
                .strip_prefix("step-")
                .and_then(|s| s.parse::<u64>().ok())
            {
                steps.push(step);
            } else if name.starts_with(".step-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        steps.sort_unstable();
        let excess = steps.len().saturating_sub(self.keep);
        for step in &steps[..excess] {
            let dir = self.step_dir(*step);
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    /// The newest complete checkpoint: its step and files (verified against the manifest), or
    /// `None` if nothing was saved yet.
    ///
    /// # Errors
    /// [`Error::Format`] for a damaged checkpoint (missing file, wrong length or checksum),
    /// [`Error::Io`] on read failures.
    pub fn load_latest(&self) -> Result<Option<(u64, CheckpointFiles)>> {
        let latest = self.root.join(LATEST);
        let name = match fs::read_to_string(&latest) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&latest, e)),
        };
        let step = name
            .trim()
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| Error::format(&latest, format!("names no checkpoint: {name:?}")))?;
        let dir = self.step_dir(step);
        let manifest_path = dir.join(MANIFEST);
        let bytes = fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
            path: manifest_path.clone(),
            source: e,
        })?;
        let mut files = BTreeMap::new();
        for (name, (len, crc)) in manifest.files {
            let path = dir.join(&name);
            let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if bytes.len() as u64 != len || crc32fast::hash(&bytes) != crc {
                return Err(Error::format(
                    &path,
                    format!(
                        "damaged checkpoint file: {} bytes with CRC {:08x}, manifest says {len} bytes with CRC {crc:08x}",
                        bytes.len(),
                        crc32fast::hash(&bytes)
                    ),
                ));
            }
            files.insert(name, bytes);
        }
        Ok(Some((step, files)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let c = CheckpointDir::new(dir.path(), 2);
        assert!(c.load_latest().unwrap().is_none());
        for step in [1, 2, 3] {
            c.save(step, &[("a.bin", vec![step as u8; 10])]).unwrap();
        }
        assert!(!dir.path().join("step-0000000001").exists());
        assert!(dir.path().join("step-0000000002").exists());
        let (step, files) = c.load_latest().unwrap().unwrap();
        assert_eq!((step, files["a.bin"].clone()), (3, vec![3u8; 10]));
        fs::write(dir.path().join("step-0000000003/a.bin"), [9u8; 10]).unwrap();
        assert!(matches!(c.load_latest(), Err(Error::Format { .. })));
    }

    #[test]
    fn an_interrupted_save_leaves_the_previous_checkpoint_latest() {
        let dir = tempfile::tempdir().unwrap();
        let c = CheckpointDir::new(dir.path(), 3);
        c.save(5, &[("a.bin", vec![5; 4])]).unwrap();
        // Simulate a crash after some files of step 6 were written into the temporary directory.
        let tmp = dir.path().join(format!(".step-0000000006.tmp-{}", 4242));
        fs::create_dir(&tmp).unwrap();
        fs::write(tmp.join("a.bin"), [6; 2]).unwrap();
        let (step, files) = c.load_latest().unwrap().unwrap();
        assert_eq!((step, files["a.bin"].clone()), (5, vec![5; 4]));
        // The next save cleans the stale temporary up.
        c.save(7, &[("a.bin", vec![7; 4])]).unwrap();
        assert!(!tmp.exists());
    }

    #[test]
    fn write_atomic_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
