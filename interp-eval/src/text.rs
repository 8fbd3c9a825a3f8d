//! Turning examples into prompt text: token strings, normalised activations, `<<highlights>>`.

/// Fraction of an example's maximum from which a token counts as active when highlighted
/// (delphi's 0.3).
pub const HIGHLIGHT_FRACTION: f32 = 0.3;

/// Where the text of a token id comes from (a tokenizer's vocabulary; `hooked-transformer`'s
/// tokenizer in the planned pipeline).
pub trait TokenText {
    /// The string of token `id` as it appears in running text (with its leading space, if the
    /// tokenizer has one).
    fn token_text(&self, id: u32) -> String;
}

/// A vocabulary as a list indexed by token id; ids past its end read as `<unk:ID>`.
impl TokenText for [String] {
    fn token_text(&self, id: u32) -> String {
        self.get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("<unk:{id}>"))
    }
}

impl TokenText for Vec<String> {
    fn token_text(&self, id: u32) -> String {
        self.as_slice().token_text(id)
    }
}

/// Any function from id to string.
impl<F: Fn(u32) -> String> TokenText for F {
    fn token_text(&self, id: u32) -> String {
        self(id)
    }
}

/// Delphi's normalised activations: `ceil(10 · a / max(max_activation, 1e-6))` clamped to
/// `0..=10` (so 0 stays 0 and the maximum maps to 10).
///
/// ```
/// use interp_eval::text::normalise_activations;
///
/// assert_eq!(normalise_activations(&[0.0, 0.05, 0.5, 1.0], 1.0), vec![0, 1, 5, 10]);
/// ```
pub fn normalise_activations(activations: &[f32], max_activation: f32) -> Vec<u8> {
    let max = max_activation.max(1e-6);
    activations
        .iter()
        .map(|&a| (10.0 * a / max).ceil().clamp(0.0, 10.0) as u8)
        .collect()
}

/// The tokens shown as active: `a_t > 0` and `a_t ≥ fraction · max_t a_t`.
///
/// One convention for the explainer, the fuzzing positives and (by complement) the false
/// highlights, where delphi mixes `>` and `≥`: a false highlight is drawn only from tokens
/// this function leaves unmarked.
pub fn marked_tokens(activations: &[f32], fraction: f32) -> Vec<bool> {
    let max = activations.iter().copied().fold(0.0f32, f32::max);
    activations
        .iter()
        .map(|&a| a > 0.0 && a >= fraction * max)
        .collect()
}

/// Joins token strings as running text (no separator added) and wraps every maximal run of
/// marked tokens in `<<` … `>>`; newlines become `↵` so that each example stays on one line
/// of the prompt.
///
/// ```
/// use interp_eval::text::highlight;
///
/// let tokens = ["x", " a", " b", " c", " y"].map(String::from);
/// assert_eq!(highlight(&tokens, &[false, true, true, true, false]), "x<< a b c>> y");
/// assert_eq!(highlight(&tokens[1..4], &[true, true, true]), "<< a b c>>");
/// ```
///
/// # Panics
/// If `tokens` and `marked` differ in length.
pub fn highlight(tokens: &[String], marked: &[bool]) -> String {
    assert_eq!(
        tokens.len(),
        marked.len(),
        "highlight: {} tokens but {} marks",
        tokens.len(),
        marked.len()
    );
    let mut out = String::new();
    let mut open = false;
    for (t, &m) in tokens.iter().zip(marked) {
        if m && !open {
            out.push_str("<<");
        } else if !m && open {
            out.push_str(">>");
        }
        open = m;
        out.push_str(&one_line(t));
    }
    if open {
        out.push_str(">>");
    }
    out
}

/// Plain running text of tokens, one line (see [`highlight`]).
pub fn plain_text(tokens: &[String]) -> String {
    tokens.iter().map(|t| one_line(t)).collect()
}

fn one_line(s: &str) -> String {
    s.replace("\r\n", "↵").replace(['\n', '\r'], "↵")
}

/// The strings of `ids` in `vocab`.
pub fn token_strings(ids: &[u32], vocab: &(impl TokenText + ?Sized)) -> Vec<String> {
    ids.iter().map(|&id| vocab.token_text(id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_golden_case_and_zero_max() {
        assert_eq!(
            normalise_activations(&[0.0, 0.05, 0.5, 1.0], 1.0),
            vec![0, 1, 5, 10]
        );
        // The max is floored at 1e-6: nothing divides by zero, everything positive clamps.
        assert_eq!(normalise_activations(&[0.0, 1.0], 0.0), vec![0, 10]);
        assert_eq!(normalise_activations(&[2.0, -1.0], 1.0), vec![10, 0]);
    }

    #[test]
    fn runs_merge_and_thresholds_are_inclusive() {
        let marks = marked_tokens(&[0.0, 0.3, 1.0, 0.29, 0.0], 0.3);
        assert_eq!(marks, vec![false, true, true, false, false]);
        assert_eq!(marked_tokens(&[0.0, 0.0], 0.3), vec![false, false]);
        let toks = ["a", "b", "c", "\n", "d"].map(String::from);
        assert_eq!(
            highlight(&toks, &[true, true, false, true, true]),
            "<<ab>>c<<↵d>>"
        );
        assert_eq!(plain_text(&toks), "abc↵d");
        let vocab: Vec<String> = vec!["zero".into(), "one".into()];
        assert_eq!(token_strings(&[1, 5], &vocab), vec!["one", "<unk:5>"]);
    }
}
