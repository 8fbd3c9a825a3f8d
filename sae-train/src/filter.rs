//! Token filters: drop given sequence positions (attention sinks, BOS) and outlier-norm tokens.

use serde::{Deserialize, Serialize};

/// Which tokens the trainer never sees.
///
/// Real residual streams carry attention-sink tokens (usually position 0 of each sequence) whose
/// norm is orders of magnitude above the rest — ~180× the median in the SmolLM2 layer-12 data of
/// this repository. Left in, they dominate the squared error, cause loss spikes and kill latents
/// early (research notes §5.10; dictionary_learning PR #52 filters norms above `c · median`).
/// Both filters are off by default.
///
/// ```
/// use sae_train::TokenFilter;
/// // Drop position 0 of every 256-token sequence and anything above 10× the median norm.
/// let filter = TokenFilter::none().drop_positions(256, vec![0]).max_norm_ratio(10.0);
/// assert!(filter.drops_position(512));
/// assert!(!filter.drops_position(513));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TokenFilter {
    /// Sequence length used to turn a token index into its position (`index % sequence_length`).
    pub sequence_length: Option<u64>,
    /// Positions within each sequence to drop.
    pub positions: Vec<u64>,
    /// Drop tokens whose norm exceeds this multiple of the median norm (measured once, on the
    /// calibration sample, after the position filter).
    pub max_norm_ratio: Option<f32>,
}

impl TokenFilter {
    /// A filter that keeps every token.
    pub fn none() -> Self {
        Self::default()
    }

    /// Drops `positions` of every sequence of `sequence_length` tokens.
    ///
    /// # Panics
    /// If `sequence_length` is 0 or a position is not below it.
    pub fn drop_positions(mut self, sequence_length: u64, positions: Vec<u64>) -> Self {
        assert!(
            sequence_length > 0,
            "sequence_length must be positive, got 0"
        );
        for &p in &positions {
            assert!(
                p < sequence_length,
                "position {p} to drop is not below the sequence length {sequence_length}"
            );
        }
        self.sequence_length = Some(sequence_length);
        self.positions = positions;
        self
    }

    /// Drops tokens whose norm exceeds `ratio` × the median token norm.
    ///
    /// # Panics
    /// If `ratio` is not a finite number above 1.
    pub fn max_norm_ratio(mut self, ratio: f32) -> Self {
        assert!(
            ratio.is_finite() && ratio > 1.0,
            "max_norm_ratio must be a finite number above 1, got {ratio}"
        );
        self.max_norm_ratio = Some(ratio);
        self
    }

    /// Whether the token at `token_index` is dropped for its position.
    pub fn drops_position(&self, token_index: u64) -> bool {
        match self.sequence_length {
            Some(len) => self.positions.contains(&(token_index % len)),
            None => false,
        }
    }

    /// The largest norm kept, given the median norm (`f32::INFINITY` without a norm filter).
    pub fn norm_limit(&self, median_norm: f32) -> f32 {
        self.max_norm_ratio
            .map_or(f32::INFINITY, |ratio| ratio * median_norm)
    }
}

/// The Euclidean norm of one row.
pub(crate) fn row_norm(row: &[f32]) -> f32 {
    row.iter().map(|v| v * v).sum::<f32>().sqrt()
}

/// The median of `values` (mean of the two middle values for an even count); 0 when empty.
pub(crate) fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn positions_are_taken_modulo_the_sequence_length() {
        let f = TokenFilter::none().drop_positions(4, vec![0, 3]);
        let dropped: Vec<u64> = (0..9).filter(|&i| f.drops_position(i)).collect();
        assert_eq!(dropped, vec![0, 3, 4, 7, 8]);
        assert!(!TokenFilter::none().drops_position(0));
    }

    #[test]
    #[should_panic(expected = "not below the sequence length")]
    fn position_outside_the_sequence_panics() {
        let _ = TokenFilter::none().drop_positions(4, vec![4]);
    }

    proptest! {
        #[test]
        fn median_splits_the_values(mut v in prop::collection::vec(-1e3f32..1e3, 1..50)) {
            let m = median(&mut v.clone());
            let below = v.iter().filter(|&&x| x < m).count();
            let above = v.iter().filter(|&&x| x > m).count();
            prop_assert!(below <= v.len() / 2 && above <= v.len() / 2);
            v.sort_by(f32::total_cmp);
            prop_assert!(m >= v[0] && m <= v[v.len() - 1]);
        }
    }
}
