//! The batch stream: source → position/norm filters → normaliser → seeded shuffle buffer →
//! batches, with a small resumable state.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::filter::{median, row_norm};
use crate::rng::{purpose, rng_for};
use crate::{ActivationSource, Error, Normaliser, Result, SourcePosition, TokenFilter};

/// How a [`BatchStream`] cuts a source into batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchStreamConfig {
    /// Tokens per batch.
    pub batch_size: usize,
    /// Rows of the shuffle buffer: the stream reads this many (kept) rows, permutes them with a
    /// seeded RNG and serves them in order; larger buffers mix tokens from further apart.
    pub shuffle_rows: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Tokens to drop.
    pub filter: TokenFilter,
    /// Scale inputs to mean norm `√d_in` (estimated on the calibration sample).
    pub normalise: bool,
    /// Rows read once at the start to measure the median norm (for the norm filter) and the mean
    /// norm (for the normaliser).
    pub calibration_rows: usize,
    /// Start over at the end of a finite source (epochs) instead of ending the stream.
    pub repeat: bool,
}

impl BatchStreamConfig {
    /// Batches of `batch_size`, a 16-batch shuffle buffer, seed 0, no filters, normalisation on,
    /// 16,384 calibration rows, repeating.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn new(batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch_size must be positive, got 0");
        Self {
            batch_size,
            shuffle_rows: 16 * batch_size,
            seed: 0,
            filter: TokenFilter::none(),
            normalise: true,
            calibration_rows: 16_384,
            repeat: true,
        }
    }
    /// Sets [`shuffle_rows`](Self::shuffle_rows) (1 disables shuffling).
    pub fn with_shuffle_rows(mut self, rows: usize) -> Self {
        self.shuffle_rows = rows.max(1);
        self
    }
    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets [`filter`](Self::filter).
    pub fn with_filter(mut self, filter: TokenFilter) -> Self {
        self.filter = filter;
        self
    }
    /// Sets [`normalise`](Self::normalise).
    pub fn with_normalise(mut self, normalise: bool) -> Self {
        self.normalise = normalise;
        self
    }
    /// Sets [`calibration_rows`](Self::calibration_rows).
    pub fn with_calibration_rows(mut self, rows: usize) -> Self {
        self.calibration_rows = rows.max(1);
        self
    }
    /// Sets [`repeat`](Self::repeat).
    pub fn with_repeat(mut self, repeat: bool) -> Self {
        self.repeat = repeat;
        self
    }
}

/// What the calibration sample measured; fixed for the whole run (and saved with it) so that a
/// resumed run and a held-out evaluation filter and scale exactly as training did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Median token norm (after the position filter), before normalisation.
    pub median_norm: f32,
    /// Largest norm kept by the norm filter (`f32::INFINITY` without one) — serialised as `null`.
    #[serde(with = "finite_or_null")]
    pub norm_limit: f32,
    /// Mean norm of the kept tokens, before normalisation.
    pub mean_norm: f32,
    /// The input normaliser.
    pub normaliser: Normaliser,
}

mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f32(*v)
        } else {
            s.serialize_none()
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::INFINITY))
    }
}

/// Counters of what the stream has served and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamCounters {
    /// Tokens handed out in batches.
    pub tokens_served: u64,
    /// Tokens dropped for their position.
    pub dropped_position: u64,
    /// Tokens dropped for their norm.
    pub dropped_norm: u64,
}

/// Everything needed to put a [`BatchStream`] back exactly where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// The configuration (checked on restore).
    pub config: BatchStreamConfig,
    /// The calibration of the run.
    pub calibration: Calibration,
    /// Where the source stood when the current shuffle block began.
    pub block_start: SourcePosition,
    /// Index of the current block (seeds its permutation).
    pub block_index: u64,
    /// Rows of the current block already served.
    pub cursor: usize,
    /// Completed passes over a finite source.
    pub epoch: u64,
    /// Counters.
    pub counters: StreamCounters,
}

/// Batches of filtered, normalised, shuffled activation rows from an [`ActivationSource`].
///
/// The shuffle buffer works block by block: it reads `shuffle_rows` kept rows, permutes them with
/// an RNG seeded by `(seed, block index)` and serves them in that order. Unlike a mixing buffer
/// that keeps half its rows across refills, the state after any batch is a handful of counters
/// (block start, block index, cursor), so resuming re-reads one block and continues bit for bit.
///
/// ```
/// use sae_train::{BatchStream, BatchStreamConfig, InMemorySource};
/// let rows: Vec<f32> = (0..64).map(|i| i as f32).collect();
/// let source = InMemorySource::new(rows, 4)?; // 16 tokens of width 4
/// let mut stream = BatchStream::new(source, BatchStreamConfig::new(4).with_seed(7))?;
/// let batch = stream.next_batch()?.unwrap();
/// assert_eq!(batch.len(), 4 * 4);
/// # Ok::<(), sae_train::Error>(())
/// ```
pub struct BatchStream<S> {
    source: S,
    state: StreamState,
    block: Vec<f32>,
    order: Vec<u32>,
    block_rows: usize,
    scratch: Vec<f32>,
    scratch_tokens: Vec<u64>,
}

