//! Budget policies: how many, and which, candidates (keys, key blocks, pages, diagonals) one
//! row keeps, decided on host scores — separate from the mask representation, so every
//! estimator states its budget with the same rules.
//!
//! - [`Budget`] says *how many*: a fixed `k` ([`Budget::TopK`]), SparseD's keep ratio
//!   ([`Budget::KeepRatio`]) or FlexPrefill's cumulative-mass coverage ([`Budget::Coverage`]).
//! - [`Forced`] cells (sinks: the first candidates; a local window: the candidates ending at the
//!   row's diagonal) are kept whatever their score. They count **inside** the budget, as in every
//!   reference (MInference and the Sparse Frontier set forced scores to +∞ *before* their top-k, so
//!   the forced cells use up part of `vertical_size`/`top_chunks`): a row keeps
//!   `min(max(size, forced), valid)` candidates, where `forced` is the number of forced
//!   candidates that exist.
//! - [`RowSelector::select`] applies both to one row, [`SplitSelector`] gives separate budgets to
//!   key sub-ranges (SparseD's prompt vs generated keys), [`select_shared`] lets several rows (the
//!   heads of one query, SEA's `k_flatten_dim`) compete for one budget.
//!
//! **Scores.** Larger is better. `−∞` and `NaN` mean "no such candidate" (a padded key, a key
//! outside the causal range): never kept, not even when forced, and not counted as valid.
//! `−0.0` and `0.0` are the same score. **Ties**: the lower index wins (in [`select_shared`], the
//! lower row, then the lower index), so selections are deterministic. The top of a row is found
//! with `select_nth_unstable_by` (linear time); only [`Budget::Coverage`] sorts the row.

use std::cmp::Ordering;
use std::ops::Range;

/// How many candidates a row keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// The `k` best (all of them when fewer exist).
    TopK(usize),
    /// SparseD's keep ratio (`create_attention_block_mask` in INV-WZQ/SparseD's
    /// `models/LLaDA/SparseD_utils.py`): `max(1, ⌊n · ratio⌋ + 1)` of the row's `n` valid
    /// candidates, at most `n` (the reference would fail in `torch.topk` past `n`). The `+1`
    /// is SparseD's: a ratio of 0.3 over 10 blocks keeps 4.
    KeepRatio(f64),
    /// FlexPrefill's cumulative-mass coverage: the scores are masses (softmax probabilities,
    /// block masses; negative values count as 0), and the row keeps its forced candidates plus
    /// the fewest largest others whose mass, added to the forced mass, reaches `alpha` of the
    /// row's total mass — then more of the largest until at least `min_budget` are kept.
    ///
    /// The Sparse Frontier's FlexPrefill (`score_cover_topk`) counts `#(cumsum ≤ α) + 1` on the
    /// unforced scores and forces sinks afterwards, inside that count; here the forced mass is
    /// counted first, so forcing never breaks coverage, and the rule is exactly "smallest
    /// sufficient set": the two agree except when a prefix hits `α` exactly or forced cells are
    /// not among the largest.
    Coverage {
        /// Mass to cover, in `[0, 1]`.
        alpha: f64,
        /// Least number kept (FlexPrefill's `min_budget`).
        min_budget: usize,
    },
}

impl Budget {
    /// The number kept from `n` valid candidates by [`Budget::TopK`] and [`Budget::KeepRatio`]
    /// (before forced cells); `None` for [`Budget::Coverage`], whose size depends on the scores.
    ///
    /// # Panics
    /// If a keep ratio is outside `[0, 1]` or NaN.
    pub fn fixed_size(&self, n: usize) -> Option<usize> {
        match *self {
            Budget::TopK(k) => Some(k.min(n)),
            Budget::KeepRatio(r) => {
                assert!(
                    (0.0..=1.0).contains(&r),
                    "Budget::KeepRatio: ratio must be in [0, 1], found {r}"
                );
                if n == 0 {
                    return Some(0);
                }
                Some(((n as f64 * r) as usize + 1).max(1).min(n))
            }
            Budget::Coverage { .. } => None,
        }
    }

    fn check(&self) {
        match *self {
            Budget::KeepRatio(_) => {
                self.fixed_size(0);
            }
            Budget::Coverage { alpha, .. } => assert!(
                (0.0..=1.0).contains(&alpha),
                "Budget::Coverage: alpha must be in [0, 1], found {alpha}"
            ),
            Budget::TopK(_) => {}
        }
    }
}

