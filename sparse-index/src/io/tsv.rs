//! Results TSV, the format of Seismic's tools and `recall_at_k.py`:
//! `query_id \t doc_id \t rank (1-based) \t score`, one line per result.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::topk::ScoredDoc;

/// Writes one line per result; query ids are positions in `results`.
///
/// # Errors
/// [`Error::Io`].
pub fn write_results_tsv(path: impl AsRef<Path>, results: &[Vec<ScoredDoc>]) -> Result<()> {
    super::write_atomically(path.as_ref(), |w| {
        for (q, hits) in results.iter().enumerate() {
            for (rank, h) in hits.iter().enumerate() {
                writeln!(w, "{q}\t{}\t{}\t{}", h.doc, rank + 1, h.score)?;
            }
        }
        Ok(())
    })
}

/// Reads a results or ground-truth TSV into per-query document lists in rank order. Query ids
/// must be `0..n` (queries without a line get an empty list); extra columns are ignored.
///
/// # Errors
/// [`Error::Io`]; [`Error::Tsv`] for a line with fewer than 3 columns or a non-integer field.
pub fn read_results_tsv(path: impl AsRef<Path>) -> Result<Vec<Vec<u32>>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rows: Vec<Vec<(u32, u32)>> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| Error::Tsv {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            return Err(bad(format!(
                "expected query, doc, rank columns, found {}",
                f.len()
            )));
        }
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("{what} {s:?} is not a non-negative integer")))
        };
        let (q, d, r) = (
            num(f[0], "query id")?,
            num(f[1], "doc id")?,
            num(f[2], "rank")?,
        );
        if q as usize >= rows.len() {
            if q > 100_000_000 {
                return Err(bad(format!("query id {q} is implausibly large")));
            }
            rows.resize(q as usize + 1, Vec::new());
        }
        rows[q as usize].push((r, d));
    }
    Ok(rows
        .into_iter()
        .map(|mut r| {
            r.sort_unstable();
            r.into_iter().map(|(_, d)| d).collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.tsv");
        let results = vec![
            vec![
                ScoredDoc { doc: 4, score: 2.5 },
                ScoredDoc { doc: 1, score: 1.0 },
            ],
            vec![],
            vec![ScoredDoc { doc: 9, score: 0.5 }],
        ];
        write_results_tsv(&path, &results).unwrap();
        assert_eq!(
            read_results_tsv(&path).unwrap(),
            vec![vec![4, 1], vec![], vec![9]]
        );
        std::fs::write(&path, "0\t1\n").unwrap();
        assert!(matches!(
            read_results_tsv(&path),
            Err(Error::Tsv { line: 1, .. })
        ));
        std::fs::write(&path, "0\t1\t1\t0.5\n0\tx\t2\t0.1\n").unwrap();
        assert!(matches!(
            read_results_tsv(&path),
            Err(Error::Tsv { line: 2, .. })
        ));
    }
}
