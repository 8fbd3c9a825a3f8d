//! The prompts of the detection and fuzzing judges.
//!
//! Content as delphi's (research note §1.A5–A6): the explanation, the numbered examples,
//! and the request for a list of exactly as many 0/1 answers; no few-shot examples here
//! (delphi adds some; planned as an option). The wording is this crate's own.

/// System prompt of the detection judge: is the latent active anywhere in the example?
pub const DETECTION_SYSTEM_PROMPT: &str = "You judge explanations of a latent feature of a \
language model. You are given an explanation of what makes the feature active and a numbered \
list of text examples. For each example, decide whether the feature is active somewhere in it, \
according to the explanation. Answer with a list of 0s and 1s, one per example in the order \
given: 1 if the feature is active in the example, 0 if not, for example [1, 0, 0, 1, 0]. Give \
only the list.";

/// System prompt of the fuzzing judge: is every `<<marked>>` token one the latent fires on?
pub const FUZZING_SYSTEM_PROMPT: &str = "You judge explanations of a latent feature of a \
language model. You are given an explanation of what makes the feature active and a numbered \
list of text examples in which some tokens are marked between << and >>. For each example, \
decide whether every marked token is one on which the feature is active, according to the \
explanation. Answer with a list of 0s and 1s, one per example in the order given: 1 if all \
marks in the example are correct, 0 if any is wrong, for example [1, 0, 0, 1, 0]. Give only \
the list.";

/// The user message for one batch: the explanation on one line, then `Example i: text`
/// (1-based), then the length the answer must have.
///
/// ```
/// use interp_eval::scorer::user_prompt;
///
/// let p = user_prompt("Fires on \"cat\".", &["a cat".into(), "a dog".into()]);
/// assert_eq!(
///     p,
///     "Explanation: Fires on \"cat\".\n\nExample 1: a cat\nExample 2: a dog\n\n\
///      Answer with a list of exactly 2 numbers, each 0 or 1."
/// );
/// ```
pub fn user_prompt(explanation: &str, texts: &[String]) -> String {
    let explanation = explanation.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = format!("Explanation: {explanation}\n\n");
    for (i, t) in texts.iter().enumerate() {
        out.push_str(&format!("Example {}: {}\n", i + 1, t));
    }
    out.push_str(&format!(
        "\nAnswer with a list of exactly {} numbers, each 0 or 1.",
        texts.len()
    ));
    out
}
