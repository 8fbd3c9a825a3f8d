//! Activations in a NumPy `.npy` file, memory-mapped and read in chunks.

use std::ops::Range;
use std::path::Path;

use super::mapped::{ElementType, MappedMatrix, map_file};
use super::rows::RowWindow;
use crate::{ActivationSource, Error, Result, SourcePosition};

/// A 2-D `.npy` array `[tokens, d_in]` (little-endian `f2`, `f4` or `f8`, C order; format versions
/// 1–3), memory-mapped and converted to `f32` one chunk at a time.
///
/// ```no_run
/// use sae_train::{ActivationSource, NpySource};
/// let source = NpySource::open("acts.npy")?;
/// println!("{} tokens of width {}", source.num_rows().unwrap(), source.d_in());
/// # Ok::<(), sae_train::Error>(())
/// ```
#[derive(Debug)]
pub struct NpySource {
    matrix: MappedMatrix,
    window: RowWindow,
}

/// The fields of an `.npy` header this reader needs.
struct NpyHeader {
    data_offset: usize,
    dtype: ElementType,
    shape: Vec<usize>,
}

fn parse_header(bytes: &[u8], path: &Path) -> Result<NpyHeader> {
    let bad = |reason: &str| Error::format(path, format!("not a valid .npy file: {reason}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start + len)
        .ok_or_else(|| bad("header runs past the end of the file"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(&format!("header lacks '{key}'")))?;
        let rest = &header[at + key.len() + 2..];
        let colon = rest.find(':').ok_or_else(|| bad("malformed header"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad("malformed descr"))?;
    let dtype = match descr {
        "<f2" => ElementType::F16,
        "<f4" => ElementType::F32,
        "<f8" => ElementType::F64,
        other => {
            return Err(Error::UnsupportedDtype {
                source_name: path.display().to_string(),
                found: other.to_string(),
                expected: "<f2, <f4, <f8".into(),
            });
        }
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(bad(
            "Fortran-ordered arrays are not read; save with C order",
        ));
    }
    let shape = field("shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("malformed shape"))?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("malformed shape")))
        .collect::<Result<Vec<_>>>()?;
    Ok(NpyHeader {
        data_offset: start + len,
        dtype,
        shape,
    })
}

impl NpySource {
    /// Opens the `.npy` file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Empty`] for an empty file or array, [`Error::Format`] for a corrupt,
    /// truncated or non-2-D array, [`Error::UnsupportedDtype`] for non-float arrays.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mmap = map_file(path)?;
        let header = parse_header(&mmap, path)?;
        let &[rows, cols] = header.shape.as_slice() else {
            return Err(Error::format(
                path,
                format!(
                    "array has shape {:?}, expected [tokens, d_in]",
                    header.shape
                ),
            ));
        };
        let matrix = MappedMatrix::new(
            path,
            mmap,
            header.data_offset,
            rows as u64,
            cols,
            header.dtype,
        )?;
        let window = RowWindow::full(matrix.rows);
        Ok(Self { matrix, window })
    }

    /// Restricts the source to rows `range` (token indices stay those of the file).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Empty`] for a range outside the array or an empty one.
    pub fn with_rows(mut self, range: Range<u64>) -> Result<Self> {
        self.window = RowWindow::select(self.matrix.rows, range, &self.name())?;
        Ok(self)
    }
}

impl ActivationSource for NpySource {
    fn d_in(&self) -> usize {
        self.matrix.cols
    }
    fn num_rows(&self) -> Option<u64> {
        Some(self.window.len())
    }
    fn name(&self) -> String {
        self.matrix.path.display().to_string()
    }
    fn position(&self) -> SourcePosition {
        self.window.position()
    }
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let name = self.name();
        self.window.seek(position, &name)
    }
    fn read(
        &mut self,
        max_rows: usize,
        values: &mut Vec<f32>,
        tokens: &mut Vec<u64>,
    ) -> Result<usize> {
        let name = self.name();
        let matrix = &self.matrix;
        self.window.read(max_rows, tokens, |range| {
            matrix.read_finite_rows(range, values, &name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes an `.npy` v1 file the way `numpy.save` does (header padded to 64 bytes).
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn reads_f32_and_f64() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
        std::fs::write(&p, npy("<f4", "(3, 2)", &data)).unwrap();
        let mut s = NpySource::open(&p).unwrap().with_rows(1..3).unwrap();
        let (mut v, mut t) = (vec![], vec![]);
        s.read(8, &mut v, &mut t).unwrap();
        assert_eq!(v, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(t, vec![1, 2]);
        let p = dir.path().join("b.npy");
        let data: Vec<u8> = (0..4).flat_map(|v| (v as f64).to_le_bytes()).collect();
        std::fs::write(&p, npy("<f8", "(2, 2)", &data)).unwrap();
        let mut s = NpySource::open(&p).unwrap();
        let (mut v, mut t) = (vec![], vec![]);
        s.read(8, &mut v, &mut t).unwrap();
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn bad_files_give_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(NpySource::open(&p), Err(Error::Empty { .. })));
        std::fs::write(&p, b"hello world, not numpy").unwrap();
        assert!(matches!(NpySource::open(&p), Err(Error::Format { .. })));
        std::fs::write(&p, npy("<f4", "(3, 2)", &[0u8; 20])).unwrap();
        assert!(matches!(NpySource::open(&p), Err(Error::Format { .. })));
        std::fs::write(&p, npy("<i4", "(1, 2)", &[0u8; 8])).unwrap();
        assert!(matches!(
            NpySource::open(&p),
            Err(Error::UnsupportedDtype { .. })
        ));
        std::fs::write(&p, npy("<f4", "(2,)", &[0u8; 8])).unwrap();
        assert!(matches!(NpySource::open(&p), Err(Error::Format { .. })));
        std::fs::write(&p, npy("<f4", "(0, 4)", &[])).unwrap();
        assert!(matches!(NpySource::open(&p), Err(Error::Empty { .. })));
    }
}
