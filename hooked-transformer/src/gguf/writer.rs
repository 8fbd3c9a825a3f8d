//! [`GgufWriter`]: builds valid GGUF v3 files (metadata of every type, tensors in F32, F16,
//! BF16, Q8_0, Q4_0 and Q4_1 or as raw bytes of any ggml type) and writes them atomically.

use std::collections::HashSet;
use std::path::Path;

use super::error::GgufError;
use super::file::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS};
use super::quantize::quantize;
use super::types::GgmlType;
use super::value::{MAX_ARRAY_NESTING, MetadataValue, encode_string};

/// A tensor queued for writing.
struct PendingTensor {
    name: String,
    ggml_dims: Vec<u64>,
    ty: GgmlType,
    bytes: Vec<u8>,
}

/// Builds a GGUF v3 file in memory: metadata in insertion order, tensors in insertion order,
/// each tensor's data aligned to the file's alignment (`general.alignment`, default 32) and
/// padded with zeros, exactly as gguf-py lays files out.
///
/// Everything is validated when it is added (duplicate keys and names, `general.alignment`
/// type and value, shapes, block sizes, data lengths), so [`to_bytes`](Self::to_bytes) cannot
/// fail and every file it produces parses with [`GgufFile`](super::GgufFile).
///
/// ```
/// use hooked_transformer::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tiny.gguf");
/// let mut w = GgufWriter::new();
/// w.set_alignment(64)?;
/// w.add_metadata("general.architecture", MetadataValue::String("llama".into()))?;
/// let x: Vec<f32> = (0..96).map(|i| (i as f32 * 0.37).sin()).collect();
/// w.add_tensor("token_embd.weight", &[3, 32], GgmlType::Q8_0, &x)?;
/// w.write(&path).unwrap();
///
/// let file = GgufFile::open(&path).unwrap();
/// assert_eq!(file.alignment(), 64);
/// let (shape, y) = file.tensor_f32("token_embd.weight")?.unwrap();
/// assert_eq!(shape, [3, 32]);
/// assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.01));
/// # Ok::<(), hooked_transformer::gguf::GgufError>(())
/// ```
pub struct GgufWriter {
    alignment: u64,
    metadata: Vec<(String, MetadataValue)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty writer (no metadata, no tensors, alignment 32).
    pub fn new() -> Self {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// Sets the data alignment by adding `general.alignment` as a UINT32.
    ///
    /// # Errors
    /// [`GgufError::Alignment`] if `alignment` is not a power of two,
    /// [`GgufError::DuplicateKey`] if `general.alignment` was already added.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<&mut Self, GgufError> {
        self.add_metadata("general.alignment", MetadataValue::U32(alignment))
    }

