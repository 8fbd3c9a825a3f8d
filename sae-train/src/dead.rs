//! Dead-latent tracking in tokens since each latent last fired.

use serde::{Deserialize, Serialize};

/// Counts, for every latent, the tokens seen since it last fired (OpenAI's and sparsify's
/// `num_tokens_since_fired`): a latent is **dead** once that count exceeds `threshold_tokens`
/// (10 M in OpenAI, sparsify and dictionary_learning). Counting tokens, not steps, makes the
/// definition independent of the batch size (SAELens counts steps).
///
/// ```
/// use sae_train::DeadLatents;
/// let mut dead = DeadLatents::new(3, 100);
/// dead.update(&[true, false, false], 80);
/// dead.update(&[false, false, true], 40);
/// assert_eq!(dead.dead_mask(), vec![false, true, false]);
/// assert!((dead.dead_fraction() - 1.0 / 3.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLatents {
    since_fired: Vec<u64>,
    threshold_tokens: u64,
}

impl DeadLatents {
    /// Tracks `d_sae` latents, dead after more than `threshold_tokens` silent tokens.
    pub fn new(d_sae: usize, threshold_tokens: u64) -> Self {
        Self {
            since_fired: vec![0; d_sae],
            threshold_tokens,
        }
    }

    /// Records a batch of `tokens` tokens in which the latents with `fired[i]` fired at least once.
    ///
    /// # Panics
    /// If `fired` does not have one entry per latent.
    pub fn update(&mut self, fired: &[bool], tokens: u64) {
        assert_eq!(
            fired.len(),
            self.since_fired.len(),
            "fired mask has {} entries, expected d_sae = {}",
            fired.len(),
            self.since_fired.len()
        );
        for (count, &f) in self.since_fired.iter_mut().zip(fired) {
            *count = if f { 0 } else { count.saturating_add(tokens) };
        }
    }

    /// Which latents are dead.
    pub fn dead_mask(&self) -> Vec<bool> {
        self.since_fired
            .iter()
            .map(|&n| n > self.threshold_tokens)
            .collect()
    }

    /// The number of dead latents.
    pub fn num_dead(&self) -> usize {
        self.since_fired
            .iter()
            .filter(|&&n| n > self.threshold_tokens)
            .count()
    }

    /// The share of dead latents.
    pub fn dead_fraction(&self) -> f64 {
        self.num_dead() as f64 / self.since_fired.len().max(1) as f64
    }

    /// Tokens since each latent fired.
    pub fn tokens_since_fired(&self) -> &[u64] {
        &self.since_fired
    }

    /// The threshold in tokens.
    pub fn threshold_tokens(&self) -> u64 {
        self.threshold_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_a_brute_force_replay(
            batches in prop::collection::vec((prop::collection::vec(any::<bool>(), 6), 1u64..50), 0..30),
            threshold in 0u64..200,
        ) {
            let mut d = DeadLatents::new(6, threshold);
            for (fired, tokens) in &batches { d.update(fired, *tokens); }
            for i in 0..6 {
                // Tokens after the last batch in which latent i fired.
                let last = batches.iter().rposition(|(f, _)| f[i]);
                let silent: u64 = batches[last.map_or(0, |l| l + 1)..].iter().map(|(_, t)| t).sum();
                prop_assert_eq!(d.tokens_since_fired()[i], silent);
                prop_assert_eq!(d.dead_mask()[i], silent > threshold);
            }
        }
    }
}
