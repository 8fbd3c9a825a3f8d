//! N:M semi-structured masks: N kept in every group of M consecutive weights along one
//! dimension.

use rayon::prelude::*;

use super::select::order_key;
use super::unstructured::{check_dim, split_at_dim};
use super::{HostTensor, Mask};
use crate::{Error, Result};

/// An N:M pattern: **N kept** in every group of **M** consecutive weights (NVIDIA's "2:4",
/// apex `m4n2`, SR-STE and Progressive Gradient Flow all use this order; Wanda's and
/// SparseGPT's `prune_n` counts the pruned ones instead).
///
/// ```
/// use pruning::NmPattern;
///
/// let p: NmPattern = "2:4".parse().unwrap();
/// assert_eq!((p.n(), p.m()), (2, 4));
/// assert_eq!(p.sparsity(), 0.5);
/// assert!("5:4".parse::<NmPattern>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NmPattern {
    n: usize,
    m: usize,
}

impl NmPattern {
    /// `n` kept out of every `m`.
    ///
    /// # Errors
    /// [`Error::InvalidPattern`] when `m == 0` or `n > m`.
    pub fn new(n: usize, m: usize) -> Result<Self> {
        if m == 0 || n > m {
            return Err(Error::InvalidPattern {
                pattern: format!("{n}:{m}"),
                reason: "need 0 ≤ N ≤ M and M ≥ 1 (N = kept, M = group size)".into(),
            });
        }
        Ok(Self { n, m })
    }

    /// Kept per group.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Group size.
    pub fn m(&self) -> usize {
        self.m
    }

    /// The fraction pruned, `1 − N/M`.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.n as f64 / self.m as f64
    }
}

impl std::fmt::Display for NmPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

impl std::str::FromStr for NmPattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidPattern {
            pattern: s.to_string(),
            reason: "expected `N:M` with integers, e.g. `2:4`".into(),
        };
        let (n, m) = s.split_once(':').ok_or_else(bad)?;
        let n = n.trim().parse().map_err(|_| bad())?;
        let m = m.trim().parse().map_err(|_| bad())?;
        NmPattern::new(n, m)
    }
}

/// What to do when the grouped dimension is not a multiple of M.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Remainder {
    /// Refuse the tensor with [`Error::ShapeNotEligible`] (the default: nothing is skipped
    /// silently).
    #[default]
    Error,
    /// Pad the dimension with zero weights up to a multiple of M; padding ranks below every real
    /// weight. The last, short group of `r < M` real weights therefore keeps `min(N, r)` of
    /// them, and the padded tensor satisfies N:M exactly (what a kernel that pads sees).
    PadWithZeros,
}

/// The N:M mask of `scores` with groups of M consecutive elements along `dim`.
///
/// Inside each group the N highest scores are kept (ties: lower index). For burn's `Linear`
/// weight `[d_in, d_out]` the input dimension is `dim = 0`; for a convolution
/// `[c_out, c_in, k…]` it is `dim = 1` (input channels, as apex ASP and PGF group them); for a
/// torch-layout `[out, in]` matrix it is `dim = 1`.
///
/// With a `prior`, already pruned weights rank below all kept ones and the result is ANDed
/// with the prior, so a group keeps `min(N, kept before)` weights.
///
/// # Errors
/// [`Error::OutOfRange`] for a `dim` out of range; [`Error::ShapeNotEligible`] when the
/// dimension is not a multiple of M and `remainder` is [`Remainder::Error`];
/// [`Error::ShapeMismatch`] for a prior of another shape.
///
/// ```
/// use pruning::{nm_mask, HostTensor, NmPattern, Remainder};
///
/// // A torch-layout row of 8 inputs, 2:4 along dim 1.
/// let w = HostTensor::new(vec![0.1, -0.9, 0.5, 0.3, 1.0, 1.0, -1.0, 0.0], &[1, 8], "w").unwrap();
/// let m = nm_mask(&w.abs(), NmPattern::new(2, 4).unwrap(), 1, Remainder::Error, None).unwrap();
/// assert_eq!(m.as_slice(), &[false, true, true, false, true, true, false, false]);
/// ```
pub fn nm_mask(
    scores: &HostTensor,
    pattern: NmPattern,
    dim: usize,
    remainder: Remainder,
    prior: Option<&Mask>,
) -> Result<Mask> {
    let shape = scores.shape();
    check_nm_shape(shape, pattern, dim, remainder, "the tensor")?;
    if let Some(p) = prior {
        p.check_shape(shape, "the scores")?;
    }
    let (_, len, inner) = split_at_dim(shape, dim);
    let mut keep = vec![false; scores.len()];
    if scores.is_empty() {
        return Mask::from_vec(keep, shape);
    }
    let (n, m) = (pattern.n, pattern.m);
    let values = scores.values();
    let eligible = prior.map(Mask::as_slice);
    let block = len * inner;
    if inner > 1 {
        // Groups run down a strided dimension: rank all `inner` columns of a group at once, row
        // against row, which vectorises.
        keep.par_chunks_mut(block)
            .enumerate()
            .for_each(|(o, keep_block)| {
                let base = o * block;
                let mut rank = vec![0u32; inner];
                let mut keys = vec![0u64; m * inner];
                for g0 in (0..len).step_by(m) {
                    let g = m.min(len - g0);
                    for r in 0..g {
                        for i in 0..inner {
                            let idx = base + (g0 + r) * inner + i;
                            let e = eligible.is_none_or(|e| e[idx]) as u64;
                            keys[r * inner + i] = (e << 32) | order_key(values[idx]) as u64;
                        }
                    }
                    for r in 0..g {
                        rank.iter_mut().for_each(|x| *x = 0);
                        let (kr, _) = keys.split_at(g * inner);
                        let row = &kr[r * inner..(r + 1) * inner];
                        for other in 0..g {
                            if other == r {
                                continue;
                            }
                            let orow = &kr[other * inner..(other + 1) * inner];
                            if other < r {
                                for i in 0..inner {
                                    rank[i] += (orow[i] >= row[i]) as u32;
                                }
                            } else {
                                for i in 0..inner {
                                    rank[i] += (orow[i] > row[i]) as u32;
                                }
                            }
                        }
                        let out = &mut keep_block[(g0 + r) * inner..(g0 + r + 1) * inner];
                        for i in 0..inner {
                            out[i] = (rank[i] as usize) < n;
                        }
                    }
                }
            });
    } else {
        // Contiguous groups.
        keep.par_chunks_mut(len)
            .enumerate()
            .for_each(|(o, keep_row)| {
                let base = o * len;
                let mut idx = Vec::with_capacity(m);
                let mut local = vec![false; m];
                for g0 in (0..len).step_by(m) {
                    let g = m.min(len - g0);
                    idx.clear();
                    idx.extend(base + g0..base + g0 + g);
                    keep_top_n_in_group_local(values, eligible, &idx, n, &mut local);
                    keep_row[g0..g0 + g].copy_from_slice(&local[..g]);
                }
            });
    }
    if let Some(p) = prior {
        keep.iter_mut()
            .zip(p.as_slice())
            .for_each(|(k, &pk)| *k = *k && pk);
    }
    Mask::from_vec(keep, shape)
}

