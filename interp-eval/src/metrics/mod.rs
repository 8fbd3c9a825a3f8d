//! Aggregation: confusion counts, balanced accuracy, precision/recall/F1, AUROC,
//! frequency-weighted F1, bootstrap intervals — with every judge failure counted.

mod auroc;
mod bootstrap;
mod confusion;
mod correlation;
mod outcome;
mod report;
mod summary;

pub use auroc::{auroc, auroc_pairwise};
pub use bootstrap::{BootstrapConfig, ConfidenceInterval, bootstrap_ci};
pub use confusion::{Confusion, frequency_weighted_f1};
pub use correlation::{pearson, pooled_pearson};
pub use outcome::{Outcome, Verdict};
pub use report::ScoreReport;
pub use summary::ModuleSummary;
