//! Activations in a `.safetensors` file, memory-mapped and read in chunks.

use std::ops::Range;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::mapped::{ElementType, MappedMatrix, map_file};
use super::rows::RowWindow;
use crate::{ActivationSource, Error, Result, SourcePosition};

/// One 2-D tensor `[tokens, d_in]` of a safetensors file (`F32`, `F16`, `BF16` or `F64`),
/// memory-mapped: each [`read`](ActivationSource::read) converts only the rows it returns, so a
/// file larger than memory streams through.
///
/// Opening validates the header, the tensor's existence, rank, element type and that its bytes lie
/// inside the file (a truncated file is an [`Error::Format`]). The file must not be truncated by
/// another process while it is open (as for every memory-mapped reader).
///
/// ```no_run
/// use sae_train::{ActivationSource, SafetensorsSource};
/// let source = SafetensorsSource::open("acts.safetensors", "activations")?
///     .with_rows(0..14_336)?; // hold the rest out
/// assert_eq!(source.d_in(), 576);
/// # Ok::<(), sae_train::Error>(())
/// ```
#[derive(Debug)]
pub struct SafetensorsSource {
    matrix: MappedMatrix,
    tensor: String,
    window: RowWindow,
}

impl SafetensorsSource {
    /// Opens tensor `tensor` of the file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Empty`] for an empty file or tensor,
    /// [`Error::Format`] for a corrupt or truncated file, a missing tensor or a tensor that is not
    /// 2-D, [`Error::UnsupportedDtype`] for non-float tensors.
    pub fn open(path: impl AsRef<Path>, tensor: &str) -> Result<Self> {
        let path = path.as_ref();
        let mmap = map_file(path)?;
        let (header_len, metadata) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
        let info = metadata.info(tensor).ok_or_else(|| {
            let mut names: Vec<_> = metadata.tensors().keys().cloned().collect();
            names.sort();
            Error::format(
                path,
                format!("no tensor named {tensor:?} (tensors: {})", names.join(", ")),
            )
        })?;
        let dtype = match info.dtype {
            Dtype::F32 => ElementType::F32,
            Dtype::F16 => ElementType::F16,
            Dtype::BF16 => ElementType::Bf16,
            Dtype::F64 => ElementType::F64,
            other => {
                return Err(Error::UnsupportedDtype {
                    source_name: format!("{}:{tensor}", path.display()),
                    found: format!("{other:?}"),
                    expected: "F32, F16, BF16, F64".into(),
                });
            }
        };
        let &[rows, cols] = info.shape.as_slice() else {
            return Err(Error::format(
                path,
                format!(
                    "tensor {tensor:?} has shape {:?}, expected [tokens, d_in]",
                    info.shape
                ),
            ));
        };
        let offset = 8 + header_len + info.data_offsets.0;
        let matrix = MappedMatrix::new(path, mmap, offset, rows as u64, cols, dtype)?;
        let window = RowWindow::full(matrix.rows);
        Ok(Self {
            matrix,
            tensor: tensor.to_string(),
            window,
        })
    }

    /// Restricts the source to rows `range` of the tensor (e.g. a training or held-out split).
    /// Token indices stay those of the file, so position filters still see true positions.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Empty`] for a range outside the tensor or an empty one.
    pub fn with_rows(mut self, range: Range<u64>) -> Result<Self> {
        self.window = RowWindow::select(self.matrix.rows, range, &self.name())?;
        Ok(self)
    }
}

impl ActivationSource for SafetensorsSource {
    fn d_in(&self) -> usize {
        self.matrix.cols
    }
    fn num_rows(&self) -> Option<u64> {
        Some(self.window.len())
    }
    fn name(&self) -> String {
        format!("{}:{}", self.matrix.path.display(), self.tensor)
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
    use safetensors::tensor::TensorView;

    fn write(path: &Path, dtype: Dtype, shape: Vec<usize>, bytes: &[u8]) {
        let view = TensorView::new(dtype, shape, bytes).unwrap();
        safetensors::serialize_to_file([("acts", view)], None, path).unwrap();
    }

    #[test]
    fn reads_f16_rows_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.safetensors");
        let vals: Vec<half::f16> = (0..12).map(|v| half::f16::from_f32(v as f32)).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        write(&path, Dtype::F16, vec![4, 3], &bytes);
        let mut s = SafetensorsSource::open(&path, "acts").unwrap();
        assert_eq!((s.d_in(), s.num_rows()), (3, Some(4)));
        let (mut v, mut t) = (vec![], vec![]);
        assert_eq!(s.read(3, &mut v, &mut t).unwrap(), 3);
        assert_eq!(s.read(3, &mut v, &mut t).unwrap(), 1);
        assert_eq!(v, (0..12).map(|v| v as f32).collect::<Vec<_>>());
        assert_eq!(t, vec![0, 1, 2, 3]);
    }

    #[test]
    fn bad_files_give_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.safetensors");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            SafetensorsSource::open(&empty, "acts"),
            Err(Error::Empty { .. })
        ));
        let garbage = dir.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"not a safetensors file at all").unwrap();
        assert!(matches!(
            SafetensorsSource::open(&garbage, "acts"),
            Err(Error::Format { .. })
        ));
        let good = dir.path().join("good.safetensors");
        let bytes: Vec<u8> = [1.0f32, 2.0, f32::NAN, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write(&good, Dtype::F32, vec![2, 2], &bytes);
        assert!(matches!(
            SafetensorsSource::open(&good, "other"),
            Err(Error::Format { .. })
        ));
        let mut s = SafetensorsSource::open(&good, "acts").unwrap();
        let (mut v, mut t) = (vec![], vec![]);
        match s.read(2, &mut v, &mut t) {
            Err(Error::NonFinite { row, column, .. }) => assert_eq!((row, column), (1, 0)),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        // A truncated copy of a valid file.
        let full = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.safetensors");
        std::fs::write(&cut, &full[..full.len() - 3]).unwrap();
        assert!(matches!(
            SafetensorsSource::open(&cut, "acts"),
            Err(Error::Format { .. })
        ));
        let ints = dir.path().join("ints.safetensors");
        write(&ints, Dtype::I32, vec![1, 2], &[0u8; 8]);
        assert!(matches!(
            SafetensorsSource::open(&ints, "acts"),
            Err(Error::UnsupportedDtype { .. })
        ));
        let flat = dir.path().join("flat.safetensors");
        write(&flat, Dtype::F32, vec![2], &[0u8; 8]);
        assert!(matches!(
            SafetensorsSource::open(&flat, "acts"),
            Err(Error::Format { .. })
        ));
    }
}
