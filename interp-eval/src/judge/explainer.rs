//! Explainers: from train examples to an explanation.

use super::traits::JudgeError;
use crate::examples::Example;
use crate::text::TokenText;

/// An explanation of a latent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The text given to the scorers.
    pub text: String,
}

impl Explanation {
    /// An explanation with this text.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }
}

/// Writes an explanation from a latent's train examples.
pub trait Explainer: Send + Sync {
    /// Explains the latent whose activating train examples are `train`.
    ///
    /// # Errors
    /// A [`JudgeError`] when the model behind it fails.
    fn explain(&self, train: &[Example], vocab: &dyn TokenText) -> Result<Explanation, JudgeError>;
}
