//! Example windows of a latent: activating examples, sorted by strength, optionally centred.

use crate::LatentCache;

/// Where an example's tokens lie: `len` tokens of cache row `row` from position `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Cache row.
    pub row: u32,
    /// First position within the row.
    pub start: u32,
    /// Number of tokens.
    pub len: u32,
}

impl Span {
    /// Whether the two spans share a token.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.row == other.row
            && self.start < other.start + other.len
            && other.start < self.start + self.len
    }

    /// Flat address of the first token (`row · ctx_len + start`).
    pub fn flat_start(&self, ctx_len: usize) -> usize {
        self.row as usize * ctx_len + self.start as usize
    }
}

/// What an example is, for the scorers and for the accounting of disjointness.
#[derive(Debug, Clone, PartialEq)]
pub enum ExampleKind {
    /// The latent fires in it; `quantile` is set by the sampler (0 = strongest).
    Activating {
        /// Quantile of the activating list it was drawn from, once sampled.
        quantile: Option<usize>,
    },
    /// A window where the latent never fires, drawn uniformly.
    Random,
    /// A window where the latent never fires but a neighbour latent does.
    Neighbour {
        /// The neighbour.
        latent: u32,
        /// Its similarity to the latent scored (Jaccard or cosine).
        similarity: f32,
        /// The neighbour's activations on the window's tokens (for fuzzing's highlights).
        activations: Vec<f32>,
    },
}

/// One example: a span of cache tokens with the scored latent's activations on them.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Where the tokens are.
    pub span: Span,
    /// The example window (of `window_len` tokens, numbered over the whole cache) the example
    /// comes from: itself for plain windows, the window holding the maximum for centred ones.
    pub source_window: u32,
    /// Token ids.
    pub tokens: Vec<u32>,
    /// The latent's activations on them (zeros for non-activating examples).
    pub activations: Vec<f32>,
    /// Largest of `activations` (0 when none is positive).
    pub max_activation: f32,
    /// What kind of example it is.
    pub kind: ExampleKind,
}

impl Example {
    /// Number of tokens with a non-zero activation.
    pub fn active_tokens(&self) -> usize {
        self.activations.iter().filter(|&&a| a != 0.0).count()
    }

    /// Whether it is an activating example.
    pub fn is_activating(&self) -> bool {
        matches!(self.kind, ExampleKind::Activating { .. })
    }

    /// The quantile of an activating example, once sampled.
    pub fn quantile(&self) -> Option<usize> {
        match self.kind {
            ExampleKind::Activating { quantile } => quantile,
            _ => None,
        }
    }
}

/// How activating examples are cut (delphi's `ConstructorConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExampleConfig {
    /// Tokens per example (delphi's `example_ctx_len`, 32); must divide the cache's `ctx_len`.
    pub window_len: usize,
    /// Centre each example on its maximum: the max token of a window is placed at offset
    /// `window_len − window_len / 4` (24 of 32). Delphi `main` wires this flag backwards
    /// (`center_examples=True` runs the plain pooling); here `true` centres.
    pub centre: bool,
    /// Latents with fewer activating windows are skipped (delphi's `min_examples`, 200).
    pub min_examples: usize,
}

impl Default for ExampleConfig {
    /// Windows of 32, not centred, at least 200 activating windows.
    fn default() -> Self {
        Self {
            window_len: 32,
            centre: false,
            min_examples: 200,
        }
    }
}

/// A latent with too few activating windows to explain and score (counted, not hidden).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFewExamples {
    /// The latent.
    pub latent: u32,
    /// Activating windows found.
    pub found: usize,
    /// The minimum asked for.
    pub min_examples: usize,
}

impl std::fmt::Display for TooFewExamples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "latent {} fires in {} windows, fewer than min_examples = {}",
            self.latent, self.found, self.min_examples
        )
    }
}

