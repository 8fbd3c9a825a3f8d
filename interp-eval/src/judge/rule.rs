//! Deterministic, rule-based explainer and judge: a token-list explanation and a judge that
//! applies it with regular expressions.

use std::collections::HashMap;

use regex::Regex;

use super::explainer::{Explainer, Explanation};
use super::traits::{
    Capabilities, ChatModel, Completion, FinishReason, GenParams, JudgeError, Message, TokenLogprob,
};
use crate::examples::Example;
use crate::text::{HIGHLIGHT_FRACTION, TokenText, marked_tokens};

/// The token-level explanation baseline: which tokens make the latent fire.
///
/// Counts the tokens marked active (`a ≥ 0.3 · max` of their example, [`marked_tokens`]) over
/// the train examples and names the `n_keywords` most frequent (trimmed; ties in string
/// order): `Fires on the tokens "cat", "dog".` — the form [`KeywordJudge`] reads back.
///
/// ```
/// use interp_eval::judge::{Explainer, TokenListExplainer};
/// use interp_eval::examples::{Example, ExampleKind, Span};
///
/// let vocab: Vec<String> = [" the", " cat", " sat"].map(String::from).to_vec();
/// let example = Example {
///     span: Span { row: 0, start: 0, len: 3 },
///     source_window: 0,
///     tokens: vec![0, 1, 2],
///     activations: vec![0.0, 2.0, 0.1],
///     max_activation: 2.0,
///     kind: ExampleKind::Activating { quantile: None },
/// };
/// let explanation = TokenListExplainer::new(3).explain(&[example], &vocab).unwrap();
/// assert_eq!(explanation.text, r#"Fires on the tokens "cat"."#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenListExplainer {
    /// How many tokens to name.
    pub n_keywords: usize,
}

impl TokenListExplainer {
    /// Names up to `n_keywords` tokens.
    pub fn new(n_keywords: usize) -> Self {
        Self { n_keywords }
    }
}

impl Explainer for TokenListExplainer {
    fn explain(&self, train: &[Example], vocab: &dyn TokenText) -> Result<Explanation, JudgeError> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for e in train {
            for (&id, marked) in e
                .tokens
                .iter()
                .zip(marked_tokens(&e.activations, HIGHLIGHT_FRACTION))
            {
                let t = vocab.token_text(id).trim().replace('"', "'");
                if marked && !t.is_empty() {
                    *counts.entry(t).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(self.n_keywords);
        if ranked.is_empty() {
            return Ok(Explanation::new("Fires on no recurring token."));
        }
        let list: Vec<String> = ranked.iter().map(|(t, _)| format!("\"{t}\"")).collect();
        Ok(Explanation::new(format!(
            "Fires on the tokens {}.",
            list.join(", ")
        )))
    }
}

/// A judge that answers detection and fuzzing prompts by rule, for tests of the whole
/// pipeline without a model.
///
/// It reads the prompt the scorers write ([`crate::scorer`]): the `Explanation:` line and the
/// `Example i:` lines. Its patterns are either fixed ([`Self::with_patterns`]) or, by
/// default, the double-quoted strings of the explanation, matched case-insensitively as
/// literals. For an example without `<<marks>>` (detection) it answers 1 iff a pattern
/// matches the text; for one with marks (fuzzing) it answers 1 iff every marked span matches
/// a pattern. The reply is a list `[1, 0, …]`; when token logprobs are asked for, each digit
/// token carries `ln 0.9` for its answer and `ln 0.1` for the other.
#[derive(Debug, Clone)]
pub struct KeywordJudge {
    patterns: Option<Vec<Regex>>,
    logprobs: bool,
}

impl Default for KeywordJudge {
    fn default() -> Self {
        Self::from_explanation()
    }
}

impl KeywordJudge {
    /// Patterns from the quoted strings of each prompt's explanation; answers with logprobs
    /// when asked.
    pub fn from_explanation() -> Self {
        Self {
            patterns: None,
            logprobs: true,
        }
    }

    /// Fixed patterns, whatever the explanation says.
    pub fn with_patterns(patterns: Vec<Regex>) -> Self {
        Self {
            patterns: Some(patterns),
            logprobs: true,
        }
    }

    /// The same judge without token logprobs (like an API that has none).
    pub fn without_logprobs(mut self) -> Self {
        self.logprobs = false;
        self
    }

    fn patterns_for(&self, prompt: &str) -> Vec<Regex> {
        if let Some(p) = &self.patterns {
            return p.clone();
        }
        let line = Regex::new(r"(?m)^Explanation:(.*)$").expect("valid regex");
        let quoted = Regex::new(r#""([^"]+)""#).expect("valid regex");
        let Some(explanation) = line.captures(prompt) else {
            return Vec::new();
        };
        quoted
            .captures_iter(&explanation[1])
            .map(|c| c[1].trim().to_string())
            .filter(|k| !k.is_empty())
            .filter_map(|k| Regex::new(&format!("(?i){}", regex::escape(&k))).ok())
            .collect()
    }

    /// The 0/1 answers for the examples of `prompt`, in order.
    pub fn answers(&self, prompt: &str) -> Vec<bool> {
        let patterns = self.patterns_for(prompt);
        let example = Regex::new(r"(?m)^Example \d+: (.*)$").expect("valid regex");
        let marks = Regex::new(r"<<(.*?)>>").expect("valid regex");
        let hit = |s: &str| patterns.iter().any(|p| p.is_match(s));
        example
            .captures_iter(prompt)
            .map(|c| {
                let text = &c[1];
                let spans: Vec<&str> = marks
                    .captures_iter(text)
                    .map(|m| m.get(1).expect("group").as_str())
                    .collect();
                if spans.is_empty() {
                    hit(text)
                } else {
                    spans.iter().all(|s| hit(s))
                }
            })
            .collect()
    }
}

impl ChatModel for KeywordJudge {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            token_logprobs: self.logprobs,
            prompt_logprobs: false,
            max_context: None,
        }
    }

    fn complete(&self, messages: &[Message], params: &GenParams) -> Result<Completion, JudgeError> {
        let prompt: String = messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let answers = self.answers(&prompt);
        let digit = |a: bool| if a { "1" } else { "0" };
        let text = format!(
            "[{}]",
            answers
                .iter()
                .map(|&a| digit(a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let tokens = (self.logprobs && params.top_logprobs.is_some()).then(|| {
            let (hi, lo) = (0.9f32.ln(), 0.1f32.ln());
            let plain = |t: &str| TokenLogprob {
                token: t.into(),
                logprob: 0.0,
                top: vec![(t.into(), 0.0)],
            };
            let mut out = vec![plain("[")];
            for (i, &a) in answers.iter().enumerate() {
                if i > 0 {
                    out.push(plain(","));
                }
                let (this, other) = (digit(a), digit(!a));
                let token = if i > 0 {
                    format!(" {this}")
                } else {
                    this.into()
                };
                out.push(TokenLogprob {
                    token: token.clone(),
                    logprob: hi,
                    top: vec![(token, hi), (other.into(), lo)],
                });
            }
            out.push(plain("]"));
            out
        });
        Ok(Completion {
            text,
            tokens,
            finish: FinishReason::Stop,
        })
    }
}
