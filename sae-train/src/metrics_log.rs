//! Training metrics: one record per logged step and SAE, written as JSON Lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::{Error, Result};

/// What the trainer logs for one SAE at one step.
///
/// # Non-finite values
///
/// JSON has no NaN or infinity, so every `f64` field is written as a JSON number when it is
/// finite and as the string `"NaN"`, `"inf"` or `"-inf"` when it is not (a NaN's sign and payload
/// are not kept). Reading accepts those strings and, for logs written before this
/// representation, `null` (what `serde_json` writes for any non-finite value) as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// The step (0-based) this record was measured at.
    pub step: u64,
    /// Tokens trained on so far (after this step).
    pub tokens: u64,
    /// The SAE's name in the run.
    pub sae: String,
    /// Total training loss.
    #[serde(with = "non_finite")]
    pub loss: f64,
    /// Reconstruction term (sum of squared errors per token, on normalised inputs).
    #[serde(with = "non_finite")]
    pub mse: f64,
    /// Auxiliary (dead-latent) loss, before its coefficient.
    #[serde(with = "non_finite")]
    pub aux_loss: f64,
    /// Fraction of variance unexplained on the batch.
    #[serde(with = "non_finite")]
    pub fvu: f64,
    /// Mean number of non-zero latents per token.
    #[serde(with = "non_finite")]
    pub l0: f64,
    /// Share of latents that have not fired for the dead-token threshold.
    #[serde(with = "non_finite")]
    pub dead_fraction: f64,
    /// Share of latents firing on more than 10 % of the batch's tokens ("dense").
    #[serde(with = "non_finite")]
    pub dense_fraction: f64,
    /// The learning rate used.
    #[serde(with = "non_finite")]
    pub lr: f64,
    /// The sparsity warm-up factor `s` of this step ([`sae_core::StepContext::sparsity_scale`],
    /// `CoefficientWarmup` from 0 to 1 over the run's `sparsity_warmup_steps`): the
    /// architecture's own sparsity coefficient (λ, `l1_coefficient`, `l0_coefficient`, ...)
    /// was multiplied by it. Logs written before the rename call it `sparsity_coefficient`
    /// (same value); both names read.
    #[serde(with = "non_finite", alias = "sparsity_coefficient")]
    pub sparsity_scale: f64,
}