/// Offset at which centring puts a window's maximum: `len − len / 4`.
pub fn centre_offset(window_len: usize) -> usize {
    window_len - window_len / 4
}

/// Every activating example of `latent`: one per window of `window_len` tokens in which it
/// fires, sorted by the example's maximum, strongest first (ties: earlier window first).
///
/// With `centre`, the example for window `w` is the `window_len` tokens of the same row with
/// `w`'s maximum (its first occurrence) at [`centre_offset`]; its activations are the
/// latent's on those tokens, so they may include values from the neighbouring windows.
/// Where that cut would leave the row (windows at a row's start or end) it is shifted back
/// inside the row instead of being dropped as delphi drops them (delphi PR #113 notes that
/// this loses a quarter of the activations at ctx 256); those examples hold the maximum at
/// another offset. Centred examples of adjacent windows can share tokens; the sampler keeps
/// train and test apart by tokens, not only by window (see [`crate::sampling`]).
///
/// # Errors
/// [`TooFewExamples`] if the latent fires in fewer than `min_examples` windows.
///
/// # Panics
/// If `latent ≥ n_latents()`, or `window_len` is 0 or does not divide `ctx_len`.
pub fn activating_examples(
    cache: &LatentCache,
    latent: usize,
    config: &ExampleConfig,
) -> Result<Vec<Example>, TooFewExamples> {
    let w = config.window_len;
    cache.check_window(w);
    let ctx = cache.ctx_len();
    let (flat, values) = cache.latent_entries(latent);
    // Group postings by window (they are in token order).
    let mut groups: Vec<(u32, usize, usize)> = Vec::new();
    for (i, &t) in flat.iter().enumerate() {
        let win = t / w as u32;
        match groups.last_mut() {
            Some(g) if g.0 == win => g.2 = i + 1,
            _ => groups.push((win, i, i + 1)),
        }
    }
    if groups.len() < config.min_examples {
        return Err(TooFewExamples {
            latent: latent as u32,
            found: groups.len(),
            min_examples: config.min_examples,
        });
    }
    let activations_on = |start: usize| -> Vec<f32> {
        let mut acts = vec![0.0f32; w];
        let from = flat.partition_point(|&t| (t as usize) < start);
        for (&t, &v) in flat[from..].iter().zip(&values[from..]) {
            let t = t as usize;
            if t >= start + w {
                break;
            }
            acts[t - start] = v;
        }
        acts
    };
    let mut examples: Vec<Example> = groups
        .iter()
        .map(|&(win, s, e)| {
            let window_start = win as usize * w;
            let start = if config.centre {
                let best = (s..e).fold(s, |b, i| if values[i] > values[b] { i } else { b });
                let max_pos = flat[best] as usize % ctx;
                let want = max_pos as isize - centre_offset(w) as isize;
                let row_start = window_start - window_start % ctx;
                row_start + want.clamp(0, (ctx - w) as isize) as usize
            } else {
                window_start
            };
            let activations = activations_on(start);
            let max_activation = activations.iter().copied().fold(0.0f32, f32::max);
            Example {
                span: Span {
                    row: (start / ctx) as u32,
                    start: (start % ctx) as u32,
                    len: w as u32,
                },
                source_window: win,
                tokens: cache.tokens(start, w),
                activations,
                max_activation,
                kind: ExampleKind::Activating { quantile: None },
            }
        })
        .collect();
    examples.sort_by(|a, b| b.max_activation.total_cmp(&a.max_activation));
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheBuilder, CacheConfig, CodeEntry};

    /// One row of 16 tokens (ids = positions), windows of 8; latent 0 fires at 3 (0.5), 5 (2.0)
    /// and 12 (1.0).
    fn cache() -> LatentCache {
        let mut b = CacheBuilder::new(CacheConfig::new(16, 1));
        let e = |pos, value| CodeEntry {
            row: 0,
            pos,
            latent: 0,
            value,
        };
        let tokens: Vec<u32> = (0..16).collect();
        b.push_entries(&tokens, &[e(3, 0.5), e(5, 2.0), e(12, 1.0)])
            .unwrap();
        b.finish()
    }

    #[test]
    fn plain_windows_sorted_by_max() {
        let cfg = ExampleConfig {
            window_len: 8,
            centre: false,
            min_examples: 1,
        };
        let ex = activating_examples(&cache(), 0, &cfg).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].source_window, 0);
        assert_eq!(
            ex[0].span,
            Span {
                row: 0,
                start: 0,
                len: 8
            }
        );
        assert_eq!(ex[0].tokens, (0..8).collect::<Vec<_>>());
        assert_eq!(ex[0].activations[3], 0.5);
        assert_eq!(ex[0].max_activation, 2.0);
        assert_eq!(ex[1].span.start, 8);
        assert_eq!(ex[1].activations[4], 1.0);
    }

    #[test]
    fn centring_is_honoured_and_row_edges_are_kept() {
        // Two rows of 32 tokens, windows of 8 (centre offset 6): latent fires at row 0 pos 13
        // (interior window 1) and pos 1 (window 0, at the row's start), row 1 pos 31 (end).
        let mut b = CacheBuilder::new(CacheConfig::new(32, 1));
        let e = |row, pos, value| CodeEntry {
            row,
            pos,
            latent: 0,
            value,
        };
        let tokens: Vec<u32> = (0..64).collect();
        b.push_entries(&tokens, &[e(0, 13, 3.0), e(0, 1, 2.0), e(1, 31, 1.0)])
            .unwrap();
        let cache = b.finish();
        let mut cfg = ExampleConfig {
            window_len: 8,
            centre: true,
            min_examples: 1,
        };
        assert_eq!(centre_offset(8), 6);
        let ex = activating_examples(&cache, 0, &cfg).unwrap();
        assert_eq!(ex.len(), 3);
        // Interior window: the maximum sits exactly at offset 6.
        assert_eq!(
            ex[0].span,
            Span {
                row: 0,
                start: 7,
                len: 8
            }
        );
        assert_eq!(ex[0].activations[6], 3.0);
        assert_eq!(ex[0].tokens[6], 13);
        assert_eq!(ex[0].source_window, 1);
        // Row start: shifted inside the row, not dropped.
        assert_eq!(
            ex[1].span,
            Span {
                row: 0,
                start: 0,
                len: 8
            }
        );
        assert_eq!(ex[1].activations[1], 2.0);
        // Row end.
        assert_eq!(
            ex[2].span,
            Span {
                row: 1,
                start: 24,
                len: 8
            }
        );
        assert_eq!(ex[2].activations[7], 1.0);
        // The flag the other way gives aligned windows (delphi main runs this for `true`).
        cfg.centre = false;
        let plain = activating_examples(&cache, 0, &cfg).unwrap();
        assert_eq!(
            plain[0].span,
            Span {
                row: 0,
                start: 8,
                len: 8
            }
        );
        assert_eq!(plain[0].activations[5], 3.0);
    }

    #[test]
    fn min_examples_skips_and_says_so() {
        let cfg = ExampleConfig {
            window_len: 8,
            centre: false,
            min_examples: 3,
        };
        let skip = activating_examples(&cache(), 0, &cfg).unwrap_err();
        assert_eq!(
            skip,
            TooFewExamples {
                latent: 0,
                found: 2,
                min_examples: 3
            }
        );
        assert!(skip.to_string().contains("fewer than min_examples = 3"));
    }

    #[test]
    fn spans_overlap_only_when_sharing_tokens() {
        let s = |row, start| Span { row, start, len: 4 };
        assert!(s(0, 0).overlaps(&s(0, 3)));
        assert!(!s(0, 0).overlaps(&s(0, 4)));
        assert!(!s(0, 0).overlaps(&s(1, 0)));
    }
}
