//! Simulation scoring in logprob mode (OpenAI's neuron-explainer method, research note
//! §1.A10): a model reads the explanation and predicts every token's activation; the score is
//! the correlation of predicted with true activations.

use crate::examples::Example;
use crate::judge::{Explanation, JudgeError, Message, PromptScorer, TokenLogprob};
use crate::metrics::{pearson, pooled_pearson};
use crate::text::{TokenText, normalise_activations, token_strings};

/// The placeholder whose logprobs carry the predicted activation.
pub const UNKNOWN: &str = "unknown";

/// One simulated sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedSequence {
    /// Quantile of an activating example; `None` for a non-activating one.
    pub quantile: Option<usize>,
    /// Whether the example is activating.
    pub activating: bool,
    /// True activations, normalised to `0..=10` (zeros for a non-activating example).
    pub truth: Vec<f64>,
    /// Expected predicted activation per token (zeros where the call failed).
    pub predicted: Vec<f64>,
    /// The judge's failure on this sequence, if any (counted; its predictions are zeros).
    pub failure: Option<JudgeError>,
}

impl SimulatedSequence {
    /// Pearson's r of this sequence alone (`None` when either side is constant).
    pub fn correlation(&self) -> Option<f64> {
        pearson(&self.truth, &self.predicted)
    }
}

/// The simulation scores of one latent.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationScore {
    /// Every sequence, activating first.
    pub sequences: Vec<SimulatedSequence>,
    /// Delphi's group −1: pooled Pearson over all sequences, activating and not.
    pub all: Option<f64>,
    /// Pooled Pearson over the activating sequences of each quantile, increasing quantile.
    pub by_quantile: Vec<(usize, Option<f64>)>,
    /// Sequences whose call failed or whose reply had the wrong number of predictions.
    pub n_failed: usize,
}

