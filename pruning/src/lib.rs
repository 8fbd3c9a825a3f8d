//! # pruning — sparsity for burn models that makes them smaller and faster
//!
//! The whole path from a dense burn model to a sparse one that runs faster.
//!
//! What this crate holds:
//! - masks as pure functions: magnitude (per tensor and global), random, Ln-structured, N:M for
//!   any N ≤ M, transposable 2:4 and Wanda scores, with torch's meaning of `amount`;
//! - whole-model pruning by path filters with dense weights and masks kept until made permanent;
//! - training with sparsity: hard masks, straight-through, SR-STE, gradual schedules and dynamic
//!   sparse training (SET/RigL);
//! - analyses: essential-sparsity sweeps, low-rank + sparse splits, activation sparsity;
//! - compressed formats (CSR, block-sparse, N:M, the 2:4 layout of PyTorch/CUTLASS) and a
//!   multi-threaded CPU sparse × dense kernel behind a `SparseLinear` inference layer.
//!
//! ```
//! use pruning::{Error, Result};
//!
//! fn check(n: usize, m: usize) -> Result<()> {
//!     if n > m {
//!         return Err(Error::InvalidPattern {
//!             pattern: format!("{n}:{m}"),
//!             reason: "N (kept) must not exceed M (group size)".into(),
//!         });
//!     }
//!     Ok(())
//! }
//! assert!(check(2, 4).is_ok());
//! assert!(check(5, 4).unwrap_err().to_string().contains("5:4"));
//! ```

pub use error::{Error, Result};

mod error;
