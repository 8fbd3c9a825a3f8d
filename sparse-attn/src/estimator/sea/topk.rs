//! Grouped top-k in the compressed space: the heads of one query share its budget
//! (the reference's `k_flatten_dim = 'causal_batch'`).
//!
//! For every (batch `b`, query `t`) the `H·T_M` estimated probabilities of all heads are ranked
//! together and the best `k_t` cells kept, with
//! `k_t = max(round(H · (k · k_oversample · T_M / len_t)), 1)` (`round` = half to even, as
//! `torch.round`), `len_t = t + 1` for causal self-attention (`q_offset + t + 1` in general) and
//! the unpadded key length otherwise. A budget above `H·T_M` keeps every cell. Heads compete: a
//! head whose estimate is flat may keep nothing in a row another head dominates.
//!
//! Ties rank the lower flat index (`h·T_M + c`) first; NaN ranks last. Rows of padded queries
//! (bidirectional, `t ≥ len`) keep nothing, as the reference's query mask does.

use crate::layout::AttentionLayout;

/// SEA's budget: `k` kept keys per query per head on average, and the oversampling factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeaBudget {
    /// Average kept keys per query and head (reference config default 7; its scripts use 64).
    pub k: f64,
    /// Compressed cells are over-selected by this factor and the interpolated runs thinned back
    /// (reference default 1.0: no thinning).
    pub k_oversample: f64,
}

impl SeaBudget {
    /// `k` keys per query per head, no oversampling.
    pub fn new(k: f64) -> Self {
        Self {
            k,
            k_oversample: 1.0,
        }
    }

    /// # Panics
    /// If `k` is not positive and finite or `k_oversample < 1`.
    pub(crate) fn check(&self) {
        assert!(
            self.k.is_finite() && self.k > 0.0,
            "SeaBudget: k must be positive and finite, found {}",
            self.k
        );
        assert!(
            self.k_oversample.is_finite() && self.k_oversample >= 1.0,
            "SeaBudget: k_oversample must be at least 1, found {}",
            self.k_oversample
        );
    }
}

/// Compressed cells kept in one query row of `heads` heads of width `width` whose keys number
/// `len`: `min(max(round_half_even(H·(k·os·T_M/len)), 1), H·T_M)`; 0 when `len = 0`.
pub fn row_budget(budget: &SeaBudget, heads: usize, width: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let per_head = budget.k * budget.k_oversample * width as f64 / len as f64;
    let k_t = (heads as f64 * per_head).round_ties_even().max(1.0);
    (k_t as usize).min(heads * width)
}

/// Keys query `t` of batch `b` attends in SEA's sense: the causal prefix, or the unpadded length.
pub(crate) fn row_len(
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
    b: usize,
    t: usize,
) -> usize {
    if layout.causal {
        layout.valid_keys(t)
    } else {
        let len = lengths.map_or(layout.k_len, |l| l[b]);
        if t < len { len } else { 0 }
    }
}

/// The kept compressed cells of every (batch, head, query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressedMask {
    /// Batch size.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Queries.
    pub q_len: usize,
    /// Compressed width T_M.
    pub width: usize,
    /// `[batch, heads, q_len, width]`, row-major, `true` = kept.
    pub keep: Vec<bool>,
    /// Kept cells per (batch, query) over all heads, `[batch, q_len]`.
    pub kept: Vec<usize>,
}

impl CompressedMask {
    /// Whether cell (`b`, `h`, `t`, `c`) is kept.
    pub fn is_kept(&self, b: usize, h: usize, t: usize, c: usize) -> bool {
        self.keep[((b * self.heads + h) * self.q_len + t) * self.width + c]
    }
}