    /// Adds a metadata entry. `general.alignment` must be a power-of-two UINT32 and sets the
    /// alignment of the tensor data.
    ///
    /// # Errors
    /// [`GgufError::DuplicateKey`] for a key added before; [`GgufError::AlignmentType`] /
    /// [`GgufError::Alignment`] for a bad `general.alignment`;
    /// [`GgufError::NestingTooDeep`] for arrays nested deeper than the reader accepts.
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: MetadataValue,
    ) -> Result<&mut Self, GgufError> {
        let key = key.into();
        if self.keys.contains(&key) {
            return Err(GgufError::DuplicateKey { key });
        }
        if let MetadataValue::Array(a) = &value
            && a.depth() > MAX_ARRAY_NESTING
        {
            return Err(GgufError::NestingTooDeep {
                key,
                offset: 0,
                limit: MAX_ARRAY_NESTING,
            });
        }
        if key == "general.alignment" {
            match value {
                MetadataValue::U32(a) if a.is_power_of_two() => self.alignment = u64::from(a),
                MetadataValue::U32(a) => {
                    return Err(GgufError::Alignment {
                        alignment: u64::from(a),
                    });
                }
                ref other => {
                    return Err(GgufError::AlignmentType {
                        found: other.value_type(),
                    });
                }
            }
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(self)
    }

    /// Adds a tensor of PyTorch row-major `shape` (at most 4 dimensions, the last a multiple of
    /// `ty`'s block size) from `f32` values in row-major order, converted to `ty` (F32, F16,
    /// BF16, or quantised to Q8_0, Q4_0, Q4_1 with ggml's reference quantisers, see
    /// [`quantize`](super::quantize)). The file stores the dimensions reversed (ggml order).
    ///
    /// # Errors
    /// [`GgufError::DuplicateTensor`], [`GgufError::TooManyDims`], [`GgufError::PartialBlock`],
    /// [`GgufError::DimsOverflow`], [`GgufError::LengthMismatch`] (`data.len()` ≠ the shape's
    /// element count), [`GgufError::UnsupportedType`], [`GgufError::NonFinite`] (a NaN or
    /// infinity to quantise).
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        ty: GgmlType,
        data: &[f32],
    ) -> Result<&mut Self, GgufError> {
        let name = name.into();
        if !ty.is_supported() {
            return Err(GgufError::UnsupportedType { tensor: name, ty });
        }
        let ggml_dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let n_elements = self.check_tensor(&name, &ggml_dims, ty)?.0;
        if data.len() as u64 != n_elements {
            return Err(GgufError::LengthMismatch {
                tensor: name,
                what: "element count",
                expected: n_elements,
                found: data.len() as u64,
            });
        }
        let bytes = quantize(&name, ty, data)?;
        self.push(name, ggml_dims, ty, bytes);
        Ok(self)
    }

    /// Adds a tensor as raw bytes of any known ggml type (a k-quant, an integer type, ...),
    /// with dimensions in ggml order (`ne[0]` first).
    ///
    /// # Errors
    /// [`GgufError::DuplicateTensor`], [`GgufError::TooManyDims`], [`GgufError::PartialBlock`],
    /// [`GgufError::DimsOverflow`], [`GgufError::LengthMismatch`] (`bytes.len()` ≠ the size the
    /// dimensions and type imply).
    pub fn add_tensor_bytes(
        &mut self,
        name: impl Into<String>,
        ggml_dims: &[u64],
        ty: GgmlType,
        bytes: Vec<u8>,
    ) -> Result<&mut Self, GgufError> {
        let name = name.into();
        let n_bytes = self.check_tensor(&name, ggml_dims, ty)?.1;
        if bytes.len() as u64 != n_bytes {
            return Err(GgufError::LengthMismatch {
                tensor: name,
                what: "byte count",
                expected: n_bytes,
                found: bytes.len() as u64,
            });
        }
        self.push(name, ggml_dims.to_vec(), ty, bytes);
        Ok(self)
    }

    /// Checks name, rank, block size and overflow; returns `(elements, bytes)`.
    fn check_tensor(
        &self,
        name: &str,
        ggml_dims: &[u64],
        ty: GgmlType,
    ) -> Result<(u64, u64), GgufError> {
        if self.names.contains(name) {
            return Err(GgufError::DuplicateTensor {
                tensor: name.to_owned(),
            });
        }
        if ggml_dims.len() > MAX_DIMS as usize {
            return Err(GgufError::TooManyDims {
                tensor: name.to_owned(),
                n_dims: u32::try_from(ggml_dims.len()).unwrap_or(u32::MAX),
            });
        }
        let ne0 = ggml_dims.first().copied().unwrap_or(1);
        if !ne0.is_multiple_of(ty.block_size()) {
            return Err(GgufError::PartialBlock {
                tensor: name.to_owned(),
                ty,
                ne0,
                block_size: ty.block_size(),
            });
        }
        let overflow = || GgufError::DimsOverflow {
            tensor: name.to_owned(),
            ggml_dims: ggml_dims.to_vec(),
        };
        let elements = ggml_dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(overflow)?;
        let bytes = ggml_dims
            .iter()
            .skip(1)
            .try_fold(ty.row_bytes(ne0).ok_or_else(overflow)?, |a, &d| {
                a.checked_mul(d)
            })
            .ok_or_else(overflow)?;
        Ok((elements, bytes))
    }

    fn push(&mut self, name: String, ggml_dims: Vec<u64>, ty: GgmlType, bytes: Vec<u8>) {
        self.names.insert(name.clone());
        self.tensors.push(PendingTensor {
            name,
            ggml_dims,
            ty,
            bytes,
        });
    }

    /// The number of tensors added so far.
    pub fn n_tensors(&self) -> usize {
        self.tensors.len()
    }

    /// The complete file: header (version 3), metadata, tensor infos with offsets laid out in
    /// insertion order, zero padding to the alignment, tensor data (each padded to the
    /// alignment).
    pub fn to_bytes(&self) -> Vec<u8> {
        let a = self.alignment;
        let padded = |n: u64| n.next_multiple_of(a);
        let mut out = Vec::new();
        out.extend(GGUF_MAGIC);
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            encode_string(key, &mut out);
            out.extend(value.value_type().tag().to_le_bytes());
            value.encode(&mut out);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            encode_string(&t.name, &mut out);
            out.extend((t.ggml_dims.len() as u32).to_le_bytes());
            for d in &t.ggml_dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ty.id().to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset += padded(t.bytes.len() as u64);
        }
        out.resize(padded(out.len() as u64) as usize, 0);
        for t in &self.tensors {
            out.extend_from_slice(&t.bytes);
            out.resize(padded(out.len() as u64) as usize, 0);
        }
        out
    }

    /// Writes the file to `path` atomically (temporary sibling, fsync, rename, directory
    /// fsync).
    ///
    /// # Errors
    /// [`crate::Error::Io`] if the temporary file cannot be created, written or renamed.
    pub fn write(&self, path: impl AsRef<Path>) -> crate::Result<()> {
        crate::atomic::write_atomic(path.as_ref(), &self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;
    use crate::gguf::value::{MetadataArray, ValueType};

    #[test]
    fn validation_happens_when_adding() {
        let mut w = GgufWriter::new();
        w.add_metadata("a", MetadataValue::U8(1)).unwrap();
        assert_eq!(
            w.add_metadata("a", MetadataValue::U8(2)).err(),
            Some(GgufError::DuplicateKey { key: "a".into() })
        );
        assert_eq!(
            w.set_alignment(24).err(),
            Some(GgufError::Alignment { alignment: 24 })
        );
        assert_eq!(
            w.add_metadata("general.alignment", MetadataValue::U64(32))
                .err(),
            Some(GgufError::AlignmentType {
                found: ValueType::U64
            })
        );
        w.add_tensor("t", &[2, 32], GgmlType::Q4_0, &[0.0; 64])
            .unwrap();
        assert!(matches!(
            w.add_tensor("t", &[32], GgmlType::F32, &[0.0; 32]),
            Err(GgufError::DuplicateTensor { .. })
        ));
        assert!(matches!(
            w.add_tensor("u", &[2, 31], GgmlType::Q4_0, &[0.0; 62]),
            Err(GgufError::PartialBlock {
                ne0: 31,
                block_size: 32,
                ..
            })
        ));
        assert!(matches!(
            w.add_tensor("u", &[1, 1, 1, 1, 1], GgmlType::F32, &[0.0]),
            Err(GgufError::TooManyDims { n_dims: 5, .. })
        ));
        assert!(matches!(
            w.add_tensor("u", &[3], GgmlType::F32, &[0.0; 2]),
            Err(GgufError::LengthMismatch {
                expected: 3,
                found: 2,
                ..
            })
        ));
        assert!(matches!(
            w.add_tensor("u", &[256], GgmlType::Q4_K, &[0.0; 256]),
            Err(GgufError::UnsupportedType {
                ty: GgmlType::Q4_K,
                ..
            })
        ));
        assert!(matches!(
            w.add_tensor_bytes("u", &[256], GgmlType::Q4_K, vec![0; 143]),
            Err(GgufError::LengthMismatch {
                expected: 144,
                found: 143,
                ..
            })
        ));
        assert!(matches!(
            w.add_tensor_bytes("u", &[u64::MAX, 2], GgmlType::F32, vec![]),
            Err(GgufError::DimsOverflow { .. })
        ));
        let mut deep = MetadataArray::U8(vec![]);
        for _ in 0..MAX_ARRAY_NESTING {
            deep = MetadataArray::Array(vec![deep]);
        }
        assert!(matches!(
            w.add_metadata("deep", MetadataValue::Array(deep)),
            Err(GgufError::NestingTooDeep { .. })
        ));
        assert_eq!(w.n_tensors(), 1);
    }

    #[test]
    fn layout_is_aligned_and_padded() {
        let mut w = GgufWriter::new();
        w.set_alignment(128).unwrap();
        w.add_tensor("a", &[3], GgmlType::F32, &[1.0, 2.0, 3.0])
            .unwrap();
        w.add_tensor("b", &[32], GgmlType::Q4_1, &[0.5; 32])
            .unwrap();
        let bytes = w.to_bytes();
        assert_eq!(bytes.len() % 128, 0);
        let f = GgufFile::from_bytes(bytes).unwrap();
        assert_eq!(f.data_start() % 128, 0);
        assert_eq!(f.tensors()[0].offset, 0);
        assert_eq!(f.tensors()[1].offset, 128);
        assert_eq!(f.tensor_bytes(&f.tensors()[1]).len(), 20);
    }

    #[test]
    fn write_is_atomic_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, b"old").unwrap();
        let mut w = GgufWriter::new();
        w.add_metadata("general.name", MetadataValue::String("x".into()))
            .unwrap();
        w.write(&path).unwrap();
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(
            f.get("general.name").and_then(MetadataValue::as_str),
            Some("x")
        );
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = w.write(dir.path().join("missing/dir/m.gguf")).unwrap_err();
        assert!(matches!(err, crate::Error::Io { .. }), "{err}");
    }
}
