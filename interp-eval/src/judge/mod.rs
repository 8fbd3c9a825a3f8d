//! What scorers need from a language model, as traits, and deterministic implementations for
//! tests.
//!
//! Each trait is one capability, so a scorer states exactly what it needs: [`ChatModel`]
//! (detection, fuzzing, explanation; token logprobs for AUROC), [`PromptScorer`] (prompt
//! logprobs: simulation), [`SequenceScorer`] (per-token NLL: surprisal and intervention
//! scoring), [`Embedder`] (embedding scoring). The calls are blocking and the traits
//! object-safe and `Send + Sync`; the OpenAI-compatible HTTP client and the in-process
//! SmolLM2/BERT judges (through `hooked-transformer`) are planned implementations.

mod chat_explainer;
mod deterministic;
mod explainer;
mod rule;
mod scripted;
mod traits;

pub use chat_explainer::{
    ChatExplainer, EXPLAINER_SYSTEM_PROMPT, explainer_prompt, parse_explanation,
};
pub use deterministic::{HashingEmbedder, WordRecallLm};
pub use explainer::{Explainer, Explanation};
pub use rule::{KeywordJudge, TokenListExplainer};
pub use scripted::{ScriptedChat, ScriptedReply};
pub use traits::{
    Capabilities, ChatModel, Completion, Embedder, FinishReason, GenParams, JudgeError, Message,
    PromptScorer, Role, SequenceScorer, TokenLogprob,
};