impl<S: ActivationSource> BatchStream<S> {
    /// Builds the stream, measuring the calibration on the first `calibration_rows` rows.
    ///
    /// # Errors
    /// Source errors, [`Error::Empty`] for a source without rows, [`Error::AllFiltered`] if the
    /// filters remove every calibration row.
    pub fn new(mut source: S, config: BatchStreamConfig) -> Result<Self> {
        let calibration = calibrate(&mut source, &config)?;
        source.seek(SourcePosition::default())?;
        Self::with_calibration(source, config, calibration)
    }

    /// Builds the stream with a given calibration (e.g. the training stream's, for a held-out
    /// split that must be filtered and scaled the same way).
    ///
    /// The calibration's normaliser is applied only when `config.normalise` is set: with
    /// `with_normalise(false)` the stream serves raw rows (filtered with the calibration's norm
    /// limit), which is what an exported SAE — normalisation folded into its weights — expects.
    ///
    /// # Errors
    /// Source errors.
    pub fn with_calibration(
        mut source: S,
        config: BatchStreamConfig,
        calibration: Calibration,
    ) -> Result<Self> {
        source.seek(SourcePosition::default())?;
        let state = StreamState {
            config,
            calibration,
            block_start: SourcePosition::default(),
            block_index: 0,
            cursor: 0,
            epoch: 0,
            counters: StreamCounters::default(),
        };
        Ok(Self {
            source,
            state,
            block: Vec::new(),
            order: Vec::new(),
            block_rows: 0,
            scratch: Vec::new(),
            scratch_tokens: Vec::new(),
        })
    }

    /// The width of the rows.
    pub fn d_in(&self) -> usize {
        self.source.d_in()
    }

    /// The calibration of this stream.
    pub fn calibration(&self) -> Calibration {
        self.state.calibration
    }

    /// The configuration.
    pub fn config(&self) -> &BatchStreamConfig {
        &self.state.config
    }

    /// What has been served and dropped so far.
    pub fn counters(&self) -> StreamCounters {
        self.state.counters
    }

    /// The source's name.
    pub fn source_name(&self) -> String {
        self.source.name()
    }

    /// The resumable state after the last batch.
    pub fn state(&self) -> StreamState {
        self.state.clone()
    }

    /// Puts the stream back at `state` (from [`state`](Self::state) of a stream with the same
    /// configuration over the same source).
    ///
    /// # Errors
    /// [`Error::CheckpointMismatch`] if the configuration differs; source errors when re-reading
    /// the current block.
    pub fn restore(&mut self, state: StreamState) -> Result<()> {
        if state.config != self.state.config {
            return Err(Error::CheckpointMismatch {
                path: "<stream state>".into(),
                reason: format!(
                    "batch stream config differs: saved {:?}, this run {:?}",
                    state.config, self.state.config
                ),
            });
        }
        let cursor = state.cursor;
        self.source.seek(state.block_start)?;
        self.state = state;
        self.block_rows = 0;
        if cursor > 0 {
            self.load_block()?;
            self.state.cursor = cursor.min(self.block_rows);
        }
        Ok(())
    }

    /// The next batch, `[rows, d_in]` row-major: `batch_size` rows, fewer only for the last batch
    /// of a non-repeating source; `None` when a non-repeating source is exhausted.
    ///
    /// # Errors
    /// Source errors; [`Error::AllFiltered`] if a whole pass over the source kept nothing.
    pub fn next_batch(&mut self) -> Result<Option<Vec<f32>>> {
        let d = self.source.d_in();
        let want = self.state.config.batch_size;
        let mut out = Vec::with_capacity(want * d);
        let mut rows = 0;
        while rows < want {
            if self.state.cursor >= self.block_rows && !self.next_block()? {
                break;
            }
            let take = (want - rows).min(self.block_rows - self.state.cursor);
            for &r in &self.order[self.state.cursor..self.state.cursor + take] {
                let r = r as usize;
                out.extend_from_slice(&self.block[r * d..(r + 1) * d]);
            }
            self.state.cursor += take;
            rows += take;
        }
        self.state.counters.tokens_served += rows as u64;
        Ok((rows > 0).then_some(out))
    }

