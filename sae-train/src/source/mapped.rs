//! A row-major matrix inside a memory-mapped file: the shared reader of the safetensors and
//! `.npy` sources. Only the pages of the rows asked for are touched.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::{Error, Result, check_finite};

/// Element types the file sources read (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElementType {
    F16,
    Bf16,
    F32,
    F64,
}

impl ElementType {
    pub fn size(self) -> usize {
        match self {
            ElementType::F16 | ElementType::Bf16 => 2,
            ElementType::F32 => 4,
            ElementType::F64 => 8,
        }
    }
}

/// A `[rows, cols]` matrix of `dtype` starting at byte `offset` of a mapped file.
#[derive(Debug)]
pub(crate) struct MappedMatrix {
    pub path: PathBuf,
    mmap: Mmap,
    offset: usize,
    pub rows: u64,
    pub cols: usize,
    dtype: ElementType,
}

/// Maps `path` read-only.
pub(crate) fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::Empty {
            source_name: path.display().to_string(),
        });
    }
    // SAFETY: the map is read-only; like every memory-mapped reader we rely on the file not being
    // truncated by another process while it is open (documented on the file sources).
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

impl MappedMatrix {
    /// Checks that the matrix fits in the file and is not empty.
    pub fn new(
        path: &Path,
        mmap: Mmap,
        offset: usize,
        rows: u64,
        cols: usize,
        dtype: ElementType,
    ) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty {
                source_name: path.display().to_string(),
            });
        }
        let needed = (rows as usize)
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| n.checked_add(offset));
        match needed {
            Some(end) if end <= mmap.len() => {}
            _ => {
                return Err(Error::format(
                    path,
                    format!(
                        "truncated: a [{rows}, {cols}] {dtype:?} matrix at byte {offset} needs more \
                         than the file's {} bytes",
                        mmap.len()
                    ),
                ));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            offset,
            rows,
            cols,
            dtype,
        })
    }

    /// Appends rows `range` as `f32` to `out` and checks that they are finite (an error names
    /// `source_name` and the row's index in the file).
    pub fn read_finite_rows(
        &self,
        range: Range<u64>,
        out: &mut Vec<f32>,
        source_name: &str,
    ) -> Result<()> {
        let start = out.len();
        let first_row = range.start;
        self.read_rows(range, out);
        check_finite(source_name, &out[start..], self.cols, first_row)
    }

    /// Appends rows `range` as `f32` to `out`.
    fn read_rows(&self, range: Range<u64>, out: &mut Vec<f32>) {
        let size = self.dtype.size();
        let row_bytes = self.cols * size;
        let from = self.offset + range.start as usize * row_bytes;
        let to = self.offset + range.end as usize * row_bytes;
        let bytes = &self.mmap[from..to];
        out.reserve(bytes.len() / size);
        match self.dtype {
            ElementType::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            ElementType::F64 => out.extend(bytes.chunks_exact(8).map(|b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            })),
            ElementType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            ElementType::Bf16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
        }
    }
}
