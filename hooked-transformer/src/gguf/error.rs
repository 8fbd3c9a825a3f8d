//! [`GgufError`]: everything that can be wrong with a GGUF file (or with what a
//! [`GgufWriter`](super::GgufWriter) is asked to write).

use super::types::GgmlType;
use super::value::ValueType;

/// What is wrong with a GGUF file.
///
/// Every variant names what is wrong: the byte offset, the metadata key or tensor name, the
/// expected and the found value. Reading never panics on a malformed file; it returns one of
/// these. [`crate::Error::Gguf`] adds the file's path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file ended before a field could be read.
    #[error("truncated: {what} at offset {offset} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },

    /// The file does not start with the GGUF magic.
    #[error("wrong magic {found:?}: expected \"GGUF\" (47 47 55 46)")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },

    /// The version field reads as an absurd number whose byte-swap is a real version: a
    /// big-endian GGUF file, which this reader refuses.
    #[error(
        "big-endian GGUF file (version bytes {version_bytes:02x?}); only little-endian files are read"
    )]
    BigEndian {
        /// The four version bytes as stored.
        version_bytes: [u8; 4],
    },

    /// A GGUF version other than 2 or 3 (version 1 used 32-bit lengths and is refused, as ggml
    /// refuses it).
    #[error("unsupported GGUF version {version}: expected 2 or 3")]
    UnsupportedVersion {
        /// The version in the header.
        version: u32,
    },

    /// A length or count promises more bytes than are left in the file (checked before anything
    /// is allocated).
    #[error(
        "{what} at offset {offset} is {count}, which needs at least {min_bytes} bytes, but only {available} are left"
    )]
    TooLarge {
        /// The length or count (`string length of metadata key`, `element count of array
        /// `tokenizer.ggml.tokens``, `tensor count`, ...).
        what: String,
        /// Where the length field starts.
        offset: u64,
        /// Its value.
        count: u64,
        /// The fewest bytes `count` items can occupy (saturated at `u64::MAX`).
        min_bytes: u64,
        /// Bytes left after the length field.
        available: u64,
    },

    /// A string is not valid UTF-8.
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string (`metadata key`, `value of `general.name``, `tensor name`).
        what: String,
        /// Where the string's bytes start.
        offset: u64,
    },

    /// A metadata key occurs twice.
    #[error("duplicate metadata key `{key}`")]
    DuplicateKey {
        /// The key.
        key: String,
    },

    /// A metadata value type tag is not one of the 13 GGUF value types.
    #[error("metadata key `{key}`: unknown value type {tag} at offset {offset} (expected 0..=12)")]
    UnknownValueType {
        /// The key whose value (or array element type) it is.
        key: String,
        /// Where the tag is.
        offset: u64,
        /// The tag found.
        tag: u32,
    },

    /// A bool byte other than 0 or 1.
    #[error("metadata key `{key}`: bool byte {byte} at offset {offset} (expected 0 or 1)")]
    InvalidBool {
        /// The key.
        key: String,
        /// Where the byte is.
        offset: u64,
        /// The byte found.
        byte: u8,
    },

    /// Arrays nested deeper than the reader allows (a guard against stack exhaustion).
    #[error("metadata key `{key}`: arrays nested deeper than {limit} levels at offset {offset}")]
    NestingTooDeep {
        /// The key.
        key: String,
        /// Where the too-deep array starts.
        offset: u64,
        /// The deepest nesting allowed.
        limit: usize,
    },

    /// `general.alignment` is not a UINT32 (ggml's requirement).
    #[error("`general.alignment` has type {found}, expected UINT32")]
    AlignmentType {
        /// The value type found.
        found: ValueType,
    },

    /// `general.alignment` is not a power of two.
    #[error("`general.alignment` is {alignment}, expected a power of two")]
    Alignment {
        /// The value found.
        alignment: u64,
    },

    /// Two tensors have the same name.
    #[error("duplicate tensor name `{tensor}`")]
    DuplicateTensor {
        /// The name.
        tensor: String,
    },

    /// A tensor has more than 4 dimensions.
    #[error("tensor `{tensor}` has {n_dims} dimensions, at most 4 are allowed")]
    TooManyDims {
        /// The tensor.
        tensor: String,
        /// The `n_dims` found.
        n_dims: u32,
    },

    /// A tensor's type id is not a ggml type.
    #[error("tensor `{tensor}` has unknown ggml type id {id}")]
    UnknownGgmlType {
        /// The tensor.
        tensor: String,
        /// The id found.
        id: u32,
    },

    /// The product of a tensor's dimensions (or its byte size) overflows 64 bits or `usize`.
    #[error(
        "tensor `{tensor}`: dimensions {ggml_dims:?} (ggml order) overflow the element or byte count"
    )]
    DimsOverflow {
        /// The tensor.
        tensor: String,
        /// Its dimensions, `ne[0]` first.
        ggml_dims: Vec<u64>,
    },

    /// A tensor's fastest-varying dimension `ne[0]` is not a multiple of its type's block size.
    #[error(
        "tensor `{tensor}` of type {ty}: ne[0] = {ne0} is not a multiple of the block size {block_size}"
    )]
    PartialBlock {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: GgmlType,
        /// `ne[0]` found.
        ne0: u64,
        /// The block size of `ty`.
        block_size: u64,
    },

    /// A tensor's offset is not a multiple of the file's alignment.
    #[error("tensor `{tensor}`: offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedOffset {
        /// The tensor.
        tensor: String,
        /// The offset (relative to the data section).
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor's bytes lie (partly) past the end of the file.
    #[error(
        "tensor `{tensor}`: {n_bytes} bytes at absolute offset {start} run past the end of the file ({file_len} bytes)"
    )]
    DataOutOfBounds {
        /// The tensor.
        tensor: String,
        /// The absolute offset of its first byte (saturated at `u64::MAX`).
        start: u64,
        /// Its size in bytes.
        n_bytes: u64,
        /// The file's length.
        file_len: u64,
    },

    /// Two tensors share bytes.
    #[error(
        "tensors `{first}` (ends at data offset {first_end}) and `{second}` (starts at data offset {second_start}) overlap"
    )]
    Overlap {
        /// The tensor that starts first.
        first: String,
        /// The end of its bytes (exclusive, relative to the data section).
        first_end: u64,
        /// The tensor that starts inside it.
        second: String,
        /// The start of its bytes (relative to the data section).
        second_start: u64,
    },

    /// The tensor's type is valid but cannot be converted to `f32` (or written) by this crate.
    #[error(
        "tensor `{tensor}` has type {ty}, which this crate cannot convert (F32, F16, BF16, Q8_0, Q4_0, Q4_1 only)"
    )]
    UnsupportedType {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: GgmlType,
    },

    /// Data handed to the dequantiser or the writer does not have the length the shape implies.
    #[error("tensor `{tensor}`: {what} is {found}, the shape and type imply {expected}")]
    LengthMismatch {
        /// The tensor.
        tensor: String,
        /// What was measured (`element count`, `byte count`).
        what: &'static str,
        /// The length implied by shape and type.
        expected: u64,
        /// The length given.
        found: u64,
    },

    /// The writer was asked to quantise a NaN or infinite value.
    #[error("tensor `{tensor}`: value {value} at index {index} cannot be quantised to {ty}")]
    NonFinite {
        /// The tensor.
        tensor: String,
        /// The target type.
        ty: GgmlType,
        /// The flat index of the value.
        index: usize,
        /// The value.
        value: f32,
    },
}
