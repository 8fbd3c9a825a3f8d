//! Reading the judge's reply: the 0/1 list and, from token logprobs, `P(1)` per example.

use crate::judge::TokenLogprob;

/// The first `[...]` of `reply` as `n` answers: entries separated by commas, each `0` or `1`
/// (quotes and spaces around them allowed). `None` — a parse failure — for no list, a list of
/// another length, or any other entry.
///
/// ```
/// use interp_eval::scorer::parse_binary_list;
///
/// assert_eq!(parse_binary_list("Sure: [1, 0,'1']", 3), Some(vec![true, false, true]));
/// assert_eq!(parse_binary_list("[1, 0]", 3), None);
/// assert_eq!(parse_binary_list("[1, 2, 0]", 3), None);
/// assert_eq!(parse_binary_list("1, 0, 1", 3), None);
/// ```
pub fn parse_binary_list(reply: &str, n: usize) -> Option<Vec<bool>> {
    let open = reply.find('[')?;
    let close = open + reply[open..].find(']')?;
    let inner = reply[open + 1..close].trim();
    if inner.is_empty() {
        return (n == 0).then(Vec::new);
    }
    let answers: Option<Vec<bool>> = inner
        .split(',')
        .map(|e| match e.trim().trim_matches(|c| c == '"' || c == '\'') {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        })
        .collect();
    answers.filter(|a| a.len() == n)
}

/// `P(1)` at one answer position from its top alternatives:
/// `Σ P(alternatives containing "1") / (Σ P(containing "1") + Σ P(containing "0"))`, 0 when
/// both sums are 0. An alternative containing both digits (`"10"`) counts for neither.
///
/// ```
/// use interp_eval::scorer::probability_of_one;
///
/// let top = [("1".to_string(), 0.6f32.ln()), ("0".into(), 0.3f32.ln()), (" 1".into(), 0.05f32.ln())];
/// assert!((probability_of_one(&top) - 0.65 / 0.95).abs() < 1e-6);
/// ```
pub fn probability_of_one(top: &[(String, f32)]) -> f64 {
    let (mut one, mut zero) = (0.0f64, 0.0f64);
    for (t, lp) in top {
        let p = f64::from(*lp).exp();
        match (t.contains('1'), t.contains('0')) {
            (true, false) => one += p,
            (false, true) => zero += p,
            _ => {}
        }
    }
    if one + zero == 0.0 {
        0.0
    } else {
        one / (one + zero)
    }
}

/// Per-example probabilities from a reply's tokens: the tokens whose text contains a `0` or
/// a `1` are the answer positions, in order; `None` unless there are exactly `n` of them.
pub fn probabilities_from_logprobs(tokens: &[TokenLogprob], n: usize) -> Option<Vec<f64>> {
    let answers: Vec<f64> = tokens
        .iter()
        .filter(|t| t.token.contains('0') || t.token.contains('1'))
        .map(|t| probability_of_one(&t.top))
        .collect();
    (answers.len() == n).then_some(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprob_golden_case_and_edge_cases() {
        let top = vec![
            ("1".to_string(), 0.6f32.ln()),
            ("0".to_string(), 0.3f32.ln()),
            (" 1".to_string(), 0.05f32.ln()),
        ];
        assert!((probability_of_one(&top) - 0.684_210_5).abs() < 1e-6);
        assert_eq!(probability_of_one(&[("x".into(), 0.0)]), 0.0);
        assert_eq!(probability_of_one(&[("10".into(), 0.0)]), 0.0);
        let tok = |t: &str, top: Vec<(String, f32)>| TokenLogprob {
            token: t.into(),
            logprob: 0.0,
            top,
        };
        let reply = vec![
            tok("[", vec![]),
            tok("1", top.clone()),
            tok(",", vec![]),
            tok(" 0", vec![("0".into(), 0.0)]),
            tok("]", vec![]),
        ];
        let p = probabilities_from_logprobs(&reply, 2).unwrap();
        assert!((p[0] - 0.684_210_5).abs() < 1e-6);
        assert_eq!(p[1], 0.0);
        assert_eq!(probabilities_from_logprobs(&reply, 3), None);
    }

    #[test]
    fn only_the_first_list_counts() {
        assert_eq!(parse_binary_list("[0] and [1, 1]", 1), Some(vec![false]));
        assert_eq!(
            parse_binary_list("[\"1\", \"0\"]", 2),
            Some(vec![true, false])
        );
        assert_eq!(parse_binary_list("[1, 0", 2), None);
        assert_eq!(parse_binary_list("[]", 1), None);
        assert_eq!(parse_binary_list("[true, false]", 2), None);
    }
}
