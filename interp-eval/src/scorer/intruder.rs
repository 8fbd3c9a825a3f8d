//! Intruder scoring (research note §1.A7): explanation-free — can the judge spot the example
//! that does not belong among activating examples of one quantile?

use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::batch::RecordedCall;
use super::fuzzing::false_marks;
use crate::examples::Example;
use crate::judge::{ChatModel, FinishReason, GenParams, Message};
use crate::metrics::Verdict;
use crate::text::{HIGHLIGHT_FRACTION, TokenText, highlight, marked_tokens, token_strings};

/// System prompt of the intruder judge (this crate's wording).
pub const INTRUDER_SYSTEM_PROMPT: &str = "You are shown numbered text examples in which some \
tokens are marked between << and >>. In all but one of the examples the marked tokens share a \
common pattern; one example is an intruder that does not fit. Find the intruder. End your \
reply with a last line of the form [RESPONSE]: <number of the intruder>";

/// One trial: activating examples of one quantile with one intruder among them.
#[derive(Debug, Clone, PartialEq)]
pub struct IntruderTrial {
    /// The quantile the activating examples come from.
    pub quantile: usize,
    /// 1-based position of the intruder as shown.
    pub intruder: usize,
    /// Number of examples shown.
    pub shown: usize,
    /// The judge's 1-based answer, when it gave a valid one.
    pub answer: Option<usize>,
    /// [`Verdict::Predicted`] with `positive` = the answer is right, or the failure.
    pub verdict: Verdict,
    /// The call as it happened.
    pub call: RecordedCall,
}

/// The intruder scores of one latent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntruderScore {
    /// Every trial.
    pub trials: Vec<IntruderTrial>,
    /// Fraction of trials answered right, failures counted as wrong (0 without trials).
    pub accuracy: f64,
    /// Accuracy of guessing: the mean of `1 / shown`.
    pub chance: f64,
    /// Trials whose reply could not be parsed, was refused or failed.
    pub n_failed: usize,
}

/// The last `[RESPONSE]: k` of `reply` if `1 ≤ k ≤ shown`.
///
/// ```
/// use interp_eval::scorer::parse_intruder_response;
///
/// assert_eq!(parse_intruder_response("It is 2.\n[RESPONSE]: 3", 5), Some(3));
/// assert_eq!(parse_intruder_response("[RESPONSE]: 0", 5), None);
/// assert_eq!(parse_intruder_response("three", 5), None);
/// ```
pub fn parse_intruder_response(reply: &str, shown: usize) -> Option<usize> {
    let at = reply.rfind("[RESPONSE]:")?;
    let digits: String = reply[at + "[RESPONSE]:".len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let k: usize = digits.parse().ok()?;
    (1..=shown).contains(&k).then_some(k)
}

/// Delphi's intruder scorer: for each intruder, `n_shown − 1` activating test examples drawn
/// from one quantile (quantiles taken in turn), shown with their active tokens marked; the
/// intruder is inserted at a random position. Default intruders are the non-activating
/// examples, marked with `ceil(mean active tokens)` false highlights ([`false_marks`]); with
/// `internal`, the intruder is an activating example of another quantile, marked truly. One
/// seeded generator drives every choice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntruderScorer {
    /// Examples per trial, intruder included (5).
    pub n_shown: usize,
    /// Intruders from other quantiles instead of non-activating examples.
    pub internal: bool,
    /// Seed (22).
    pub seed: u64,
    /// Most reply tokens.
    pub max_tokens: usize,
}

impl Default for IntruderScorer {
    fn default() -> Self {
        Self {
            n_shown: 5,
            internal: false,
            seed: 22,
            max_tokens: 256,
        }
    }
}

