//! Train/test sampling of activating examples: quantile-stratified, seeded, and disjoint.
//!
//! Delphi draws train and test from the same pool, re-seeding the generator with 22 for each
//! draw, so with quantile sampling the 4 train picks of a quantile are the first 4 of its 5
//! test picks (research note §1.A3.4): explanations are scored on the examples they were
//! written from. Here the test set is drawn only from examples that share no token with any
//! train example (for plain windows: a different source window), from one seeded generator.

use std::ops::Range;

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use crate::examples::{Example, ExampleKind};

/// How the train (explanation) examples are chosen (delphi's `train_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrainSelection {
    /// Stratified over quantiles of the activating list (delphi's default).
    Quantiles,
    /// The strongest examples.
    Top,
    /// Uniformly at random.
    Random,
    /// The strongest `round(top_fraction · n_train)`, the rest stratified over the quantiles of
    /// the remaining examples (delphi's `mix`, fraction 0.2).
    Mix {
        /// Fraction taken from the top.
        top_fraction: f32,
    },
}

/// Sampler settings (delphi's `SamplerConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// Train examples (40).
    pub n_train: usize,
    /// Test examples (50), always stratified over quantiles.
    pub n_test: usize,
    /// Number of quantiles (10).
    pub n_quantiles: usize,
    /// How the train examples are chosen.
    pub train: TrainSelection,
    /// Seed of the one generator both draws use.
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// Delphi's defaults: 40 train, 50 test, 10 quantiles, quantile train sampling; seed 22.
    fn default() -> Self {
        Self {
            n_train: 40,
            n_test: 50,
            n_quantiles: 10,
            train: TrainSelection::Quantiles,
            seed: 22,
        }
    }
}

/// The sampled examples of one latent.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Examples shown to the explainer.
    pub train: Vec<Example>,
    /// Examples the explanation is scored on; none shares a token with a train example.
    pub test: Vec<Example>,
}

/// Splits `len` examples into `n` quantiles the way `numpy.array_split` does: sizes differ
/// by at most one, the first `len % n` are the larger, and every example belongs to one.
///
/// Delphi slices `len / n` examples per quantile and never uses the remainder (with 95
/// examples and 10 quantiles the weakest 5 are lost); this is the documented divergence.
///
/// ```
/// use interp_eval::sampling::quantile_ranges;
///
/// let q = quantile_ranges(95, 10);
/// assert_eq!(q[0], 0..10);
/// assert_eq!(q[4], 40..50);
/// assert_eq!(q[5], 50..59);
/// assert_eq!(q[9], 86..95);
/// ```
///
/// # Panics
/// If `n` is 0.
pub fn quantile_ranges(len: usize, n: usize) -> Vec<Range<usize>> {
    assert!(n > 0, "n_quantiles must be at least 1, found 0");
    let (base, extra) = (len / n, len % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let size = base + usize::from(i < extra);
            let r = start..start + size;
            start += size;
            r
        })
        .collect()
}

/// `total` items over `n` strata, as [`quantile_ranges`] splits them (first strata first).
fn per_stratum(total: usize, n: usize) -> Vec<usize> {
    quantile_ranges(total, n).iter().map(|r| r.len()).collect()
}

/// `amount` of `candidates` without replacement, in candidate order (all if fewer).
fn draw(candidates: &[usize], amount: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    if candidates.len() <= amount {
        return candidates.to_vec();
    }
    let mut picked: Vec<usize> = index::sample(rng, candidates.len(), amount)
        .into_iter()
        .map(|k| candidates[k])
        .collect();
    picked.sort_unstable();
    picked
}

/// `n` indices spread over `strata` as [`per_stratum`] spreads them.
fn stratified(strata: &[Range<usize>], n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut out = Vec::new();
    for (range, amount) in strata.iter().zip(per_stratum(n, strata.len())) {
        let candidates: Vec<usize> = range.clone().collect();
        out.extend(draw(&candidates, amount, rng));
    }
    out
}

fn with_quantile(mut e: Example, q: usize) -> Example {
    e.kind = ExampleKind::Activating { quantile: Some(q) };
    e
}

