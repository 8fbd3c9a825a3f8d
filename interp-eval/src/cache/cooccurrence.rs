//! Latent × latent co-firing counts per token, sparse.

use sparse_index::SparseCollection;

use super::latent_cache::LatentCache;

/// How often pairs of latents fire on the same token: `C[i][j]` = number of tokens on which
/// both `i` and `j` fire, stored sparsely for a chosen set of rows `i`; the diagonal
/// `C[i][i]` is the firing count of `i`, kept for every latent.
///
/// Built by [`LatentCache::cooccurrence`]. Delphi's co-occurrence neighbours rank latents by
/// the Jaccard index [`Self::jaccard`].
///
/// ```
/// use interp_eval::{CacheBuilder, CacheConfig, CodeEntry};
///
/// let mut b = CacheBuilder::new(CacheConfig::new(3, 3));
/// let e = |pos, latent| CodeEntry { row: 0, pos, latent, value: 1.0 };
/// b.push_entries(&[1, 2, 3], &[e(0, 0), e(0, 1), e(1, 0), e(2, 1), e(2, 2)])?;
/// let c = b.finish().cooccurrence_all();
/// assert_eq!(c.count(0, 1), 1); // token 0
/// assert_eq!(c.count(0, 0), 2);
/// assert_eq!(c.jaccard(0, 1), 1.0 / 3.0); // 1 / (2 + 2 − 1)
/// # Ok::<(), interp_eval::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cooccurrence {
    rows: Vec<u32>,
    offsets: Vec<usize>,
    cols: Vec<u32>,
    counts: Vec<u64>,
    diagonal: Vec<u64>,
}

impl Cooccurrence {
    /// The latents whose rows were computed, increasing.
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// Row `i`: the latents co-firing with `i` (increasing, `i` itself included) and the
    /// counts; `None` if row `i` was not computed.
    pub fn row(&self, i: u32) -> Option<(&[u32], &[u64])> {
        let r = self.rows.binary_search(&i).ok()?;
        let (s, e) = (self.offsets[r], self.offsets[r + 1]);
        Some((&self.cols[s..e], &self.counts[s..e]))
    }

    /// `C[i][j]`; for a row not computed, the count from row `j` if that one was (the matrix
    /// is symmetric).
    ///
    /// # Panics
    /// If neither row `i` nor row `j` was computed.
    pub fn count(&self, i: u32, j: u32) -> u64 {
        if i == j {
            return self.diagonal[i as usize];
        }
        let (a, b) = if self.row(i).is_some() {
            (i, j)
        } else {
            (j, i)
        };
        let (cols, counts) = self.row(a).unwrap_or_else(|| {
            panic!("neither row {i} nor row {j} of the co-occurrence was computed")
        });
        cols.binary_search(&b).map_or(0, |k| counts[k])
    }

    /// Firing count of `i` (`C[i][i]`), known for every latent.
    pub fn firing_count(&self, i: u32) -> u64 {
        self.diagonal[i as usize]
    }

    /// Jaccard index `C_ij / (C_ii + C_jj − C_ij)` (0 when neither fires).
    ///
    /// # Panics
    /// As [`Self::count`].
    pub fn jaccard(&self, i: u32, j: u32) -> f64 {
        let c = self.count(i, j);
        let union = self.diagonal[i as usize] + self.diagonal[j as usize] - c;
        if union == 0 {
            0.0
        } else {
            c as f64 / union as f64
        }
    }
}

impl LatentCache {
    /// Co-firing counts per token for the rows `latents` (deduplicated): for each, every latent
    /// that fires on one of its tokens, with the number of such tokens. Cost: the sum over the
    /// rows' tokens of the number of latents firing there; memory: one token-order copy of
    /// the cache's addresses (via `sparse_index::SparseCollection::transpose`).
    ///
    /// # Panics
    /// If a latent is `≥ n_latents()`.
    pub fn cooccurrence(&self, latents: &[u32]) -> Cooccurrence {
        let mut rows = latents.to_vec();
        rows.sort_unstable();
        rows.dedup();
        if let Some(&last) = rows.last() {
            assert!(
                (last as usize) < self.n_latents(),
                "latent {last} is outside the cache's {} latents",
                self.n_latents()
            );
        }
        let by_token = self.by_token();
        let mut scratch = vec![0u64; self.n_latents()];
        let mut touched: Vec<u32> = Vec::new();
        let mut offsets = vec![0usize];
        let (mut cols, mut counts) = (Vec::new(), Vec::new());
        let ctx = self.ctx_len() as u32;
        for &i in &rows {
            for p in self.postings(i as usize) {
                let t = (p.row * ctx + p.pos) as usize;
                if t >= by_token.len() {
                    continue;
                }
                for &j in by_token.get(t).indices() {
                    if scratch[j as usize] == 0 {
                        touched.push(j);
                    }
                    scratch[j as usize] += 1;
                }
            }
            touched.sort_unstable();
            for &j in &touched {
                cols.push(j);
                counts.push(scratch[j as usize]);
                scratch[j as usize] = 0;
            }
            touched.clear();
            offsets.push(cols.len());
        }
        Cooccurrence {
            rows,
            offsets,
            cols,
            counts,
            diagonal: self.firing_counts(),
        }
    }

    /// [`Self::cooccurrence`] of every latent.
    pub fn cooccurrence_all(&self) -> Cooccurrence {
        let all: Vec<u32> = (0..self.n_latents() as u32).collect();
        self.cooccurrence(&all)
    }

    /// The latents firing on each token (token order; trailing tokens without any entry are
    /// absent), built by transposing the posting lists.
    fn by_token(&self) -> SparseCollection {
        let mut by_latent = SparseCollection::new();
        for j in 0..self.n_latents() {
            let (tokens, _) = self.latent_entries(j);
            let ones = vec![1.0f32; tokens.len()];
            by_latent
                .push_parts(&tokens, &ones)
                .expect("a verified cache has increasing token addresses per latent");
        }
        by_latent.transpose()
    }
}

#[cfg(test)]
mod tests {
    use crate::{CacheBuilder, CacheConfig, CodeEntry};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn counts_equal_a_dense_count(
            cells in proptest::collection::vec((0u32..12, 0u32..6), 0..60),
        ) {
            let mut b = CacheBuilder::new(CacheConfig::new(4, 6));
            let entries: Vec<CodeEntry> = cells
                .iter()
                .map(|&(t, j)| CodeEntry { row: t / 4, pos: t % 4, latent: j, value: 1.0 })
                .collect();
            b.push_entries(&[0; 12], &entries).unwrap();
            let cache = b.finish();
            let mut fires = [[false; 6]; 12];
            for &(t, j) in &cells {
                fires[t as usize][j as usize] = true;
            }
            let c = cache.cooccurrence_all();
            for i in 0..6 {
                for j in 0..6 {
                    let dense = (0..12).filter(|&t| fires[t][i] && fires[t][j]).count() as u64;
                    prop_assert_eq!(c.count(i as u32, j as u32), dense);
                }
            }
            let some = cache.cooccurrence(&[4, 1, 4]);
            prop_assert_eq!(some.rows(), &[1, 4]);
            prop_assert_eq!(some.count(3, 1), c.count(1, 3));
        }
    }
}
