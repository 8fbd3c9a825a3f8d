//! A selected range of rows of a finite source, shared by the file and memory sources.

use std::ops::Range;

use crate::{Error, Result, SourcePosition};

/// The rows `[start, end)` of a source of `total` rows, with a cursor.
#[derive(Debug, Clone)]
pub(crate) struct RowWindow {
    pub start: u64,
    pub end: u64,
    pub next: u64,
}

impl RowWindow {
    pub fn full(total: u64) -> Self {
        Self {
            start: 0,
            end: total,
            next: 0,
        }
    }

    /// Restricts to `range` (relative to the whole source).
    pub fn select(total: u64, range: Range<u64>, name: &str) -> Result<Self> {
        if range.start > range.end || range.end > total {
            return Err(Error::OutOfRange {
                source_name: name.to_string(),
                what: format!("row range {range:?} outside 0..{total}"),
            });
        }
        if range.start == range.end {
            return Err(Error::Empty {
                source_name: format!("{name} rows {range:?}"),
            });
        }
        Ok(Self {
            start: range.start,
            end: range.end,
            next: range.start,
        })
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn position(&self) -> SourcePosition {
        SourcePosition {
            chunk: 0,
            row: self.next - self.start,
        }
    }

    pub fn seek(&mut self, position: SourcePosition, name: &str) -> Result<()> {
        if position.chunk != 0 || position.row > self.len() {
            return Err(Error::OutOfRange {
                source_name: name.to_string(),
                what: format!(
                    "position {position:?} outside a single chunk of {} rows",
                    self.len()
                ),
            });
        }
        self.next = self.start + position.row;
        Ok(())
    }

    /// Takes up to `max_rows` rows: returns the absolute range and advances the cursor.
    pub fn take(&mut self, max_rows: usize) -> Range<u64> {
        let from = self.next;
        let to = (from + max_rows as u64).min(self.end);
        self.next = to;
        from..to
    }

    /// The body of [`ActivationSource::read`](crate::ActivationSource::read) for a windowed
    /// source: takes up to `max_rows` rows, has `fill` append their values, then appends their
    /// token indices (absolute row numbers) to `tokens`. Returns how many rows were taken.
    pub fn read(
        &mut self,
        max_rows: usize,
        tokens: &mut Vec<u64>,
        fill: impl FnOnce(Range<u64>) -> Result<()>,
    ) -> Result<usize> {
        let range = self.take(max_rows);
        fill(range.clone())?;
        tokens.extend(range.clone());
        Ok((range.end - range.start) as usize)
    }
}
