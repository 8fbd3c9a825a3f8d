//! What every Hugging Face folder loader shares: reading `config.json`, and finding the weight
//! files (`model.safetensors`, or the shards a `model.safetensors.index.json` names).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Reads a JSON file.
///
/// # Errors
/// [`Error::Io`], [`Error::Json`].
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// The weight files of a folder: `model.safetensors` when present, else the shards of
/// `model.safetensors.index.json` in first-appearance order. Shard names must be plain file
/// names (a hostile index cannot point outside the folder) and must exist.
///
/// # Errors
/// [`Error::Io`] when neither file exists or a shard is missing; [`Error::Json`] /
/// [`Error::BadInput`] for a malformed index.
pub(crate) fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    if single.exists() {
        return Ok(vec![single]);
    }
    if !index.exists() {
        return Err(Error::io(
            &single,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither model.safetensors nor model.safetensors.index.json is in the folder",
            ),
        ));
    }
    let value = read_json(&index)?;
    let bad = |reason: String| Error::BadInput {
        path: index.clone(),
        reason,
    };
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("expected an object `weight_map` (tensor name → shard file)".into()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            bad(format!(
                "`weight_map.{tensor}` must be a file name, found {file}"
            ))
        })?;
        if file.is_empty() || file.contains(['/', '\\']) || file == ".." || file == "." {
            return Err(bad(format!("shard name `{file}` is not a plain file name")));
        }
        let path = dir.join(file);
        if !path.exists() {
            return Err(Error::io(
                &path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        if !files.contains(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_shard_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("model.safetensors.index.json");
        std::fs::write(&index, r#"{"weight_map": {"a": "../escape.safetensors"}}"#).unwrap();
        let err = weight_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a plain file name"), "{err}");
        std::fs::write(
            &index,
            r#"{"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}}"#,
        )
        .unwrap();
        assert!(matches!(weight_files(dir.path()), Err(Error::Io { .. })));
        std::fs::write(dir.path().join("s1.safetensors"), b"").unwrap();
        assert_eq!(weight_files(dir.path()).unwrap().len(), 1);
        std::fs::write(&index, "[]").unwrap();
        assert!(matches!(
            weight_files(dir.path()),
            Err(Error::BadInput { .. })
        ));
        std::fs::remove_file(&index).unwrap();
        assert!(matches!(weight_files(dir.path()), Err(Error::Io { .. })));
    }
}