    /// Moves to the next block (wrapping for repeating sources); false at the end of the stream.
    fn next_block(&mut self) -> Result<bool> {
        if self.block_rows > 0 || self.state.cursor > 0 {
            self.state.block_index += 1;
        }
        self.state.cursor = 0;
        self.state.block_start = self.source.position();
        self.load_block()?;
        if self.block_rows == 0 {
            if !self.state.config.repeat {
                return Ok(false);
            }
            let at_start = self.state.block_start == SourcePosition::default();
            self.source.seek(SourcePosition::default())?;
            self.state.epoch += 1;
            self.state.block_start = SourcePosition::default();
            self.load_block()?;
            if self.block_rows == 0 {
                return Err(if at_start {
                    Error::Empty {
                        source_name: self.source.name(),
                    }
                } else {
                    Error::AllFiltered {
                        source_name: self.source.name(),
                    }
                });
            }
        }
        Ok(true)
    }

    /// Reads the block starting at the source's current position, filters, normalises and
    /// permutes it.
    fn load_block(&mut self) -> Result<()> {
        let d = self.source.d_in();
        let target = self.state.config.shuffle_rows;
        let limit = self.state.calibration.norm_limit;
        let normaliser = self.state.calibration.normaliser;
        self.block.clear();
        self.block_rows = 0;
        while self.block_rows < target {
            self.scratch.clear();
            self.scratch_tokens.clear();
            let n = self.source.read(
                target - self.block_rows,
                &mut self.scratch,
                &mut self.scratch_tokens,
            )?;
            if n == 0 {
                break;
            }
            for (row, &token) in self.scratch.chunks_exact(d).zip(&self.scratch_tokens) {
                if self.state.config.filter.drops_position(token) {
                    self.state.counters.dropped_position += 1;
                } else if row_norm(row) > limit {
                    self.state.counters.dropped_norm += 1;
                } else {
                    self.block.extend_from_slice(row);
                    self.block_rows += 1;
                }
            }
        }
        // `normalise: false` means raw rows, whatever the calibration's normaliser (a held-out
        // stream for an exported, normalisation-folded SAE reuses the training calibration for
        // its filters only).
        if self.state.config.normalise {
            normaliser.apply(&mut self.block);
        }
        self.order.clear();
        self.order.extend(0..self.block_rows as u32);
        let mut rng = rng_for(
            self.state.config.seed,
            purpose::SHUFFLE,
            self.state.block_index,
        );
        self.order.shuffle(&mut rng);
        Ok(())
    }
}

