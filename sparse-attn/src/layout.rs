//! Which query–key cells exist at all: the attention's shape and causal structure.
//!
//! A mask only ever says which *valid* cells are kept; the layout's causal constraint (and the
//! caller's key padding) are applied on top of every mask by every kernel, so a mask cannot
//! accidentally let a query see the future.

/// Query and key lengths and the causal structure of one attention call.
///
/// With `causal`, query `i` sits at key index `q_offset + i` and may attend keys
/// `0..=q_offset + i` (prefill: `q_offset = k_len - q_len`; decoding with a cache of `c` keys:
/// `q_offset = c`). Without it every query may attend every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttentionLayout {
    /// Number of queries.
    pub q_len: usize,
    /// Number of keys.
    pub k_len: usize,
    /// Decoder (causal) or encoder (bidirectional) attention.
    pub causal: bool,
    /// Key index of the first query; only used when `causal`.
    pub q_offset: usize,
}

impl AttentionLayout {
    /// Causal self-attention over `len` tokens (prefill).
    pub fn causal(len: usize) -> Self {
        Self {
            q_len: len,
            k_len: len,
            causal: true,
            q_offset: 0,
        }
    }

    /// Causal attention of `q_len` new queries over `k_len` keys, the queries being the last
    /// keys (prefill after a cache, or one decoding step with `q_len = 1`).
    ///
    /// # Panics
    /// If `q_len > k_len`.
    pub fn causal_suffix(q_len: usize, k_len: usize) -> Self {
        assert!(
            q_len <= k_len,
            "AttentionLayout::causal_suffix: q_len must be at most k_len, found q_len {q_len} > k_len {k_len}"
        );
        Self {
            q_len,
            k_len,
            causal: true,
            q_offset: k_len - q_len,
        }
    }

    /// Bidirectional attention: every query sees every key.
    pub fn full(q_len: usize, k_len: usize) -> Self {
        Self {
            q_len,
            k_len,
            causal: false,
            q_offset: 0,
        }
    }

    /// Number of keys query `i` may attend: `keys 0..valid_keys(i)`.
    pub fn valid_keys(&self, i: usize) -> usize {
        if self.causal {
            (self.q_offset + i + 1).min(self.k_len)
        } else {
            self.k_len
        }
    }

    /// Whether query `i` may attend key `j` at all.
    pub fn is_valid(&self, i: usize, j: usize) -> bool {
        i < self.q_len && j < self.valid_keys(i)
    }

    /// Number of valid cells: the causal triangle (with its offset) or the full rectangle.
    pub fn valid_cells(&self) -> u64 {
        (0..self.q_len).map(|i| self.valid_keys(i) as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_prefill_counts_the_triangle() {
        let l = AttentionLayout::causal(4);
        assert_eq!(l.valid_cells(), 10);
        assert!(l.is_valid(2, 2));
        assert!(!l.is_valid(2, 3));
    }

    #[test]
    fn decode_step_sees_the_whole_cache() {
        let l = AttentionLayout::causal_suffix(1, 9);
        assert_eq!(l.valid_keys(0), 9);
        assert_eq!(l.valid_cells(), 9);
    }

    #[test]
    fn full_layout_is_the_rectangle() {
        assert_eq!(AttentionLayout::full(3, 5).valid_cells(), 15);
    }
}
