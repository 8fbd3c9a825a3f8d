//! The architectures, one per file.

mod abs_topk;
mod archetypal;
mod batch_topk;
mod common;
mod config_check;
mod gated;
mod jumprelu;
mod matching_pursuit;
mod matryoshka;
mod relu;
mod top_afa;
mod topk;

pub use abs_topk::{AbsTopKSae, AbsTopKSaeConfig};
pub use archetypal::{ArchetypalSae, ArchetypalSaeConfig};
pub use batch_topk::{BatchTopKSae, BatchTopKSaeConfig};
pub use config_check::ConfigError;
pub use gated::{GatedSae, GatedSaeConfig};
pub use jumprelu::{JumpReluSae, JumpReluSaeConfig, JumpReluSparsityLoss, jumprelu, step};
pub use matching_pursuit::{MatchingPursuitSae, MatchingPursuitSaeConfig};
pub use matryoshka::{MatryoshkaLevelCodes, MatryoshkaSae, MatryoshkaSaeConfig};
pub use relu::{ReluPenalty, ReluSae, ReluSaeConfig};
pub use top_afa::{TopAfaSae, TopAfaSaeConfig};
pub use topk::{TopKSae, TopKSaeConfig};
