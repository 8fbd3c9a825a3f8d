//! The capability traits and the types they exchange.

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions.
    System,
    /// The request.
    User,
    /// The model's turn (few-shot answers).
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Generation settings of one completion.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Sampling temperature (0: greedy, delphi's judges).
    pub temperature: f32,
    /// Sampling seed, where the backend takes one.
    pub seed: Option<u64>,
    /// Ask for the `k` most likely alternatives of every generated token (delphi: 5).
    pub top_logprobs: Option<u8>,
    /// Stop strings.
    pub stop: Vec<String>,
}

impl Default for GenParams {
    /// 256 tokens, temperature 0, no seed, no logprobs, no stop strings.
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            seed: None,
            top_logprobs: None,
            stop: Vec::new(),
        }
    }
}

/// One token of a reply (or prompt) with its log-probability and the most likely
/// alternatives at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its natural-log probability.
    pub logprob: f32,
    /// The top alternatives `(text, logprob)`, the token itself usually among them.
    pub top: Vec<(String, f32)>,
}

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural stop or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The model or its provider refused (OpenAI's `refusal` / `content_filter`).
    Refusal,
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Per-token logprobs, when asked for and supported.
    pub tokens: Option<Vec<TokenLogprob>>,
    /// Why it ended.
    pub finish: FinishReason,
}

impl Completion {
    /// A plain text reply that stopped normally.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tokens: None,
            finish: FinishReason::Stop,
        }
    }
}

/// What a chat model can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Returns [`TokenLogprob`]s for generated tokens.
    pub token_logprobs: bool,
    /// Implements [`PromptScorer`].
    pub prompt_logprobs: bool,
    /// Longest context in tokens, when known.
    pub max_context: Option<usize>,
}

/// A failed call to a model (not a bad reply: that is a parse failure of the scorer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JudgeError {
    /// The transport failed (connection, HTTP status, malformed response body).
    #[error("judge transport failed: {0}")]
    Transport(String),
    /// No reply in time.
    #[error("judge timed out after {seconds} s")]
    Timeout {
        /// The limit that was hit.
        seconds: u64,
    },
    /// The model cannot do what was asked (e.g. logprobs from a server without them).
    #[error("judge does not support {0}")]
    Unsupported(&'static str),
    /// A reply without the part the caller needs (an explainer reply without its
    /// `[EXPLANATION]:` line); holds the reply.
    #[error("judge reply could not be parsed: {0:?}")]
    UnparseableReply(String),
    /// A model returned a malformed result (wrong number or length of vectors or losses,
    /// non-finite values); says what.
    #[error("judge returned a malformed result: {0}")]
    Malformed(String),
    /// The model refused; holds its reply.
    #[error("judge refused: {0:?}")]
    Refused(String),
    /// A scripted judge has no reply left.
    #[error("scripted judge has no reply left (call {call})")]
    ScriptExhausted {
        /// The 0-based call that found the script empty.
        call: usize,
    },
}

/// Chat completion, with optional token logprobs (detection, fuzzing, explanation).
pub trait ChatModel: Send + Sync {
    /// What the model supports.
    fn capabilities(&self) -> Capabilities;

    /// Completes `messages`.
    ///
    /// # Errors
    /// A [`JudgeError`] when the call itself fails; scorers count it as a failure.
    fn complete(&self, messages: &[Message], params: &GenParams) -> Result<Completion, JudgeError>;
}

/// Log-probabilities of the prompt's own tokens (simulation scoring in logprob mode; vLLM's
/// `prompt_logprobs`).
pub trait PromptScorer: Send + Sync {
    /// Per-token logprobs of the rendered `messages`, with `top` alternatives each.
    ///
    /// # Errors
    /// A [`JudgeError`] when the call fails.
    fn prompt_logprobs(
        &self,
        messages: &[Message],
        top: u8,
    ) -> Result<Vec<TokenLogprob>, JudgeError>;
}

/// Per-token negative log-likelihood of a continuation given a prefix (surprisal and
/// intervention scoring).
pub trait SequenceScorer: Send + Sync {
    /// `−ln P(token | prefix, earlier continuation tokens)` for every continuation token.
    ///
    /// # Errors
    /// A [`JudgeError`] when the call fails.
    fn token_nll(&self, prefix: &str, continuation: &str) -> Result<Vec<f32>, JudgeError>;
}

/// Text embeddings (embedding scoring).
pub trait Embedder: Send + Sync {
    /// One vector per text, all of the same length.
    ///
    /// # Errors
    /// A [`JudgeError`] when the call fails.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, JudgeError>;
}
