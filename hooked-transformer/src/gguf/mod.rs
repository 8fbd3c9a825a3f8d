//! GGUF v3 files (llama.cpp's model format): header, metadata, tensor table, dequantisation to
//! `f32`, and a writer.
//!
//! [`GgufFile`] parses and validates a file (memory-mapped with [`GgufFile::open`], or from
//! bytes), exposes its metadata as [`MetadataValue`]s and its tensors as [`TensorInfo`]s, and
//! converts F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors to `f32` ([`GgufFile::tensor_f32`]);
//! other ggml types parse (their sizes are validated) but give
//! [`GgufError::UnsupportedType`] when read. [`GgufWriter`] writes valid v3 files with ggml's
//! reference quantisers, for tests, other crates' tests and fuzz corpora.
//!
//! Layout conventions: dimensions are stored in ggml order (`ne[0]`, the contiguous one,
//! first); [`TensorInfo::shape`] reverses them into the PyTorch row-major shape in which the
//! bytes are laid out. Only little-endian files are read (big-endian ones are recognised by
//! their byte-swapped version and refused); version 1 (32-bit lengths) is refused, as ggml
//! refuses it.
//!
//! # Why our own reader
//! No maintained crate fits: `gguf` 0.1 is stale (last commit 2024) and does not dequantise;
//! `gguf-rs` has no dequantisation and pulls clap, comfy-table and a logger into every user;
//! `ggus` reaches a not-yet-written stub (a panic) when dequantising k-quants; `candle-core`'s reader
//! dequantises everything but brings a whole tensor library (gemm, rayon, zip, ...) only to copy
//! the values out again for burn. The format is small, and a reader of our own can be strict
//! about hostile input in the way [`GgufError`] documents: every length and count is checked
//! against the bytes left before anything is allocated, and a malformed file is an error,
//! never a panic.
//!
//! ```
//! use hooked_transformer::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue};
//!
//! let mut w = GgufWriter::new();
//! w.add_metadata("llama.embedding_length", MetadataValue::U32(64))?;
//! w.add_tensor("blk.0.attn_norm.weight", &[64], GgmlType::F32, &[1.0; 64])?;
//! let file = GgufFile::from_bytes(w.to_bytes())?;
//! let (shape, w) = file.tensor_f32("blk.0.attn_norm.weight")?.unwrap();
//! assert_eq!((shape, w.len()), (vec![64], 64));
//! # Ok::<(), hooked_transformer::gguf::GgufError>(())
//! ```

mod cursor;
mod dequant;
mod error;
mod file;
mod quantize;
mod types;
mod value;
mod writer;

#[cfg(test)]
mod tests;

pub use dequant::dequantize;
pub use error::GgufError;
pub use file::{DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufFile, MAX_DIMS, TensorInfo};
pub use quantize::quantize;
pub use types::GgmlType;
pub use value::{MAX_ARRAY_NESTING, MetadataArray, MetadataValue, ValueType};
pub use writer::GgufWriter;
