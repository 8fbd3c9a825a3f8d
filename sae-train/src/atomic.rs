//! The one way this crate writes a file (the workspace's discipline, ARCHITECTURE.md "Crash
//! safety"): a temporary sibling with a random name (the `tempfile` crate, so two writers of one
//! target never share a temporary), fsynced, made world-readable like any data file (temporary
//! files start 0600), renamed over the target, then the directory fsynced so the rename
//! survives a crash. A reader sees the old file or the new one, never a mix.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// The directory `path` lives in (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a directory's entries (a rename, a new file) to disk. Filesystems that cannot sync a
/// directory are tolerated: the change itself has happened.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Makes `file` readable by everyone (0644 on Unix), like any data file.
pub(crate) fn make_readable(file: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary sibling with a random name, fsynced, renamed
/// over `path`, the directory fsynced. A crash leaves either the old file or the new one, never
/// a mix; concurrent writers of one path each replace it whole (the last rename wins).
///
/// # Errors
/// [`Error::Io`] naming the file if the temporary cannot be created, written, synced or
/// renamed (the temporary is removed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let io = |e| Error::io(path, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    make_readable(tmp.as_file()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    sync_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
        assert!(matches!(
            write_atomic(&dir.path().join("no/such/dir/x"), b"x"),
            Err(Error::Io { .. })
        ));
    }

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
                        write_atomic(p, bytes).expect("a concurrent write failed");
                        let now = std::fs::read(p).unwrap();
                        assert!(all.contains(&now), "a mixed file of {} bytes", now.len());
                    }
                });
            }
        });
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
