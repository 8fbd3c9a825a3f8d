//! The LLM explainer's prompt and the parsing of its reply (research note §1.A4).

use super::explainer::{Explainer, Explanation};
use super::traits::{ChatModel, FinishReason, GenParams, JudgeError, Message};
use crate::examples::Example;
use crate::text::{
    HIGHLIGHT_FRACTION, TokenText, highlight, marked_tokens, normalise_activations, token_strings,
};

/// System prompt of the explainer. The wording is this crate's own; the content follows
/// delphi: find the common pattern, be concise, don't mention the markers, end with the
/// `[EXPLANATION]:` line.
pub const EXPLAINER_SYSTEM_PROMPT: &str = "You explain a latent feature of a language model \
from text examples in which it is active. In each example the tokens on which it is active \
are marked between << and >>. Find what the marked tokens and their contexts have in common \
and describe it in one short phrase. Do not mention the markers or the examples themselves. \
End your reply with a last line of the form [EXPLANATION]: <your explanation>";

/// The user message: each train example as text with its active tokens (`a ≥ 0.3 · max` of
/// the example) in `<<…>>`, and with `activations`, a line listing every marked token with
/// its activation normalised to `0..=10` against the largest of all the examples (delphi's
/// `Activations: ("tok" : n), …`).
pub fn explainer_prompt(train: &[Example], vocab: &dyn TokenText, activations: bool) -> String {
    let max = train
        .iter()
        .map(|e| e.max_activation)
        .fold(0.0f32, f32::max);
    let mut out = String::new();
    for (i, e) in train.iter().enumerate() {
        let strings = token_strings(&e.tokens, vocab);
        let marks = marked_tokens(&e.activations, HIGHLIGHT_FRACTION);
        out.push_str(&format!(
            "Example {}: {}\n",
            i + 1,
            highlight(&strings, &marks)
        ));
        if activations {
            let levels = normalise_activations(&e.activations, max);
            let listed: Vec<String> = strings
                .iter()
                .zip(&marks)
                .zip(&levels)
                .filter(|((_, m), _)| **m)
                .map(|((s, _), n)| format!("(\"{}\" : {n})", s.replace('\n', "↵")))
                .collect();
            out.push_str(&format!("Activations: {}\n", listed.join(", ")));
        }
    }
    out
}

/// The text after the last `[EXPLANATION]:` of `reply`, up to the end of its line, trimmed;
/// `None` if there is none or it is empty.
///
/// ```
/// use interp_eval::judge::parse_explanation;
///
/// assert_eq!(parse_explanation("Thinking…\n[EXPLANATION]: plural nouns\n"), Some("plural nouns".into()));
/// assert_eq!(parse_explanation("no tag here"), None);
/// ```
pub fn parse_explanation(reply: &str) -> Option<String> {
    let at = reply.rfind("[EXPLANATION]:")?;
    let rest = &reply[at + "[EXPLANATION]:".len()..];
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// An explainer that asks a chat model ([`EXPLAINER_SYSTEM_PROMPT`] + [`explainer_prompt`],
/// temperature 0). A reply without an explanation line is
/// [`JudgeError::UnparseableReply`], a refusal [`JudgeError::Refused`] — errors, so the
/// pipeline records them (delphi substitutes a placeholder string and moves on silently).
#[derive(Debug, Clone)]
pub struct ChatExplainer<M> {
    /// The model.
    pub model: M,
    /// Add the `Activations:` line per example.
    pub show_activations: bool,
    /// Most reply tokens.
    pub max_tokens: usize,
}

impl<M: ChatModel> ChatExplainer<M> {
    /// An explainer over `model`, with activation lines and 256 reply tokens.
    pub fn new(model: M) -> Self {
        Self {
            model,
            show_activations: true,
            max_tokens: 256,
        }
    }
}

impl<M: ChatModel> Explainer for ChatExplainer<M> {
    fn explain(&self, train: &[Example], vocab: &dyn TokenText) -> Result<Explanation, JudgeError> {
        let messages = [
            Message::system(EXPLAINER_SYSTEM_PROMPT),
            Message::user(explainer_prompt(train, vocab, self.show_activations)),
        ];
        let params = GenParams {
            max_tokens: self.max_tokens,
            ..GenParams::default()
        };
        let reply = self.model.complete(&messages, &params)?;
        if reply.finish == FinishReason::Refusal {
            return Err(JudgeError::Refused(reply.text));
        }
        parse_explanation(&reply.text)
            .map(Explanation::new)
            .ok_or(JudgeError::UnparseableReply(reply.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::{ExampleKind, Span};
    use crate::judge::{ScriptedChat, ScriptedReply};

    fn train() -> Vec<Example> {
        vec![Example {
            span: Span {
                row: 0,
                start: 0,
                len: 4,
            },
            source_window: 0,
            tokens: vec![0, 1, 2, 3],
            activations: vec![0.0, 4.0, 2.0, 0.5],
            max_activation: 4.0,
            kind: ExampleKind::Activating { quantile: Some(0) },
        }]
    }

    #[test]
    fn prompt_marks_runs_and_lists_normalised_activations() {
        let vocab: Vec<String> = [" the", " big", " cat", " sat"].map(String::from).to_vec();
        let p = explainer_prompt(&train(), &vocab, true);
        assert_eq!(
            p,
            "Example 1:  the<< big cat>> sat\nActivations: (\" big\" : 10), (\" cat\" : 5)\n"
        );
        assert!(!explainer_prompt(&train(), &vocab, false).contains("Activations"));
    }

    #[test]
    fn replies_parse_or_fail_visibly() {
        let vocab: Vec<String> = (0..4).map(|i| format!(" w{i}")).collect();
        let model = ScriptedChat::new([
            ScriptedReply::Text(
                "The tokens are adjectives.\n[EXPLANATION]: adjectives before nouns".into(),
            ),
            ScriptedReply::Text("I think they are adjectives.".into()),
            ScriptedReply::Refusal("I can't.".into()),
        ]);
        let explainer = ChatExplainer::new(model);
        assert_eq!(
            explainer.explain(&train(), &vocab).unwrap().text,
            "adjectives before nouns"
        );
        assert!(matches!(
            explainer.explain(&train(), &vocab),
            Err(JudgeError::UnparseableReply(_))
        ));
        assert!(matches!(
            explainer.explain(&train(), &vocab),
            Err(JudgeError::Refused(_))
        ));
        let prompts = explainer.model.prompts();
        assert_eq!(prompts[0][0].content, EXPLAINER_SYSTEM_PROMPT);
        assert!(prompts[0][1].content.contains("<<"));
    }
}
