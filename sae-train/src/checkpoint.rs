//! Crash-safe checkpoint directories: a checkpoint is written complete into a temporary
//! sibling with a random name, fsynced, renamed into place under a name no live checkpoint
//! has, and only then named in `LATEST` (itself replaced atomically) — `LATEST` is the commit
//! point, so it never names a missing or partial directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::{make_readable, sync_dir, write_atomic};
use crate::{Error, Result};

#[cfg(test)]
thread_local! {
    static CRASH_AT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Tests stop a save here as a crash would (an error; nothing after it runs).
fn crash_point(stage: &'static str) -> Result<()> {
    #[cfg(test)]
    if CRASH_AT.with(|c| c.get()) == Some(stage) {
        CRASH_AT.with(|c| c.set(None));
        return Err(Error::io(stage, std::io::Error::other("injected crash")));
    }
    let _ = stage;
    Ok(())
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
const LOCK: &str = ".lock";

/// Refuses a file name that could leave the checkpoint directory or clash with its manifest.
fn check_file_name(name: &str, at: &Path) -> Result<()> {
    let refuse = |reason| {
        Err(Error::CheckpointFileName {
            path: at.to_path_buf(),
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name == "." || name == ".." {
        return refuse("it names a directory");
    }
    if name.contains('/') || name.contains('\\') || name.contains('\0') {
        return refuse("it holds a path separator (or NUL)");
    }
    if Path::new(name).is_absolute() || Path::new(name).has_root() {
        return refuse("it is an absolute path");
    }
    if name == MANIFEST {
        return refuse("it is the manifest's own name");
    }
    Ok(())
}

/// The step of a checkpoint directory name: `step-0000000123`, or `step-0000000123.N` for a
/// re-save of a step whose first name was still in use.
fn step_of(dir_name: &str) -> Option<u64> {
    let rest = dir_name.strip_prefix("step-")?;
    let (digits, copy) = match rest.split_once('.') {
        Some((d, c)) => (d, Some(c)),
        None => (rest, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(digits) || copy.is_some_and(|c| !all_digits(c)) {
        return None;
    }
    digits.parse().ok()
}

/// Writes `bytes` as the new file `path` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut f = File::create_new(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    make_readable(&f).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A directory of checkpoints `step-0000000123/`, with `LATEST` naming the newest complete one.
///
/// Saving writes every file and a manifest of lengths and CRC-32s into a temporary sibling with
/// a random name, fsyncs them and the directory, renames it into place under a name no
/// existing checkpoint has (`step-…`, or `step-….1` when the step is saved again and its first
/// copy is still what `LATEST` names), fsyncs the root, and then atomically replaces `LATEST`.
/// Only after that are the replaced copy, checkpoints beyond `keep` and stale temporaries
/// removed. A crash at any point leaves `LATEST` naming a complete, verified checkpoint (or no
/// `LATEST` before the first save). Saves into one directory are serialised by an advisory lock
/// on `.lock` (released by the OS if the process dies), and a load takes it shared. Loading verifies every checksum and
/// file name, so a damaged or hostile checkpoint is an error, not silently wrong weights or a
/// read outside the directory.
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

    /// A directory name for a new copy of `step` that no existing entry has.
    fn free_name(&self, step: u64) -> String {
        let first = format!("step-{step:010}");
        if !self.root.join(&first).exists() {
            return first;
        }
        (1u64..)
            .map(|copy| format!("{first}.{copy}"))
            .find(|name| !self.root.join(name).exists())
            .expect("some copy number is free")
    }

    /// Saves `files` (name, bytes) as the checkpoint of `step`; returns its directory.
    ///
    /// # Errors
    /// [`Error::CheckpointFileName`] for a file name with a path separator, `..`, an absolute
    /// path, `manifest.json`, or one given twice (nothing is written); [`Error::Io`] on a
    /// failed write. After any error the previous checkpoint stays the latest.
    pub fn save(&self, step: u64, files: &[(&str, Vec<u8>)]) -> Result<PathBuf> {
        let mut names = BTreeSet::new();
        for (name, _) in files {
            check_file_name(name, &self.root)?;
            if !names.insert(*name) {
                return Err(Error::CheckpointFileName {
                    path: self.root.clone(),
                    name: name.to_string(),
                    reason: "it is given twice",
                });
            }
        }
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let lock_path = self.root.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;

        let tmp = tempfile::Builder::new()
            .prefix(&format!(".step-{step:010}."))
            .tempdir_in(&self.root)
            .map_err(|e| Error::io(&self.root, e))?;
        let mut manifest = Manifest {
            files: BTreeMap::new(),
        };
        for (name, bytes) in files {
            write_synced(&tmp.path().join(name), bytes)?;
            manifest.files.insert(
                name.to_string(),
                (bytes.len() as u64, crc32fast::hash(bytes)),
            );
        }
        let manifest_path = tmp.path().join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Json {
            path: manifest_path.clone(),
            source: e,
        })?;
        write_synced(&manifest_path, &json)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(tmp.path(), e))?;
        }
        sync_dir(tmp.path());
        crash_point("before_rename")?;
        let name = self.free_name(step);
        let dir = self.root.join(&name);
        let staged = tmp.keep();
        fs::rename(&staged, &dir).map_err(|e| {
            let _ = fs::remove_dir_all(&staged);
            Error::io(&dir, e)
        })?;
        sync_dir(&self.root);
        crash_point("before_latest")?;
        write_atomic(&self.root.join(LATEST), name.as_bytes())?;
        self.prune(&name)?;
        drop(lock);
        Ok(dir)
    }

    /// Removes every checkpoint directory except `latest` and the newest others up to `keep`
    /// steps (one directory per step: a replaced copy of `latest`'s step goes), and stale
    /// temporaries. Runs under the save lock, so no temporary in flight is touched.
    fn prune(&self, latest: &str) -> Result<()> {
        let latest_step = step_of(latest);
        let mut by_step: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(step) = step_of(&name) {
                by_step.entry(step).or_default().push(name);
            } else if name.starts_with(".step-") || name.starts_with(&format!(".{LATEST}.")) {
                let path = entry.path();
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
        let mut doomed = Vec::new();
        if let Some(step) = latest_step
            && let Some(copies) = by_step.get_mut(&step)
        {
            doomed.extend(copies.iter().filter(|n| *n != latest).cloned());
            copies.retain(|n| n == latest);
        }
        let steps: Vec<u64> = by_step.keys().copied().collect();
        let excess = steps.len().saturating_sub(self.keep);
        for step in &steps[..excess] {
            if Some(*step) != latest_step {
                doomed.extend(by_step[step].iter().cloned());
            }
        }
        for name in doomed {
            let dir = self.root.join(&name);
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        sync_dir(&self.root);
        Ok(())
    }

    /// The newest complete checkpoint: its step and files (verified against the manifest), or
    /// `None` if nothing was saved yet.
    ///
    /// # Errors
    /// [`Error::Format`] for a damaged checkpoint (a `LATEST` that names no checkpoint, a
    /// missing file, wrong length or checksum), [`Error::CheckpointFileName`] for a manifest
    /// entry that would leave the checkpoint's directory, [`Error::Json`] for a corrupt
    /// manifest, [`Error::Io`] on read failures.
    pub fn load_latest(&self) -> Result<Option<(u64, CheckpointFiles)>> {
        // A shared lock keeps a concurrent save from pruning what `LATEST` names mid-read
        // (skipped where there is no lock file: nothing saved yet, or a read-only copy).
        let lock = File::open(self.root.join(LOCK)).ok();
        if let Some(lock) = &lock {
            lock.lock_shared()
                .map_err(|e| Error::io(self.root.join(LOCK), e))?;
        }
        let latest = self.root.join(LATEST);
        let name = match fs::read_to_string(&latest) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&latest, e)),
        };
        let name = name.trim();
        let step = step_of(name)
            .ok_or_else(|| Error::format(&latest, format!("names no checkpoint: {name:?}")))?;
        let dir = self.root.join(name);
        let manifest_path = dir.join(MANIFEST);
        let bytes = fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
            path: manifest_path.clone(),
            source: e,
        })?;
        let mut files = BTreeMap::new();
        for (name, (len, crc)) in manifest.files {
            check_file_name(&name, &manifest_path)?;
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
    fn a_crash_while_re_saving_the_latest_step_keeps_it_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let c = CheckpointDir::new(dir.path(), 2);
        c.save(5, &[("a.bin", vec![1; 8])]).unwrap();
        for stage in ["before_rename", "before_latest"] {
            CRASH_AT.with(|s| s.set(Some(stage)));
            assert!(c.save(5, &[("a.bin", vec![2; 8])]).is_err(), "{stage}");
            let (step, files) = c
                .load_latest()
                .unwrap_or_else(|e| panic!("crash {stage}: LATEST does not load: {e}"))
                .expect("a checkpoint was saved");
            assert_eq!((step, files["a.bin"].clone()), (5, vec![1; 8]), "{stage}");
        }
        c.save(5, &[("a.bin", vec![2; 8])]).unwrap();
        let (step, files) = c.load_latest().unwrap().unwrap();
        assert_eq!((step, files["a.bin"].clone()), (5, vec![2; 8]));
        let step_dirs = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("step-")
            })
            .count();
        assert_eq!(step_dirs, 1, "the replaced copy of step 5 is removed");
    }
    #[test]
    fn file_names_that_leave_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ck");
        let c = CheckpointDir::new(&root, 2);
        for bad in [
            "../x",
            "a/b",
            "/etc/passwd",
            "..",
            ".",
            "",
            "manifest.json",
            "a\\b",
        ] {
            assert!(
                matches!(
                    c.save(1, &[(bad, vec![1])]),
                    Err(Error::CheckpointFileName { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        assert!(matches!(
            c.save(1, &[("a", vec![1]), ("a", vec![2])]),
            Err(Error::CheckpointFileName { .. })
        ));
        assert!(!dir.path().join("x").exists(), "nothing is written outside");
        assert!(c.load_latest().unwrap().is_none(), "nothing was saved");
        // A hostile manifest naming a file outside the checkpoint, with a matching checksum.
        c.save(1, &[("a.bin", vec![1; 4])]).unwrap();
        let secret = b"outside";
        fs::write(dir.path().join("secret"), secret).unwrap();
        let latest = fs::read_to_string(root.join(LATEST)).unwrap();
        let manifest = format!(
            r#"{{"files": {{"../../secret": [{}, {}]}}}}"#,
            secret.len(),
            crc32fast::hash(secret)
        );
        fs::write(root.join(latest.trim()).join(MANIFEST), manifest).unwrap();
        assert!(matches!(
            c.load_latest(),
            Err(Error::CheckpointFileName { ref name, .. }) if name == "../../secret"
        ));
    }

    /// Two threads saving (and loading) in one directory, even the same step, never share a
    /// temporary and never see a partial checkpoint.
    #[test]
    fn two_threads_saving_one_step_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let c = CheckpointDir::new(dir.path(), 2);
        std::thread::scope(|s| {
            for t in 0..2u8 {
                let c = &c;
                s.spawn(move || {
                    for i in 0..30 {
                        let bytes = vec![t; 1000 + i];
                        c.save(7, &[("a.bin", bytes)])
                            .expect("a concurrent save failed");
                        let (step, files) = c.load_latest().unwrap().unwrap();
                        let a = &files["a.bin"];
                        assert_eq!(step, 7);
                        assert!(a.iter().all(|&b| b == a[0]), "a mixed file");
                    }
                });
            }
        });
        let step_dirs: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".lock") && n != LATEST)
            .collect();
        assert_eq!(step_dirs.len(), 1, "{step_dirs:?}");
    }

    #[test]
    fn directory_names_parse_to_their_step() {
        assert_eq!(step_of("step-0000000012"), Some(12));
        assert_eq!(step_of("step-0000000012.3"), Some(12));
        for bad in [
            "step-",
            "step-12.",
            "step-1x",
            "step-1.x",
            ".step-1.abc",
            "step-1/../x",
        ] {
            assert_eq!(step_of(bad), None, "{bad}");
        }
    }
}
