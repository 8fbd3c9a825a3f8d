//! Builds a cache from batches of codes, incrementally.

use half::f16;
use sae_core::SparseCodes;
use sparse_index::SparseCollection;

use super::config::CacheConfig;
use super::latent_cache::LatentCache;
use crate::error::{Error, Result};

/// Largest number of tokens a cache addresses (flat token ids are `u32`, and the forward
/// collection of the builder holds fewer than `u32::MAX` documents).
const MAX_TOKENS: u64 = u32::MAX as u64 - 1;

/// One code of one token: latent `latent` has `value` at position `pos` of row `row` of the
/// batch it is pushed with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodeEntry {
    /// Row within the batch.
    pub row: u32,
    /// Position within the row, `< ctx_len`.
    pub pos: u32,
    /// Latent index, `< n_latents`.
    pub latent: u32,
    /// The code value.
    pub value: f32,
}

/// Accumulates the codes of an activation stream batch by batch, then inverts them into a
/// [`LatentCache`] (posting lists by latent).
///
/// Each batch brings whole rows of token ids with their codes, as [`CodeEntry`]s in any order,
/// as [`SparseCodes`] (one code row per token) or as dense codes. Entries with
/// `|value| ≤ threshold` are dropped (so k-sparse padding with value 0 vanishes); entries of
/// the same token and latent are added, as [`SparseCodes::to_dense`] does. A batch is checked
/// whole before anything is kept, so a rejected batch leaves the builder as it was.
///
/// Memory while building: the codes in token order (a `sparse_index::SparseCollection`,
/// 8 bytes per entry and per token) and the token ids; [`Self::finish`] inverts them with
/// [`SparseCollection::transpose`], the posting-list inversion `sparse-index` builds its
/// indexes with; memory peaks there at about 24 bytes per entry and 16 per token. The
/// finished cache stores 6 bytes per entry (a `u32` token address and an `f16` value) and 4
/// per token.
///
/// ```
/// use interp_eval::{CacheBuilder, CacheConfig, CodeEntry};
///
/// let mut builder = CacheBuilder::new(CacheConfig::new(4, 3));
/// let tokens = [10, 11, 12, 13, 20, 21, 22, 23]; // two rows of 4 tokens
/// let entry = |row, pos, latent, value| CodeEntry { row, pos, latent, value };
/// builder.push_entries(&tokens, &[entry(1, 2, 0, 0.5), entry(0, 1, 0, 2.0), entry(0, 1, 2, 1.0)])?;
/// let cache = builder.finish();
/// let postings: Vec<_> = cache.postings(0).map(|p| (p.row, p.pos, p.value)).collect();
/// assert_eq!(postings, vec![(0, 1, 2.0), (1, 2, 0.5)]);
/// assert_eq!(cache.firing_counts(), vec![2, 0, 1]);
/// assert_eq!(cache.token(1, 2), 22);
/// # Ok::<(), interp_eval::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CacheBuilder {
    config: CacheConfig,
    tokens: Vec<u32>,
    by_token: SparseCollection,
}

