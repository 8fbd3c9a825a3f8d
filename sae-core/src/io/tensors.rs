//! Named `f32` tensors on the host, and reading / writing them as safetensors files.
//!
//! Reading accepts `F32`, `F16`, `BF16` and `F64` tensors and converts them to `f32` (`F64`
//! values outside the `f32` range become infinite and are then rejected as non-finite). Every
//! value is checked to be finite. Files of 1 MiB or more are memory-mapped. Writing always
//! produces little-endian `F32` tensors, atomically.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView, View};

#[cfg(test)]
use super::atomic::write_atomic;
use crate::{Error, Result};

/// Files at least this large are memory-mapped rather than read into memory.
const MMAP_THRESHOLD: u64 = 1 << 20;

/// A dense `f32` tensor held on the host: a shape and its row-major values.
///
/// ```
/// use sae_core::io::HostTensor;
///
/// let t = HostTensor::new(vec![2, 3], vec![0.0; 6]);
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.len(), 6);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl HostTensor {
    /// A tensor of the given shape and row-major values (a `[]` shape is a scalar of one value).
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        let n: usize = shape.iter().product();
        assert_eq!(
            n,
            data.len(),
            "HostTensor::new: shape {shape:?} holds {n} values, found {}",
            data.len()
        );
        Self { shape, data }
    }

    /// A one-value tensor of shape `[]`.
    pub fn scalar(value: f32) -> Self {
        Self::new(Vec::new(), vec![value])
    }

    /// Reads a tensor of any device and float dtype back to the host as `f32`.
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let data = tensor.into_data().iter::<f32>().collect();
        Self::new(shape, data)
    }

    /// The tensor on `device` (a `[]` scalar becomes `[1]` when `D = 1`).
    ///
    /// # Panics
    /// If the rank is not `D` (callers check shapes first).
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        let shape: Vec<usize> = if self.shape.is_empty() && D == 1 {
            vec![1]
        } else {
            self.shape.clone()
        };
        assert_eq!(
            shape.len(),
            D,
            "HostTensor::to_tensor: rank {} requested for shape {:?}",
            D,
            self.shape
        );
        Tensor::from_data(TensorData::new(self.data.clone(), shape), device)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The row-major values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no value.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values, consuming the tensor.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The first non-finite value as `(flat index, value)`, if any.
    pub fn first_non_finite(&self) -> Option<(usize, f32)> {
        self.data
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
            .map(|(i, &v)| (i, v))
    }
}

/// Named host tensors, ordered by name.
pub type TensorSet = BTreeMap<String, HostTensor>;

/// The bytes of a file: read into memory, or memory-mapped when large.
enum FileBytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(v) => v,
            FileBytes::Mapped(m) => m,
        }
    }
}

fn read_bytes(path: &Path) -> Result<FileBytes> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < MMAP_THRESHOLD {
        return std::fs::read(path).map(FileBytes::Owned).map_err(io);
    }
    // SAFETY: the map is read-only and dropped before this function's caller returns. As with
    // every memory-mapped reader (safetensors, candle), another process truncating the file
    // while it is being read is outside what this crate can guard against.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    Ok(FileBytes::Mapped(map))
}

/// A parsed safetensors file: float tensors as `f32`, plus the integer tensors asked for.
pub(crate) struct ReadTensors {
    /// The float tensors.
    pub floats: TensorSet,
    /// Integer tensors (shape, values), for the names the caller asked to read as integers.
    pub integers: BTreeMap<String, (Vec<usize>, Vec<i64>)>,
}

/// Reads every tensor of a safetensors file: those named in `integer_names` as integers, all
/// others as finite floats.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Safetensors`] if it is truncated or its
/// header is corrupt; [`Error::UnsupportedDtype`] for a non-float tensor not asked for as an
/// integer; [`Error::NonFinite`] for a NaN or infinite value; [`Error::CorruptFile`] for an
/// integer tensor holding a non-integral value.
pub(crate) fn read_safetensors(path: &Path, integer_names: &[&str]) -> Result<ReadTensors> {
    let bytes = read_bytes(path)?;
    let parsed = SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    let mut floats = TensorSet::new();
    let mut integers = BTreeMap::new();
    for (name, view) in parsed.iter() {
        if integer_names.contains(&name) {
            integers.insert(name.to_string(), read_integer(path, name, &view)?);
        } else {
            floats.insert(name.to_string(), read_float(path, name, &view)?);
        }
    }
    Ok(ReadTensors { floats, integers })
}

fn unsupported(path: &Path, name: &str, dtype: Dtype) -> Error {
    Error::UnsupportedDtype {
        path: path.to_path_buf(),
        name: name.to_string(),
        dtype: format!("{dtype:?}"),
    }
}

