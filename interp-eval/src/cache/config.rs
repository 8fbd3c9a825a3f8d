//! What a cache is built with.

/// The shape of a latent cache: row length, dictionary width and the storage threshold.
///
/// ```
/// use interp_eval::CacheConfig;
///
/// let config = CacheConfig::new(256, 16_384);
/// assert_eq!(config.threshold, 1e-5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheConfig {
    /// Tokens per cache row (delphi's `cache_ctx_len`, 256 by default). Example windows are
    /// cut inside rows, so the window length must divide it.
    pub ctx_len: usize,
    /// Number of latents of the dictionary (`d_sae`).
    pub n_latents: usize,
    /// An entry is stored iff `|value| > threshold` (delphi's `1e-5`). Negative values of
    /// signed codes (AbsTopK) are stored too and count as firing.
    pub threshold: f32,
}

impl CacheConfig {
    /// Rows of `ctx_len` tokens, `n_latents` latents, threshold `1e-5`.
    pub fn new(ctx_len: usize, n_latents: usize) -> Self {
        Self {
            ctx_len,
            n_latents,
            threshold: 1e-5,
        }
    }

    /// The same configuration with another storage threshold.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// # Panics
    /// Naming the field, if `ctx_len` is 0 or above `u32::MAX`, `n_latents` is 0 or above
    /// `u32::MAX − 1`, or `threshold` is negative or not finite.
    pub(crate) fn check(&self) {
        assert!(
            self.ctx_len > 0 && self.ctx_len <= u32::MAX as usize,
            "CacheConfig::ctx_len must be in 1..=u32::MAX, found {}",
            self.ctx_len
        );
        assert!(
            self.n_latents > 0 && self.n_latents < u32::MAX as usize,
            "CacheConfig::n_latents must be in 1..u32::MAX, found {}",
            self.n_latents
        );
        assert!(
            self.threshold.is_finite() && self.threshold >= 0.0,
            "CacheConfig::threshold must be finite and ≥ 0, found {}",
            self.threshold
        );
    }
}

impl Default for CacheConfig {
    /// Delphi's defaults: rows of 256 tokens; `n_latents` must still be set (here 1).
    fn default() -> Self {
        Self::new(256, 1)
    }
}
