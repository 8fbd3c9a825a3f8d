//! Text corpora (JSONL with a text field, or plain text) and their cutting into fixed-length
//! token sequences.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How a corpus file is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorpusFormat {
    /// One JSON object a line; the document is the string field `field`.
    Jsonl {
        /// The text field's name (`"text"` for most corpora).
        field: String,
    },
    /// The whole file is one document.
    PlainText,
}

impl CorpusFormat {
    /// JSONL with the `text` field.
    pub fn jsonl_text() -> Self {
        CorpusFormat::Jsonl {
            field: "text".into(),
        }
    }

    /// `Jsonl` for `.jsonl` / `.json` files, `PlainText` otherwise.
    pub fn from_extension(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json" | "ndjson") => Self::jsonl_text(),
            _ => CorpusFormat::PlainText,
        }
    }
}

/// Reads every document of a corpus file.
///
/// # Errors
/// [`Error::Io`]; [`Error::BadInput`] naming the line for a line that is not JSON, not an
/// object, or lacks the text field as a string (blank lines are skipped).
pub fn read_documents(path: impl AsRef<Path>, format: &CorpusFormat) -> Result<Vec<String>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    match format {
        CorpusFormat::PlainText => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::BufReader::new(file), &mut text)
                .map_err(|e| Error::io(path, e))?;
            Ok(vec![text])
        }
        CorpusFormat::Jsonl { field } => {
            let mut docs = Vec::new();
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| Error::io(path, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                docs.push(jsonl_text(&line, field, path, i + 1)?);
            }
            Ok(docs)
        }
    }
}

fn jsonl_text(line: &str, field: &str, path: &Path, line_no: usize) -> Result<String> {
    let bad = |reason: String| Error::BadInput {
        path: PathBuf::from(path),
        reason: format!("line {line_no}: {reason}"),
    };
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    match value.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(bad(format!(
            "field `{field}` is not a string (found {other})"
        ))),
        None => Err(bad(format!("no field `{field}`"))),
    }
}

/// How documents become fixed-length sequences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencePacking {
    /// Tokens per sequence (BOS included when `bos` is set).
    pub seq_len: usize,
    /// Token placed between consecutive documents (`None`: documents are simply concatenated).
    pub separator: Option<u32>,
    /// Token placed at the start of every sequence (TransformerLens / SAELens `prepend_bos`).
    pub bos: Option<u32>,
}

/// Concatenates the documents' tokens (with the separator between documents) and cuts the
/// stream into sequences of `seq_len`, dropping the incomplete tail: SAELens' packing.
///
/// # Panics
/// If `seq_len` is 0, or 1 with a BOS (no room for text).
pub fn pack_sequences(documents: &[Vec<u32>], packing: &SequencePacking) -> Vec<Vec<u32>> {
    let body = packing.seq_len - usize::from(packing.bos.is_some());
    assert!(
        packing.seq_len > 0 && body > 0,
        "pack_sequences: seq_len expected > {} , found {}",
        usize::from(packing.bos.is_some()),
        packing.seq_len
    );
    let mut stream = Vec::new();
    for (i, doc) in documents.iter().enumerate() {
        if i > 0
            && let Some(sep) = packing.separator
        {
            stream.push(sep);
        }
        stream.extend_from_slice(doc);
    }
    stream
        .chunks_exact(body)
        .map(|chunk| {
            let mut seq = Vec::with_capacity(packing.seq_len);
            seq.extend(packing.bos);
            seq.extend_from_slice(chunk);
            seq
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn jsonl_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.jsonl");
        std::fs::write(&p, "{\"text\": \"a\"}\n\n{\"txt\": 1}\n").unwrap();
        let err = read_documents(&p, &CorpusFormat::jsonl_text())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("no field `text`"),
            "{err}"
        );
        std::fs::write(&p, "{\"text\": \"a\"}\n{\"text\": 5}\n").unwrap();
        let err = read_documents(&p, &CorpusFormat::jsonl_text())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("not a string"),
            "{err}"
        );
        std::fs::write(&p, "{\"text\": \"a\"}\n{\"text\": \"b\"\n").unwrap();
        let err = read_documents(&p, &CorpusFormat::jsonl_text())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("not valid JSON"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn packing_keeps_every_token_in_order(
            docs in proptest::collection::vec(proptest::collection::vec(10u32..100, 0..30), 0..8),
            seq_len in 2usize..12,
            sep in proptest::option::of(0u32..5),
            bos in proptest::option::of(5u32..10),
        ) {
            let packing = SequencePacking { seq_len, separator: sep, bos };
            let seqs = pack_sequences(&docs, &packing);
            let mut stream = Vec::new();
            for (i, d) in docs.iter().enumerate() {
                if i > 0 { stream.extend(sep); }
                stream.extend(d);
            }
            let body = seq_len - usize::from(bos.is_some());
            prop_assert_eq!(seqs.len(), stream.len() / body);
            let mut joined: Vec<u32> = Vec::new();
            for s in &seqs {
                prop_assert_eq!(s.len(), seq_len);
                if let Some(b) = bos { prop_assert_eq!(s[0], b); joined.extend(&s[1..]); } else { joined.extend(s); }
            }
            prop_assert_eq!(&joined[..], &stream[..joined.len()]);
        }
    }
}