fn read_float(path: &Path, name: &str, view: &TensorView<'_>) -> Result<HostTensor> {
    let bytes = view.data();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32)
            .collect(),
        other => return Err(unsupported(path, name, other)),
    };
    let tensor = HostTensor::new(view.shape().to_vec(), data);
    if let Some((index, value)) = tensor.first_non_finite() {
        return Err(Error::NonFinite {
            path: path.to_path_buf(),
            name: name.to_string(),
            index,
            value,
        });
    }
    Ok(tensor)
}

fn read_integer(path: &Path, name: &str, view: &TensorView<'_>) -> Result<(Vec<usize>, Vec<i64>)> {
    let bytes = view.data();
    let values: Vec<i64> = match view.dtype() {
        Dtype::I64 => bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8-byte chunk")))
            .collect(),
        Dtype::I32 => bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4-byte chunk")) as i64)
            .collect(),
        Dtype::I16 => bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as i64)
            .collect(),
        Dtype::I8 => bytes.iter().map(|&b| b as i8 as i64).collect(),
        Dtype::U8 => bytes.iter().map(|&b| b as i64).collect(),
        Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 => {
            let floats = read_float(path, name, view)?;
            let mut out = Vec::with_capacity(floats.len());
            for (i, &v) in floats.data().iter().enumerate() {
                if v.fract() != 0.0 {
                    return Err(Error::CorruptFile {
                        path: path.to_path_buf(),
                        reason: format!(
                            "tensor `{name}` should hold integers, found {v} at index {i}"
                        ),
                    });
                }
                out.push(v as i64);
            }
            out
        }
        other => return Err(unsupported(path, name, other)),
    };
    Ok((view.shape().to_vec(), values))
}

/// A host tensor seen through safetensors' [`View`], as little-endian `F32`.
struct F32View<'a> {
    tensor: &'a HostTensor,
}

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.tensor.shape()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let mut bytes = Vec::with_capacity(self.data_len());
        for v in self.tensor.data() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Cow::Owned(bytes)
    }
    fn data_len(&self) -> usize {
        self.tensor.len() * 4
    }
}

/// Writes `tensors` (as `F32`) and `metadata` to a safetensors file, atomically.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
#[cfg(test)]
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &TensorSet,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    write_atomic(path, &safetensors_bytes(path, tensors, metadata)?)
}

/// The safetensors file of `tensors` as bytes (`path` names it in errors).
///
/// # Errors
/// [`Error::Safetensors`] if serialisation fails.
pub(crate) fn safetensors_bytes(
    path: &Path,
    tensors: &TensorSet,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, tensor)| (name.as_str(), F32View { tensor }));
    let metadata = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let bytes = safetensors::serialize(views, metadata).map_err(|source| Error::Safetensors {
        path: PathBuf::from(path),
        source,
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[(&str, HostTensor)]) -> TensorSet {
        entries
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect()
    }

    #[test]
    fn write_then_read_is_bit_exact_including_scalars_and_signed_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let odd = [f32::MIN_POSITIVE, -0.0, 1e-40, f32::MAX, -3.25, 7.0];
        let tensors = set(&[
            ("W", HostTensor::new(vec![2, 3], odd.to_vec())),
            ("s", HostTensor::scalar(0.125)),
        ]);
        let meta = BTreeMap::from([("producer".to_string(), "sae-core".to_string())]);
        write_safetensors(&path, &tensors, &meta).unwrap();
        let read = read_safetensors(&path, &[]).unwrap();
        let header = std::fs::read(&path).unwrap();
        let (_, parsed) = SafeTensors::read_metadata(&header).unwrap();
        assert_eq!(parsed.metadata().as_ref().unwrap()["producer"], "sae-core");
        for (name, t) in &tensors {
            let r = &read.floats[name];
            assert_eq!(r.shape(), t.shape());
            let bits = |x: &HostTensor| x.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(r), bits(t));
        }
    }

    #[test]
    fn large_files_are_memory_mapped_and_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.safetensors");
        let n = 300_000; // 1.2 MB of f32: above the mmap threshold
        let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let tensors = set(&[("big", HostTensor::new(vec![n], values.clone()))]);
        write_safetensors(&path, &tensors, &BTreeMap::new()).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() >= MMAP_THRESHOLD);
        let read = read_safetensors(&path, &[]).unwrap();
        assert_eq!(read.floats["big"].data(), &values[..]);
    }

    #[test]
    fn host_tensors_round_trip_through_burn() {
        let device = crate::test_device();
        let t = HostTensor::new(vec![2, 2], vec![1.0, -2.0, 3.5, 0.0]);
        let back = HostTensor::from_tensor(t.to_tensor::<2>(&device));
        assert_eq!(back, t);
        let s = HostTensor::scalar(4.0);
        assert_eq!(s.to_tensor::<1>(&device).dims(), [1]);
    }
}
