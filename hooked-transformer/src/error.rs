//! The crate's error type: everything that comes from outside the program (model files, configs,
//! tokenizers, text corpora, hook names read from SAE configs) is checked and reported through
//! [`Error`].
//!
//! Every variant names what is wrong: the file, the tensor or config key, the expected and the
//! found value. Programmer errors (a tensor-shape contract broken by the caller) panic instead,
//! burn's way, and are documented under `# Panics` where they occur.

use std::path::PathBuf;

use crate::gguf::GgufError;

/// Errors returned by hooked-transformer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed (not found, permission denied, disk full, ...).
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A GGUF file is malformed, truncated or holds something this crate cannot read.
    #[error("GGUF file {}: {source}", .path.display())]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What the reader found.
        #[source]
        source: GgufError,
    },

    /// A safetensors file is truncated or corrupt (the safetensors parser's own diagnosis is kept).
    #[error("corrupt or truncated safetensors file {}: {source}", .path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors parser found.
        #[source]
        source: safetensors::SafeTensorError,
    },

    /// A JSON file (config.json, an index, a manifest, a corpus line) is not valid JSON.
    #[error("invalid JSON in {}: {source}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON parser's error (line and column).
        #[source]
        source: serde_json::Error,
    },

    /// A model configuration is missing a key, holds a value out of range, or disagrees with the
    /// weights it came with.
    #[error("model config {}: {reason}", .source_name)]
    Config {
        /// Where the configuration came from (a file path or `GGUF metadata of <path>`).
        source_name: String,
        /// What is wrong, naming the key, the expected and the found value.
        reason: String,
    },

    /// A tensor the architecture needs is not in the weights.
    #[error("{}: missing tensor `{name}`", .source_name)]
    MissingTensor {
        /// The weight file or folder.
        source_name: String,
        /// The tensor's name in the file's own naming scheme.
        name: String,
    },

    /// A tensor in the weights has the wrong shape for the configuration.
    #[error("{}: tensor `{name}` has shape {found:?}, the config implies {expected:?}", .source_name)]
    TensorShape {
        /// The weight file or folder.
        source_name: String,
        /// The tensor's name.
        name: String,
        /// The shape the configuration implies (row-major, PyTorch order).
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor holds a dtype this crate cannot convert to `f32`, or non-finite values.
    #[error("{}: tensor `{name}`: {reason}", .source_name)]
    TensorData {
        /// The weight file or folder.
        source_name: String,
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The tokenizer file is missing or could not be parsed, or encoding/decoding failed.
    #[error("tokenizer {}: {reason}", .path.display())]
    Tokenizer {
        /// The tokenizer file (`tokenizer.json`), or `<memory>`.
        path: PathBuf,
        /// The tokenizers library's message.
        reason: String,
    },

    /// A hook name (for example an SAE config's `hook_name`) is not a hook point of this model.
    #[error("`{name}` is not a hook point of this model ({hint})")]
    UnknownHookPoint {
        /// The name asked for.
        name: String,
        /// A nearby valid name or the naming rule.
        hint: String,
    },

    /// A token id is outside the model's vocabulary.
    #[error("token id {id} at position {position} is outside the vocabulary of {vocab_size}")]
    TokenOutOfRange {
        /// The offending id.
        id: i64,
        /// Its flat position in the input.
        position: usize,
        /// The model's vocabulary size.
        vocab_size: usize,
    },

    /// An input sequence is longer than the model's position table or KV cache allows.
    #[error("sequence of {len} tokens exceeds the model's limit of {limit} ({what})")]
    SequenceTooLong {
        /// The length asked for.
        len: usize,
        /// The limit.
        limit: usize,
        /// Which limit (position embeddings, KV cache capacity, ...).
        what: String,
    },

    /// A corpus, manifest or activation file is malformed (wrong field, wrong type, torn line).
    #[error("{}: {reason}", .path.display())]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number where there is one.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Config`].
    pub(crate) fn config(source_name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            source_name: source_name.into(),
            reason: reason.into(),
        }
    }
}
