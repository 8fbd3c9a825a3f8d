//! Scorers with deterministic judges: prompts, parsing, batching and failure accounting.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::examples::{Example, ExampleKind, Span};
use crate::judge::{Explanation, JudgeError, KeywordJudge, ScriptedChat, ScriptedReply};
use crate::metrics::Verdict;
use crate::text::{HIGHLIGHT_FRACTION, marked_tokens};

/// Vocabulary `t0 … t19` (each with a leading space).
fn vocab() -> Vec<String> {
    (0..20).map(|i| format!(" t{i}")).collect()
}

/// An example of 8 tokens; activating ones fire on token `t7` wherever it is.
fn example(i: u32, tokens: Vec<u32>, kind: ExampleKind) -> Example {
    let activating = matches!(kind, ExampleKind::Activating { .. });
    let activations: Vec<f32> = tokens
        .iter()
        .map(|&t| if activating && t == 7 { 2.0 } else { 0.0 })
        .collect();
    let max_activation = activations.iter().copied().fold(0.0, f32::max);
    Example {
        span: Span {
            row: i,
            start: 0,
            len: tokens.len() as u32,
        },
        source_window: i,
        tokens,
        activations,
        max_activation,
        kind,
    }
}

fn positives(n: u32) -> Vec<Example> {
    (0..n)
        .map(|i| {
            example(
                i,
                vec![1, 2, i % 5 + 10, 7, 3, 4, 5, 6],
                ExampleKind::Activating {
                    quantile: Some(i as usize % 2),
                },
            )
        })
        .collect()
}

fn negatives(n: u32) -> Vec<Example> {
    (0..n)
        .map(|i| {
            example(
                100 + i,
                vec![1, 2, 3, 4, 5, 6, 8, i % 5 + 10],
                ExampleKind::Random,
            )
        })
        .collect()
}

fn explanation() -> Explanation {
    Explanation::new("Fires on the tokens \"t7\".")
}

