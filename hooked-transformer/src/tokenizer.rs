//! A Hugging Face `tokenizer.json` (WordPiece for BERT, byte-level BPE for Llama-family models)
//! behind a small typed API.
//!
//! Padding is the model's business (it builds the attention mask), so a loaded tokenizer never
//! pads: the `padding` block of the file is dropped on load and only its pad id is remembered
//! ([`Tokenizer::pad_id`]). Truncation keeps the file's setting unless changed with
//! [`Tokenizer::with_truncation`]; special tokens count towards the limit, as in Hugging Face.

use std::path::{Path, PathBuf};

use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// One encoded text: token ids and their token-type (segment) ids, same length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Token-type ids (BERT segment ids; 0 for a single sequence).
    pub type_ids: Vec<u32>,
}

/// A tokenizer loaded from a Hugging Face `tokenizer.json`.
///
/// ```no_run
/// use hooked_transformer::Tokenizer;
///
/// let tok = Tokenizer::from_file("tokenizer.json")?.with_truncation(Some(256))?;
/// let ids = tok.encode("Hello world", true)?;
/// assert_eq!(tok.decode(&ids, true)?, "hello world");
/// # Ok::<(), hooked_transformer::Error>(())
/// ```
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    pad_id: Option<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("max_length", &self.max_length())
            .finish()
    }
}

