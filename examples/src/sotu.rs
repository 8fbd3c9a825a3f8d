//! Long State-of-the-Union speeches as fixed-length token windows (the sparse-attention
//! experiments' text).

use std::path::PathBuf;

use hooked_transformer::Tokenizer;
use hooked_transformer::corpus::{CorpusFormat, read_documents};
use serde_json::Value;

/// The shared SOTU corpus (`data/text/sotu.jsonl`: one speech a line, fields `year`, `name`,
/// `text`).
pub fn sotu_path() -> PathBuf {
    crate::shared_dir().join("data/text/sotu.jsonl")
}

/// One speech cut to a window.
#[derive(Clone, Debug)]
pub struct SpeechWindow {
    /// `"<year> <president>"`.
    pub title: String,
    /// The first `len` token ids of the speech (no BOS: SmolLM2's GGUF sets `add_bos_token =
    /// false`).
    pub tokens: Vec<u32>,
}

/// The first `count` speeches, after skipping `skip` long enough ones, that have at least
/// `len` tokens, each cut to its first `len` tokens.
///
/// # Errors
/// Reading or parsing the corpus, tokenizing, or fewer than `count` long enough speeches.
pub fn speech_windows(
    tokenizer: &Tokenizer,
    len: usize,
    count: usize,
    skip: usize,
) -> Result<Vec<SpeechWindow>, Box<dyn std::error::Error>> {
    let path = sotu_path();
    let texts = read_documents(&path, &CorpusFormat::jsonl_text())?;
    let lines: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let mut out = Vec::new();
    let mut skipped = 0;
    for (text, line) in texts.iter().zip(&lines) {
        // ~3.5 characters a token: skip speeches that cannot be long enough before tokenizing.
        if text.len() < len * 3 {
            continue;
        }
        let ids = tokenizer.encode(text, false)?;
        if ids.len() < len {
            continue;
        }
        if skipped < skip {
            skipped += 1;
            continue;
        }
        let meta: Value = serde_json::from_str(line)?;
        let title = format!(
            "{} {}",
            meta.get("year").and_then(Value::as_u64).unwrap_or(0),
            meta.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        out.push(SpeechWindow {
            title,
            tokens: ids[..len].to_vec(),
        });
        if out.len() == count {
            return Ok(out);
        }
    }
    Err(format!(
        "{}: only {} speeches of at least {len} tokens (after skipping {skip}), {count} wanted",
        path.display(),
        out.len()
    )
    .into())
}
