//! The crate's error type.
//!
//! Everything that comes from outside the program — weights and activations handed in by the
//! user, masks read back from files, amounts and patterns taken from configs — is checked and
//! reported through [`Error`]. Programmer errors in hyperparameters that the caller wrote in code
//! panic instead, burn's way, and are documented under `# Panics` where they can happen.

use std::path::PathBuf;

use crate::format::FormatError;

/// Everything that can go wrong in `pruning`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An `amount` is outside what torch accepts: a fraction must lie in `[0, 1]` and be finite,
    /// a count must not exceed the number of units it prunes from.
    #[error("invalid pruning amount {amount}: {reason}")]
    InvalidAmount {
        /// The amount as given (a fraction or a count).
        amount: String,
        /// Why it is rejected, naming the limit it broke.
        reason: String,
    },

    /// A sparsity pattern is malformed, e.g. `N > M`, `M == 0`, or a block of size zero.
    #[error("invalid sparsity pattern {pattern}: {reason}")]
    InvalidPattern {
        /// The pattern as written (`"3:2"`, `"0x4 block"`).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor's shape does not fit a pattern (e.g. the input dimension is not a multiple of
    /// `M` for N:M, or a 1-D tensor for a structured pattern) and no padding rule was asked for.
    #[error("tensor `{tensor}` with shape {shape:?} does not fit {pattern}: {reason}")]
    ShapeNotEligible {
        /// The tensor (a module path such as `fc1.weight`, or a short description).
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The pattern it was checked against.
        pattern: String,
        /// What exactly does not fit.
        reason: String,
    },

    /// Two inputs that must agree in shape do not (weights and scores, a weight and its mask,
    /// calibration activations and the layer's input width).
    #[error("shape mismatch for {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Which pair of inputs disagrees.
        what: String,
        /// The shape required by the first input.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },

    /// An input holds NaN or ±Inf where finite numbers are required.
    #[error("{what} holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// Which input (weights, scores, activations, an evaluation result).
        what: String,
        /// The flat (row-major) index of the first offending element.
        index: usize,
        /// The offending value.
        value: f32,
    },

    /// An input that must hold at least one element (a tensor, a list of tensors, a calibration
    /// batch, a sparsity grid) is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which input.
        what: String,
    },

    /// A value taken from the user is out of its documented range (a sparsity outside `[0, 1)`,
    /// a tolerance below zero, a rank larger than the matrix).
    #[error("{what} = {value} is out of range: {reason}")]
    OutOfRange {
        /// The name of the value.
        what: String,
        /// The value as given.
        value: String,
        /// The range it must lie in.
        reason: String,
    },

    /// A path filter selected no parameter of the module, so nothing would be pruned.
    #[error("no parameter of the module matches {filter}; parameters seen: {seen}")]
    NoMatch {
        /// The filter, described.
        filter: String,
        /// The parameter paths that were visited (abbreviated).
        seen: String,
    },

    /// A parameter was asked for by path but is not (or no longer) pruned.
    #[error("parameter `{path}` is not pruned")]
    NotPruned {
        /// The parameter path, e.g. `fc1.weight`.
        path: String,
    },

    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file was read but its content is not what it claims to be (truncated, corrupt, wrong
    /// tensor type or shape).
    #[error("corrupt or unexpected content in {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// burn's module store (safetensors / burnpack) failed to save or load a model.
    #[error("model store error on {path}: {reason}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The store's message.
        reason: String,
    },

    /// Drawing or writing a plot failed.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// The plotting library's message.
        reason: String,
    },

    /// A compressed format refused its input: a dense weight and mask, or raw arrays read from
    /// elsewhere (see [`FormatError`] for the details it names).
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Checks that every value in `values` is finite, naming the input in the error.
    ///
    /// ```
    /// use pruning::Error;
    /// assert!(Error::check_finite("weights", &[1.0, -2.0]).is_ok());
    /// assert!(Error::check_finite("weights", &[f32::NAN]).is_err());
    /// ```
    pub fn check_finite(what: &str, values: &[f32]) -> Result<()> {
        match values.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(index) => Err(Error::NonFinite {
                what: what.to_string(),
                index,
                value: values[index],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_finite_names_the_first_bad_value() {
        assert!(Error::check_finite("w", &[1.0, -2.0]).is_ok());
        let err = Error::check_finite("weights", &[1.0, f32::NAN, f32::INFINITY]).unwrap_err();
        match err {
            Error::NonFinite { what, index, .. } => {
                assert_eq!(what, "weights");
                assert_eq!(index, 1);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn messages_name_tensor_shape_and_pattern() {
        let err = Error::ShapeNotEligible {
            tensor: "fc1.weight".into(),
            shape: vec![10, 6],
            pattern: "2:4".into(),
            reason: "input dimension 6 is not a multiple of 4".into(),
        };
        let msg = err.to_string();
        assert!(msg.contains("fc1.weight") && msg.contains("[10, 6]") && msg.contains("2:4"));
    }
}