impl CacheBuilder {
    /// An empty builder.
    ///
    /// # Panics
    /// If `config` is invalid (see [`CacheConfig`]: zero sizes, a negative threshold).
    pub fn new(config: CacheConfig) -> Self {
        config.check();
        Self {
            config,
            tokens: Vec::new(),
            by_token: SparseCollection::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Rows pushed so far.
    pub fn n_rows(&self) -> usize {
        self.tokens.len() / self.config.ctx_len
    }

    /// Entries kept so far.
    pub fn n_entries(&self) -> usize {
        self.by_token.nnz()
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<usize> {
        let ctx = self.config.ctx_len;
        if !tokens.len().is_multiple_of(ctx) {
            return Err(Error::PartialRow {
                tokens: tokens.len(),
                ctx_len: ctx,
            });
        }
        let total = (self.tokens.len() + tokens.len()) as u64;
        if total > MAX_TOKENS {
            return Err(Error::TooLarge {
                what: "latent cache (tokens)",
                found: total,
                limit: MAX_TOKENS,
            });
        }
        Ok(tokens.len() / ctx)
    }

    /// Pushes whole rows of token ids (`[rows, ctx_len]` flattened) with their codes, given
    /// as entries in any order.
    ///
    /// # Errors
    /// [`Error::PartialRow`] if `tokens` is not whole rows, [`Error::EntryOutOfRange`] for an
    /// entry outside the batch's rows, the row length or the dictionary,
    /// [`Error::BadCodeValue`] for a value that is not finite or (after adding duplicates) does
    /// not fit f16, [`Error::TooLarge`] past `u32::MAX − 1` tokens in all.
    pub fn push_entries(&mut self, tokens: &[u32], entries: &[CodeEntry]) -> Result<()> {
        let rows = self.check_tokens(tokens)?;
        let ctx = self.config.ctx_len;
        let mut flat = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let out = |field, value: u32, limit: usize| Error::EntryOutOfRange {
                entry: i,
                field,
                value: i64::from(value),
                limit: limit as u64,
            };
            if e.row as usize >= rows {
                return Err(out("row", e.row, rows));
            }
            if e.pos as usize >= ctx {
                return Err(out("pos", e.pos, ctx));
            }
            if e.latent as usize >= self.config.n_latents {
                return Err(out("latent", e.latent, self.config.n_latents));
            }
            let t = e.row as usize * ctx + e.pos as usize;
            flat.push((t as u32, e.latent, e.value));
        }
        self.push_flat(tokens, flat)
    }

    /// Pushes whole rows of token ids with k-sparse codes: code row `t` belongs to token `t`
    /// of `tokens` (row-major), so `codes` has `tokens.len()` rows. The tensors are read back
    /// to the host once.
    ///
    /// # Errors
    /// As [`Self::push_entries`], and [`Error::ShapeMismatch`] if the number of code rows is
    /// not `tokens.len()`; a negative latent index is [`Error::EntryOutOfRange`].
    pub fn push_sparse_codes(&mut self, tokens: &[u32], codes: &SparseCodes) -> Result<()> {
        let (n, k) = (codes.batch_size(), codes.k());
        if n != tokens.len() {
            return Err(Error::ShapeMismatch {
                what: "code rows vs token ids of the batch",
                expected: tokens.len(),
                found: n,
            });
        }
        self.check_tokens(tokens)?;
        let indices = codes
            .indices
            .clone()
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("an int tensor converts to i64");
        let values = codes
            .values
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("a float tensor converts to f32");
        let mut flat = Vec::with_capacity(indices.len());
        for (i, (&latent, &value)) in indices.iter().zip(&values).enumerate() {
            if latent < 0 || latent as u64 >= self.config.n_latents as u64 {
                return Err(Error::EntryOutOfRange {
                    entry: i,
                    field: "latent",
                    value: latent,
                    limit: self.config.n_latents as u64,
                });
            }
            flat.push(((i / k.max(1)) as u32, latent as u32, value));
        }
        self.push_flat(tokens, flat)
    }

    /// Pushes whole rows of token ids with dense codes `[tokens.len(), n_latents]`
    /// (row-major), e.g. the host copy of a ReLU SAE's `encode`.
    ///
    /// # Errors
    /// As [`Self::push_entries`], and [`Error::ShapeMismatch`] if `codes` is not
    /// `tokens.len() · n_latents` long.
    pub fn push_dense(&mut self, tokens: &[u32], codes: &[f32]) -> Result<()> {
        let width = self.config.n_latents;
        let expected = tokens.len().saturating_mul(width);
        if codes.len() != expected {
            return Err(Error::ShapeMismatch {
                what: "dense codes length (tokens × n_latents)",
                expected,
                found: codes.len(),
            });
        }
        self.check_tokens(tokens)?;
        let threshold = self.config.threshold;
        let flat = codes
            .chunks_exact(width)
            .enumerate()
            .flat_map(|(t, row)| {
                row.iter()
                    .enumerate()
                    .filter(move |(_, v)| v.abs() > threshold || !v.is_finite())
                    .map(move |(j, &v)| (t as u32, j as u32, v))
            })
            .collect();
        self.push_flat(tokens, flat)
    }

    /// `flat`: (token within the batch, latent, value), latents already range-checked.
    fn push_flat(&mut self, tokens: &[u32], mut flat: Vec<(u32, u32, f32)>) -> Result<()> {
        let ctx = self.config.ctx_len;
        let threshold = self.config.threshold;
        // Stable: duplicates are added in the order given (as a dense accumulation would).
        flat.sort_by_key(|&(t, j, _)| (t, j));
        // Merge duplicates (sum, like `to_dense`), drop what is not stored, check what is.
        let mut merged: Vec<(u32, u32, f32)> = Vec::with_capacity(flat.len());
        for (t, j, v) in flat {
            match merged.last_mut() {
                Some(last) if last.0 == t && last.1 == j => last.2 += v,
                _ => merged.push((t, j, v)),
            }
        }
        let mut kept = Vec::with_capacity(merged.len());
        for (t, j, v) in merged {
            let bad = |reason| Error::BadCodeValue {
                row: t as usize / ctx,
                pos: t as usize % ctx,
                latent: j,
                value: v,
                reason,
            };
            if !v.is_finite() {
                return Err(bad("not finite"));
            }
            if v.abs() <= threshold {
                continue;
            }
            if v.abs() > f16::MAX.to_f32() {
                return Err(bad("beyond f16's range of ±65504"));
            }
            kept.push((t, j, v));
        }
        // Everything checked: now append.
        self.tokens.extend_from_slice(tokens);
        let (mut ids, mut vals) = (Vec::new(), Vec::new());
        let mut next = 0;
        for t in 0..tokens.len() as u32 {
            ids.clear();
            vals.clear();
            while next < kept.len() && kept[next].0 == t {
                ids.push(kept[next].1);
                vals.push(kept[next].2);
                next += 1;
            }
            self.by_token
                .push_parts(&ids, &vals)
                .expect("sorted, merged, finite entries form a valid sparse vector");
        }
        Ok(())
    }

    /// Inverts the codes into posting lists by latent and returns the cache (in memory; save
    /// it with [`LatentCache::save`]).
    pub fn finish(self) -> LatentCache {
        let n_latents = self.config.n_latents;
        let mut lists = self.by_token.transpose();
        while lists.len() < n_latents {
            lists
                .push_parts(&[], &[])
                .expect("an empty vector is valid");
        }
        let (offsets, entry_tokens, values) = lists.into_csr();
        let values: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        LatentCache::from_parts(self.config, &self.tokens, &offsets, &entry_tokens, &values)
    }
}