impl Tokenizer {
    /// Loads a `tokenizer.json`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] naming the path when the file is missing, unreadable or not a
    /// tokenizer.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            reason: format!("cannot read the file: {e}"),
        })?;
        Self::from_bytes_named(&bytes, path.to_path_buf())
    }

    /// Parses a `tokenizer.json` held in memory (errors name the path `<memory>`).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the bytes are not a tokenizer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_named(bytes, PathBuf::from("<memory>"))
    }

    fn from_bytes_named(bytes: &[u8], path: PathBuf) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer {
            path: path.clone(),
            reason: format!("not a valid tokenizer.json: {e}"),
        })?;
        let pad_id = inner.get_padding().map(|p| p.pad_id);
        inner.with_padding(None);
        Ok(Self {
            inner,
            path,
            pad_id,
        })
    }

    /// Truncates every encoding to at most `max_length` tokens, special tokens included
    /// (right side, longest-first — Hugging Face's `enable_truncation(max_length)`); `None`
    /// turns truncation off.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if `max_length` is too small to hold the special tokens.
    pub fn with_truncation(mut self, max_length: Option<usize>) -> Result<Self> {
        let params = max_length.map(|max_length| TruncationParams {
            direction: TruncationDirection::Right,
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        });
        if let Err(e) = self.inner.with_truncation(params) {
            return Err(self.error(format!("truncation to {max_length:?}: {e}")));
        }
        Ok(self)
    }

    /// The truncation limit in tokens, if truncation is on.
    pub fn max_length(&self) -> Option<usize> {
        self.inner.get_truncation().map(|t| t.max_length)
    }

    /// The pad id the file's `padding` block named, if it had one.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id
    }

    /// The file this tokenizer came from (`<memory>` for [`Tokenizer::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: String) -> Error {
        Error::Tokenizer {
            path: self.path.clone(),
            reason,
        }
    }

    /// Token ids of `text`; `add_special_tokens` applies the file's post-processor (BERT's
    /// `[CLS] … [SEP]`, a BOS token, ...).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails on this text.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self.encode_with_types(text, add_special_tokens)?.ids)
    }

    /// Token ids and token-type ids of `text`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails on this text.
    pub fn encode_with_types(&self, text: &str, add_special_tokens: bool) -> Result<Encoding> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.error(format!("encoding failed: {e}")))?;
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
        })
    }

    /// Token ids and token-type ids of a sentence pair (`[CLS] a [SEP] b [SEP]` for BERT, with
    /// type ids 0 then 1).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails on this pair.
    pub fn encode_pair(&self, a: &str, b: &str, add_special_tokens: bool) -> Result<Encoding> {
        let enc = self
            .inner
            .encode((a, b), add_special_tokens)
            .map_err(|e| self.error(format!("encoding a pair failed: {e}")))?;
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
        })
    }

    /// Token ids of each text (unpadded, in order), encoded in parallel.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails on any text.
    pub fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        let encs = self
            .inner
            .encode_batch(texts.to_vec(), add_special_tokens)
            .map_err(|e| self.error(format!("batch encoding failed: {e}")))?;
        Ok(encs.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The text of `ids`; `skip_special_tokens` drops `[CLS]`, `<|im_start|>` and the like.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if an id is outside the vocabulary or decoding fails.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let n = self.vocab_size();
        if let Some((position, &id)) = ids.iter().enumerate().find(|(_, id)| **id as usize >= n) {
            return Err(self.error(format!(
                "cannot decode id {id} at position {position}: the vocabulary has {n} tokens"
            )));
        }
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.error(format!("decoding failed: {e}")))
    }

    /// The id of a token string (`"[MASK]"`, `"##ing"`, `"Ġworld"`), if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id, if it is in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Writes the tokenizer as `tokenizer.json` (padding off; truncation as currently set).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] naming `path` if it cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.inner.save(path, true).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            reason: format!("cannot write the tokenizer: {e}"),
        })
    }

    /// The vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/models/smollm2-135m-instruct/tokenizer.json"
    );
    const SPLADE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/models/splade-tiny/tokenizer.json"
    );

    fn shared(path: &str) -> Option<&str> {
        if Path::new(path).exists() {
            Some(path)
        } else {
            println!("skipping: {path} is absent (the shared data folder is not checked out)");
            None
        }
    }

    #[test]
    fn missing_and_corrupt_files_are_typed_errors_naming_the_path() {
        let err = Tokenizer::from_file("/nonexistent/tokenizer.json").unwrap_err();
        assert!(matches!(err, Error::Tokenizer { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/tokenizer.json"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, b"{\"not\": \"a tokenizer\"").unwrap();
        let err = Tokenizer::from_file(&path).unwrap_err();
        assert!(matches!(err, Error::Tokenizer { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn smollm2_byte_level_bpe_is_deterministic_and_round_trips() {
        let Some(path) = shared(SMOLLM2) else { return };
        let tok = Tokenizer::from_file(path).unwrap();
        let a = tok.encode("Hello world", false).unwrap();
        let b = tok.encode("Hello world", false).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(tok.id_to_token(a[1]).as_deref(), Some("Ġworld"));
        assert_eq!(tok.token_to_id("Ġworld"), Some(a[1]));
        assert_eq!(tok.vocab_size(), 49152);
        let sentences = [
            "Mr. President, Mr. Speaker, Members of the Congress:",
            "We must reduce the national debt and balance the federal budget in 1962.",
            "The state of our Union is strong — and tonight, we renew our pledge.",
            "  Spaces,\ttabs\nand newlines; digits 12345 and émigré accents.",
        ];
        let batch = tok.encode_batch(&sentences, false).unwrap();
        for (s, ids) in sentences.iter().zip(&batch) {
            assert_eq!(ids, &tok.encode(s, false).unwrap());
            assert_eq!(tok.decode(ids, false).unwrap(), *s);
        }
        assert!(tok.decode(&[u32::MAX], false).is_err());
    }

    #[test]
    fn bert_wordpiece_adds_cls_sep_types_and_truncates() {
        let Some(path) = shared(SPLADE) else { return };
        let tok = Tokenizer::from_file(path).unwrap();
        assert_eq!(tok.pad_id(), Some(0));
        let ids = tok.encode("Hello world", true).unwrap();
        assert_eq!(ids.first(), Some(&101));
        assert_eq!(ids.last(), Some(&102));
        assert_eq!(tok.decode(&ids, true).unwrap(), "hello world");
        let pair = tok.encode_pair("a b", "c", true).unwrap();
        assert_eq!(pair.type_ids, vec![0, 0, 0, 0, 1, 1]);
        let long = "word ".repeat(600);
        assert_eq!(
            tok.encode(&long, true).unwrap().len(),
            512,
            "the file's own limit"
        );
        let tok = tok.with_truncation(Some(8)).unwrap();
        let ids = tok.encode(&long, true).unwrap();
        assert_eq!(ids.len(), 8);
        assert_eq!((ids[0], ids[7]), (101, 102));
        let tok = tok.with_truncation(None).unwrap();
        assert_eq!(tok.encode(&long, true).unwrap().len(), 602);
        // Batches are never padded, whatever the file says.
        let batch = tok.encode_batch(&["a", "a b c d"], true).unwrap();
        assert_eq!(batch[0].len(), 3);
        assert_eq!(batch[1].len(), 6);
    }
}