/// The prompt of one sequence: the explanation, then one line per token,
/// `token<TAB>unknown`, between `<start>` and `<end>` (tabs and newlines inside tokens shown
/// as `⇥` and `↵`). No few-shot examples here (delphi's are prompt engineering this crate does
/// not reproduce; the research note warns the method is prompt-sensitive).
pub fn simulation_prompt(explanation: &str, tokens: &[String]) -> String {
    let mut out = format!(
        "A latent feature of a language model is explained as: {}\n\
         For each token of the text below, give the feature's activation on it, an integer \
         from 0 (inactive) to 10 (most active).\n<start>\n",
        explanation.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    for t in tokens {
        let shown = t.replace('\t', "⇥").replace(['\n', '\r'], "↵");
        out.push_str(&format!("{shown}\t{UNKNOWN}\n"));
    }
    out.push_str("<end>\n");
    out
}

/// `E[a] = Σ k·p(k) / Σ p(k)` over the alternatives whose trimmed text is an integer
/// `0..=10` (0 when there is none).
pub fn expected_activation(top: &[(String, f32)]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (t, lp) in top {
        if let Ok(k) = t.trim().parse::<u8>()
            && k <= 10
        {
            let p = f64::from(*lp).exp();
            num += f64::from(k) * p;
            den += p;
        }
    }
    if den == 0.0 { 0.0 } else { num / den }
}

/// Simulation scoring, logprob ("all at once") mode: one prompt per sequence
/// ([`simulation_prompt`]) sent to a [`PromptScorer`] with top-15 alternatives; the `k`-th
/// prompt token whose trimmed text is [`UNKNOWN`] carries the prediction for the `k`-th token
/// ([`expected_activation`]). True activations are normalised against `max_activation` (the
/// latent's maximum); non-activating sequences are all zeros. Scores are pooled Pearson
/// correlations (concatenated, not averaged per sequence): over everything, and per quantile
/// of the activating sequences. A failed call or a reply with the wrong number of `unknown`
/// positions is counted in `n_failed` and contributes zeros, as delphi does with invalid
/// replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimulationScorer;

impl SimulationScorer {
    /// Scores `explanation` on `test` (activating) and `negatives`.
    pub fn score(
        &self,
        model: &dyn PromptScorer,
        explanation: &Explanation,
        test: &[Example],
        negatives: &[Example],
        max_activation: f32,
        vocab: &dyn TokenText,
    ) -> SimulationScore {
        let mut sequences = Vec::new();
        let mut n_failed = 0;
        for (e, activating) in test
            .iter()
            .map(|e| (e, true))
            .chain(negatives.iter().map(|e| (e, false)))
        {
            let strings = token_strings(&e.tokens, vocab);
            let truth: Vec<f64> = if activating {
                normalise_activations(&e.activations, max_activation)
                    .into_iter()
                    .map(f64::from)
                    .collect()
            } else {
                vec![0.0; e.tokens.len()]
            };
            let prompt = [Message::user(simulation_prompt(
                &explanation.text,
                &strings,
            ))];
            let predicted = model.prompt_logprobs(&prompt, 15).and_then(|tokens| {
                let at: Vec<&TokenLogprob> = tokens
                    .iter()
                    .filter(|t| t.token.trim() == UNKNOWN)
                    .collect();
                if at.len() != strings.len() {
                    return Err(JudgeError::Malformed(format!(
                        "{} `{UNKNOWN}` positions for {} tokens",
                        at.len(),
                        strings.len()
                    )));
                }
                Ok(at.iter().map(|t| expected_activation(&t.top)).collect())
            });
            let (predicted, failure) = match predicted {
                Ok(p) => (p, None),
                Err(err) => {
                    n_failed += 1;
                    (vec![0.0; strings.len()], Some(err))
                }
            };
            sequences.push(SimulatedSequence {
                quantile: if activating { e.quantile() } else { None },
                activating,
                truth,
                predicted,
                failure,
            });
        }
        let pairs = |keep: &dyn Fn(&SimulatedSequence) -> bool| -> Option<f64> {
            let group: Vec<(&[f64], &[f64])> = sequences
                .iter()
                .filter(|s| keep(s))
                .map(|s| (&s.truth[..], &s.predicted[..]))
                .collect();
            pooled_pearson(&group)
        };
        let mut quantiles: Vec<usize> = sequences.iter().filter_map(|s| s.quantile).collect();
        quantiles.sort_unstable();
        quantiles.dedup();
        let by_quantile = quantiles
            .into_iter()
            .map(|q| (q, pairs(&|s| s.quantile == Some(q))))
            .collect();
        SimulationScore {
            all: pairs(&|_| true),
            by_quantile,
            n_failed,
            sequences,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::{ExampleKind, Span};

    /// Predicts 10 for `t7` lines and 0 elsewhere (with some mass on the neighbours).
    struct ReadsT7;

    impl PromptScorer for ReadsT7 {
        fn prompt_logprobs(
            &self,
            messages: &[Message],
            _top: u8,
        ) -> Result<Vec<TokenLogprob>, JudgeError> {
            let tok = |t: &str, top: Vec<(String, f32)>| TokenLogprob {
                token: t.into(),
                logprob: 0.0,
                top,
            };
            let mut out = vec![tok("<start>", vec![])];
            for line in messages[0].content.lines() {
                if let Some((word, _)) = line.split_once('\t') {
                    out.push(tok(word, vec![]));
                    let top = if word == " t7" {
                        vec![("10".into(), 0.8f32.ln()), ("9".into(), 0.2f32.ln())]
                    } else {
                        vec![
                            ("0".into(), 0.9f32.ln()),
                            ("1".into(), 0.1f32.ln()),
                            ("x".into(), 0.0),
                        ]
                    };
                    out.push(tok(" unknown", top));
                }
            }
            Ok(out)
        }
    }

    struct Fails;

    impl PromptScorer for Fails {
        fn prompt_logprobs(&self, _: &[Message], _: u8) -> Result<Vec<TokenLogprob>, JudgeError> {
            Err(JudgeError::Transport("connection refused".into()))
        }
    }

    fn example(row: u32, tokens: Vec<u32>, quantile: Option<usize>) -> Example {
        let activations: Vec<f32> = tokens
            .iter()
            .map(|&t| {
                if quantile.is_some() && t == 7 {
                    2.0
                } else {
                    0.0
                }
            })
            .collect();
        Example {
            span: Span {
                row,
                start: 0,
                len: 4,
            },
            source_window: row,
            max_activation: activations.iter().copied().fold(0.0, f32::max),
            tokens,
            activations,
            kind: match quantile {
                Some(q) => ExampleKind::Activating { quantile: Some(q) },
                None => ExampleKind::Random,
            },
        }
    }

    #[test]
    fn expected_values_prompt_and_pooled_scores() {
        let top = [
            ("10".to_string(), 0.5f32.ln()),
            ("0".into(), 0.5f32.ln()),
            ("11".into(), 0.0),
        ];
        assert!((expected_activation(&top) - 5.0).abs() < 1e-6);
        assert_eq!(expected_activation(&[("a".into(), 0.0)]), 0.0);
        let vocab: Vec<String> = (0..10).map(|i| format!(" t{i}")).collect();
        let p = simulation_prompt("Fires on\n t7.", &[" t1".into(), "\n".into()]);
        assert!(
            p.starts_with("A latent feature of a language model is explained as: Fires on t7.\n")
        );
        assert!(p.ends_with("<start>\n t1\tunknown\n↵\tunknown\n<end>\n"));

        let test = [
            example(0, vec![1, 7, 2, 3], Some(0)),
            example(1, vec![7, 4, 4, 4], Some(1)),
        ];
        let negatives = [example(2, vec![1, 2, 3, 4], None)];
        let s = SimulationScorer.score(
            &ReadsT7,
            &Explanation::new("t7"),
            &test,
            &negatives,
            2.0,
            &vocab,
        );
        assert_eq!(s.n_failed, 0);
        assert_eq!(s.sequences[0].truth, vec![0.0, 10.0, 0.0, 0.0]);
        assert!((s.sequences[0].predicted[1] - 9.8).abs() < 1e-5);
        assert!((s.sequences[0].predicted[0] - 0.1).abs() < 1e-5);
        assert!(s.all.unwrap() > 0.99);
        assert_eq!(s.by_quantile.len(), 2);
        assert_eq!(s.sequences[2].correlation(), None, "constant truth");

        let failed = SimulationScorer.score(
            &Fails,
            &Explanation::new("t7"),
            &test,
            &negatives,
            2.0,
            &vocab,
        );
        assert_eq!(failed.n_failed, 3);
        assert!(failed.sequences.iter().all(|s| s.failure.is_some()));
        assert_eq!(
            failed.all, None,
            "all-zero predictions correlate with nothing"
        );
    }
}
