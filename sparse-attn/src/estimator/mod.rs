//! Estimators: build a [`SparseMask`](crate::SparseMask) from a problem's q and k.

mod block_topk;
mod host;
mod oracle;
pub mod quest;
pub mod sea;
pub mod sparsed;
#[cfg(test)]
mod test_util;
mod vertical_slash;

pub use block_topk::{BlockTopK, block_density};
pub use oracle::Oracle;
pub use quest::{PageBounds, Quest};
pub use sparsed::{Sparsed, SparsedAttention, SparsedScale};
pub use vertical_slash::{SlashRaster, VerticalSlash, VerticalSlashEstimate};