#[test]
fn detection_with_the_keyword_judge_is_perfect_and_the_prompt_is_as_specified() {
    let s = DetectionScorer::default().score(
        &KeywordJudge::default(),
        &explanation(),
        &positives(7),
        &negatives(6),
        &vocab(),
    );
    assert_eq!(s.report.n, 13);
    assert_eq!(s.report.accuracy, 1.0);
    assert_eq!(s.report.auroc, Some(1.0));
    assert_eq!(s.calls.len(), 3, "13 samples in batches of 5");
    let prompt = &s.calls[0].prompt;
    assert_eq!(prompt[0].content, DETECTION_SYSTEM_PROMPT);
    let user = &prompt[1].content;
    assert!(user.starts_with("Explanation: Fires on the tokens \"t7\".\n\nExample 1: "));
    assert!(user.contains("Example 5: ") && !user.contains("Example 6: "));
    assert!(user.ends_with("exactly 5 numbers, each 0 or 1."));
    assert!(!user.contains("<<"), "detection shows plain text");
    // Batches and positions are recorded; the shuffle mixes the classes.
    assert_eq!(s.samples.last().unwrap().batch, 2);
    assert_eq!(s.samples.last().unwrap().position, 2);
    assert!(s.samples[..7].iter().any(|j| !j.sample.label));
    // Per quantile (positives carry quantiles 0 and 1) and per position.
    let q = s.by_quantile();
    assert_eq!(q.iter().map(|(q, _)| *q).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(q[0].1.n + q[1].1.n, 7);
    assert!(q.iter().all(|(_, r)| r.recall == 1.0));
    let pos = s.accuracy_by_position();
    assert_eq!(pos.len(), 5);
    assert!(pos.iter().all(|&(_, a)| a == 1.0));
    // Seeded: the same call gives the same prompts.
    let again = DetectionScorer::default().score(
        &KeywordJudge::default(),
        &explanation(),
        &positives(7),
        &negatives(6),
        &vocab(),
    );
    assert_eq!(again.calls, s.calls);
}

#[test]
fn every_kind_of_failure_is_counted() {
    let judge = ScriptedChat::new([
        ScriptedReply::Text("The answer is yes.".into()),
        ScriptedReply::Refusal("I cannot help with that.".into()),
        ScriptedReply::Error(JudgeError::Timeout { seconds: 100 }),
        ScriptedReply::Text("[1, 1]".into()), // wrong length for a batch of 5
    ]);
    let s = DetectionScorer::default().score(
        &judge,
        &explanation(),
        &positives(10),
        &negatives(10),
        &vocab(),
    );
    assert_eq!(s.report.n, 20);
    assert_eq!(s.report.n_parse_failures, 10);
    assert_eq!(s.report.n_refusals, 5);
    assert_eq!(s.report.n_judge_errors, 5);
    assert_eq!(s.report.accuracy, 0.0, "a failure is never a right answer");
    assert_eq!(s.report.valid_only.total(), 0);
    assert_eq!(judge.remaining(), 0);
    assert!(matches!(s.calls[2].reply, Err(JudgeError::Timeout { .. })));

    // Half the batches answered all-positive, the other half failed: delphi would report
    // recall 1 on what is left; here the failures pull every score down.
    let judge = ScriptedChat::new([
        ScriptedReply::Text("[1, 1, 1, 1, 1]".into()),
        ScriptedReply::Text("not a list".into()),
    ]);
    let s = DetectionScorer::default().score(
        &judge,
        &explanation(),
        &positives(5),
        &negatives(5),
        &vocab(),
    );
    assert_eq!(s.report.n_parse_failures, 5);
    assert!(
        s.samples[..5]
            .iter()
            .all(|j| matches!(j.verdict, Verdict::Predicted { .. }))
    );
    assert!(s.report.recall < s.report.valid_only.recall() || s.report.valid_only.positives() == 0);
    assert_eq!(s.report.confusion.total(), 10);
}

#[test]
fn scripted_logprobs_become_probabilities() {
    use crate::judge::TokenLogprob;
    let digit = |d: &str, p: f32| TokenLogprob {
        token: d.into(),
        logprob: p.ln(),
        top: vec![
            (d.into(), p.ln()),
            (if d == "1" { "0" } else { "1" }.into(), (1.0 - p).ln()),
        ],
    };
    let judge = ScriptedChat::new([ScriptedReply::WithLogprobs(
        "[1, 0]".into(),
        vec![digit("1", 0.8), digit("0", 0.7)],
    )]);
    let s = DetectionScorer::default().score(
        &judge,
        &explanation(),
        &positives(1),
        &negatives(1),
        &vocab(),
    );
    let probs: Vec<f64> = s
        .samples
        .iter()
        .map(|j| match j.verdict {
            Verdict::Predicted { probability, .. } => probability.unwrap(),
            v => panic!("{v:?}"),
        })
        .collect();
    assert!((probs[0] - 0.8).abs() < 1e-6 && (probs[1] - 0.3).abs() < 1e-6);
}

#[test]
fn false_marks_avoid_true_marks_and_prefer_the_centre_offset() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let acts = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    // Token 6 (= 8 − 8/4) is truly active, so not eligible.
    for n in 1..=8 {
        let m = false_marks(&acts, n, &mut rng).unwrap();
        assert!(!m[6]);
        assert_eq!(m.iter().filter(|&&b| b).count(), n.min(7));
    }
    let zeros = [0.0; 8];
    let m = false_marks(&zeros, 1, &mut rng).unwrap();
    assert!(m[6], "the centre offset is taken first when eligible");
    assert_eq!(false_marks(&[1.0, 1.0], 1, &mut rng), None);
}

