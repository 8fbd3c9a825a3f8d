//! Chat prompts in the ChatML format SmolLM2-Instruct was trained on.
//!
//! The template is SmolLM2's own (`tokenizer.chat_template` in its GGUF file): each message as
//! `<|im_start|>{role}\n{content}<|im_end|>\n`, a default system message when the conversation
//! does not start with one, and `<|im_start|>assistant\n` as the generation prompt.

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system".into(),
            content: content.into(),
        }
    }
}

/// SmolLM2's default system message (used when the first message is not a system message).
pub const SMOLLM2_DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The token that ends a ChatML turn: generation stops on it.
pub const IM_END: &str = "<|im_end|>";

/// Renders `messages` with SmolLM2's chat template; `add_generation_prompt` appends the opening
/// of the assistant's turn.
///
/// ```
/// use hooked_transformer::chat::{ChatMessage, smollm2_chat_prompt};
/// let p = smollm2_chat_prompt(&[ChatMessage::user("Hi")], true);
/// assert!(p.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
/// ```
pub fn smollm2_chat_prompt(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    if messages.first().is_none_or(|m| m.role != "system") {
        out.push_str(&format!(
            "<|im_start|>system\n{SMOLLM2_DEFAULT_SYSTEM}{IM_END}\n"
        ));
    }
    for m in messages {
        out.push_str(&format!("<|im_start|>{}\n{}{IM_END}\n", m.role, m.content));
    }
    if add_generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_system_message_replaces_the_default() {
        let p = smollm2_chat_prompt(&[ChatMessage::system("S"), ChatMessage::user("U")], false);
        assert_eq!(
            p,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        );
    }
}
