//! The research note's golden cases (§7) in one place, and the whole pipeline on a synthetic
//! stream with deterministic judges: the delphi defects shown fixed.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::examples::{ExampleConfig, centre_offset};
use crate::judge::{Explanation, KeywordJudge, ScriptedChat, ScriptedReply, TokenListExplainer};
use crate::metrics::{
    BootstrapConfig, Confusion, Outcome, ScoreReport, auroc, bootstrap_ci, frequency_weighted_f1,
};
use crate::pipeline::{PipelineConfig, evaluate_latent};
use crate::sampling::{SamplerConfig, quantile_ranges};
use crate::scorer::{DetectionScorer, FuzzKind, FuzzingScorer, probability_of_one};
use crate::text::{highlight, normalise_activations};
use crate::{CacheBuilder, CacheConfig, CodeEntry, LatentCache};

mod golden {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalise_activations(&[0.0, 0.05, 0.5, 1.0], 1.0),
            vec![0, 1, 5, 10]
        );
    }

    #[test]
    fn highlighted_runs_merge_without_separators() {
        let t = ["a", "b", "c"].map(String::from);
        assert_eq!(highlight(&t, &[true, true, true]), "<<abc>>");
    }

    #[test]
    fn quantiles_of_95_examples_lose_none() {
        let q = quantile_ranges(95, 10);
        assert_eq!(
            q.last().unwrap().end,
            95,
            "delphi drops the last 5; array_split does not"
        );
    }

    #[test]
    fn unbalanced_confusion() {
        let c = Confusion {
            tp: 8,
            fn_: 2,
            tn: 30,
            fp: 10,
        };
        assert_relative_eq!(c.balanced_accuracy(), 0.775);
        assert_relative_eq!(c.precision(), 0.444, epsilon = 5e-4);
        assert_relative_eq!(c.recall(), 0.8);
        assert_relative_eq!(c.f1(), 0.571, epsilon = 5e-4);
    }

    #[test]
    fn logprob_probability() {
        let top = [
            ("1".to_string(), 0.6f32.ln()),
            ("0".to_string(), 0.3f32.ln()),
            (" 1".to_string(), 0.05f32.ln()),
        ];
        assert_relative_eq!(probability_of_one(&top), 0.684, epsilon = 5e-4);
    }

    #[test]
    fn frequency_weighted() {
        assert_relative_eq!(frequency_weighted_f1(&[1.0, 0.0], &[3, 1]), 0.75);
    }

    #[test]
    fn auroc_ties_count_half() {
        assert_eq!(auroc(&[1.0, 1.0], &[true, false]), Some(0.5));
        assert_eq!(auroc(&[2.0, 1.0, 1.0], &[true, true, false]), Some(0.75));
    }

    #[test]
    fn centre_offset_of_32_is_24() {
        assert_eq!(centre_offset(32), 24);
    }
}

