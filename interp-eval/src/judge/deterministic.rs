//! Deterministic stand-ins for an embedding model and a causal LM, for tests of the scorers
//! that need them.

use super::traits::{Embedder, JudgeError, SequenceScorer};

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Bag-of-words embeddings: each lower-cased alphanumeric word adds 1 to bucket
/// `FNV-1a(word) mod dim`. Texts sharing words have positive cosine; deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingEmbedder {
    /// Embedding width.
    pub dim: usize,
}

impl Embedder for HashingEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, JudgeError> {
        if self.dim == 0 {
            return Err(JudgeError::Unsupported("embeddings of width 0"));
        }
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; self.dim];
                for w in words(t) {
                    v[(fnv1a(&w) % self.dim as u64) as usize] += 1.0;
                }
                v
            })
            .collect())
    }
}

/// A toy causal LM: every word of the continuation costs `base` nats, or `seen` if the word
/// occurs in the prefix — so a prefix that names the right words makes a text less
/// surprising, as a real LM conditioned on a good explanation does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WordRecallLm {
    /// NLL of a word absent from the prefix.
    pub base: f32,
    /// NLL of a word present in the prefix.
    pub seen: f32,
}

impl Default for WordRecallLm {
    /// 3 nats, 0.5 nats when seen.
    fn default() -> Self {
        Self {
            base: 3.0,
            seen: 0.5,
        }
    }
}

impl SequenceScorer for WordRecallLm {
    fn token_nll(&self, prefix: &str, continuation: &str) -> Result<Vec<f32>, JudgeError> {
        let known: std::collections::HashSet<String> = words(prefix).collect();
        Ok(words(continuation)
            .map(|w| {
                if known.contains(&w) {
                    self.seen
                } else {
                    self.base
                }
            })
            .collect())
    }
}
