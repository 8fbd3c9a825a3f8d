//! A judge that plays back scripted replies, failures included, and records its prompts.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::traits::{
    Capabilities, ChatModel, Completion, FinishReason, GenParams, JudgeError, Message, TokenLogprob,
};

/// One scripted reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptedReply {
    /// A text reply.
    Text(String),
    /// A text reply with token logprobs.
    WithLogprobs(String, Vec<TokenLogprob>),
    /// A refusal with its text.
    Refusal(String),
    /// A failed call.
    Error(JudgeError),
}

/// Replies in script order, one per call; records every prompt. When the script runs out,
/// calls fail with [`JudgeError::ScriptExhausted`].
///
/// ```
/// use interp_eval::judge::{ChatModel, GenParams, Message, ScriptedChat, ScriptedReply};
///
/// let judge = ScriptedChat::new([ScriptedReply::Text("[1, 0]".into())]);
/// let reply = judge.complete(&[Message::user("hi")], &GenParams::default()).unwrap();
/// assert_eq!(reply.text, "[1, 0]");
/// assert!(judge.complete(&[], &GenParams::default()).is_err());
/// assert_eq!(judge.prompts().len(), 2);
/// ```
#[derive(Debug)]
pub struct ScriptedChat {
    replies: Mutex<VecDeque<ScriptedReply>>,
    prompts: Mutex<Vec<Vec<Message>>>,
    capabilities: Capabilities,
}

impl ScriptedChat {
    /// A judge playing `replies`; it claims token logprobs iff one of them has some.
    pub fn new(replies: impl IntoIterator<Item = ScriptedReply>) -> Self {
        let replies: VecDeque<ScriptedReply> = replies.into_iter().collect();
        let token_logprobs = replies
            .iter()
            .any(|r| matches!(r, ScriptedReply::WithLogprobs(..)));
        Self {
            replies: Mutex::new(replies),
            prompts: Mutex::new(Vec::new()),
            capabilities: Capabilities {
                token_logprobs,
                ..Capabilities::default()
            },
        }
    }

    /// Every prompt received, in call order.
    pub fn prompts(&self) -> Vec<Vec<Message>> {
        self.prompts.lock().expect("not poisoned").clone()
    }

    /// Replies not yet played.
    pub fn remaining(&self) -> usize {
        self.replies.lock().expect("not poisoned").len()
    }
}

impl ChatModel for ScriptedChat {
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn complete(
        &self,
        messages: &[Message],
        _params: &GenParams,
    ) -> Result<Completion, JudgeError> {
        let call = {
            let mut p = self.prompts.lock().expect("not poisoned");
            p.push(messages.to_vec());
            p.len() - 1
        };
        let reply = self.replies.lock().expect("not poisoned").pop_front();
        match reply {
            None => Err(JudgeError::ScriptExhausted { call }),
            Some(ScriptedReply::Text(t)) => Ok(Completion::text(t)),
            Some(ScriptedReply::WithLogprobs(t, tokens)) => Ok(Completion {
                text: t,
                tokens: Some(tokens),
                finish: FinishReason::Stop,
            }),
            Some(ScriptedReply::Refusal(t)) => Ok(Completion {
                text: t,
                tokens: None,
                finish: FinishReason::Refusal,
            }),
            Some(ScriptedReply::Error(e)) => Err(e),
        }
    }
}
