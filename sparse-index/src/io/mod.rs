//! Readers and writers: Seismic's binary format, JSONL with a vocabulary, results TSV.

mod jsonl;
mod seismic_format;
mod tsv;

pub use jsonl::{JsonlRecord, RecordId, read_jsonl, read_jsonl_with_vocabulary, write_jsonl};
pub use seismic_format::{read_seismic_bin, write_seismic_bin};
pub use tsv::{read_results_tsv, write_results_tsv};

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary sibling an atomic write of `path` goes through: `.<name>.tmp-<pid>` in the same
/// folder, so the final rename never crosses file systems.
///
/// # Errors
/// [`Error::Io`] if `path` has no file name.
pub(crate) fn temp_sibling(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("path has no file name")))?;
    Ok(path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Writes a file through `body` into a temporary sibling, then renames it over `path`.
pub(crate) fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_sibling(path)?;
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        body(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
