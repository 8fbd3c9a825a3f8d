//! SPLADE sparse text vectors from a BERT masked-language model: for each vocabulary term,
//! `max over tokens of log(1 + relu(MLM logit))`, padded positions excluded.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::bert::{BertForMaskedLm, BertInput};
use crate::{ActivationCache, Hooks, Result, Tokenizer};

/// A SPLADE encoder: a `BertForMaskedLM` and its tokenizer.
///
/// Texts are tokenised with special tokens (`[CLS] … [SEP]`) and truncated to the tokenizer's
/// limit ([`SpladeEncoder::from_hf_folder`] sets 256 tokens, as the reference encoder
/// `splade_numpy.py` that produced the shipped Cranfield vectors does), then batched by
/// length with right padding. Padding never changes a vector: padded positions are excluded
/// from the max and masked as attention keys.
///
/// ```
/// use burn::prelude::*;
/// use hooked_transformer::{SpladeEncoder, Tokenizer};
/// use hooked_transformer::bert::BertConfig;
///
/// let device = Device::flex();
/// device.seed(0);
/// let model = BertConfig::new(4, 8, 1, 2, 16, 8).init_masked_lm(&device);
/// let tokenizer = Tokenizer::from_bytes(br#"{"version": "1.0", "added_tokens": [],
///     "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
///     "decoder": null, "truncation": null, "padding": null,
///     "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3},
///               "unk_token": "[UNK]"}}"#)?;
/// let splade = SpladeEncoder::new(model, tokenizer);
/// let vectors = splade.encode(&["a b", "b"])?;
/// assert_eq!(vectors.len(), 2);
/// assert!(vectors[0].windows(2).all(|w| w[0].0 < w[1].0), "sorted by term id");
/// assert!(vectors[0].iter().all(|&(_, x)| x > 0.0), "non-zeros only");
/// # Ok::<(), hooked_transformer::Error>(())
/// ```
#[derive(Debug)]
pub struct SpladeEncoder {
    model: BertForMaskedLm,
    tokenizer: Tokenizer,
    max_batch_tokens: usize,
}

/// The truncation limit of the reference SPLADE encoder (`splade_numpy.py`), in tokens with
/// `[CLS]` and `[SEP]`.
pub const SPLADE_MAX_LENGTH: usize = 256;

impl SpladeEncoder {
    /// An encoder from a model and a tokenizer, used as they are (truncation included).
    pub fn new(model: BertForMaskedLm, tokenizer: Tokenizer) -> Self {
        Self {
            model,
            tokenizer,
            max_batch_tokens: 2048,
        }
    }

    /// Loads a Hugging Face `BertForMaskedLM` folder and truncates to
    /// [`SPLADE_MAX_LENGTH`] tokens.
    ///
    /// # Errors
    /// As [`BertForMaskedLm::from_hf_folder`].
    pub fn from_hf_folder(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let (model, tokenizer) = BertForMaskedLm::from_hf_folder(dir, device)?;
        Ok(Self::new(
            model,
            tokenizer.with_truncation(Some(SPLADE_MAX_LENGTH))?,
        ))
    }

    /// Caps a batch at `tokens` padded tokens (default 2048; the logits of a batch take
    /// `tokens × vocab × 4` bytes). A single longer text still forms its own batch.
    ///
    /// # Panics
    /// If `tokens` is 0.
    pub fn with_max_batch_tokens(mut self, tokens: usize) -> Self {
        assert!(tokens > 0, "max_batch_tokens must be positive, found 0");
        self.max_batch_tokens = tokens;
        self
    }