/// Marks the `n` best members of one group (eligible first, then the tie rule) in `out`, which
/// is indexed by position in the group.
fn keep_top_n_in_group_local(
    values: &[f32],
    eligible: Option<&[bool]>,
    idx: &[usize],
    n: usize,
    out: &mut [bool],
) {
    let rank = |i: usize| {
        let e = eligible.is_none_or(|e| e[i]);
        (
            std::cmp::Reverse(e),
            std::cmp::Reverse(order_key(values[i])),
            i,
        )
    };
    if idx.len() <= 32 {
        for (a, &i) in idx.iter().enumerate() {
            let ri = rank(i);
            out[a] = idx.iter().filter(|&&j| rank(j) < ri).count() < n;
        }
    } else {
        let mut order: Vec<usize> = (0..idx.len()).collect();
        order.sort_unstable_by_key(|&a| rank(idx[a]));
        for (pos, &a) in order.iter().enumerate() {
            out[a] = pos < n;
        }
    }
}

/// Checks that `shape` can take `pattern` along `dim`; names `tensor` in the error.
///
/// # Errors
/// [`Error::OutOfRange`] for a `dim` out of range; [`Error::ShapeNotEligible`] when the
/// dimension is not a multiple of M and `remainder` is [`Remainder::Error`].
pub fn check_nm_shape(
    shape: &[usize],
    pattern: NmPattern,
    dim: usize,
    remainder: Remainder,
    tensor: &str,
) -> Result<()> {
    check_dim(shape, dim)?;
    if remainder == Remainder::Error && !shape[dim].is_multiple_of(pattern.m) {
        return Err(Error::ShapeNotEligible {
            tensor: tensor.to_string(),
            shape: shape.to_vec(),
            pattern: pattern.to_string(),
            reason: format!(
                "dimension {dim} has size {}, not a multiple of M = {} (ask for Remainder::PadWithZeros to pad)",
                shape[dim], pattern.m
            ),
        });
    }
    Ok(())
}

