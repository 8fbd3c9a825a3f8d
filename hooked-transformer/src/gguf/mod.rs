//! GGUF v3 files: header, metadata, tensor table and dequantisation.

/// What is wrong with a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file does not start with the GGUF magic.
    #[error("wrong magic {found:?}: expected \"GGUF\"")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
}
