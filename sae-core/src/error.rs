//! The crate's error type: everything that comes from outside the program (files, configs read
//! from files, user-supplied weights and data) is checked and reported through [`Error`].
//!
//! Every variant names what is wrong: the file, the tensor or config key, the expected and the
//! found value. Programmer errors (a hyperparameter out of range, a tensor-shape contract broken
//! by the caller) panic instead, burn's way, and are documented under `# Panics` where they occur.

use std::path::PathBuf;

/// Errors returned by sae-core.
///
/// File-related variants carry the `path` they concern; when weights did not come from a file
/// (weights built in memory and then validated) the path is the placeholder `<memory>` (see
/// [`Error::MEMORY`]).
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

    /// A safetensors file is truncated or corrupt: its header is missing, too short, not JSON,
    /// or its offsets do not cover the data (the safetensors parser's own diagnosis is kept).
    #[error("corrupt or truncated safetensors file {}: {source}", .path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors parser found.
        #[source]
        source: safetensors::SafeTensorError,
    },

    /// A file is corrupt or truncated in a way a format parser does not describe itself.
    #[error("corrupt or truncated file {}: {reason}", .path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A JSON file (e.g. `cfg.json`) is not valid JSON, or its top level is not an object.
    #[error("invalid JSON in {}: {source}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON parser's error (line and column).
        #[source]
        source: serde_json::Error,
    },

    /// A required configuration key is absent.
    #[error("{}: missing config key `{key}`", .path.display())]
    MissingConfigKey {
        /// The config file.
        path: PathBuf,
        /// The key (dotted for nested keys, e.g. `metadata.hook_name`).
        key: String,
    },

    /// A configuration key holds a JSON value of the wrong type (a string where an integer was
    /// expected, ...).
    #[error("{}: config key `{key}` should be {expected}, found {found}", .path.display())]
    ConfigType {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The JSON type expected, in words ("a non-negative integer", "a boolean", ...).
        expected: &'static str,
        /// The value found, as JSON text.
        found: String,
    },

    /// A configuration key has the right JSON type but a value that cannot be used (a width of
    /// zero, an unknown `normalize_activations` mode, ...).
    #[error("{}: config key `{key}` has invalid value {value}: {reason}", .path.display())]
    InvalidConfigValue {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The value found, as JSON text.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// The `architecture` named in a config is not one this crate knows.
    #[error("{}: unknown SAE architecture `{name}` (known: {known})", .path.display())]
    UnknownArchitecture {
        /// The config file.
        path: PathBuf,
        /// The architecture name found.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },

    /// A tensor the architecture requires is absent from the weights file.
    #[error("{}: required tensor `{name}` is missing for architecture `{architecture}`", .path.display())]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The missing tensor.
        name: String,
        /// The architecture that requires it.
        architecture: String,
    },

    /// A weights file holds a tensor the architecture does not define. Extra tensors are an
    /// error rather than being dropped, so that no weights are silently lost.
    #[error("{}: unexpected tensor `{name}` for architecture `{architecture}`", .path.display())]
    UnexpectedTensor {
        /// The weights file.
        path: PathBuf,
        /// The unexpected tensor.
        name: String,
        /// The architecture being read.
        architecture: String,
    },

    /// A tensor has the wrong shape.
    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", .path.display())]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape expected from the config and the other tensors.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },

    /// A dimension (`d_in`, `d_sae`) disagrees between the config and a tensor, or between two
    /// tensors.
    #[error(
        "{}: inconsistent {dim}: expected {expected} (from {expected_from}), tensor `{tensor}` implies {found}",
        .path.display()
    )]
    InconsistentDim {
        /// The file.
        path: PathBuf,
        /// The dimension's name (`d_in`, `d_sae`, ...).
        dim: &'static str,
        /// The value established first.
        expected: usize,
        /// Where the expected value came from (`cfg.json`, `W_enc`, ...).
        expected_from: String,
        /// The tensor that disagrees.
        tensor: String,
        /// The value that tensor implies.
        found: usize,
    },

    /// A tensor is stored in a dtype that cannot be read as floating point (integers, booleans,
    /// 8-bit or smaller floats).
    #[error(
        "{}: tensor `{name}` has dtype {dtype}, expected a floating-point dtype (F32, F16, BF16 or F64)",
        .path.display()
    )]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The dtype found, as safetensors names it.
        dtype: String,
    },

    /// A weight or an input value is NaN or infinite.
    #[error("{}: tensor `{name}` holds the non-finite value {value} at flat index {index}", .path.display())]
    NonFinite {
        /// The file the values came from (`<memory>` for in-memory data).
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The flat (row-major) index of the first non-finite value.
        index: usize,
        /// The value (NaN, inf or -inf; values that overflow f32 when read from F64 show as inf).
        value: f32,
    },

    /// An SAE cannot be written in the requested format without changing its meaning (for
    /// example an architecture SAELens lacks, which SAELens would load as something else).
    #[error("architecture `{architecture}` cannot be written as {format}: {reason}")]
    Unrepresentable {
        /// Our name of the architecture.
        architecture: String,
        /// The target format ("SAELens", ...).
        format: &'static str,
        /// Why not, and what to use instead.
        reason: String,
    },

    /// A value is finite but outside the range the architecture accepts (a non-positive
    /// JumpReLU threshold, ...).
    #[error("{what} is invalid: {reason}")]
    InvalidValue {
        /// What was checked.
        what: String,
        /// Why it is rejected, with the offending value.
        reason: String,
    },

    /// A data set is empty where at least one row is needed (initialisation from data).
    #[error("{what} is empty: at least one row is needed")]
    Empty {
        /// What was empty.
        what: String,
    },

    /// An architecture config built in memory has a hyperparameter out of range (what its
    /// `check` found, e.g. [`crate::TopKSaeConfig::check`]), reported by a constructor such as
    /// `from_tensors`. Readers report a config from a file as [`Error::InvalidConfigValue`]
    /// naming the file and the key.
    #[error("invalid SAE configuration: {0}")]
    Config(#[from] crate::ConfigError),
}

impl Error {
    /// The placeholder path used by variants that concern data built in memory rather than read
    /// from a file.
    pub const MEMORY: &'static str = "<memory>";
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_the_tensor_and_the_values() {
        let e = Error::TensorShape {
            path: PathBuf::from("/x/sae_weights.safetensors"),
            name: "W_dec".into(),
            expected: vec![8, 4],
            found: vec![4, 8],
        };
        assert_eq!(
            e.to_string(),
            "/x/sae_weights.safetensors: tensor `W_dec` has shape [4, 8], expected [8, 4]"
        );
        let e = Error::ConfigType {
            path: PathBuf::from("cfg.json"),
            key: "d_sae".into(),
            expected: "a non-negative integer",
            found: "\"16\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "cfg.json: config key `d_sae` should be a non-negative integer, found \"16\""
        );
        let e = Error::InconsistentDim {
            path: PathBuf::from(Error::MEMORY),
            dim: "d_in",
            expected: 4,
            expected_from: "cfg.json".into(),
            tensor: "b_dec".into(),
            found: 5,
        };
        assert!(
            e.to_string()
                .contains("inconsistent d_in: expected 4 (from cfg.json)")
        );
        assert!(e.to_string().contains("`b_dec` implies 5"));
    }

    #[test]
    fn io_errors_keep_their_source() {
        use std::error::Error as _;
        let e = Error::Io {
            path: PathBuf::from("/nope/cfg.json"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(e.to_string().starts_with("I/O error on /nope/cfg.json"));
        assert!(e.source().is_some());
    }
}
