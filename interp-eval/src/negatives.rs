//! Non-activating examples: windows where the latent never fires.

use std::collections::HashSet;

use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::LatentCache;
use crate::examples::{Example, ExampleKind, Span};
use crate::neighbours::Neighbour;

/// Where non-activating windows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum NegativeSource {
    /// Uniform over the windows where the latent never fires. Delphi draws **with**
    /// replacement (duplicates possible); `replacement: false` draws distinct windows, which
    /// is the default here ([`NegativeSource::random`]).
    Random {
        /// Whether a window may be drawn twice.
        replacement: bool,
    },
    /// Windows where a neighbour latent fires but this one does not: neighbours in list order,
    /// at most `per_neighbour` windows each (delphi: 10), each neighbour's strongest windows
    /// first.
    Neighbours {
        /// The neighbour list (e.g. [`crate::neighbours::cooccurrence_neighbours`]).
        neighbours: Vec<Neighbour>,
        /// Windows per neighbour.
        per_neighbour: usize,
    },
}

impl NegativeSource {
    /// Uniform, without replacement.
    pub fn random() -> Self {
        NegativeSource::Random { replacement: false }
    }
}

/// Settings of [`non_activating_examples`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegativeConfig {
    /// Tokens per window (must divide the cache's `ctx_len`; 32).
    pub window_len: usize,
    /// Number of examples wanted (delphi's `n_non_activating`, 50).
    pub n: usize,
    /// Seed of the random draw.
    pub seed: u64,
}

impl Default for NegativeConfig {
    /// 50 windows of 32 tokens, seed 22.
    fn default() -> Self {
        Self {
            window_len: 32,
            n: 50,
            seed: 22,
        }
    }
}