    /// The model.
    pub fn model(&self) -> &BertForMaskedLm {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The SPLADE vector of each text: `(term id, weight)` pairs with weight > 0, sorted by
    /// term id.
    ///
    /// # Errors
    /// [`crate::Error::Tokenizer`] if tokenisation fails, [`crate::Error::SequenceTooLong`]
    /// if a text is longer than the position table (turn truncation on).
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<(u32, f32)>>> {
        self.encode_with_progress(texts, |_| {})
    }

    /// [`SpladeEncoder::encode`], calling `progress(n)` after each batch with the number of
    /// texts it held.
    ///
    /// # Errors
    /// As [`SpladeEncoder::encode`].
    pub fn encode_with_progress(
        &self,
        texts: &[&str],
        progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let ids = self.tokenizer.encode_batch(texts, true)?;
        self.encode_ids_with_progress(&ids, progress)
    }

    /// SPLADE vectors of already tokenised sequences (special tokens included).
    ///
    /// # Errors
    /// [`crate::Error::TokenOutOfRange`] or [`crate::Error::SequenceTooLong`].
    ///
    /// # Panics
    /// If a sequence is empty.
    pub fn encode_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<(u32, f32)>>> {
        self.encode_ids_with_progress(sequences, |_| {})
    }

    fn encode_ids_with_progress(
        &self,
        sequences: &[Vec<u32>],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        // Longest first, so a batch's padded length is its first sequence's.
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sequences[i].len()));
        let mut out = vec![Vec::new(); sequences.len()];
        let mut start = 0;
        while start < order.len() {
            let len = sequences[order[start]].len().max(1);
            let n = (self.max_batch_tokens / len)
                .max(1)
                .min(order.len() - start);
            let batch = &order[start..start + n];
            let seqs: Vec<Vec<u32>> = batch.iter().map(|&i| sequences[i].clone()).collect();
            for (&i, vector) in batch.iter().zip(self.encode_batch(&seqs)?) {
                out[i] = vector;
            }
            progress(n);
            start += n;
        }
        Ok(out)
    }

    /// One padded batch.
    fn encode_batch(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<(u32, f32)>>> {
        let bert = &self.model.bert;
        let word = &bert.embed.word;
        let device = word.weight.device();
        let pad = bert.config().pad_token_id as u32;
        let input = BertInput::from_sequences(seqs, None, pad, &device);
        bert.check_input(&input)?;
        let (mut hooks, mut cache) = (Hooks::new(), ActivationCache::default());
        let h = bert.run_unchecked(&input, &mut hooks, &mut cache);
        let t = self.model.head.transform(h, &mut hooks, &mut cache);
        let [b, p, d] = t.dims();
        let w = word.weight.val();
        let v = w.dims()[0];
        // max_t log1p(relu(s_t + bias)) = log1p(relu(max_t s_t + bias)): both maps are
        // monotone, in floating point too, so the max runs on the raw scores.
        let scores = t
            .reshape([b * p, d])
            .matmul(w.transpose())
            .reshape([b, p, v]);
        let scores = match &input.padding {
            Some(mask) => scores.mask_fill(
                mask.clone().reshape([b, p, 1]).expand([b, p, v]),
                f32::NEG_INFINITY,
            ),
            None => scores,
        };
        let max = scores.max_dim(1).reshape([b, v]) + self.model.head.bias.val().reshape([1, v]);
        let weights = relu(max)
            .log1p()
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("a float tensor converts to f32");
        Ok(weights
            .chunks_exact(v)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, x)| **x > 0.0)
                    .map(|(i, &x)| (i as u32, x))
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::bert::BertConfig;

    const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

    /// Tolerance of the comparison: the shipped weights are rounded to 5 decimals (±5e-6), and
    /// float32 arithmetic in numpy and burn differs by a few 1e-7.
    const TOL: f32 = 1e-5 + 5e-6;

    /// `(id, {term: weight})` of the first `n` lines of a shipped SPLADE JSONL file.
    fn shipped(path: &Path, n: usize) -> Vec<(u64, BTreeMap<String, f32>)> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .take(n)
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let terms = v["vector"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(t, w)| (t.clone(), w.as_f64().unwrap() as f32))
                    .collect();
                (v["id"].as_u64().unwrap(), terms)
            })
            .collect()
    }

    /// Largest |Δ| over the union of terms (an absent term weighs 0) and the number of terms
    /// present on one side only.
    fn compare(
        ours: &[(u32, f32)],
        theirs: &BTreeMap<String, f32>,
        tok: &Tokenizer,
    ) -> (f32, usize) {
        let ours: BTreeMap<String, f32> = ours
            .iter()
            .map(|&(id, w)| (tok.id_to_token(id).unwrap(), w))
            .collect();
        let mut max = 0f32;
        let mut one_sided = 0;
        for term in ours.keys().chain(theirs.keys()) {
            let (a, b) = (ours.get(term), theirs.get(term));
            if a.is_none() || b.is_none() {
                one_sided += 1;
            }
            max = max.max((a.copied().unwrap_or(0.0) - b.copied().unwrap_or(0.0)).abs());
        }
        (max, one_sided)
    }

    #[test]
    fn splade_tiny_reproduces_the_shipped_cranfield_vectors() {
        let shared = PathBuf::from(SHARED);
        let model_dir = shared.join("models/splade-tiny");
        let cranfield = shared.join("cranfield");
        if !model_dir.exists() || !cranfield.exists() {
            println!(
                "skipping: {} is absent (the shared data folder is not checked out)",
                shared.display()
            );
            return;
        }
        let splade = SpladeEncoder::from_hf_folder(&model_dir, &crate::test_device()).unwrap();
        let n = 20;
        let docs: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(cranfield.join("cranfield-documents.json")).unwrap(),
        )
        .unwrap();
        let queries: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(cranfield.join("cranfield-queries.json")).unwrap(),
        )
        .unwrap();
        let doc_texts: Vec<(u64, String)> = docs.as_array().unwrap()[..n]
            .iter()
            .map(|d| {
                let text = format!(
                    "{} {}",
                    d["title"].as_str().unwrap(),
                    d["body"].as_str().unwrap()
                );
                (d["id"].as_u64().unwrap(), text)
            })
            .collect();
        let query_texts: Vec<(u64, String)> = queries.as_array().unwrap()[..n]
            .iter()
            .map(|q| {
                (
                    q["id"].as_u64().unwrap(),
                    q["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (texts, file) in [
            (doc_texts, "splade-tiny-docs.jsonl"),
            (query_texts, "splade-tiny-queries.jsonl"),
        ] {
            let expected = shipped(&cranfield.join(file), n);
            let strs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
            let ours = splade.encode(&strs).unwrap();
            let (mut worst, mut one_sided_total, mut terms) = (0f32, 0, 0);
            for ((id, _), (vector, (want_id, want))) in texts.iter().zip(ours.iter().zip(&expected))
            {
                assert_eq!(
                    id, want_id,
                    "{file}: the JSONL follows the collection's order"
                );
                let (max, one_sided) = compare(vector, want, splade.tokenizer());
                // A term on one side only is one whose weight rounds to (or sits at) zero: the
                // max |Δ| bound covers it, since its weight on the other side is ≤ TOL.
                assert!(
                    max <= TOL,
                    "{file} id {id}: max |Δ| = {max}, {one_sided} one-sided terms"
                );
                assert!(
                    one_sided <= 2,
                    "{file} id {id}: {one_sided} one-sided terms"
                );
                worst = worst.max(max);
                one_sided_total += one_sided;
                terms += want.len();
            }
            println!(
                "{file}: first {n}, {terms} shipped terms, max |Δ| {worst:.2e}, {one_sided_total} one-sided"
            );
        }
    }

    #[test]
    fn batching_and_padding_do_not_change_vectors() {
        let device = crate::test_device();
        device.seed(9);
        let model = BertConfig::new(6, 8, 1, 2, 16, 16).init_masked_lm(&device);
        let model = model.map(&mut RandomiseBias);
        let splade = SpladeEncoder::new(model, tiny_tokenizer()).with_max_batch_tokens(5);
        let texts = ["a b c a", "b", "c c", "a"];
        let batched = splade.encode(&texts).unwrap();
        for (t, v) in texts.iter().zip(&batched) {
            let alone = splade.encode(&[t]).unwrap().remove(0);
            assert_eq!(alone.len(), v.len(), "{t}");
            for (x, y) in alone.iter().zip(v) {
                assert_eq!(x.0, y.0);
                assert!((x.1 - y.1).abs() < 1e-5, "{t}: {x:?} vs {y:?}");
            }
        }
        // The definition, from the MLM logits: max over tokens of log(1 + relu(logit)).
        let ids = splade.tokenizer().encode("a b c a", true).unwrap();
        let logits = splade
            .model()
            .forward(&BertInput::from_sequences(&[ids], None, 0, &device))
            .unwrap();
        let want: Vec<f32> = relu(logits)
            .log1p()
            .max_dim(1)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let dense: Vec<(u32, f32)> = want
            .iter()
            .enumerate()
            .filter(|(_, x)| **x > 0.0)
            .map(|(i, &x)| (i as u32, x))
            .collect();
        assert_eq!(dense.len(), batched[0].len());
        for (x, y) in dense.iter().zip(&batched[0]) {
            assert_eq!(x.0, y.0);
            assert!((x.1 - y.1).abs() < 1e-5);
        }
    }

    /// Random MLM bias, so some terms are zero and some not.
    struct RandomiseBias;

    impl burn::module::ModuleMapper for RandomiseBias {
        fn map_float<const N: usize>(
            &mut self,
            p: burn::module::Param<Tensor<N>>,
        ) -> burn::module::Param<Tensor<N>> {
            p.map(|t| t.random_like(burn::tensor::Distribution::Normal(0.0, 1.0)))
        }
    }

    fn tiny_tokenizer() -> Tokenizer {
        Tokenizer::from_bytes(
            br#"{"version": "1.0", "added_tokens": [], "normalizer": null,
                "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
                "truncation": null, "padding": null,
                "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4, "d": 5},
                          "unk_token": "[UNK]"}}"#,
        )
        .unwrap()
    }
}