/// Grouped top-k of estimated compressed probabilities `probs` `[B, H, T, T_M]` (row-major,
/// `dims`), see the [module docs](self). `lengths[b]` is the unpadded key length of batch `b`
/// (bidirectional only; `None` = every key valid).
///
/// # Panics
/// If `probs` does not have `dims`' size, the layout's `q_len` is not `T`, `lengths` has the wrong
/// count, a length exceeds `k_len`, or the budget is invalid.
pub fn grouped_top_k(
    probs: &[f32],
    dims: [usize; 4],
    layout: &AttentionLayout,
    lengths: Option<&[usize]>,
    budget: &SeaBudget,
) -> CompressedMask {
    budget.check();
    let [batch, heads, q_len, width] = dims;
    assert!(
        probs.len() == batch * heads * q_len * width,
        "grouped_top_k: probs expected {} values for {dims:?}, found {}",
        batch * heads * q_len * width,
        probs.len()
    );
    assert!(
        layout.q_len == q_len,
        "grouped_top_k: layout q_len expected {q_len}, found {}",
        layout.q_len
    );
    if let Some(l) = lengths {
        assert!(
            l.len() == batch && l.iter().all(|&x| x <= layout.k_len),
            "grouped_top_k: lengths expected {batch} values ≤ k_len {}, found {l:?}",
            layout.k_len
        );
    }
    let mut keep = vec![false; probs.len()];
    let mut kept = vec![0usize; batch * q_len];
    let mut order: Vec<usize> = Vec::with_capacity(heads * width);
    let value = |b: usize, t: usize, flat: usize| {
        let (h, c) = (flat / width, flat % width);
        let x = probs[((b * heads + h) * q_len + t) * width + c];
        if x.is_nan() { f32::NEG_INFINITY } else { x }
    };
    for b in 0..batch {
        for t in 0..q_len {
            let n = row_budget(budget, heads, width, row_len(layout, lengths, b, t));
            kept[b * q_len + t] = n;
            if n == 0 {
                continue;
            }
            order.clear();
            order.extend(0..heads * width);
            let rank =
                |&x: &usize, &y: &usize| value(b, t, y).total_cmp(&value(b, t, x)).then(x.cmp(&y));
            if n < order.len() {
                order.select_nth_unstable_by(n - 1, rank);
            }
            for &flat in &order[..n] {
                let (h, c) = (flat / width, flat % width);
                keep[((b * heads + h) * q_len + t) * width + c] = true;
            }
        }
    }
    CompressedMask {
        batch,
        heads,
        q_len,
        width,
        keep,
        kept,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn budget_rounds_half_to_even_and_saturates() {
        let b = SeaBudget::new(1.0);
        // H=1, T_M=5, len=2: 2.5 → 2.
        assert_eq!(row_budget(&b, 1, 5, 2), 2);
        // H=3, T_M=1, len=2: 1.5 → 2.
        assert_eq!(row_budget(&b, 3, 1, 2), 2);
        // Tiny budget clamps to 1; a huge one to H·T_M.
        assert_eq!(row_budget(&SeaBudget::new(0.01), 2, 4, 1000), 1);
        assert_eq!(row_budget(&SeaBudget::new(64.0), 2, 4, 3), 8);
        assert_eq!(row_budget(&b, 2, 4, 0), 0);
    }

    #[test]
    fn heads_compete_for_one_budget() {
        // One query, two heads of width 2: head 1 holds the two best cells.
        let probs = [0.1f32, 0.2, 0.9, 0.8];
        let layout = AttentionLayout::full(1, 4);
        let m = grouped_top_k(&probs, [1, 2, 1, 2], &layout, None, &SeaBudget::new(1.0));
        // k_t = round(2 · 1 · 2 / 4) = 1.
        assert_eq!(m.keep, vec![false, false, true, false]);
        let m = grouped_top_k(&probs, [1, 2, 1, 2], &layout, None, &SeaBudget::new(2.0));
        assert_eq!(m.keep, vec![false, false, true, true]);
    }

    #[test]
    fn padded_queries_keep_nothing() {
        let layout = AttentionLayout::full(3, 3);
        let probs = vec![0.5f32; 3 * 4];
        let m = grouped_top_k(
            &probs,
            [1, 1, 3, 4],
            &layout,
            Some(&[2]),
            &SeaBudget::new(1.0),
        );
        assert_eq!(m.kept, vec![2, 2, 0]);
        assert!(m.keep[8..].iter().all(|&k| !k));
    }

    proptest! {
        #[test]
        fn budget_holds_exactly_and_keeps_the_largest(
            batch in 1usize..3, heads in 1usize..4, t in 1usize..12, width in 1usize..9,
            k in 0.2f64..6.0, causal in any::<bool>(), seed in any::<u64>(),
        ) {
            let layout = if causal { AttentionLayout::causal(t) } else { AttentionLayout::full(t, t) };
            let mut rng = crate::estimator::sea::random::SplitMix64::new(seed);
            // Coarse values so ties happen.
            let probs: Vec<f32> = (0..batch * heads * t * width).map(|_| (rng.next_u64() % 5) as f32).collect();
            let budget = SeaBudget::new(k);
            let m = grouped_top_k(&probs, [batch, heads, t, width], &layout, None, &budget);
            for b in 0..batch {
                for i in 0..t {
                    let expected = row_budget(&budget, heads, width, row_len(&layout, None, b, i));
                    let cells: Vec<(f32, bool)> = (0..heads).flat_map(|h| (0..width).map(move |c| (h, c)))
                        .map(|(h, c)| (probs[((b * heads + h) * t + i) * width + c], m.is_kept(b, h, i, c)))
                        .collect();
                    prop_assert_eq!(cells.iter().filter(|c| c.1).count(), expected);
                    prop_assert_eq!(m.kept[b * t + i], expected);
                    let min_kept = cells.iter().filter(|c| c.1).map(|c| c.0).fold(f32::INFINITY, f32::min);
                    let max_dropped = cells.iter().filter(|c| !c.1).map(|c| c.0).fold(f32::NEG_INFINITY, f32::max);
                    prop_assert!(min_kept >= max_dropped);
                }
            }
        }
    }
}