/// Candidates kept whatever their score, counted inside the budget (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forced {
    /// The first `sinks` candidates (attention sinks: key 0…, key block 0).
    pub sinks: usize,
    /// The `local` candidates ending at the row's diagonal: `diagonal + 1 − local ..= diagonal`
    /// (a local window of keys, or the diagonal and sub-diagonal blocks).
    pub local: usize,
}

/// A budget and the forced cells of one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowSelector {
    /// How many to keep.
    pub budget: Budget,
    /// What is always kept.
    pub forced: Forced,
}

impl RowSelector {
    /// A selector with nothing forced.
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            forced: Forced::default(),
        }
    }

    /// Forces the first `sinks` candidates.
    pub fn with_sinks(mut self, sinks: usize) -> Self {
        self.forced.sinks = sinks;
        self
    }

    /// Forces the `local` candidates ending at the diagonal.
    pub fn with_local(mut self, local: usize) -> Self {
        self.forced.local = local;
        self
    }

    /// Selects from one row: `scores[j]` is candidate `j`'s score, `diagonal` the row's own
    /// position (for causal rows over their valid prefix, `scores.len() − 1`). Writes the kept
    /// indices into `out`, sorted ascending (cleared first).
    ///
    /// # Panics
    /// If the budget's ratio or alpha is outside `[0, 1]`.
    pub fn select(&self, scores: &[f32], diagonal: usize, out: &mut Vec<u32>) {
        out.clear();
        self.select_range(scores, 0..scores.len(), diagonal, out);
        out.sort_unstable();
    }

    /// Selects within `range` of a row (the budget counts that range's candidates only; sinks
    /// are the range's first candidates, the local window is intersected with the range) and
    /// **appends** the kept absolute indices to `out`, unsorted.
    ///
    /// # Panics
    /// If `range` is not inside `scores`, or the budget's ratio or alpha is outside `[0, 1]`.
    pub fn select_range(
        &self,
        scores: &[f32],
        range: Range<usize>,
        diagonal: usize,
        out: &mut Vec<u32>,
    ) {
        assert!(
            range.start <= range.end && range.end <= scores.len(),
            "RowSelector::select_range: range {range:?} must lie in the row's {} candidates",
            scores.len()
        );
        let Range { start, end } = range;
        let mut forced = Vec::new();
        forced.extend(start..(start + self.forced.sinks).min(end));
        let lo = (diagonal + 1).saturating_sub(self.forced.local).max(start);
        let hi = (diagonal + 1).min(end);
        forced.extend(lo..hi);
        forced.sort_unstable();
        forced.dedup();
        select_flat(&scores[start..end], start, &forced, &self.budget, out);
    }
}

/// Separate budgets for key sub-ranges: each part selects within its own range with its own
/// selector, and a row keeps the union (SparseD's prompt keys and generated keys, each with the
/// keep ratio of its own block count).
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSelector {
    /// Disjoint candidate ranges and their selectors; candidates outside every range are never
    /// kept.
    pub parts: Vec<(Range<usize>, RowSelector)>,
}

impl SplitSelector {
    /// Selects from one row (see [`RowSelector::select`]); ranges are clipped to the row.
    ///
    /// # Panics
    /// If two ranges overlap.
    pub fn select(&self, scores: &[f32], diagonal: usize, out: &mut Vec<u32>) {
        out.clear();
        let n = scores.len();
        let mut clipped: Vec<Range<usize>> = self
            .parts
            .iter()
            .map(|(r, _)| r.start.min(n)..r.end.min(n))
            .collect();
        for (r, (_, sel)) in clipped.iter().zip(&self.parts) {
            sel.select_range(scores, r.clone(), diagonal, out);
        }
        clipped.sort_by_key(|r| r.start);
        assert!(
            clipped
                .windows(2)
                .all(|w| w[0].end <= w[1].start || w[0].is_empty() || w[1].is_empty()),
            "SplitSelector: ranges must be disjoint, found {:?}",
            self.parts
                .iter()
                .map(|(r, _)| r.clone())
                .collect::<Vec<_>>()
        );
        out.sort_unstable();
    }
}