/// Whether every group of M consecutive elements along `dim` keeps at most N — the property a
/// compressed N:M format needs. A trailing short group is checked against N as well.
pub fn satisfies_nm(mask: &Mask, pattern: NmPattern, dim: usize) -> bool {
    let shape = mask.shape();
    if dim >= shape.len() {
        return false;
    }
    let (outer, len, inner) = split_at_dim(shape, dim);
    for o in 0..outer {
        for i in 0..inner {
            for g0 in (0..len).step_by(pattern.m) {
                let kept = (g0..(g0 + pattern.m).min(len))
                    .filter(|&j| mask.as_slice()[(o * len + j) * inner + i])
                    .count();
                if kept > pattern.n {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force: for every group, sort members by (eligible, score, -index), keep n.
    fn reference(s: &HostTensor, p: NmPattern, dim: usize, prior: Option<&Mask>) -> Vec<bool> {
        let (outer, len, inner) = split_at_dim(s.shape(), dim);
        let mut keep = vec![false; s.len()];
        for o in 0..outer {
            for i in 0..inner {
                for g0 in (0..len).step_by(p.m) {
                    let mut members: Vec<usize> = (g0..(g0 + p.m).min(len))
                        .map(|j| (o * len + j) * inner + i)
                        .collect();
                    members.sort_by(|&a, &b| {
                        let ea = prior.is_none_or(|m| m.as_slice()[a]);
                        let eb = prior.is_none_or(|m| m.as_slice()[b]);
                        eb.cmp(&ea)
                            .then(
                                (s.values()[b] + 0.0)
                                    .partial_cmp(&(s.values()[a] + 0.0))
                                    .unwrap(),
                            )
                            .then(a.cmp(&b))
                    });
                    for &k in members.iter().take(p.n) {
                        keep[k] = prior.is_none_or(|m| m.as_slice()[k]);
                    }
                }
            }
        }
        keep
    }

    fn arb_case() -> impl Strategy<Value = (Vec<usize>, usize, NmPattern, Vec<f32>)> {
        (1usize..4, 1usize..4, 1usize..4, 1usize..9)
            .prop_flat_map(|(a, b, c, m)| (Just(vec![a, b * m, c]), 0..=m, Just(m)))
            .prop_flat_map(|(shape, n, m)| {
                let len = shape.iter().product::<usize>();
                (
                    Just(shape),
                    Just(1usize),
                    Just(NmPattern::new(n, m).unwrap()),
                    prop::collection::vec(
                        prop_oneof![(0i32..3).prop_map(|x| x as f32), -2.0f32..2.0],
                        len,
                    ),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Every group of M keeps exactly N, and the mask equals the brute-force reference.
        #[test]
        fn keeps_exactly_n_per_group((shape, dim, p, vals) in arb_case(), prior_seed in any::<u64>()) {
            let s = HostTensor::new(vals, &shape, "s").unwrap();
            let m = nm_mask(&s, p, dim, Remainder::Error, None).unwrap();
            prop_assert_eq!(m.kept(), s.len() / p.m() * p.n());
            prop_assert!(satisfies_nm(&m, p, dim));
            prop_assert_eq!(m.as_slice(), &reference(&s, p, dim, None)[..]);
            // Along the last (contiguous) dimension with a transposed view of the same shape rule.
            let flat = HostTensor::new(s.values().to_vec(), &[s.len() / p.m(), p.m()], "s").unwrap();
            let mf = nm_mask(&flat, p, 1, Remainder::Error, None).unwrap();
            prop_assert_eq!(mf.as_slice(), &reference(&flat, p, 1, None)[..]);
            // With a prior mask: subset of the prior, ≤ N per group, equal to the reference.
            let prior = Mask::from_vec((0..s.len()).map(|i| (prior_seed >> (i % 64)) & 1 == 1).collect(), &shape).unwrap();
            let mp = nm_mask(&s, p, dim, Remainder::Error, Some(&prior)).unwrap();
            prop_assert_eq!(mp.as_slice(), &reference(&s, p, dim, Some(&prior))[..]);
        }

        #[test]
        fn padding_keeps_min_n_r_in_the_short_group(len in 1usize..20, n in 0usize..5, extra in 0usize..4) {
            let m = n + extra + 1;
            let p = NmPattern::new(n, m).unwrap();
            let s = HostTensor::new((0..len).map(|i| (i * 7 % 5) as f32).collect(), &[len], "s").unwrap();
            let mask = nm_mask(&s, p, 0, Remainder::PadWithZeros, None).unwrap();
            let full = len / m;
            let r = len % m;
            prop_assert_eq!(mask.kept(), full * n + n.min(r));
            if r != 0 {
                prop_assert!(nm_mask(&s, p, 0, Remainder::Error, None).is_err());
            }
        }
    }

    #[test]
    fn ties_keep_lower_index_in_a_group() {
        let s = HostTensor::new(vec![1.0, 1.0, 1.0, 1.0], &[4, 1], "s").unwrap();
        let m = nm_mask(&s, NmPattern::new(2, 4).unwrap(), 0, Remainder::Error, None).unwrap();
        assert_eq!(m.as_slice(), &[true, true, false, false]);
        let s = HostTensor::new(vec![-0.0, 0.0, 0.0, 0.0], &[1, 4], "s").unwrap();
        let m = nm_mask(&s, NmPattern::new(1, 4).unwrap(), 1, Remainder::Error, None).unwrap();
        assert_eq!(m.as_slice(), &[true, false, false, false]);
    }

    #[test]
    fn large_groups_use_the_sort_path() {
        let vals: Vec<f32> = (0..128).map(|i| ((i * 37) % 64) as f32).collect();
        let s = HostTensor::new(vals, &[2, 64], "s").unwrap();
        let p = NmPattern::new(5, 64).unwrap();
        let m = nm_mask(&s, p, 1, Remainder::Error, None).unwrap();
        assert_eq!(m.as_slice(), &reference(&s, p, 1, None)[..]);
        assert_eq!(m.kept(), 10);
    }
}
