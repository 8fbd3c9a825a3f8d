//! Scorers: how well an explanation lets a judge tell a latent's examples apart.

mod batch;
mod detection;
mod fuzzing;
mod intruder;
mod parse;
mod prompt;
mod similarity;
mod simulation;

pub use batch::{BatchConfig, JudgedSample, LatentScore, RecordedCall, Sample};
pub use detection::DetectionScorer;
pub use fuzzing::{FuzzKind, FuzzingScorer, false_marks};
pub use intruder::{
    INTRUDER_SYSTEM_PROMPT, IntruderScore, IntruderScorer, IntruderTrial, parse_intruder_response,
};
pub use parse::{parse_binary_list, probabilities_from_logprobs, probability_of_one};
pub use prompt::{DETECTION_SYSTEM_PROMPT, FUZZING_SYSTEM_PROMPT, user_prompt};
pub use similarity::{EmbeddingScorer, RankingScore, SurprisalScorer};
pub use simulation::{
    SimulatedSequence, SimulationScore, SimulationScorer, UNKNOWN, expected_activation,
    simulation_prompt,
};

#[cfg(test)]
mod tests;
