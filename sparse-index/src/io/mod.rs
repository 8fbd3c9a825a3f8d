//! Readers and writers: Seismic's binary format, JSONL with a vocabulary, results TSV.

mod jsonl;
mod seismic_format;
mod tsv;

pub use jsonl::{JsonlRecord, RecordId, read_jsonl, read_jsonl_with_vocabulary, write_jsonl};
pub use seismic_format::{read_seismic_bin, write_seismic_bin};
pub use tsv::{read_results_tsv, write_results_tsv};

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a file through `body`, atomically — the workspace's one discipline (ARCHITECTURE.md
/// "Crash safety"): a temporary sibling with a random name (the `tempfile` crate, so concurrent
/// writers of one target never share it) in the same folder (the rename never crosses file
/// systems), fsynced, made readable like any data file (0644; temporaries start 0600), renamed
/// over `path`, then the folder fsynced so the rename survives a crash. A reader sees the old
/// file or the new one, never a mix; on an error the temporary is removed.
///
/// # Errors
/// [`Error::Io`] naming `path` when the temporary cannot be created, written (including an error
/// of `body`), synced or renamed.
pub(crate) fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("path has no file name")))?;
    let io = |e| Error::io(path, e);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    let mut w = BufWriter::new(tmp.as_file().try_clone().map_err(io)?);
    body(&mut w).map_err(io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    drop(file);
    tmp.persist(path).map_err(|e| io(e.error))?;
    if let Ok(d) = File::open(dir) {
        // Not every filesystem can sync a directory; the rename itself has happened.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Two threads replacing one file never share a temporary: every write succeeds and the
    /// file always holds one writer's bytes whole.
    #[test]
    fn two_threads_writing_one_target_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shared.bin");
        let contents = [vec![1u8; 64 << 10], vec![2u8; 48 << 10]];
        let all = &contents;
        std::thread::scope(|s| {
            for bytes in all {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..200 {
                        write_atomically(p, |w| w.write_all(bytes))
                            .expect("a concurrent write failed");
                        let now = std::fs::read(p).unwrap();
                        assert!(all.contains(&now), "a mixed file of {} bytes", now.len());
                    }
                });
            }
        });
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_body_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.tsv");
        write_atomically(&p, |w| w.write_all(b"old")).unwrap();
        let e = write_atomically(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(matches!(e, Err(Error::Io { ref path, .. }) if path == &p));
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o644, 0o644, "readable like any data file: {mode:o}");
        }
    }
}
