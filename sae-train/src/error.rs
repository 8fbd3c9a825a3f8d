//! The crate's error type: everything that comes from outside the program (files, activation
//! streams, checkpoints) is checked and reported here, naming what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong when reading activations, checkpoints or writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on a named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be parsed (corrupt, truncated, wrong layout).
    #[error("{path}: {reason}")]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or source holds no rows at all.
    #[error("{source_name} holds no activations")]
    Empty {
        /// The source (file name or description).
        source_name: String,
    },
    /// A tensor or file has an element type this crate does not read.
    #[error("{source_name}: element type {found} is not supported (expected one of {expected})")]
    UnsupportedDtype {
        /// The source (file name or description).
        source_name: String,
        /// The element type found.
        found: String,
        /// The element types that are read.
        expected: String,
    },
    /// Activations whose width differs from the expected `d_in`.
    #[error("{source_name}: activations have width {found}, expected {expected}")]
    WidthMismatch {
        /// The source (file name or description).
        source_name: String,
        /// The width the consumer expects.
        expected: usize,
        /// The width found.
        found: usize,
    },
    /// A NaN or infinite activation.
    #[error("{source_name}: non-finite activation {value} at row {row}, column {column}")]
    NonFinite {
        /// The source (file name or description).
        source_name: String,
        /// The row (token) index within the source.
        row: u64,
        /// The column (feature) index.
        column: usize,
        /// The offending value.
        value: f32,
    },
    /// A requested position or row range lies outside the source.
    #[error("{source_name}: {what}")]
    OutOfRange {
        /// The source (file name or description).
        source_name: String,
        /// What was requested and what exists.
        what: String,
    },
    /// Every row was removed by the token filters, so no batch can be formed.
    #[error("the token filters removed every row of {source_name}")]
    AllFiltered {
        /// The source (file name or description).
        source_name: String,
    },
    /// A checkpoint does not belong to the run it is loaded into.
    #[error("checkpoint {path} does not match this run: {reason}")]
    CheckpointMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// Which setting differs (expected and found).
        reason: String,
    },
    /// A JSON document could not be read or written.
    #[error("JSON error in {path}: {source}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A line of a metrics log (JSON Lines) is corrupt.
    #[error("{path}, line {line}: corrupt metrics record: {source}")]
    MetricsLine {
        /// The log file.
        path: PathBuf,
        /// The corrupt line (1-based).
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint file name that could leave the checkpoint's directory or clash with its
    /// manifest (`..`, a path separator, an absolute path, `manifest.json`, empty, repeated),
    /// given to a save or found in a manifest.
    #[error("{path}: checkpoint file name {name:?} is refused: {reason}")]
    CheckpointFileName {
        /// The checkpoint directory (on save) or the manifest (on load).
        path: PathBuf,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Loss became NaN or infinite during training.
    #[error("training diverged at step {step}: loss of SAE {sae} is {value}")]
    Diverged {
        /// The step at which it happened.
        step: u64,
        /// The index of the SAE in the run.
        sae: usize,
        /// The loss value.
        value: f32,
    },
    /// A plot could not be drawn or written.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Format`] on `path`.
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