/// Up to `n` windows of `window_len` tokens in which `latent` never fires and that share no
/// token with `exclude` (pass the activating examples' spans, so that no token is shown with
/// both labels), as examples with zero activations.
///
/// Fewer than `n` come back only when not enough windows qualify (without replacement) or
/// the neighbours fire in too few of them.
///
/// # Panics
/// If `latent` or a neighbour is `≥ n_latents()`, or `window_len` is 0 or does not divide
/// `ctx_len`.
pub fn non_activating_examples(
    cache: &LatentCache,
    latent: usize,
    source: &NegativeSource,
    config: &NegativeConfig,
    exclude: &[Span],
) -> Vec<Example> {
    let w = config.window_len;
    let ctx = cache.ctx_len();
    let n_windows = cache.n_windows(w);
    let mut blocked: HashSet<u32> = cache.active_windows(latent, w).into_iter().collect();
    for s in exclude {
        let first = s.flat_start(ctx) / w;
        let last = (s.flat_start(ctx) + (s.len as usize).max(1) - 1) / w;
        blocked.extend((first..=last).map(|x| x as u32));
    }
    let window_example = |win: u32, kind: ExampleKind| {
        let start = win as usize * w;
        Example {
            span: Span {
                row: (start / ctx) as u32,
                start: (start % ctx) as u32,
                len: w as u32,
            },
            source_window: win,
            tokens: cache.tokens(start, w),
            activations: vec![0.0; w],
            max_activation: 0.0,
            kind,
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    match source {
        NegativeSource::Random { replacement } => {
            let available = n_windows - blocked.len().min(n_windows);
            if available == 0 || config.n == 0 {
                return Vec::new();
            }
            let dense_enough = 2 * available >= n_windows;
            let list = || -> Vec<u32> {
                (0..n_windows as u32)
                    .filter(|x| !blocked.contains(x))
                    .collect()
            };
            let chosen: Vec<u32> = if *replacement {
                if dense_enough {
                    let mut out = Vec::with_capacity(config.n);
                    while out.len() < config.n {
                        let x = rng.random_range(0..n_windows as u32);
                        if !blocked.contains(&x) {
                            out.push(x);
                        }
                    }
                    out
                } else {
                    let l = list();
                    (0..config.n)
                        .map(|_| l[rng.random_range(0..l.len())])
                        .collect()
                }
            } else if available <= config.n {
                list()
            } else if dense_enough {
                let mut seen = HashSet::new();
                let mut out = Vec::with_capacity(config.n);
                while out.len() < config.n {
                    let x = rng.random_range(0..n_windows as u32);
                    if !blocked.contains(&x) && seen.insert(x) {
                        out.push(x);
                    }
                }
                out
            } else {
                let l = list();
                index::sample(&mut rng, l.len(), config.n)
                    .into_iter()
                    .map(|k| l[k])
                    .collect()
            };
            chosen
                .into_iter()
                .map(|x| window_example(x, ExampleKind::Random))
                .collect()
        }
        NegativeSource::Neighbours {
            neighbours,
            per_neighbour,
        } => {
            let mut out = Vec::new();
            let mut taken: HashSet<u32> = HashSet::new();
            for nb in neighbours {
                if out.len() >= config.n {
                    break;
                }
                let (flat, values) = cache.latent_entries(nb.latent as usize);
                // The neighbour's windows with their maxima, strongest first.
                let mut windows: Vec<(u32, f32)> = Vec::new();
                for (&t, &v) in flat.iter().zip(&values) {
                    let win = t / w as u32;
                    match windows.last_mut() {
                        Some(last) if last.0 == win => last.1 = last.1.max(v),
                        _ => windows.push((win, v)),
                    }
                }
                windows.sort_by(|a, b| b.1.total_cmp(&a.1));
                let mut from_this = 0;
                for (win, _) in windows {
                    if from_this >= *per_neighbour || out.len() >= config.n {
                        break;
                    }
                    if blocked.contains(&win) || !taken.insert(win) {
                        continue;
                    }
                    let start = win as usize * w;
                    let mut acts = vec![0.0f32; w];
                    let from = flat.partition_point(|&t| (t as usize) < start);
                    for (&t, &v) in flat[from..].iter().zip(&values[from..]) {
                        if t as usize >= start + w {
                            break;
                        }
                        acts[t as usize - start] = v;
                    }
                    out.push(window_example(
                        win,
                        ExampleKind::Neighbour {
                            latent: nb.latent,
                            similarity: nb.similarity,
                            activations: acts,
                        },
                    ));
                    from_this += 1;
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheBuilder, CacheConfig, CodeEntry};

    /// 4 rows of 8 tokens, windows of 4 (8 windows). Latent 0 fires in windows 0 and 5;
    /// latent 1 in windows 0, 2 (weak) and 3 (strong).
    fn cache() -> LatentCache {
        let mut b = CacheBuilder::new(CacheConfig::new(8, 2));
        let e = |flat: u32, latent, value| CodeEntry {
            row: flat / 8,
            pos: flat % 8,
            latent,
            value,
        };
        let tokens: Vec<u32> = (0..32).collect();
        b.push_entries(
            &tokens,
            &[
                e(1, 0, 1.0),
                e(21, 0, 1.0),
                e(2, 1, 1.0),
                e(9, 1, 0.5),
                e(14, 1, 3.0),
            ],
        )
        .unwrap();
        b.finish()
    }

    #[test]
    fn random_windows_avoid_the_latent_and_the_excluded_spans() {
        let c = cache();
        let cfg = NegativeConfig {
            window_len: 4,
            n: 100,
            seed: 1,
        };
        let exclude = [Span {
            row: 3,
            start: 2,
            len: 4,
        }]; // windows 6 and 7
        let all = non_activating_examples(&c, 0, &NegativeSource::random(), &cfg, &exclude);
        let mut wins: Vec<u32> = all.iter().map(|e| e.source_window).collect();
        wins.sort_unstable();
        assert_eq!(wins, vec![1, 2, 3, 4]);
        assert!(all.iter().all(|e| e.activations.iter().all(|&a| a == 0.0)));
        assert_eq!(all[0].tokens.len(), 4);
        let few = NegativeConfig { n: 3, ..cfg };
        let three = non_activating_examples(&c, 0, &NegativeSource::random(), &few, &[]);
        let mut w3: Vec<u32> = three.iter().map(|e| e.source_window).collect();
        w3.sort_unstable();
        w3.dedup();
        assert_eq!(w3.len(), 3, "without replacement: distinct");
        assert!(w3.iter().all(|w| ![0, 5].contains(w)));
        let with = NegativeSource::Random { replacement: true };
        let many = non_activating_examples(&c, 0, &with, &NegativeConfig { n: 40, ..cfg }, &[]);
        assert_eq!(many.len(), 40, "with replacement: as many as asked");
        assert!(many.iter().all(|e| ![0, 5].contains(&e.source_window)));
        assert_eq!(
            three,
            non_activating_examples(&c, 0, &NegativeSource::random(), &few, &[])
        );
    }

    #[test]
    fn neighbour_windows_strongest_first_without_the_latent() {
        let c = cache();
        let cfg = NegativeConfig {
            window_len: 4,
            n: 10,
            seed: 1,
        };
        let source = NegativeSource::Neighbours {
            neighbours: vec![Neighbour {
                latent: 1,
                similarity: 0.5,
            }],
            per_neighbour: 10,
        };
        let got = non_activating_examples(&c, 0, &source, &cfg, &[]);
        // Window 0 is the latent's own; windows 3 (max 3.0) then 2 (0.5).
        assert_eq!(
            got.iter().map(|e| e.source_window).collect::<Vec<_>>(),
            vec![3, 2]
        );
        match &got[0].kind {
            ExampleKind::Neighbour {
                latent,
                activations,
                ..
            } => {
                assert_eq!(*latent, 1);
                assert_eq!(activations, &vec![0.0, 0.0, 3.0, 0.0]);
            }
            other => panic!("{other:?}"),
        }
        let capped = NegativeSource::Neighbours {
            neighbours: vec![Neighbour {
                latent: 1,
                similarity: 0.5,
            }],
            per_neighbour: 1,
        };
        assert_eq!(non_activating_examples(&c, 0, &capped, &cfg, &[]).len(), 1);
    }
}