#[test]
fn fuzzing_default_and_active() {
    let pos = positives(6);
    let n_incorrect = 1; // each positive has one non-zero activation
    for kind in [FuzzKind::Default, FuzzKind::Active] {
        let s = FuzzingScorer::new(kind).score(
            &KeywordJudge::default(),
            &explanation(),
            &pos,
            &negatives(4),
            &vocab(),
        );
        let n_neg = if kind == FuzzKind::Active { 6 } else { 4 };
        assert_eq!(s.report.n, 6 + n_neg, "{kind:?}");
        assert_eq!(s.report.accuracy, 1.0, "{kind:?}");
        assert_eq!(s.calls[0].prompt[0].content, FUZZING_SYSTEM_PROMPT);
        for j in &s.samples {
            let marks = j.sample.text.matches("<<").count();
            if j.sample.label {
                assert!(j.sample.text.contains("<< t7>>"), "{}", j.sample.text);
            } else {
                assert_eq!(marks, n_incorrect, "{}", j.sample.text);
                assert!(!j.sample.text.contains("<< t7>>"));
            }
        }
    }
    // An active negative needs a token below the threshold: an all-active example is unusable.
    let mut full = positives(1);
    full[0].activations = vec![1.0; 8];
    full[0].max_activation = 1.0;
    assert!(
        marked_tokens(&full[0].activations, HIGHLIGHT_FRACTION)
            .iter()
            .all(|&m| m)
    );
    let s = FuzzingScorer::new(FuzzKind::Active).score(
        &KeywordJudge::default(),
        &explanation(),
        &full,
        &[],
        &vocab(),
    );
    assert_eq!((s.report.n, s.n_unusable), (1, 1));
}

#[test]
fn neighbour_negatives_show_the_neighbours_active_tokens() {
    let mut neg = negatives(1);
    neg[0].kind = ExampleKind::Neighbour {
        latent: 3,
        similarity: 0.4,
        activations: vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0],
    };
    let s = FuzzingScorer::default().score(
        &KeywordJudge::default(),
        &explanation(),
        &[],
        &neg,
        &vocab(),
    );
    let j = &s.samples[0];
    assert!(j.sample.text.contains("<< t8>>"), "{}", j.sample.text);
    assert_eq!(j.sample.similarity, Some(0.4));
    assert_eq!(s.report.accuracy, 1.0);
}

#[test]
fn embedding_and_surprisal_rank_the_explained_texts_first() {
    use crate::judge::{Embedder, HashingEmbedder, SequenceScorer, WordRecallLm};
    let s = EmbeddingScorer::default()
        .score(
            &HashingEmbedder { dim: 1 << 16 },
            &explanation(),
            &positives(6),
            &negatives(6),
            &vocab(),
        )
        .unwrap();
    assert_eq!(s.samples.len(), 12);
    assert_eq!(s.auroc, Some(1.0));
    let wrong = Explanation::new("Fires on the tokens \"t19\".");
    let w = EmbeddingScorer::default()
        .score(
            &HashingEmbedder { dim: 1 << 16 },
            &wrong,
            &positives(6),
            &negatives(6),
            &vocab(),
        )
        .unwrap();
    assert!(w.auroc.unwrap() < 0.75);

    let lm = WordRecallLm::default();
    let scorer = SurprisalScorer::default();
    assert_eq!(scorer.prefix("x"), "Description: \nx\n Sentences:\n");
    let s = scorer
        .score(&lm, &explanation(), &positives(6), &negatives(6), &vocab())
        .unwrap();
    assert_eq!(s.auroc, Some(1.0));
    // Information gain: the positive's t7 costs 0.5 instead of 3 nats.
    assert!((s.samples[0].1 - 2.5).abs() < 1e-9);
    assert_eq!(s.samples[11].1, 0.0);

    // Malformed model output is an error naming what is wrong.
    struct Short;
    impl Embedder for Short {
        fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>, JudgeError> {
            Ok(vec![vec![1.0]])
        }
    }
    let err = EmbeddingScorer::default()
        .score(&Short, &explanation(), &positives(1), &[], &vocab())
        .unwrap_err();
    assert!(matches!(err, JudgeError::Malformed(_)), "{err}");
    struct Nan;
    impl SequenceScorer for Nan {
        fn token_nll(&self, _: &str, _: &str) -> Result<Vec<f32>, JudgeError> {
            Ok(vec![f32::NAN])
        }
    }
    assert!(matches!(
        scorer.score(&Nan, &explanation(), &positives(1), &[], &vocab()),
        Err(JudgeError::Malformed(_))
    ));
}
