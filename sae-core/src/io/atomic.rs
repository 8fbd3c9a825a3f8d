//! Crash-safe writes. A file goes through a temporary sibling with a random name (the
//! `tempfile` crate), fsynced, made world-readable like any data file (temporary files start
//! 0600), renamed over the target, then the directory fsynced so the rename survives a crash.
//! A folder (a SAELens SAE) is written complete under a temporary sibling name and becomes
//! visible in one step, so a reader sees the old folder or the new one, never new weights under
//! an old config.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs a directory so renames inside it survive a crash; filesystems that cannot sync a
/// directory are tolerated (the rename itself has happened).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` atomically (see the [module docs](self)).
///
/// # Errors
/// [`Error::Io`] naming the file that could not be created, written, synced or renamed.
#[cfg(test)]
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_of(path);
    let io = io_at(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(&io)?;
    tmp.write_all(bytes).map_err(&io)?;
    set_mode(tmp.path(), 0o644).map_err(&io)?;
    tmp.as_file().sync_all().map_err(&io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Writes the folder `dir` holding exactly `files` (name → bytes), replacing an existing folder
/// in one step. `owned` names the files of the folder's format that are never carried over
/// from the old folder even when the new one does not write them (a stale sparsity file).
///
/// The new folder is built as a hidden temporary sibling; other regular files already in `dir`
/// (a user's notes, files of another tool) are hard-linked into it so they survive, then the two
/// folders are exchanged atomically (`renameat2(RENAME_EXCHANGE)` on Linux) and the old one is
/// removed. Where the exchange is not available, the old folder is first renamed aside: a crash
/// in that short window leaves it under a hidden `.NAME.old*` sibling, never a mixed folder.
///
/// # Errors
/// [`Error::Io`] naming the path that failed; an existing `dir` that holds a sub-directory is
/// refused (`InvalidInput`) rather than moved.
pub(crate) fn write_folder_atomic(
    dir: &Path,
    files: &[(&str, &[u8])],
    owned: &[&str],
) -> Result<()> {
    let parent = parent_of(dir);
    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io_at(dir)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a folder path needs a final name",
            ))
        })?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempdir_in(parent)
        .map_err(io_at(parent))?;
    for (file, bytes) in files {
        let path = tmp.path().join(file);
        let mut f = std::fs::File::create(&path).map_err(io_at(&path))?;
        f.write_all(bytes).map_err(io_at(&path))?;
        set_mode(&path, 0o644).map_err(io_at(&path))?;
        f.sync_all().map_err(io_at(&path))?;
    }
    let exists = dir.is_dir();
    if exists {
        carry_over_foreign_files(dir, tmp.path(), owned)?;
    }
    set_mode(tmp.path(), 0o755).map_err(io_at(tmp.path()))?;
    sync_dir(tmp.path());
    let staged: PathBuf = tmp.keep();
    if !exists {
        std::fs::rename(&staged, dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&staged);
            io_at(dir)(e)
        })?;
    } else if exchange(&staged, dir).is_ok() {
        // `staged` now names the old folder.
        sync_dir(parent);
        std::fs::remove_dir_all(&staged).map_err(io_at(&staged))?;
    } else {
        let aside = tempfile::Builder::new()
            .prefix(&format!(".{name}.old"))
            .tempdir_in(parent)
            .map_err(io_at(parent))?
            .keep();
        std::fs::rename(dir, aside.join("folder")).map_err(io_at(dir))?;
        std::fs::rename(&staged, dir).map_err(io_at(dir))?;
        sync_dir(parent);
        std::fs::remove_dir_all(&aside).map_err(io_at(&aside))?;
    }
    sync_dir(parent);
    Ok(())
}

/// Hard-links every regular file of `old` not named in `owned` into `new`.
fn carry_over_foreign_files(old: &Path, new: &Path, owned: &[&str]) -> Result<()> {
    for entry in std::fs::read_dir(old).map_err(io_at(old))? {
        let entry = entry.map_err(io_at(old))?;
        let path = entry.path();
        let file_name = entry.file_name();
        if owned.iter().any(|n| file_name == *n) {
            continue;
        }
        let kind = entry.file_type().map_err(io_at(&path))?;
        if kind.is_dir() {
            return Err(io_at(&path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the SAE folder to replace holds a sub-directory; write the SAE elsewhere",
            )));
        }
        let target = new.join(&file_name);
        std::fs::hard_link(&path, &target)
            .or_else(|_| std::fs::copy(&path, &target).map(|_| ()))
            .map_err(io_at(&path))?;
    }
    Ok(())
}

/// Atomically swaps two directory entries.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call; AT_FDCWD
    // resolves relative paths against the working directory, as std's own rename does.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target file remains");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_path() {
        let err = write_atomic(Path::new("/nonexistent-dir-for-sae-core/cfg.json"), b"x");
        match err {
            Err(Error::Io { path, .. }) => assert!(path.ends_with("cfg.json")),
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    #[test]
    fn a_folder_is_replaced_whole_and_foreign_files_survive() {
        let root = tempfile::tempdir().unwrap();
        let sae = root.path().join("sae");
        write_folder_atomic(&sae, &[("a", b"1"), ("stale", b"old")], &["a", "stale"]).unwrap();
        std::fs::write(sae.join("notes.txt"), b"mine").unwrap();
        // The new folder has no "stale": it disappears; the user's notes stay.
        write_folder_atomic(&sae, &[("a", b"2")], &["a", "stale"]).unwrap();
        assert_eq!(std::fs::read(sae.join("a")).unwrap(), b"2");
        assert!(!sae.join("stale").exists());
        assert_eq!(std::fs::read(sae.join("notes.txt")).unwrap(), b"mine");
        let entries: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "no temporary sibling is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(sae.join("a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn a_folder_with_a_sub_directory_is_refused_untouched() {
        let root = tempfile::tempdir().unwrap();
        let sae = root.path().join("sae");
        write_folder_atomic(&sae, &[("a", b"1")], &["a"]).unwrap();
        std::fs::create_dir(sae.join("sub")).unwrap();
        assert!(matches!(
            write_folder_atomic(&sae, &[("a", b"2")], &["a"]),
            Err(Error::Io { .. })
        ));
        assert_eq!(std::fs::read(sae.join("a")).unwrap(), b"1");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
