//! Long State-of-the-Union speeches as fixed-length token windows (the sparse-attention
//! experiments' text).
//!
//! The speeches are visited in a seeded random order and the first `count` with at least `len`
//! tokens are kept, each cut to its first `len` tokens. Asking once for the longest context and
//! cutting shorter windows from the same tokens ([`SpeechWindow::prefix`]) gives every context
//! the same texts: the 2k window is the start of the 8k one.

use std::path::{Path, PathBuf};

use hooked_transformer::Tokenizer;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// The shared SOTU corpus (`data/text/sotu.jsonl`: one speech a line, fields `year`, `name`,
/// `text`).
pub fn sotu_path() -> PathBuf {
    crate::shared_dir().join("data/text/sotu.jsonl")
}

/// What is wrong with the corpus or the request.
#[derive(Debug, thiserror::Error)]
pub enum SotuError {
    /// The corpus file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The corpus file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a JSON object with a string `text`.
    #[error("{path}: line {line}: {reason}")]
    BadLine {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer failed on a speech.
    #[error("tokenizing `{title}`: {source}")]
    Tokenizer {
        /// The speech.
        title: String,
        /// The tokenizer's error.
        source: hooked_transformer::Error,
    },
    /// Fewer long-enough speeches than asked for.
    #[error("{path}: only {found} speeches of at least {len} tokens, {wanted} wanted")]
    TooFew {
        /// The corpus file.
        path: PathBuf,
        /// Speeches found.
        found: usize,
        /// Speeches wanted.
        wanted: usize,
        /// Tokens each must have.
        len: usize,
    },
}

/// One speech of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Speech {
    /// `"<year> <president>"` (`0` / `?` when the field is absent).
    pub title: String,
    /// The speech.
    pub text: String,
}

/// One speech cut to a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeechWindow {
    /// `"<year> <president>"`.
    pub title: String,
    /// The first `len` token ids of the speech (no BOS: SmolLM2's GGUF sets `add_bos_token =
    /// false`).
    pub tokens: Vec<u32>,
}

impl SpeechWindow {
    /// The first `len` tokens.
    ///
    /// # Panics
    /// If the window is shorter than `len`.
    pub fn prefix(&self, len: usize) -> &[u32] {
        assert!(
            len <= self.tokens.len(),
            "SpeechWindow::prefix: len expected ≤ {}, found {len}",
            self.tokens.len()
        );
        &self.tokens[..len]
    }
}

/// Every speech of a JSON-lines corpus (blank lines skipped).
///
/// # Errors
/// [`SotuError::Io`] when the file cannot be read, [`SotuError::BadLine`] naming the first line
/// that is not JSON or has no string `text`.
pub fn read_speeches(path: &Path) -> Result<Vec<Speech>, SotuError> {
    let body = std::fs::read_to_string(path).map_err(|source| SotuError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| SotuError::BadLine {
            path: path.to_path_buf(),
            line: n + 1,
            reason,
        };
        let meta: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let text = match meta.get("text") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(bad(format!("field `text` is not a string ({other})"))),
            None => return Err(bad("no field `text`".into())),
        };
        let title = format!(
            "{} {}",
            meta.get("year").and_then(Value::as_u64).unwrap_or(0),
            meta.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        out.push(Speech { title, text });
    }
    Ok(out)
}

/// `count` speeches of at least `len` tokens, visited in the order of a `seed`ed shuffle, each
/// cut to its first `len` tokens.
///
/// # Errors
/// Tokenizer failures, or [`SotuError::TooFew`] when fewer than `count` speeches are long
/// enough (`path` only names the corpus in that message).
pub fn speech_windows(
    speeches: &[Speech],
    path: &Path,
    tokenizer: &Tokenizer,
    len: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<SpeechWindow>, SotuError> {
    let mut order: Vec<usize> = (0..speeches.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut out = Vec::new();
    for i in order {
        if out.len() == count {
            break;
        }
        let speech = &speeches[i];
        // No SmolLM2 token is shorter than one byte: a text of fewer bytes than `len` cannot
        // have `len` tokens, so it is skipped without tokenizing.
        if speech.text.len() < len {
            continue;
        }
        let ids = tokenizer
            .encode(&speech.text, false)
            .map_err(|source| SotuError::Tokenizer {
                title: speech.title.clone(),
                source,
            })?;
        if ids.len() >= len {
            out.push(SpeechWindow {
                title: speech.title.clone(),
                tokens: ids[..len].to_vec(),
            });
        }
    }
    if out.len() < count {
        return Err(SotuError::TooFew {
            path: path.to_path_buf(),
            found: out.len(),
            wanted: count,
            len,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("examples-sotu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn speeches_are_read_with_titles_and_bad_lines_are_named() {
        let path = temp_file(
            "ok.jsonl",
            "{\"year\": 1790, \"name\": \"A\", \"text\": \"one two\"}\n\n{\"text\": \"x\"}\n",
        );
        let s = read_speeches(&path).unwrap();
        assert_eq!(
            s,
            vec![
                Speech {
                    title: "1790 A".into(),
                    text: "one two".into()
                },
                Speech {
                    title: "0 ?".into(),
                    text: "x".into()
                }
            ]
        );
        let path = temp_file("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": 3}\n");
        let e = read_speeches(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not a string"), "{e}");
        let path = temp_file("nojson.jsonl", "\n{oops\n");
        let e = read_speeches(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not valid JSON"), "{e}");
        let e = read_speeches(Path::new("/nonexistent/sotu.jsonl")).unwrap_err();
        assert!(matches!(e, SotuError::Io { .. }), "{e}");
    }

    #[test]
    fn windows_of_the_real_corpus_are_long_seeded_and_too_many_is_an_error() {
        let tok_path = crate::smollm2_dir().join("tokenizer.json");
        let path = sotu_path();
        if !tok_path.exists() || !path.exists() {
            eprintln!(
                "skipped: {} or {} absent",
                tok_path.display(),
                path.display()
            );
            return;
        }
        let tok = Tokenizer::from_file(&tok_path).unwrap();
        let speeches = read_speeches(&path).unwrap();
        assert!(speeches.len() > 200, "{}", speeches.len());
        let a = speech_windows(&speeches, &path, &tok, 2048, 2, 7).unwrap();
        assert_eq!(a.len(), 2);
        for w in &a {
            assert_eq!(w.tokens.len(), 2048);
            assert_eq!(w.prefix(100), &w.tokens[..100]);
            // The window is the start of the speech's own tokenization.
            assert!(
                speeches
                    .iter()
                    .filter(|s| s.title == w.title)
                    .any(|s| tok.encode(&s.text, false).unwrap()[..2048] == w.tokens[..])
            );
        }
        assert_ne!(a[0].title, a[1].title);
        assert_eq!(
            a,
            speech_windows(&speeches, &path, &tok, 2048, 2, 7).unwrap()
        );
        // No speech has ten million tokens.
        let e = speech_windows(&speeches[..3], &path, &tok, 10_000_000, 1, 0).unwrap_err();
        assert!(matches!(e, SotuError::TooFew { found: 0, .. }), "{e}");
    }
}