/// A stream of 240 rows of 64 tokens over a vocabulary `t0 … t49`; latent 0 fires on `t7`,
/// latent 1 on `t8` and `t9`, latent 2 nowhere, latent 3 on a few random tokens.
fn synthetic_cache() -> (LatentCache, Vec<String>) {
    let (rows, ctx) = (240, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let tokens: Vec<u32> = (0..rows * ctx)
        .map(|_| rng.random_range(0..50u32))
        .collect();
    let mut entries = Vec::new();
    for (t, &id) in tokens.iter().enumerate() {
        let (row, pos) = ((t / ctx) as u32, (t % ctx) as u32);
        let mut fire = |latent, value| {
            entries.push(CodeEntry {
                row,
                pos,
                latent,
                value,
            })
        };
        match id {
            7 => fire(0, rng.random_range(1.0..5.0)),
            8 | 9 => fire(1, rng.random_range(1.0..5.0)),
            _ => {}
        }
        if rng.random_range(0..40) == 0 {
            fire(3, 0.5);
        }
    }
    let mut b = CacheBuilder::new(CacheConfig::new(ctx, 4));
    // Streamed in batches of 16 rows.
    for (chunk, start) in tokens.chunks(16 * ctx).zip((0..).step_by(16)) {
        let batch: Vec<CodeEntry> = entries
            .iter()
            .filter(|e| (start..start + 16).contains(&e.row))
            .map(|e| CodeEntry {
                row: e.row - start,
                ..*e
            })
            .collect();
        b.push_entries(chunk, &batch).unwrap();
    }
    let vocab = (0..50).map(|i| format!(" t{i}")).collect();
    (b.finish(), vocab)
}

fn config(kind: FuzzKind) -> PipelineConfig {
    PipelineConfig {
        examples: ExampleConfig {
            window_len: 16,
            centre: true,
            min_examples: 100,
        },
        sampler: SamplerConfig {
            n_train: 20,
            n_test: 30,
            n_quantiles: 5,
            ..SamplerConfig::default()
        },
        negatives: crate::negatives::NegativeConfig {
            n: 30,
            ..Default::default()
        },
        fuzzing: Some(FuzzingScorer::new(kind)),
        ..PipelineConfig::default()
    }
}

#[test]
fn pipeline_scores_a_real_explanation_high_and_its_controls_low() {
    let (cache, vocab) = synthetic_cache();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.cache");
    cache.save(&path).unwrap();
    let cache = LatentCache::open(&path).unwrap();
    let judge = KeywordJudge::default();
    let explainer = TokenListExplainer::new(2);
    for kind in [FuzzKind::Default, FuzzKind::Active] {
        let eval = evaluate_latent(&cache, 0, &config(kind), &explainer, &judge, &vocab).unwrap();
        assert_eq!(eval.explanation.text, "Fires on the tokens \"t7\".");
        assert_eq!(eval.split.train.len(), 20);
        assert_eq!(eval.split.test.len(), 30);
        assert_eq!(eval.negatives.len(), 30);
        // Defects fixed: train/test share no token, negatives share none with either.
        for t in &eval.split.test {
            assert!(eval.split.train.iter().all(|r| !r.span.overlaps(&t.span)));
        }
        for n in &eval.negatives {
            assert!(
                eval.split
                    .train
                    .iter()
                    .chain(&eval.split.test)
                    .all(|e| !e.span.overlaps(&n.span))
            );
        }
        // Centring honoured: interior examples hold their maximum at 16 − 4 = 12.
        let centred = eval
            .split
            .test
            .iter()
            .filter(|e| e.span.start > 0 && e.span.start < 48)
            .filter(|e| e.activations[12] == e.max_activation)
            .count();
        assert!(centred > 0);
        let det = eval.detection.as_ref().unwrap().report.clone();
        let fuzz = eval.fuzzing.as_ref().unwrap().report.clone();
        assert_eq!(det.accuracy, 1.0, "{kind:?}");
        assert_eq!(det.auroc, Some(1.0));
        assert!(fuzz.accuracy > 0.9, "{kind:?}: {}", fuzz.accuracy);

        // Controls: a random explanation and a shuffled latent's explanation.
        let random = Explanation::new("Fires on the tokens \"t33\".");
        let shuffled = Explanation::new("Fires on the tokens \"t8\", \"t9\".");
        for control in [random, shuffled] {
            let d = DetectionScorer::default().score(
                &judge,
                &control,
                &eval.split.test,
                &eval.negatives,
                &vocab,
            );
            assert!(
                d.report.balanced_accuracy < 0.75,
                "{}: {}",
                control.text,
                d.report.balanced_accuracy
            );
            assert!(d.report.balanced_accuracy < det.balanced_accuracy);
        }
    }
    // Confidence interval over the judged examples.
    let eval = evaluate_latent(
        &cache,
        0,
        &config(FuzzKind::Default),
        &explainer,
        &judge,
        &vocab,
    )
    .unwrap();
    let outcomes: Vec<Outcome> = eval
        .fuzzing
        .unwrap()
        .samples
        .iter()
        .map(|j| j.outcome())
        .collect();
    let ci = bootstrap_ci(
        &outcomes,
        |o| ScoreReport::from_outcomes(o).balanced_accuracy,
        &BootstrapConfig::default(),
    )
    .unwrap();
    assert!(ci.lo <= ci.estimate && ci.estimate <= ci.hi && ci.hi <= 1.0);
    // Rare and dead latents are skipped with a reason, not dropped silently.
    let skip = evaluate_latent(
        &cache,
        2,
        &config(FuzzKind::Default),
        &explainer,
        &judge,
        &vocab,
    )
    .unwrap_err();
    assert_eq!(skip.found, 0);
}

#[test]
fn pipeline_counts_judge_failures_instead_of_dropping_them() {
    let (cache, vocab) = synthetic_cache();
    let mut cfg = config(FuzzKind::Default);
    cfg.fuzzing = None;
    // 30 test + 30 negatives in batches of 5: 12 calls; break every third.
    let replies = (0..12).map(|i| match i % 3 {
        0 => ScriptedReply::Text("[1, 1, 1, 1".into()),
        1 => ScriptedReply::Refusal("no".into()),
        _ => ScriptedReply::Text("[0, 0, 0, 0, 0]".into()),
    });
    let judge = ScriptedChat::new(replies);
    let eval =
        evaluate_latent(&cache, 0, &cfg, &TokenListExplainer::new(2), &judge, &vocab).unwrap();
    let r = eval.detection.unwrap().report;
    assert_eq!(r.n, 60);
    assert_eq!((r.n_parse_failures, r.n_refusals), (20, 20));
    assert_eq!(
        r.confusion.total(),
        60,
        "failures are in the confusion counts"
    );
    assert_eq!(r.valid_only.total(), 20);
    assert!(r.accuracy < r.valid_only.accuracy());
}

#[test]
fn an_explainer_failure_is_recorded_and_still_scored() {
    use crate::judge::{ChatExplainer, JudgeError};
    let (cache, vocab) = synthetic_cache();
    let explainer = ChatExplainer::new(ScriptedChat::new([ScriptedReply::Text(
        "It is hard to say.".into(),
    )]));
    let eval = evaluate_latent(
        &cache,
        0,
        &config(FuzzKind::Default),
        &explainer,
        &KeywordJudge::default(),
        &vocab,
    )
    .unwrap();
    assert!(matches!(
        eval.explainer_error,
        Some(JudgeError::UnparseableReply(_))
    ));
    assert_eq!(eval.explanation.text, "Explanation could not be produced.");
    let r = eval.detection.unwrap().report;
    assert_eq!(r.n, 60, "the latent is scored, not dropped");
    assert_eq!(r.balanced_accuracy, 0.5);
}
