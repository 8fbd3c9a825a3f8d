//! [`GgufFile`]: a parsed, validated GGUF v2/v3 file, its metadata, tensor table and tensor
//! bytes (memory-mapped or owned).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::cursor::Cursor;
use super::dequant::dequantize;
use super::error::GgufError;
use super::types::GgmlType;
use super::value::{MetadataValue, ValueType};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// At most this many dimensions per tensor (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// One entry of a GGUF file's tensor table.
///
/// `ggml_dims` is in ggml order, `ne[0]` (the contiguous dimension) first; [`shape`](Self::shape)
/// reverses it into the PyTorch row-major shape, in which the tensor's bytes are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The dimensions in ggml order, fastest-varying first.
    pub ggml_dims: Vec<u64>,
    /// The storage type.
    pub ty: GgmlType,
    /// The offset of its first byte from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The shape in PyTorch row-major order (`ggml_dims` reversed): `token_embd.weight` with
    /// `ne = [576, 49152]` has shape `[49152, 576]`.
    ///
    /// Dimensions of a [`TensorInfo`] from a [`GgufFile`] always fit `usize`; a hand-built one
    /// with larger dimensions saturates at `usize::MAX`.
    pub fn shape(&self) -> Vec<usize> {
        self.ggml_dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect()
    }

    /// The number of elements (the product of the dimensions; 1 for zero dimensions).
    ///
    /// Never overflows for a [`TensorInfo`] from a [`GgufFile`]; a hand-built one saturates at
    /// `u64::MAX`.
    pub fn n_elements(&self) -> u64 {
        checked_elements(&self.ggml_dims).unwrap_or(u64::MAX)
    }

    /// The size of its data in bytes: `ne[0] / block_size · type_size · ne[1] · ne[2] · ne[3]`.
    ///
    /// Exact for a [`TensorInfo`] from a [`GgufFile`]; a hand-built one whose size overflows or
    /// whose `ne[0]` is not a multiple of the block size saturates at `u64::MAX`.
    pub fn n_bytes(&self) -> u64 {
        checked_bytes(self.ty, &self.ggml_dims).unwrap_or(u64::MAX)
    }
}

