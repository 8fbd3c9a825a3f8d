//! Per-latent statistics read off the posting lists.

use super::latent_cache::LatentCache;

impl LatentCache {
    /// # Panics
    /// If `window_len` is 0 or does not divide `ctx_len` (windows never cross rows).
    pub(crate) fn check_window(&self, window_len: usize) {
        assert!(
            window_len > 0 && self.ctx_len().is_multiple_of(window_len),
            "window_len must be positive and divide ctx_len {}, found {window_len}",
            self.ctx_len()
        );
    }

    /// Number of example windows of `window_len` tokens (`n_tokens / window_len`).
    ///
    /// # Panics
    /// If `window_len` is 0 or does not divide `ctx_len`.
    pub fn n_windows(&self, window_len: usize) -> usize {
        self.check_window(window_len);
        self.n_tokens() / window_len
    }

    /// The windows of `window_len` tokens in which `latent` fires, increasing. Window `w`
    /// covers flat tokens `w·window_len .. (w+1)·window_len`.
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`, or `window_len` is 0 or does not divide `ctx_len`.
    pub fn active_windows(&self, latent: usize, window_len: usize) -> Vec<u32> {
        self.check_window(window_len);
        let ctx = self.ctx_len() as u32;
        let mut out: Vec<u32> = Vec::new();
        for p in self.postings(latent) {
            let w = (p.row * ctx + p.pos) / window_len as u32;
            if out.last() != Some(&w) {
                out.push(w);
            }
        }
        out
    }

    /// Fraction of tokens on which `latent` fires (0 for an empty cache).
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn per_token_frequency(&self, latent: usize) -> f64 {
        let n = self.n_tokens();
        if n == 0 {
            return 0.0;
        }
        self.firing_count(latent) as f64 / n as f64
    }

    /// Fraction of example windows of `window_len` tokens in which `latent` fires at least
    /// once (delphi's `per_context_frequency`; 0 for an empty cache).
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`, or `window_len` is 0 or does not divide `ctx_len`.
    pub fn per_context_frequency(&self, latent: usize, window_len: usize) -> f64 {
        let n = self.n_windows(window_len);
        if n == 0 {
            return 0.0;
        }
        self.active_windows(latent, window_len).len() as f64 / n as f64
    }

    /// Whether `latent` is a single-token latent: among its `n_top` strongest postings (ties:
    /// earlier token first), the token id that occurs most and its share. Delphi flags a
    /// latent whose top 50 are > 90% one token (its code sorts ascending and so looks at the
    /// *weakest* 50, research note §1.A1.7; this looks at the strongest). `None` if the
    /// latent never fires or `n_top` is 0.
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn top_token_share(&self, latent: usize, n_top: usize) -> Option<(u32, f64)> {
        let (flat, values) = self.latent_entries(latent);
        let mut order: Vec<usize> = (0..flat.len()).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        order.truncate(n_top);
        if order.is_empty() {
            return None;
        }
        let mut counts: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
        for &i in &order {
            *counts.entry(self.token_at(flat[i] as usize)).or_default() += 1;
        }
        let (token, count) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("non-empty");
        Some((token, count as f64 / order.len() as f64))
    }

    /// Fraction of latents that fire at least once ("alive").
    pub fn fraction_alive(&self) -> f64 {
        let alive = (0..self.n_latents())
            .filter(|&j| self.firing_count(j) > 0)
            .count();
        alive as f64 / self.n_latents() as f64
    }

    /// Fraction of latents that fire on more than `token_fraction` of the tokens (delphi logs
    /// 1% and 10%).
    pub fn fraction_denser_than(&self, token_fraction: f64) -> f64 {
        let dense = (0..self.n_latents())
            .filter(|&j| self.per_token_frequency(j) > token_fraction)
            .count();
        dense as f64 / self.n_latents() as f64
    }
}

#[cfg(test)]
mod tests {
    use crate::{CacheBuilder, CacheConfig, CodeEntry};
    use approx::assert_relative_eq;

    #[test]
    fn windows_and_frequencies() {
        // 2 rows of 8 tokens, windows of 4: 4 windows.
        let mut b = CacheBuilder::new(CacheConfig::new(8, 3));
        let e = |row, pos, latent| CodeEntry {
            row,
            pos,
            latent,
            value: 1.0,
        };
        b.push_entries(
            &[0; 16],
            &[e(0, 0, 0), e(0, 3, 0), e(0, 4, 0), e(1, 7, 0), e(1, 1, 1)],
        )
        .unwrap();
        let c = b.finish();
        assert_eq!(c.n_windows(4), 4);
        assert_eq!(c.active_windows(0, 4), vec![0, 1, 3]);
        assert_relative_eq!(c.per_context_frequency(0, 4), 0.75);
        assert_relative_eq!(c.per_context_frequency(1, 4), 0.25);
        assert_relative_eq!(c.per_token_frequency(0), 4.0 / 16.0);
        assert_relative_eq!(c.fraction_alive(), 2.0 / 3.0);
        assert_relative_eq!(c.fraction_denser_than(0.1), 1.0 / 3.0);
    }

    #[test]
    fn top_token_share_looks_at_the_strongest_postings() {
        let mut b = CacheBuilder::new(CacheConfig::new(6, 2));
        let e = |pos, value| CodeEntry {
            row: 0,
            pos,
            latent: 0,
            value,
        };
        // Token 9 carries the three strongest values, token 4 the three weakest.
        b.push_entries(
            &[9, 4, 9, 4, 9, 4],
            &[
                e(0, 5.0),
                e(1, 0.1),
                e(2, 6.0),
                e(3, 0.2),
                e(4, 7.0),
                e(5, 0.3),
            ],
        )
        .unwrap();
        let c = b.finish();
        assert_eq!(c.top_token_share(0, 3), Some((9, 1.0)));
        let (_, share) = c.top_token_share(0, 6).unwrap();
        assert_relative_eq!(share, 0.5);
        assert_eq!(c.top_token_share(1, 3), None);
    }

    #[test]
    #[should_panic(expected = "window_len must be positive and divide ctx_len")]
    fn window_must_divide_the_row() {
        CacheBuilder::new(CacheConfig::new(8, 1))
            .finish()
            .n_windows(3);
    }
}