/// Measures median and mean norms on the first `calibration_rows` rows kept by the position filter.
fn calibrate<S: ActivationSource>(
    source: &mut S,
    config: &BatchStreamConfig,
) -> Result<Calibration> {
    let d = source.d_in();
    let (mut values, mut tokens) = (Vec::new(), Vec::new());
    let mut norms = Vec::new();
    let mut rows_read = 0usize;
    while norms.len() < config.calibration_rows {
        values.clear();
        tokens.clear();
        let n = source.read(
            (config.calibration_rows - norms.len()).max(1),
            &mut values,
            &mut tokens,
        )?;
        if n == 0 {
            break;
        }
        rows_read += n;
        for (row, &token) in values.chunks_exact(d).zip(&tokens) {
            if !config.filter.drops_position(token) {
                norms.push(row_norm(row));
            }
        }
    }
    if norms.is_empty() {
        return Err(if rows_read == 0 {
            Error::Empty {
                source_name: source.name(),
            }
        } else {
            Error::AllFiltered {
                source_name: source.name(),
            }
        });
    }
    let kept_norms = norms.clone();
    let median_norm = median(&mut norms);
    let norm_limit = config.filter.norm_limit(median_norm);
    let kept: Vec<f32> = kept_norms
        .into_iter()
        .filter(|&n| n <= norm_limit)
        .collect();
    let mean_norm = kept.iter().map(|&n| n as f64).sum::<f64>() / kept.len().max(1) as f64;
    let mean_norm = mean_norm as f32;
    let normaliser = if config.normalise && mean_norm > 0.0 {
        Normaliser::from_mean_norm(d, mean_norm, None)
    } else {
        Normaliser::identity()
    };
    Ok(Calibration {
        median_norm,
        norm_limit,
        mean_norm,
        normaliser,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemorySource;
    use proptest::prelude::*;

    /// Rows whose first value is their index, so batches reveal which rows they hold.
    fn indexed(rows: usize, d: usize) -> InMemorySource {
        let v = (0..rows)
            .flat_map(|r| (0..d).map(move |c| if c == 0 { r as f32 + 1.0 } else { 1.0 }))
            .collect();
        InMemorySource::new(v, d).unwrap()
    }

    fn ids(batch: &[f32], d: usize) -> Vec<usize> {
        batch.chunks(d).map(|r| r[0] as usize - 1).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn one_epoch_serves_every_kept_row_once(
            rows in 1usize..60, batch in 1usize..9, shuffle in 1usize..20, seed in 0u64..50,
        ) {
            let cfg = BatchStreamConfig::new(batch).with_shuffle_rows(shuffle).with_seed(seed)
                .with_repeat(false).with_normalise(false);
            let mut s = BatchStream::new(indexed(rows, 3), cfg).unwrap();
            let mut seen = vec![];
            while let Some(b) = s.next_batch().unwrap() { seen.extend(ids(&b, 3)); }
            seen.sort();
            prop_assert_eq!(seen, (0..rows).collect::<Vec<_>>());
        }

        #[test]
        fn restoring_a_state_continues_identically(
            rows in 5usize..60, batch in 1usize..9, shuffle in 1usize..20, cut in 0usize..12,
        ) {
            let cfg = BatchStreamConfig::new(batch).with_shuffle_rows(shuffle).with_seed(3)
                .with_filter(TokenFilter::none().drop_positions(5, vec![0]));
            let mut a = BatchStream::new(indexed(rows, 2), cfg.clone()).unwrap();
            for _ in 0..cut { a.next_batch().unwrap(); }
            let state = a.state();
            let mut b = BatchStream::new(indexed(rows, 2), cfg).unwrap();
            b.restore(serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap())
                .unwrap();
            for _ in 0..15 {
                prop_assert_eq!(a.next_batch().unwrap(), b.next_batch().unwrap());
            }
        }
    }

    #[test]
    fn filters_drop_positions_and_outliers() {
        // 8 tokens, position 0 of each 4-token sequence is a huge outlier, token 5 is large too.
        let mut v = vec![];
        for r in 0..8 {
            let norm = if r % 4 == 0 {
                1000.0
            } else if r == 5 {
                50.0
            } else {
                1.0
            };
            v.extend([norm, 0.0]);
        }
        let src = InMemorySource::new(v.clone(), 2).unwrap();
        let cfg = BatchStreamConfig::new(8)
            .with_repeat(false)
            .with_normalise(false)
            .with_filter(
                TokenFilter::none()
                    .drop_positions(4, vec![0])
                    .max_norm_ratio(10.0),
            );
        let mut s = BatchStream::new(src, cfg).unwrap();
        let b = s.next_batch().unwrap().unwrap();
        assert_eq!(b.len(), 5 * 2);
        assert!(b.chunks(2).all(|r| r[0] == 1.0));
        let c = s.counters();
        assert_eq!(
            (c.dropped_position, c.dropped_norm, c.tokens_served),
            (2, 1, 5)
        );
        assert_eq!(s.calibration().median_norm, 1.0);
    }

    #[test]
    fn normalised_batches_have_mean_norm_sqrt_d() {
        let v: Vec<f32> = (0..40).map(|i| (i % 7) as f32 + 1.0).collect();
        let cfg = BatchStreamConfig::new(10).with_repeat(false);
        let mut s = BatchStream::new(InMemorySource::new(v, 4).unwrap(), cfg).unwrap();
        let b = s.next_batch().unwrap().unwrap();
        let mean = b.chunks(4).map(row_norm).sum::<f32>() / 10.0;
        approx::assert_relative_eq!(mean, 2.0, max_relative = 1e-5);
    }

    #[test]
    fn normalise_false_serves_raw_rows_even_with_a_scaling_calibration() {
        let v: Vec<f32> = (0..40).map(|i| (i % 7) as f32 + 1.0).collect();
        let cfg = BatchStreamConfig::new(10)
            .with_repeat(false)
            .with_shuffle_rows(1);
        let trained = BatchStream::new(InMemorySource::new(v.clone(), 4).unwrap(), cfg.clone())
            .unwrap()
            .calibration();
        assert_ne!(trained.normaliser, Normaliser::identity());
        let mut raw = BatchStream::with_calibration(
            InMemorySource::new(v.clone(), 4).unwrap(),
            cfg.with_normalise(false),
            trained,
        )
        .unwrap();
        assert_eq!(raw.next_batch().unwrap().unwrap(), v[..40].to_vec());
    }

    #[test]
    fn a_source_filtered_to_nothing_is_an_error() {
        let src = InMemorySource::new(vec![1.0; 8], 2).unwrap();
        let cfg =
            BatchStreamConfig::new(2).with_filter(TokenFilter::none().drop_positions(1, vec![0]));
        assert!(matches!(
            BatchStream::new(src, cfg),
            Err(Error::AllFiltered { .. })
        ));
    }

    #[test]
    fn restore_rejects_a_different_config() {
        let mut a = BatchStream::new(indexed(10, 2), BatchStreamConfig::new(2)).unwrap();
        let b = BatchStream::new(indexed(10, 2), BatchStreamConfig::new(3)).unwrap();
        assert!(matches!(
            a.restore(b.state()),
            Err(Error::CheckpointMismatch { .. })
        ));
    }
}
