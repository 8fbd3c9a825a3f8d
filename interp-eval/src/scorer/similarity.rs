//! Explanation scorers that need no chat model: embedding similarity and surprisal.

use super::batch::Sample;
use crate::examples::{Example, ExampleKind};
use crate::judge::{Embedder, Explanation, JudgeError, SequenceScorer};
use crate::metrics::auroc;
use crate::text::{TokenText, plain_text, token_strings};

/// A score per sample and the AUROC with which the scores separate activating from
/// non-activating samples.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingScore {
    /// Every sample with its score, activating samples first.
    pub samples: Vec<(Sample, f64)>,
    /// AUROC of the scores (ties ½); `None` without both classes.
    pub auroc: Option<f64>,
}

fn samples(test: &[Example], negatives: &[Example], vocab: &dyn TokenText) -> Vec<Sample> {
    let sample = |e: &Example, label| Sample {
        text: plain_text(&token_strings(&e.tokens, vocab)),
        label,
        quantile: e.quantile(),
        similarity: match e.kind {
            ExampleKind::Neighbour { similarity, .. } => Some(similarity),
            _ => None,
        },
    };
    test.iter()
        .map(|e| sample(e, true))
        .chain(negatives.iter().map(|e| sample(e, false)))
        .collect()
}

fn ranking(samples: Vec<Sample>, scores: Vec<f64>) -> RankingScore {
    let labels: Vec<bool> = samples.iter().map(|s| s.label).collect();
    let auroc = auroc(&scores, &labels);
    RankingScore {
        samples: samples.into_iter().zip(scores).collect(),
        auroc,
    }
}

/// Delphi's embedding scorer (research note §1.A9): the query is `instruction` followed
/// directly by the explanation, the documents are the samples' plain texts; each sample's
/// score is the cosine of its embedding with the query's (0 for a zero vector), and the
/// latent's score is their AUROC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingScorer {
    /// Query prefix (delphi's, for instruction-tuned embedders).
    pub instruction: String,
}

impl Default for EmbeddingScorer {
    fn default() -> Self {
        Self {
            instruction:
                "Instruct: Retrieve sentences that could be related to the explanation.\nQuery:"
                    .into(),
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

impl EmbeddingScorer {
    /// Scores `explanation` on `test` (activating) and `negatives`.
    ///
    /// # Errors
    /// The embedder's [`JudgeError`]; [`JudgeError::Malformed`] if it returns the wrong number
    /// of vectors, vectors of different lengths, or non-finite values.
    pub fn score(
        &self,
        embedder: &dyn Embedder,
        explanation: &Explanation,
        test: &[Example],
        negatives: &[Example],
        vocab: &dyn TokenText,
    ) -> Result<RankingScore, JudgeError> {
        let samples = samples(test, negatives, vocab);
        let mut texts = vec![format!("{}{}", self.instruction, explanation.text)];
        texts.extend(samples.iter().map(|s| s.text.clone()));
        let vectors = embedder.embed(&texts)?;
        if vectors.len() != texts.len() {
            return Err(JudgeError::Malformed(format!(
                "{} embeddings for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        let dim = vectors[0].len();
        if let Some((i, v)) = vectors
            .iter()
            .enumerate()
            .find(|(_, v)| v.len() != dim || v.iter().any(|x| !x.is_finite()))
        {
            return Err(JudgeError::Malformed(format!(
                "embedding {i} has length {} (query: {dim}) or a non-finite value",
                v.len()
            )));
        }
        let scores = vectors[1..]
            .iter()
            .map(|v| cosine(&vectors[0], v))
            .collect();
        Ok(ranking(samples, scores))
    }
}

/// The surprisal scorer (research note §1.A8): each sample's text is scored by a causal LM
/// after the prefix `few_shot + "Description: \n" + explanation + "\n Sentences:\n"` and after
/// the same prefix with the description "Various unrelated sentences."; the sample's score is
/// the information the explanation adds, `Σ NLL_baseline − Σ NLL_explanation`, and the
/// latent's score is their AUROC. The score formula is from the paper (delphi stores the two
/// loss vectors only; note tagged unverified); delphi's few-shot base prompt is not
/// reproduced, `few_shot` is empty by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SurprisalScorer {
    /// Text placed before the description (few-shot examples).
    pub few_shot: String,
}

impl SurprisalScorer {
    /// The prefix for a description.
    pub fn prefix(&self, description: &str) -> String {
        format!(
            "{}Description: \n{}\n Sentences:\n",
            self.few_shot, description
        )
    }

    /// Scores `explanation` on `test` (activating) and `negatives`.
    ///
    /// # Errors
    /// The LM's [`JudgeError`]; [`JudgeError::Malformed`] for a non-finite loss.
    pub fn score(
        &self,
        lm: &dyn SequenceScorer,
        explanation: &Explanation,
        test: &[Example],
        negatives: &[Example],
        vocab: &dyn TokenText,
    ) -> Result<RankingScore, JudgeError> {
        let samples = samples(test, negatives, vocab);
        let with = self.prefix(&explanation.text);
        let without = self.prefix("Various unrelated sentences.");
        let total = |prefix: &str, text: &str| -> Result<f64, JudgeError> {
            let nll = lm.token_nll(prefix, text)?;
            if nll.iter().any(|x| !x.is_finite()) {
                return Err(JudgeError::Malformed(format!(
                    "non-finite token loss for {text:?}"
                )));
            }
            Ok(nll.iter().map(|&x| f64::from(x)).sum())
        };
        let scores = samples
            .iter()
            .map(|s| Ok(total(&without, &s.text)? - total(&with, &s.text)?))
            .collect::<Result<Vec<f64>, JudgeError>>()?;
        Ok(ranking(samples, scores))
    }
}
