//! JSONL with term-keyed vectors, one record a line, as SPLADE tools and Seismic's Python API
//! read and write: `{"id": 7, "content": "…", "vector": {"wing": 1.25, "lift": 0.5}}`.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::vector::SparseVector;
use crate::vocabulary::Vocabulary;

/// A record's id: JSON integer or string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordId::Int(i) => write!(f, "{i}"),
            RecordId::Str(s) => f.write_str(s),
        }
    }
}

/// One JSONL record with its vector mapped to component ids.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonlRecord {
    /// The record's `id`.
    pub id: RecordId,
    /// The record's `content`, if present.
    pub content: Option<String>,
    /// The `vector`, terms mapped through the vocabulary.
    pub vector: SparseVector,
}

/// The `vector` object, keeping every entry (duplicates are detected, not overwritten).
struct TermWeights(Vec<(String, f64)>);

impl<'de> Deserialize<'de> for TermWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TermWeights;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping terms to numbers")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<TermWeights, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some((k, v)) = m.next_entry::<String, f64>()? {
                    out.push((k, v));
                }
                Ok(TermWeights(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct RawRecord {
    id: RecordId,
    #[serde(default)]
    content: Option<String>,
    vector: TermWeights,
}

fn parse_lines(path: &Path) -> Result<Vec<(usize, RawRecord)>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: RawRecord = serde_json::from_str(&line).map_err(|e| Error::Jsonl {
            path: path.to_path_buf(),
            line: i + 1,
            reason: explain_json_error(&line, e),
        })?;
        out.push((i + 1, rec));
    }
    Ok(out)
}

/// serde's message, plus the likely cause when the line holds a non-finite number: JSON has no
/// NaN or Infinity (Python's `json.dumps` writes them anyway), and serde only says "expected value".
fn explain_json_error(line: &str, e: serde_json::Error) -> String {
    let non_finite = ["NaN", "Infinity"].iter().any(|w| line.contains(w));
    if non_finite && e.is_syntax() {
        format!("{e} (NaN and Infinity are not JSON numbers; write finite weights)")
    } else {
        e.to_string()
    }
}

