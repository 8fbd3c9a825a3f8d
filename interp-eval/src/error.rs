//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong with data from outside the program: activation streams and
/// codes given to the cache builder, cache files, user matrices.
///
/// Programmer errors in hyperparameters (a window length that does not divide the context
/// length, zero quantiles) are panics naming the field, documented under `# Panics`. Judge
/// failures are not errors of this type: they are outcomes that every score counts
/// ([`crate::metrics::Verdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error while reading or writing a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not start with the cache magic bytes.
    #[error("{path}: not a latent cache file: magic bytes {found:?}, expected {expected:?}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first bytes found.
        found: Vec<u8>,
        /// The magic expected.
        expected: &'static [u8],
    },
    /// A cache file of a format version this build cannot read.
    #[error("{path}: cache format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A file whose length differs from what its header announces (truncated or with trailing
    /// bytes); checked before anything is allocated.
    #[error("{path}: file is {found} bytes but its header announces {expected}")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The length the header implies.
        expected: u64,
        /// The actual length.
        found: u64,
    },
    /// A header field out of the supported range, or sizes whose product overflows.
    #[error("{path}: header field `{field}` = {value} is invalid: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A stored checksum does not match the bytes.
    #[error("{path}: {what} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Header or payload.
        what: &'static str,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Checksums match but the contents break an invariant (a writer other than this crate's).
    #[error("{path}: corrupt {section}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The section concerned.
        section: &'static str,
        /// What is wrong, with the position.
        detail: String,
    },
    /// A batch's token ids do not form whole rows of the cache's context length.
    #[error("batch of {tokens} token ids is not a whole number of rows of {ctx_len} tokens")]
    PartialRow {
        /// Number of token ids given.
        tokens: usize,
        /// The cache's row length.
        ctx_len: usize,
    },
    /// A code entry points outside its batch or the dictionary.
    #[error(
        "code entry {entry} of the batch: {field} = {value} is out of range (must be < {limit})"
    )]
    EntryOutOfRange {
        /// Position of the entry in the batch.
        entry: usize,
        /// `row`, `pos` or `latent`.
        field: &'static str,
        /// The value found.
        value: i64,
        /// The bound.
        limit: u64,
    },
    /// A code value that is NaN, infinite or too large for the cache's f16 storage.
    #[error(
        "code value {value} at row {row} of the batch, position {pos}, latent {latent} is not storable: {reason}"
    )]
    BadCodeValue {
        /// Row within the batch.
        row: usize,
        /// Position within the row.
        pos: usize,
        /// Latent index.
        latent: u32,
        /// The value.
        value: f32,
        /// Why (not finite, or beyond f16's ±65504).
        reason: &'static str,
    },
    /// Codes whose batch does not match the token ids given with them.
    #[error("{what}: expected {expected}, found {found}")]
    ShapeMismatch {
        /// What was compared.
        what: &'static str,
        /// The expected size.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// The cache would exceed its 32-bit token addressing.
    #[error("{what} is too large: {found} exceeds the limit of {limit}")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// The size found.
        found: u64,
        /// The largest size supported.
        limit: u64,
    },
    /// A user matrix or vector with a NaN or infinite entry.
    #[error("{what} has a non-finite value {value} at index {index}")]
    NonFinite {
        /// What was checked.
        what: &'static str,
        /// The flat index.
        index: usize,
        /// The value.
        value: f32,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
