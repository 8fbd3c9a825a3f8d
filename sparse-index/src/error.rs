//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong with data from outside the program: user vectors, collections,
/// vocabularies, JSONL and binary files, saved indexes.
///
/// Programmer errors in hyperparameters (a `query_cut` of zero, an `alpha` outside `(0, 1]`) are
/// not errors but panics that name the field, as documented under `# Panics` on the functions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The component ids and values of a vector have different lengths.
    #[error("sparse vector has {indices} component ids but {values} values")]
    LengthMismatch {
        /// Number of component ids.
        indices: usize,
        /// Number of values.
        values: usize,
    },
    /// The component ids of a vector are not strictly increasing.
    #[error(
        "sparse vector component ids must be strictly increasing: id {next} at position {position} follows {previous}"
    )]
    UnsortedComponents {
        /// Position (0-based) of the offending id.
        position: usize,
        /// The id before it.
        previous: u32,
        /// The offending id.
        next: u32,
    },
    /// A component id appears twice in a vector given in arbitrary order.
    #[error("sparse vector has component id {component} twice")]
    DuplicateComponent {
        /// The repeated id.
        component: u32,
    },
    /// A value is NaN or infinite.
    #[error("sparse vector value for component {component} is not finite: {value}")]
    NonFiniteValue {
        /// The component id of the value.
        component: u32,
        /// The value itself.
        value: f32,
    },
    /// A component id does not fit the index or vocabulary it is used with.
    #[error("component id {component} is out of range: the {what} has {dim} components")]
    ComponentOutOfRange {
        /// The offending id.
        component: u64,
        /// Number of components allowed.
        dim: u64,
        /// What the id was checked against.
        what: &'static str,
    },
    /// A collection is too large for the index's 32-bit document ids or offsets.
    #[error("{what} is too large: {found} exceeds the limit of {limit}")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// The size found.
        found: u64,
        /// The largest size supported.
        limit: u64,
    },
    /// An I/O error while reading or writing a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file ends before the data its header or previous fields announce.
    #[error(
        "{path}: truncated file: {what} needs {needed} bytes at offset {offset}, file has {len}"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Offset of the read.
        offset: u64,
        /// Length of the file.
        len: u64,
    },
    /// A file's content contradicts its own structure (bad magic, checksum, offsets, ...).
    #[error("{path}: corrupt file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A saved index was written by an incompatible version of this crate.
    #[error("{path}: unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// A line of a JSONL file is not a valid record.
    #[error("{path}:{line}: {reason}")]
    Jsonl {
        /// The file.
        path: PathBuf,
        /// Line number (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line of a TSV file (results or ground truth) is malformed.
    #[error("{path}:{line}: {reason}")]
    Tsv {
        /// The file.
        path: PathBuf,
        /// Line number (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's data could not be read on the host (unsupported dtype, failed transfer).
    #[error("cannot read tensor {what}: {reason}")]
    TensorData {
        /// Which tensor.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A vector at a given position of a file or batch is invalid.
    #[error("vector {index}: {source}")]
    InVector {
        /// Position (0-based) of the vector.
        index: usize,
        /// Why it is invalid.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Attaches the position of a vector in a file or batch to an error about that vector.
    pub(crate) fn in_vector(self, index: usize) -> Error {
        Error::InVector {
            index,
            source: Box::new(self),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