impl IntruderScorer {
    /// Runs one trial per negative (default) or per test example (internal).
    ///
    /// # Panics
    /// If `n_shown < 2`.
    pub fn score(
        &self,
        judge: &dyn ChatModel,
        test: &[Example],
        negatives: &[Example],
        vocab: &dyn TokenText,
    ) -> IntruderScore {
        assert!(
            self.n_shown >= 2,
            "IntruderScorer::n_shown must be at least 2, found {}",
            self.n_shown
        );
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut groups: Vec<(usize, Vec<&Example>)> = Vec::new();
        for e in test {
            let q = e.quantile().unwrap_or(0);
            match groups.iter_mut().find(|(g, _)| *g == q) {
                Some((_, list)) => list.push(e),
                None => groups.push((q, vec![e])),
            }
        }
        groups.sort_by_key(|(q, _)| *q);
        let n_incorrect = if test.is_empty() {
            1
        } else {
            test.iter()
                .map(Example::active_tokens)
                .sum::<usize>()
                .div_ceil(test.len())
                .max(1)
        };
        let shown_text =
            |e: &Example, marks: &[bool]| highlight(&token_strings(&e.tokens, vocab), marks);
        let true_marks = |e: &Example| marked_tokens(&e.activations, HIGHLIGHT_FRACTION);
        let n_trials = if groups.is_empty() || (self.internal && groups.len() < 2) {
            0
        } else if self.internal {
            test.len()
        } else {
            negatives.len()
        };
        let params = GenParams {
            max_tokens: self.max_tokens,
            ..GenParams::default()
        };
        let mut trials = Vec::with_capacity(n_trials);
        for t in 0..n_trials {
            let (quantile, members) = &groups[t % groups.len()];
            let take = (self.n_shown - 1).min(members.len());
            let mut texts: Vec<String> = index::sample(&mut rng, members.len(), take)
                .into_iter()
                .map(|i| shown_text(members[i], &true_marks(members[i])))
                .collect();
            let intruder_text = if self.internal {
                let others: Vec<&Example> = groups
                    .iter()
                    .filter(|(q, _)| q != quantile)
                    .flat_map(|(_, m)| m.iter().copied())
                    .collect();
                let e = others[rng.random_range(0..others.len())];
                shown_text(e, &true_marks(e))
            } else {
                let e = &negatives[t];
                let marks = false_marks(&e.activations, n_incorrect, &mut rng)
                    .unwrap_or_else(|| true_marks(e));
                shown_text(e, &marks)
            };
            let at = rng.random_range(0..=texts.len());
            texts.insert(at, intruder_text);
            let user: String = texts
                .iter()
                .enumerate()
                .map(|(i, s)| format!("Example {}: {}\n", i + 1, s))
                .collect();
            let prompt = vec![Message::system(INTRUDER_SYSTEM_PROMPT), Message::user(user)];
            let reply = judge.complete(&prompt, &params);
            let (answer, verdict) = match &reply {
                Err(_) => (None, Verdict::JudgeError),
                Ok(c) if c.finish == FinishReason::Refusal => (None, Verdict::Refusal),
                Ok(c) => match parse_intruder_response(&c.text, texts.len()) {
                    None => (None, Verdict::ParseFailure),
                    Some(k) => (
                        Some(k),
                        Verdict::Predicted {
                            positive: k == at + 1,
                            probability: None,
                        },
                    ),
                },
            };
            trials.push(IntruderTrial {
                quantile: *quantile,
                intruder: at + 1,
                shown: texts.len(),
                answer,
                verdict,
                call: RecordedCall { prompt, reply },
            });
        }
        let correct = trials
            .iter()
            .filter(|t| matches!(t.verdict, Verdict::Predicted { positive: true, .. }))
            .count();
        let n = trials.len().max(1) as f64;
        IntruderScore {
            accuracy: correct as f64 / n,
            chance: trials.iter().map(|t| 1.0 / t.shown as f64).sum::<f64>() / n,
            n_failed: trials.iter().filter(|t| t.verdict.is_failure()).count(),
            trials,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::{ExampleKind, Span};
    use crate::judge::{Capabilities, Completion, JudgeError, ScriptedChat, ScriptedReply};

    /// Names the example whose marks do not contain `t7`.
    struct SpotsT7;

    impl ChatModel for SpotsT7 {
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }

        fn complete(&self, m: &[Message], _: &GenParams) -> Result<Completion, JudgeError> {
            let odd = m[1]
                .content
                .lines()
                .position(|l| !l.contains("<< t7>>"))
                .map_or(0, |i| i + 1);
            Ok(Completion::text(format!("[RESPONSE]: {odd}")))
        }
    }

    fn example(i: u32, tokens: Vec<u32>, quantile: Option<usize>) -> Example {
        let activations: Vec<f32> = tokens
            .iter()
            .map(|&t| match quantile {
                Some(q) if t == 7 => 1.0 + q as f32,
                _ => 0.0,
            })
            .collect();
        Example {
            span: Span {
                row: i,
                start: 0,
                len: 4,
            },
            source_window: i,
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
    fn a_judge_that_reads_the_marks_finds_every_intruder_and_failures_count() {
        let vocab: Vec<String> = (0..10).map(|i| format!(" t{i}")).collect();
        let test: Vec<Example> = (0..8)
            .map(|i| example(i, vec![1, 7, 2, 3], Some(i as usize % 2)))
            .collect();
        let negatives: Vec<Example> = (0..4)
            .map(|i| example(50 + i, vec![1, 2, 3, 4], None))
            .collect();
        let s = IntruderScorer::default().score(&SpotsT7, &test, &negatives, &vocab);
        assert_eq!(s.trials.len(), 4);
        assert_eq!(s.accuracy, 1.0);
        assert_eq!(s.n_failed, 0);
        assert!((s.chance - 0.2).abs() < 1e-12, "4 members + the intruder");
        assert_eq!(
            s.trials.iter().map(|t| t.quantile).collect::<Vec<_>>(),
            vec![0, 1, 0, 1]
        );
        assert!(s.trials.iter().all(|t| t.answer == Some(t.intruder)));
        let scripted = ScriptedChat::new([
            ScriptedReply::Text("[RESPONSE]: 9".into()),
            ScriptedReply::Refusal("no".into()),
        ]);
        let f = IntruderScorer::default().score(&scripted, &test, &negatives[..2], &vocab);
        assert_eq!((f.n_failed, f.accuracy), (2, 0.0));
        // Internal intruders come from another quantile.
        let internal = IntruderScorer {
            internal: true,
            ..IntruderScorer::default()
        };
        let i = internal.score(&SpotsT7, &test, &[], &vocab);
        assert_eq!(i.trials.len(), 8);
    }
}