/// A JSON Lines log of [`MetricRecord`]s, flushed after every record.
///
/// A crash while appending can leave a torn last line; [`read`](Self::read) skips and counts it,
/// and [`resume`](Self::resume) drops it before appending again.
///
/// ```
/// use sae_train::{MetricRecord, MetricsLog};
/// let dir = tempfile::tempdir()?;
/// let mut log = MetricsLog::create(dir.path().join("metrics.jsonl"))?;
/// let r = MetricRecord { step: 0, tokens: 64, sae: "topk".into(), loss: 1.0, mse: 1.0,
///     aux_loss: 0.0, fvu: 0.5, l0: 8.0, dead_fraction: 0.0, dense_fraction: 0.0, lr: 1e-3,
///     sparsity_scale: 0.0 };
/// log.append(&r)?;
/// assert_eq!(MetricsLog::read(log.path())?.records, vec![r]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    dropped_torn_lines: usize,
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            file,
            dropped_torn_lines: 0,
        })
    }

    /// Opens the log at `path` for a run resumed after step `resumed_step`: records measured at
    /// later steps (written by the interrupted run after its last checkpoint) are dropped, so the
    /// log reads as one uninterrupted run. A torn last line (see [`read`](Self::read)) is dropped
    /// too and counted in [`dropped_torn_lines`](Self::dropped_torn_lines), so appends start on a
    /// fresh line. The trimmed file replaces the old one atomically.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::MetricsLine`] for a corrupt line before the last.
    pub fn resume(path: impl Into<PathBuf>, resumed_step: u64) -> Result<Self> {
        let path = path.into();
        let (kept, dropped_torn_lines) = if path.exists() {
            let read = Self::read(&path)?;
            let kept: Vec<MetricRecord> = read
                .records
                .into_iter()
                .filter(|r| r.step < resumed_step)
                .collect();
            (kept, read.torn_lines)
        } else {
            (Vec::new(), 0)
        };
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Json {
                path: path.clone(),
                source: e,
            })?);
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            file,
            dropped_torn_lines,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn append(&mut self, record: &MetricRecord) -> Result<()> {
        let mut line = serde_json::to_string(record).map_err(|e| Error::Json {
            path: self.path.clone(),
            source: e,
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Reads every record of a log.
    ///
    /// A last line that is not terminated by a newline and does not parse — what a crash in the
    /// middle of [`append`](Self::append) leaves — is skipped and counted in
    /// [`MetricsRead::torn_lines`]; an unterminated last line that parses is kept. Blank lines are
    /// ignored.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::MetricsLine`] naming the file and the line for a corrupt line
    /// anywhere else (including a corrupt last line that ends with a newline).
    pub fn read(path: &Path) -> Result<MetricsRead> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        // `split` always yields a last piece: empty when the file ends with a newline, the
        // unterminated tail otherwise.
        let tail = lines.pop().unwrap_or_default();
        let mut records = Vec::with_capacity(lines.len());
        for (index, line) in lines.iter().enumerate() {
            if is_blank(line) {
                continue;
            }
            records.push(
                serde_json::from_slice(line).map_err(|e| Error::MetricsLine {
                    path: path.to_path_buf(),
                    line: index + 1,
                    source: e,
                })?,
            );
        }
        let mut torn_lines = 0;
        if !is_blank(tail) {
            match serde_json::from_slice(tail) {
                Ok(record) => records.push(record),
                Err(_) => torn_lines = 1,
            }
        }
        Ok(MetricsRead {
            records,
            torn_lines,
        })
    }

    /// How many torn lines (see [`read`](Self::read)) the old log held when this one was opened
    /// with [`resume`](Self::resume): they are dropped from the rewritten file. 0 for
    /// [`create`](Self::create).
    pub fn dropped_torn_lines(&self) -> usize {
        self.dropped_torn_lines
    }
}

/// What [`MetricsLog::read`] found in a log.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRead {
    /// Every complete record, in file order.
    pub records: Vec<MetricRecord>,
    /// Unterminated, unparsable last lines skipped (0 or 1): the trace of a crash mid-append.
    pub torn_lines: usize,
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// `serde(with)` for the `f64` fields of [`MetricRecord`]: finite values as JSON numbers,
/// non-finite ones as `"NaN"`, `"inf"`, `"-inf"`; `null` reads as NaN.
mod non_finite {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if *value > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(F64OrName)
    }

    struct F64OrName;

    impl Visitor<'_> for F64OrName {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"a number, "NaN", "inf", "-inf" or null"#)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }

        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(step: u64) -> MetricRecord {
        MetricRecord {
            step,
            tokens: step * 10,
            sae: "a".into(),
            loss: 1.0 / (step + 1) as f64,
            mse: 0.5,
            aux_loss: 0.0,
            fvu: 0.1,
            l0: 4.0,
            dead_fraction: 0.0,
            dense_fraction: 0.0,
            lr: 1e-3,
            sparsity_scale: 0.0,
        }
    }

    #[test]
    fn resume_drops_records_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let mut log = MetricsLog::create(&p).unwrap();
        for s in 0..6 {
            log.append(&rec(s)).unwrap();
        }
        drop(log);
        let mut log = MetricsLog::resume(&p, 3).unwrap();
        log.append(&rec(3)).unwrap();
        let steps: Vec<u64> = MetricsLog::read(&p)
            .unwrap()
            .records
            .iter()
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, vec![0, 1, 2, 3]);
        std::fs::write(&p, "{not json\n").unwrap();
        assert!(matches!(
            MetricsLog::read(&p),
            Err(Error::MetricsLine { line: 1, .. })
        ));
    }

    /// Writes `records` as a log at `p` and returns its bytes.
    fn write_log(p: &Path, records: &[MetricRecord]) -> Vec<u8> {
        let mut log = MetricsLog::create(p).unwrap();
        for r in records {
            log.append(r).unwrap();
        }
        std::fs::read(p).unwrap()
    }

    /// Equality that treats NaN as equal to NaN (the sign and payload of a NaN are not kept) and
    /// finite values as equal within 2 ulp: `serde_json` without its `float_roundtrip` feature
    /// parses floats best-effort, which a proptest found off by one ulp (4.682806249824441e92).
    /// serde_json (without its `float_roundtrip` feature) parses floats to within 2 ulps of
    /// normal values; subnormals (below `f64::MIN_POSITIVE`) keep fewer significant bits, so
    /// they compare with that absolute tolerance.
    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan())
            || a == b
            || (a.is_finite()
                && b.is_finite()
                && approx::relative_eq!(
                    a,
                    b,
                    epsilon = f64::MIN_POSITIVE,
                    max_relative = 2.0 * f64::EPSILON
                ))
    }

    fn same_record(a: &MetricRecord, b: &MetricRecord) -> bool {
        let fields = |r: &MetricRecord| {
            [
                r.loss,
                r.mse,
                r.aux_loss,
                r.fvu,
                r.l0,
                r.dead_fraction,
                r.dense_fraction,
                r.lr,
                r.sparsity_scale,
            ]
        };
        (a.step, a.tokens, &a.sae) == (b.step, b.tokens, &b.sae)
            && fields(a).iter().zip(fields(b)).all(|(x, y)| same(*x, y))
    }

    #[test]
    fn non_finite_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let mut r = rec(0);
        r.loss = f64::NAN;
        r.fvu = f64::INFINITY;
        r.aux_loss = f64::NEG_INFINITY;
        let text = String::from_utf8(write_log(&p, std::slice::from_ref(&r))).unwrap();
        assert!(text.contains(r#""loss":"NaN""#), "{text}");
        assert!(text.contains(r#""fvu":"inf""#), "{text}");
        assert!(text.contains(r#""aux_loss":"-inf""#), "{text}");
        let back = MetricsLog::read(&p).unwrap();
        assert_eq!(back.torn_lines, 0);
        assert_eq!(back.records.len(), 1);
        let got = &back.records[0];
        assert!(got.loss.is_nan());
        assert_eq!(got.fvu, f64::INFINITY);
        assert_eq!(got.aux_loss, f64::NEG_INFINITY);
        assert!(same_record(got, &r));
    }

    #[test]
    fn null_from_older_logs_reads_as_nan_and_bad_names_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let line = serde_json::to_string(&rec(0))
            .unwrap()
            .replace(r#""loss":1.0"#, r#""loss":null"#);
        assert!(line.contains("null"), "{line}");
        std::fs::write(&p, format!("{line}\n")).unwrap();
        assert!(MetricsLog::read(&p).unwrap().records[0].loss.is_nan());
        let bad = line.replace("null", r#""nan?""#);
        std::fs::write(&p, format!("{bad}\n")).unwrap();
        assert!(matches!(
            MetricsLog::read(&p),
            Err(Error::MetricsLine { line: 1, .. })
        ));
    }

    #[test]
    fn logs_naming_the_warm_up_factor_sparsity_coefficient_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let mut r = rec(0);
        r.sparsity_scale = 0.25;
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""sparsity_scale":0.25"#), "{line}");
        let old = line.replace("sparsity_scale", "sparsity_coefficient");
        std::fs::write(&p, format!("{old}\n")).unwrap();
        assert_eq!(MetricsLog::read(&p).unwrap().records, vec![r]);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let records: Vec<_> = (0..3).map(rec).collect();
        let bytes = write_log(&p, &records);
        // Every cut strictly inside the last record (its newline included) loses only that one.
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for cut in last_start + 1..bytes.len() - 1 {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let read = MetricsLog::read(&p).unwrap();
            assert_eq!(read.records, records[..2], "cut at {cut}");
            assert_eq!(read.torn_lines, 1, "cut at {cut}");
        }
        // Cut just before the newline: the record is complete and kept.
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        let read = MetricsLog::read(&p).unwrap();
        assert_eq!((read.records, read.torn_lines), (records, 0));
    }

    #[test]
    fn corruption_before_the_last_line_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let bytes = write_log(&p, &(0..3).map(rec).collect::<Vec<_>>());
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let torn = &lines[1][..lines[1].len() / 2];
        std::fs::write(&p, format!("{}\n{torn}\n{}\n", lines[0], lines[2])).unwrap();
        let err = MetricsLog::read(&p).unwrap_err();
        assert!(matches!(err, Error::MetricsLine { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn resume_after_a_torn_append_gives_a_readable_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let records: Vec<_> = (0..4).map(rec).collect();
        let bytes = write_log(&p, &records);
        std::fs::write(&p, &bytes[..bytes.len() - 7]).unwrap();
        let mut log = MetricsLog::resume(&p, 10).unwrap();
        assert_eq!(log.dropped_torn_lines(), 1);
        log.append(&rec(3)).unwrap();
        log.append(&rec(4)).unwrap();
        drop(log);
        let read = MetricsLog::read(&p).unwrap();
        assert_eq!(read.torn_lines, 0);
        let steps: Vec<u64> = read.records.iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![0, 1, 2, 3, 4]);
        assert!(std::fs::read(&p).unwrap().ends_with(b"\n"));
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            any::<f64>(),
        ]
    }

    proptest! {
        #[test]
        fn every_record_round_trips(
            step in any::<u64>(),
            tokens in any::<u64>(),
            sae in "\\PC{0,12}",
            v in proptest::collection::vec(any_f64(), 9),
        ) {
            let r = MetricRecord {
                step, tokens, sae, loss: v[0], mse: v[1], aux_loss: v[2], fvu: v[3], l0: v[4],
                dead_fraction: v[5], dense_fraction: v[6], lr: v[7], sparsity_scale: v[8],
            };
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("m.jsonl");
            write_log(&p, std::slice::from_ref(&r));
            let read = MetricsLog::read(&p).unwrap();
            prop_assert_eq!(read.torn_lines, 0);
            prop_assert_eq!(read.records.len(), 1);
            prop_assert!(same_record(&read.records[0], &r), "{:?} != {:?}", read.records[0], r);
        }
    }
}