/// The product of `dims`, or `None` on overflow.
fn checked_elements(dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// The byte size of a `ty` tensor with `dims`, or `None` on overflow or a partial block.
fn checked_bytes(ty: GgmlType, dims: &[u64]) -> Option<u64> {
    let ne0 = dims.first().copied().unwrap_or(1);
    let row = ty.row_bytes(ne0)?;
    dims.iter()
        .skip(1)
        .try_fold(row, |acc, &d| acc.checked_mul(d))
}

/// The file's bytes: a read-only memory map or an owned buffer.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file (version 2 or 3, little-endian): metadata, tensor table and tensor bytes.
///
/// Parsing validates everything it can before any tensor is read: the header, every metadata
/// value (UTF-8, bools, nesting, no duplicate keys), `general.alignment`, and for every tensor
/// its dimensions, type, size, alignment and bounds, and that no two tensors overlap. A
/// malformed file gives a [`GgufError`], never a panic, and no length read from the file is
/// allocated for before it is checked against the bytes that are left.
///
/// ```
/// use hooked_transformer::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue};
///
/// let mut w = GgufWriter::new();
/// w.add_metadata("general.architecture", MetadataValue::String("llama".into()))?;
/// w.add_metadata("llama.block_count", MetadataValue::U32(2))?;
/// let x: Vec<f32> = (0..64).map(|i| i as f32).collect();
/// w.add_tensor("blk.0.ffn_up.weight", &[2, 32], GgmlType::F16, &x)?;
///
/// let file = GgufFile::from_bytes(w.to_bytes())?;
/// assert_eq!(file.version(), 3);
/// assert_eq!(file.get("llama.block_count").and_then(MetadataValue::as_u64), Some(2));
/// let info = file.tensor("blk.0.ffn_up.weight").unwrap();
/// assert_eq!((info.ggml_dims.clone(), info.shape()), (vec![32, 2], vec![2, 32]));
/// let (shape, values) = file.tensor_f32("blk.0.ffn_up.weight")?.unwrap();
/// assert_eq!((shape, values), (vec![2, 32], x));
/// # Ok::<(), hooked_transformer::gguf::GgufError>(())
/// ```
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: BTreeMap<String, MetadataValue>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("len", &self.bytes.as_slice().len())
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("data_start", &self.data_start)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and parses the GGUF file at `path`, memory-mapping its bytes.
    ///
    /// The file must not be modified while the returned value is alive (as with every
    /// memory-mapped reader: the bytes would change under it).
    ///
    /// # Errors
    /// [`crate::Error::Io`] if the file cannot be opened or mapped, [`crate::Error::Gguf`] (with
    /// the path) if it is not a valid GGUF file.
    pub fn open(path: impl AsRef<Path>) -> crate::Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| crate::Error::io(path, e))?
            .len();
        let bytes = if len == 0 {
            // Mapping an empty file fails on some platforms; the parser reports it as truncated.
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this value; the documented contract
            // is that the file is not modified while it is mapped. Every access is bounds-checked
            // against the map's length.
            let map =
                unsafe { memmap2::Mmap::map(&file) }.map_err(|e| crate::Error::io(path, e))?;
            Bytes::Mapped(map)
        };
        Self::parse(bytes).map_err(|source| crate::Error::Gguf {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses a GGUF file held in memory (tests, fuzzing, embedded models).
    ///
    /// # Errors
    /// A [`GgufError`] naming what is wrong if `bytes` is not a valid GGUF file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<Self, GgufError> {
        let buf = bytes.as_slice();
        let file_len = buf.len() as u64;
        let mut c = Cursor::new(buf);

        let magic: [u8; 4] = c.array(|| "magic".into())?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::Magic { found: magic });
        }
        let version_bytes: [u8; 4] = c.array(|| "version".into())?;
        let version = u32::from_le_bytes(version_bytes);
        if !(version == 2 || version == 3) {
            let swapped = u32::from_be_bytes(version_bytes);
            if version > 0xFFFF && (1..=3).contains(&swapped) {
                return Err(GgufError::BigEndian { version_bytes });
            }
            return Err(GgufError::UnsupportedVersion { version });
        }
        // The fewest bytes a tensor info (name length, n_dims, type, offset) and a metadata
        // entry (key length, type, a one-byte value) can take.
        let n_tensors = c.count(8 + 4 + 4 + 8, || "tensor count".into())?;
        let n_kv = c.count(8 + 4 + 1, || "metadata entry count".into())?;

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = c.string(|| format!("key of metadata entry {i}"))?;
            let tag_offset = c.pos();
            let tag = c.u32(|| format!("value type of `{key}`"))?;
            let ty = ValueType::from_tag(tag).ok_or_else(|| GgufError::UnknownValueType {
                key: key.clone(),
                offset: tag_offset,
                tag,
            })?;
            let value = MetadataValue::read(&mut c, ty, &key)?;
            if metadata.contains_key(&key) {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.insert(key, value);
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(MetadataValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(MetadataValue::U32(a)) => {
                return Err(GgufError::Alignment {
                    alignment: u64::from(*a),
                });
            }
            Some(other) => {
                return Err(GgufError::AlignmentType {
                    found: other.value_type(),
                });
            }
        };

        let mut tensors = Vec::with_capacity(n_tensors);
        let mut by_name = HashMap::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let name = c.string(|| format!("name of tensor {i}"))?;
            let n_dims = c.u32(|| format!("n_dims of tensor `{name}`"))?;
            if n_dims > MAX_DIMS {
                return Err(GgufError::TooManyDims {
                    tensor: name,
                    n_dims,
                });
            }
            let mut ggml_dims = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                ggml_dims.push(c.u64(|| format!("ne[{d}] of tensor `{name}`"))?);
            }
            let id = c.u32(|| format!("type of tensor `{name}`"))?;
            let ty = GgmlType::from_id(id).ok_or_else(|| GgufError::UnknownGgmlType {
                tensor: name.clone(),
                id,
            })?;
            let offset = c.u64(|| format!("offset of tensor `{name}`"))?;

            let overflow = || GgufError::DimsOverflow {
                tensor: name.clone(),
                ggml_dims: ggml_dims.clone(),
            };
            let n_elements = checked_elements(&ggml_dims).ok_or_else(overflow)?;
            let ne0 = ggml_dims.first().copied().unwrap_or(1);
            if !ne0.is_multiple_of(ty.block_size()) {
                return Err(GgufError::PartialBlock {
                    tensor: name,
                    ty,
                    ne0,
                    block_size: ty.block_size(),
                });
            }
            let n_bytes = checked_bytes(ty, &ggml_dims).ok_or_else(overflow)?;
            // Element counts (and so shapes and dequantised buffers) must be addressable; byte
            // counts are bounded by the file below.
            if usize::try_from(n_elements).is_err() || n_elements > i64::MAX as u64 {
                return Err(overflow());
            }
            if !offset.is_multiple_of(alignment) {
                return Err(GgufError::MisalignedOffset {
                    tensor: name,
                    offset,
                    alignment,
                });
            }
            if by_name.insert(name.clone(), i).is_some() {
                return Err(GgufError::DuplicateTensor { tensor: name });
            }
            tensors.push((
                TensorInfo {
                    name,
                    ggml_dims,
                    ty,
                    offset,
                },
                n_bytes,
            ));
        }

        // The data section starts at the next multiple of the alignment.
        let pos = c.pos();
        let data_start = pos.checked_next_multiple_of(alignment).unwrap_or(u64::MAX);
        for (info, n_bytes) in &tensors {
            let start = data_start.saturating_add(info.offset);
            if start.checked_add(*n_bytes).is_none_or(|end| end > file_len) {
                return Err(GgufError::DataOutOfBounds {
                    tensor: info.name.clone(),
                    start,
                    n_bytes: *n_bytes,
                    file_len,
                });
            }
        }
        // No two non-empty tensors may share bytes (all ends are in bounds, so no overflow).
        let mut order: Vec<usize> = (0..tensors.len()).filter(|&i| tensors[i].1 > 0).collect();
        order.sort_by_key(|&i| tensors[i].0.offset);
        for pair in order.windows(2) {
            let (a, b) = (&tensors[pair[0]], &tensors[pair[1]]);
            let a_end = a.0.offset + a.1;
            if b.0.offset < a_end {
                return Err(GgufError::Overlap {
                    first: a.0.name.clone(),
                    first_end: a_end,
                    second: b.0.name.clone(),
                    second_start: b.0.offset,
                });
            }
        }

        let tensors = tensors.into_iter().map(|(info, _)| info).collect();
        Ok(GgufFile {
            bytes,
            version,
            alignment,
            data_start,
            metadata,
            tensors,
            by_name,
        })
    }

    /// The format version (2 or 3; the layouts are identical for little-endian files).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of tensor data (`general.alignment`, 32 when absent).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The absolute offset of the data section; a tensor's bytes start at this plus its
    /// [`TensorInfo::offset`].
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// All metadata, by key.
    pub fn metadata(&self) -> &BTreeMap<String, MetadataValue> {
        &self.metadata
    }

    /// The metadata value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata.get(key)
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The tensor `name` dequantised to `f32`, with its shape in PyTorch row-major order
    /// (ggml dimensions reversed); `None` if the file has no such tensor.
    ///
    /// # Errors
    /// [`GgufError::UnsupportedType`] if the tensor's type is not F32, F16, BF16, Q8_0, Q4_0 or
    /// Q4_1 (such files parse; only reading those tensors fails).
    // The signature is the crate's documented API; a type alias would hide what it returns.
    #[allow(clippy::type_complexity)]
    pub fn tensor_f32(&self, name: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>, GgufError> {
        let Some(info) = self.tensor(name) else {
            return Ok(None);
        };
        let values = dequantize(&info.name, info.ty, self.tensor_bytes(info))?;
        Ok(Some((info.shape(), values)))
    }

    /// The raw bytes of a tensor of this file (`info` from [`tensors`](Self::tensors) or
    /// [`tensor`](Self::tensor)).
    ///
    /// For an `info` that is not from this file the range is clamped to the file (possibly
    /// empty); it never panics.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let buf = self.bytes.as_slice();
        let start = self.data_start.saturating_add(info.offset);
        let end = start.saturating_add(info.n_bytes());
        let clamp = |v: u64| usize::try_from(v).unwrap_or(usize::MAX).min(buf.len());
        &buf[clamp(start)..clamp(end)]
    }
}
