//! Activation sources: where the trainer's tokens come from, behind one trait.

mod closure;
mod finite;
mod mapped;
mod memory;
mod npy_file;
mod rows;
mod safetensors_file;

pub use closure::ClosureSource;
pub use memory::InMemorySource;
pub use npy_file::NpySource;
pub use safetensors_file::SafetensorsSource;

pub(crate) use finite::{check_finite, host_rows};

use crate::Result;

/// Where a source stands: the chunk it is in and the row within that chunk.
///
/// File and memory sources have a single chunk (`chunk == 0`) and count rows from the start of
/// the (selected range of the) source. A [`ClosureSource`] counts calls in `chunk` and rows within
/// the chunk it returned in `row`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SourcePosition {
    /// The chunk index (0 for files and memory).
    pub chunk: u64,
    /// The row within the chunk.
    pub row: u64,
}

/// A stream of activation rows (tokens) of a fixed width `d_in`.
///
/// Sources hand out rows on the host as `f32` in row-major order, with the index of each row's
/// token (its row number in a file, its row within the chunk for a closure) so that filters such
/// as "drop position 0 of each sequence" know where a row sits. Every value is checked: a NaN or
/// infinity is an [`Error::NonFinite`](crate::Error::NonFinite) naming the row and column.
///
/// A source can report and restore its [`SourcePosition`]; this is what makes training resumable
/// at the exact token it stopped at.
pub trait ActivationSource {
    /// The width of every row.
    fn d_in(&self) -> usize;

    /// The number of rows, when known (files and memory), `None` for open-ended streams.
    fn num_rows(&self) -> Option<u64>;

    /// A short description for errors and logs (a file name, "in-memory", ...).
    fn name(&self) -> String;

    /// The position of the next row [`read`](Self::read) returns.
    fn position(&self) -> SourcePosition;

    /// Moves to `position` (a value [`position`](Self::position) returned earlier, or the default
    /// for the start).
    ///
    /// # Errors
    /// [`Error::OutOfRange`](crate::Error::OutOfRange) if the position lies outside the source.
    fn seek(&mut self, position: SourcePosition) -> Result<()>;

    /// Appends up to `max_rows` rows to `values` (`d_in` values each) and the token index of each
    /// row to `tokens`; returns how many rows were appended, `0` at the end of the source.
    ///
    /// # Errors
    /// Non-finite values, wrong widths or I/O failures, each naming the source.
    fn read(
        &mut self,
        max_rows: usize,
        values: &mut Vec<f32>,
        tokens: &mut Vec<u64>,
    ) -> Result<usize>;
}

impl<S: ActivationSource + ?Sized> ActivationSource for Box<S> {
    fn d_in(&self) -> usize {
        (**self).d_in()
    }
    fn num_rows(&self) -> Option<u64> {
        (**self).num_rows()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn position(&self) -> SourcePosition {
        (**self).position()
    }
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        (**self).seek(position)
    }
    fn read(
        &mut self,
        max_rows: usize,
        values: &mut Vec<f32>,
        tokens: &mut Vec<u64>,
    ) -> Result<usize> {
        (**self).read(max_rows, values, tokens)
    }
}