fn to_vector(
    path: &Path,
    line: usize,
    weights: TermWeights,
    mut id_of: impl FnMut(&str) -> Option<u32>,
    dropped: &mut usize,
) -> Result<SparseVector> {
    let bad = |reason: String| Error::Jsonl {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut pairs = Vec::with_capacity(weights.0.len());
    for (term, w) in weights.0 {
        let v = w as f32;
        if !v.is_finite() {
            return Err(bad(format!("weight of {term:?} is not a finite f32: {w}")));
        }
        match id_of(&term) {
            Some(id) => pairs.push((id, v)),
            None => *dropped += 1,
        }
    }
    SparseVector::from_pairs(pairs).map_err(|e| match e {
        Error::DuplicateComponent { .. } => bad("a term appears twice in \"vector\"".into()),
        other => bad(other.to_string()),
    })
}

/// Maps the parsed records' vectors through `vocab`; returns them with the number of terms the
/// vocabulary did not know (dropped).
fn to_records(
    path: &Path,
    raw: Vec<(usize, RawRecord)>,
    vocab: &Vocabulary,
) -> Result<(Vec<JsonlRecord>, usize)> {
    let mut dropped = 0;
    let records = raw
        .into_iter()
        .map(|(line, r)| {
            Ok(JsonlRecord {
                vector: to_vector(path, line, r.vector, |t| vocab.id(t), &mut dropped)?,
                id: r.id,
                content: r.content,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((records, dropped))
}

/// Reads a JSONL file and builds its vocabulary: terms get ids in sorted order (as Seismic's
/// Python API does), so the same documents always give the same ids.
///
/// # Errors
/// [`Error::Io`]; [`Error::Jsonl`] naming the line for invalid JSON, a missing `id` or `vector`,
/// a weight that is not a number or not a finite `f32`, or a term repeated in a vector.
pub fn read_jsonl(path: impl AsRef<Path>) -> Result<(Vec<JsonlRecord>, Vocabulary)> {
    let path = path.as_ref();
    let raw = parse_lines(path)?;
    let mut terms: Vec<&str> = raw
        .iter()
        .flat_map(|(_, r)| r.vector.0.iter().map(|(t, _)| t.as_str()))
        .collect();
    terms.sort_unstable();
    terms.dedup();
    let vocab = Vocabulary::from_terms(terms.iter().copied())?;
    let (records, _) = to_records(path, raw, &vocab)?;
    Ok((records, vocab))
}

/// Reads a JSONL file (typically queries) through an existing vocabulary. Terms the vocabulary
/// does not know cannot match any document and are dropped; their count is returned.
///
/// # Errors
/// As [`read_jsonl`].
pub fn read_jsonl_with_vocabulary(
    path: impl AsRef<Path>,
    vocab: &Vocabulary,
) -> Result<(Vec<JsonlRecord>, usize)> {
    let path = path.as_ref();
    to_records(path, parse_lines(path)?, vocab)
}

/// Writes records as JSONL (`id`, `content` when present, `vector` keyed by term), atomically.
///
/// # Errors
/// [`Error::Io`]; [`Error::ComponentOutOfRange`] for a component id the vocabulary lacks.
pub fn write_jsonl(
    path: impl AsRef<Path>,
    records: &[JsonlRecord],
    vocab: &Vocabulary,
) -> Result<()> {
    for r in records {
        if let Some(&c) = r.vector.indices().last()
            && vocab.term(c).is_none()
        {
            return Err(Error::ComponentOutOfRange {
                component: u64::from(c),
                dim: vocab.len() as u64,
                what: "vocabulary",
            });
        }
    }
    crate::io::write_atomically(path.as_ref(), |w| {
        for r in records {
            let mut vector = serde_json::Map::with_capacity(r.vector.nnz());
            for (c, v) in r.vector.iter() {
                let term = vocab.term(c).expect("checked above");
                vector.insert(term.to_string(), serde_json::Value::from(v));
            }
            let mut obj = serde_json::Map::new();
            obj.insert(
                "id".into(),
                serde_json::to_value(&r.id).map_err(std::io::Error::other)?,
            );
            if let Some(c) = &r.content {
                obj.insert("content".into(), serde_json::Value::from(c.as_str()));
            }
            obj.insert("vector".into(), serde_json::Value::Object(vector));
            serde_json::to_writer(&mut *w, &obj).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_sorted_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"id": 1, "content": "a wing", "vector": {"wing": 1.5, "a": 0.25}}"#,
                "\n\n",
                r#"{"id": "d2", "vector": {"lift": 2.0}}"#,
                "\n"
            ),
        )
        .unwrap();
        let (recs, vocab) = read_jsonl(&path).unwrap();
        assert_eq!(vocab.terms(), &["a", "lift", "wing"]);
        assert_eq!(recs[0].id, RecordId::Int(1));
        assert_eq!(recs[0].vector.indices(), &[0, 2]);
        assert_eq!(recs[0].vector.values(), &[0.25, 1.5]);
        assert_eq!(recs[1].id, RecordId::Str("d2".into()));
        assert_eq!(recs[1].content, None);

        let out = dir.path().join("out.jsonl");
        write_jsonl(&out, &recs, &vocab).unwrap();
        let (again, dropped) = read_jsonl_with_vocabulary(&out, &vocab).unwrap();
        assert_eq!(again, recs);
        assert_eq!(dropped, 0);

        std::fs::write(&path, r#"{"id": 1, "vector": {"zzz": 1.0, "wing": 1.0}}"#).unwrap();
        let (q, dropped) = read_jsonl_with_vocabulary(&path, &vocab).unwrap();
        assert_eq!((q[0].vector.indices(), dropped), (&[2u32][..], 1));
    }

    #[test]
    fn invalid_lines_are_errors_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        let cases = [
            r#"{"id": 1, "vector": {"a": "x"}}"#,
            r#"{"id": 1, "vector": {"a": 1e300}}"#,
            r#"{"id": 1, "vector": {"a": 1.0, "a": 2.0}}"#,
            r#"{"id": 1}"#,
            r#"{"vector": {}}"#,
            r#"not json"#,
            r#"{"id": 1.5, "vector": {}}"#,
        ];
        for case in cases {
            std::fs::write(&path, format!("{{\"id\": 0, \"vector\": {{}}}}\n{case}\n")).unwrap();
            let err = read_jsonl(&path).unwrap_err();
            assert!(matches!(err, Error::Jsonl { line: 2, .. }), "{case}: {err}");
        }
    }

    #[test]
    fn nan_says_that_nan_is_not_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nan.jsonl");
        for weight in ["NaN", "Infinity", "-Infinity"] {
            std::fs::write(
                &path,
                format!("{{\"id\": 0, \"vector\": {{\"a\": {weight}}}}}\n"),
            )
            .unwrap();
            let err = read_jsonl(&path).unwrap_err().to_string();
            assert!(
                err.contains("NaN and Infinity are not JSON numbers"),
                "{weight}: {err}"
            );
        }
    }
}