/// Draws train and test examples from `examples` (activating, strongest first, as
/// [`crate::examples::activating_examples`] returns them).
///
/// Train: by [`TrainSelection`]. Test: `n_test` spread over the quantiles (as evenly as
/// [`quantile_ranges`] splits them), each drawn without replacement among the quantile's
/// examples that share no token with a train example; a quantile with fewer gives all it has.
/// Both draws use one `ChaCha8Rng` seeded with `seed`; indices drawn within a quantile are
/// kept in list order, so each list stays strongest first. Every example is tagged with the
/// quantile of the whole list it belongs to.
///
/// # Panics
/// If `n_quantiles` is 0, or `Mix`'s fraction is outside `[0, 1]`.
pub fn split_train_test(examples: &[Example], config: &SamplerConfig) -> Split {
    let q = config.n_quantiles;
    let ranges = quantile_ranges(examples.len(), q);
    let quantile_of = |i: usize| ranges.iter().position(|r| r.contains(&i)).expect("covered");
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n_train = config.n_train.min(examples.len());
    let train_idx: Vec<usize> = match config.train {
        TrainSelection::Top => (0..n_train).collect(),
        TrainSelection::Random => draw(&(0..examples.len()).collect::<Vec<_>>(), n_train, &mut rng),
        TrainSelection::Quantiles => stratified(&ranges, n_train, &mut rng),
        TrainSelection::Mix { top_fraction } => {
            assert!(
                (0.0..=1.0).contains(&top_fraction),
                "TrainSelection::Mix::top_fraction must be in [0, 1], found {top_fraction}"
            );
            let n_top = ((top_fraction * n_train as f32).round() as usize).min(n_train);
            let rest: Vec<Range<usize>> = quantile_ranges(examples.len() - n_top, q)
                .into_iter()
                .map(|r| r.start + n_top..r.end + n_top)
                .collect();
            let mut idx: Vec<usize> = (0..n_top).collect();
            idx.extend(stratified(&rest, n_train - n_top, &mut rng));
            idx
        }
    };
    let mut is_train = vec![false; examples.len()];
    for &i in &train_idx {
        is_train[i] = true;
    }
    let train_spans: Vec<_> = train_idx.iter().map(|&i| examples[i].span).collect();
    let eligible =
        |i: usize| !is_train[i] && !train_spans.iter().any(|s| s.overlaps(&examples[i].span));
    let mut test_idx = Vec::new();
    for (k, amount) in per_stratum(config.n_test, q).into_iter().enumerate() {
        let candidates: Vec<usize> = ranges[k].clone().filter(|&i| eligible(i)).collect();
        test_idx.extend(draw(&candidates, amount, &mut rng));
    }
    let take = |idx: &[usize]| -> Vec<Example> {
        idx.iter()
            .map(|&i| with_quantile(examples[i].clone(), quantile_of(i)))
            .collect()
    };
    Split {
        train: take(&train_idx),
        test: take(&test_idx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::Span;
    use proptest::prelude::*;

    fn example(i: usize, window_len: u32, max: f32) -> Example {
        Example {
            span: Span {
                row: 0,
                start: i as u32 * window_len,
                len: window_len,
            },
            source_window: i as u32,
            tokens: vec![0; window_len as usize],
            activations: vec![max; window_len as usize],
            max_activation: max,
            kind: ExampleKind::Activating { quantile: None },
        }
    }

    fn examples(n: usize) -> Vec<Example> {
        (0..n).map(|i| example(i, 4, (n - i) as f32)).collect()
    }

    /// Delphi's sampler as the research note describes it (the defect being fixed): each draw
    /// re-seeds, both draw from the same quantile slices.
    fn delphi_overlap(n: usize) -> usize {
        let (q, qsize) = (10, n / 10);
        let mut overlap = 0;
        for k in 0..q {
            let slice: Vec<usize> = (k * qsize..(k + 1) * qsize).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(22);
            let train: Vec<usize> = index::sample(&mut rng, slice.len(), 4).into_vec();
            let mut rng = ChaCha8Rng::seed_from_u64(22);
            let test: Vec<usize> = index::sample(&mut rng, slice.len(), 5).into_vec();
            overlap += train.iter().filter(|i| test.contains(i)).count();
        }
        overlap
    }

    #[test]
    fn delphi_leaks_and_this_sampler_does_not() {
        let ex = examples(200);
        assert!(delphi_overlap(200) > 0, "the reference method leaks");
        let split = split_train_test(&ex, &SamplerConfig::default());
        assert_eq!(split.train.len(), 40);
        assert_eq!(split.test.len(), 50);
        for t in &split.test {
            assert!(split.train.iter().all(|r| !r.span.overlaps(&t.span)));
            assert!(
                split
                    .train
                    .iter()
                    .all(|r| r.source_window != t.source_window)
            );
        }
        // 4 train and 5 test examples per quantile, tagged.
        for k in 0..10 {
            assert_eq!(
                split
                    .train
                    .iter()
                    .filter(|e| e.quantile() == Some(k))
                    .count(),
                4
            );
            assert_eq!(
                split
                    .test
                    .iter()
                    .filter(|e| e.quantile() == Some(k))
                    .count(),
                5
            );
        }
        // Strongest first within each list.
        assert!(
            split
                .train
                .windows(2)
                .all(|w| w[0].max_activation >= w[1].max_activation)
        );
        // Seeded: same seed, same split; another seed, another split.
        assert_eq!(split, split_train_test(&ex, &SamplerConfig::default()));
        let other = SamplerConfig {
            seed: 23,
            ..SamplerConfig::default()
        };
        assert_ne!(split, split_train_test(&ex, &other));
    }

    #[test]
    fn overlapping_centred_spans_are_kept_apart() {
        // Spans of 8 starting every 4 tokens: each overlaps its neighbours.
        let ex: Vec<Example> = (0..40)
            .map(|i| {
                let mut e = example(i, 8, (40 - i) as f32);
                e.span.start = i as u32 * 4;
                e
            })
            .collect();
        let cfg = SamplerConfig {
            n_train: 10,
            n_test: 10,
            n_quantiles: 5,
            ..SamplerConfig::default()
        };
        let split = split_train_test(&ex, &cfg);
        for t in &split.test {
            assert!(split.train.iter().all(|r| !r.span.overlaps(&t.span)));
        }
    }

    #[test]
    fn top_random_and_mix_selections() {
        let ex = examples(100);
        let cfg = |train| SamplerConfig {
            train,
            n_train: 10,
            ..SamplerConfig::default()
        };
        let top = split_train_test(&ex, &cfg(TrainSelection::Top));
        assert_eq!(
            top.train
                .iter()
                .map(|e| e.source_window)
                .collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert!(top.test.iter().all(|e| e.source_window >= 10));
        let random = split_train_test(&ex, &cfg(TrainSelection::Random));
        assert_eq!(random.train.len(), 10);
        let mix = split_train_test(&ex, &cfg(TrainSelection::Mix { top_fraction: 0.2 }));
        assert_eq!(mix.train[0].source_window, 0);
        assert_eq!(mix.train[1].source_window, 1);
        assert_eq!(mix.train.len(), 10);
    }

    #[test]
    fn quantiles_use_every_example() {
        let q = quantile_ranges(95, 10);
        assert_eq!(q.iter().map(|r| r.len()).sum::<usize>(), 95);
        assert_eq!(
            q.iter().map(|r| r.len()).collect::<Vec<_>>(),
            vec![10, 10, 10, 10, 10, 9, 9, 9, 9, 9]
        );
        // Fewer examples than the sets ask for: everything is used once, never twice.
        let split = split_train_test(&examples(30), &SamplerConfig::default());
        assert_eq!(split.train.len(), 30);
        assert!(split.test.is_empty());
    }

    proptest! {
        #[test]
        fn train_and_test_never_share_tokens(
            n in 0usize..120,
            n_train in 0usize..50,
            n_test in 0usize..60,
            stride in 1u32..9,
            seed in any::<u64>(),
        ) {
            let ex: Vec<Example> = (0..n)
                .map(|i| {
                    let mut e = example(i, 8, (n - i) as f32);
                    e.span.start = i as u32 * stride;
                    e
                })
                .collect();
            let cfg = SamplerConfig { n_train, n_test, seed, ..SamplerConfig::default() };
            let split = split_train_test(&ex, &cfg);
            prop_assert_eq!(split.train.len(), n_train.min(n));
            prop_assert!(split.test.len() <= n_test);
            for t in &split.test {
                prop_assert!(split.train.iter().all(|r| !r.span.overlaps(&t.span)));
            }
            let mut ids: Vec<u32> = split.train.iter().chain(&split.test).map(|e| e.source_window).collect();
            let len = ids.len();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(ids.len(), len, "no example drawn twice");
        }
    }
}