/// Rows that compete for one budget (SEA's grouped top-k: the heads of one query share
/// `H · k` cells, so a head with sharp attention can give cells to a diffuse one).
///
/// `rows[r]` are row `r`'s scores and `diagonals[r]` its diagonal; the budget counts the union
/// of all rows' valid candidates (pass `Budget::TopK(H · k)` for SEA's `H · k`), forced cells are
/// per row and count inside it. Ties: lower row, then lower index. `out[r]` receives row `r`'s
/// kept indices, sorted.
///
/// # Panics
/// If `rows`, `diagonals` and `out` differ in length, or the budget's ratio or alpha is outside
/// `[0, 1]`.
pub fn select_shared(
    rows: &[&[f32]],
    diagonals: &[usize],
    selector: &RowSelector,
    out: &mut [Vec<u32>],
) {
    assert!(
        rows.len() == diagonals.len() && rows.len() == out.len(),
        "select_shared: rows ({}), diagonals ({}) and out ({}) must have one entry per row",
        rows.len(),
        diagonals.len(),
        out.len()
    );
    let mut flat = Vec::with_capacity(rows.iter().map(|r| r.len()).sum());
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut forced = Vec::new();
    let mut row_forced = Vec::new();
    for (row, &diag) in rows.iter().zip(diagonals) {
        let base = flat.len();
        offsets.push(base);
        row_forced.clear();
        // A one-row selection with an impossible budget lists exactly the row's forced cells.
        RowSelector {
            budget: Budget::TopK(0),
            forced: selector.forced,
        }
        .select_range(row, 0..row.len(), diag, &mut row_forced);
        forced.extend(row_forced.iter().map(|&j| base + j as usize));
        flat.extend_from_slice(row);
    }
    offsets.push(flat.len());
    forced.sort_unstable();
    let mut kept = Vec::new();
    select_flat(&flat, 0, &forced, &selector.budget, &mut kept);
    kept.sort_unstable();
    for o in out.iter_mut() {
        o.clear();
    }
    let mut r = 0;
    for idx in kept {
        let idx = idx as usize;
        while idx >= offsets[r + 1] {
            r += 1;
        }
        out[r].push((idx - offsets[r]) as u32);
    }
}

/// Whether a score names an existing candidate.
fn present(s: f32) -> bool {
    !(s.is_nan() || s == f32::NEG_INFINITY)
}

/// Descending score, then ascending index (`+ 0.0` turns `−0.0` into `0.0`).
fn rank(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    (b.0 + 0.0).total_cmp(&(a.0 + 0.0)).then(a.1.cmp(&b.1))
}

/// The core rule over one flat candidate list: keeps the present `forced` candidates (sorted,
/// local indices) and fills the budget from the rest; appends `base + index` to `out`.
fn select_flat(scores: &[f32], base: usize, forced: &[usize], budget: &Budget, out: &mut Vec<u32>) {
    budget.check();
    let n_valid = scores.iter().filter(|&&s| present(s)).count();
    let mut is_forced = vec![false; scores.len()];
    let mut n_forced = 0usize;
    let mut forced_mass = 0f64;
    for &j in forced {
        if present(scores[j]) && !is_forced[j] {
            is_forced[j] = true;
            n_forced += 1;
            forced_mass += mass(scores[j]);
            out.push((base + j) as u32);
        }
    }
    let mut rest: Vec<(f32, u32)> = scores
        .iter()
        .enumerate()
        .filter(|&(j, &s)| present(s) && !is_forced[j])
        .map(|(j, &s)| (s, j as u32))
        .collect();
    let take = match budget.fixed_size(n_valid) {
        Some(size) => size.saturating_sub(n_forced).min(rest.len()),
        None => {
            let Budget::Coverage { alpha, min_budget } = *budget else {
                unreachable!("only coverage has a score-dependent size")
            };
            rest.sort_unstable_by(rank);
            let total: f64 = forced_mass + rest.iter().map(|&(s, _)| mass(s)).sum::<f64>();
            let goal = alpha * total;
            let mut cum = forced_mass;
            let mut m = 0;
            while cum < goal && m < rest.len() {
                cum += mass(rest[m].0);
                m += 1;
            }
            m.max(min_budget.min(n_valid).saturating_sub(n_forced))
                .min(rest.len())
        }
    };
    if take > 0 && take < rest.len() {
        rest.select_nth_unstable_by(take - 1, rank);
    }
    out.extend(
        rest[..take]
            .iter()
            .map(|&(_, j)| (base + j as usize) as u32),
    );
}

/// A score as coverage mass.
fn mass(s: f32) -> f64 {
    (s as f64).max(0.0)
}

#[cfg(test)]
mod tests;
