//! Unstructured masks: magnitude (per tensor, per slice, global) and random, with torch's
//! compounding semantics.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::select::keep_top_k;
use super::{Amount, HostTensor, Mask};
use crate::{Error, Result};

/// Keeps the highest `scores`, pruning `amount` of the units still kept by `prior` (torch's
/// `L1Unstructured` on importance scores inside a `PruningContainer`).
///
/// Only entries kept by `prior` compete, and a fraction is of those (so repeated calls
/// compound); the result is always a subset of `prior`. Ties follow the crate's tie rule
/// (higher score kept, then lower index).
///
/// # Errors
/// [`Error::InvalidAmount`] for an amount torch rejects; [`Error::ShapeMismatch`] when `prior`
/// has another shape.
///
/// ```
/// use pruning::{unstructured, Amount, HostTensor};
///
/// let scores = HostTensor::new(vec![0.1, 0.9, 0.5, 0.3, 0.7], &[5], "w").unwrap();
/// let m1 = unstructured(&scores, Amount::Fraction(0.4), None).unwrap();
/// assert_eq!(m1.as_slice(), &[false, true, true, false, true]);
/// // 40 % of the 3 left: round(1.2) = 1 more.
/// let m2 = unstructured(&scores, Amount::Fraction(0.4), Some(&m1)).unwrap();
/// assert_eq!(m2.as_slice(), &[false, true, false, false, true]);
/// ```
pub fn unstructured(scores: &HostTensor, amount: Amount, prior: Option<&Mask>) -> Result<Mask> {
    if let Some(p) = prior {
        p.check_shape(scores.shape(), "the scores")?;
    }
    let eligible = prior.map(Mask::as_slice);
    let remaining = eligible.map_or(scores.len(), |e| e.iter().filter(|&&k| k).count());
    let k_prune = amount.to_prune(remaining)?;
    let keep = keep_top_k(scores.values(), eligible, remaining - k_prune);
    Mask::from_vec(keep, scores.shape())
}

/// Magnitude pruning of one tensor: [`unstructured`] on `|weights|` (torch's
/// `l1_unstructured`).
///
/// # Errors
/// As [`unstructured`].
///
/// ```
/// use pruning::{magnitude, Amount, HostTensor};
///
/// let w = HostTensor::new(vec![0.5, -2.0, 1.0, -0.1], &[2, 2], "w").unwrap();
/// let mask = magnitude(&w, Amount::Count(2), None).unwrap();
/// assert_eq!(mask.as_slice(), &[false, true, true, false]);
/// ```
pub fn magnitude(weights: &HostTensor, amount: Amount, prior: Option<&Mask>) -> Result<Mask> {
    unstructured(&weights.abs(), amount, prior)
}

/// One amount over several tensors at once: the scores are concatenated in the order given
/// (torch's `global_unstructured` with `parameters_to_vector`), pruned once, and split back.
///
/// `priors[i]` (if given) is the current mask of tensor `i`; the fraction is of all weights
/// still kept. Ties between tensors keep the one earlier in the list.
///
/// # Errors
/// [`Error::Empty`] for no tensor; [`Error::ShapeMismatch`] when `priors` has another length
/// or a prior another shape; [`Error::InvalidAmount`].
///
/// ```
/// use pruning::{global_unstructured, Amount, HostTensor};
///
/// let a = HostTensor::new(vec![0.1, 0.2], &[2], "a").unwrap();
/// let b = HostTensor::new(vec![0.9, 0.05, 0.3], &[3], "b").unwrap();
/// let masks = global_unstructured(&[&a, &b], Amount::Fraction(0.4), &[]).unwrap();
/// assert_eq!(masks[0].as_slice(), &[false, true]);
/// assert_eq!(masks[1].as_slice(), &[true, false, true]);
/// ```
pub fn global_unstructured(
    scores: &[&HostTensor],
    amount: Amount,
    priors: &[Option<&Mask>],
) -> Result<Vec<Mask>> {
    if scores.is_empty() {
        return Err(Error::Empty {
            what: "the list of tensors for global pruning".into(),
        });
    }
    if !priors.is_empty() && priors.len() != scores.len() {
        return Err(Error::ShapeMismatch {
            what: "number of prior masks vs tensors".into(),
            expected: vec![scores.len()],
            found: vec![priors.len()],
        });
    }
    let total: usize = scores.iter().map(|s| s.len()).sum();
    let mut flat = Vec::with_capacity(total);
    let mut eligible = Vec::with_capacity(total);
    for (i, s) in scores.iter().enumerate() {
        flat.extend_from_slice(s.values());
        match priors.get(i).copied().flatten() {
            Some(p) => {
                p.check_shape(s.shape(), &format!("tensor {i} of the global set"))?;
                eligible.extend_from_slice(p.as_slice());
            }
            None => eligible.extend(std::iter::repeat_n(true, s.len())),
        }
    }
    let remaining = eligible.iter().filter(|&&k| k).count();
    let k_prune = amount.to_prune(remaining)?;
    let keep = keep_top_k(&flat, Some(&eligible), remaining - k_prune);
    let mut out = Vec::with_capacity(scores.len());
    let mut start = 0;
    for s in scores {
        out.push(Mask::from_vec(
            keep[start..start + s.len()].to_vec(),
            s.shape(),
        )?);
        start += s.len();
    }
    Ok(out)
}

/// Global magnitude pruning: [`global_unstructured`] on `|w|`.
///
/// # Errors
/// As [`global_unstructured`].
pub fn global_magnitude(
    weights: &[&HostTensor],
    amount: Amount,
    priors: &[Option<&Mask>],
) -> Result<Vec<Mask>> {
    let abs: Vec<HostTensor> = weights.iter().map(|w| w.abs()).collect();
    let refs: Vec<&HostTensor> = abs.iter().collect();
    global_unstructured(&refs, amount, priors)
}

/// Random unstructured pruning (torch's `random_unstructured`): `amount` of the units still
/// kept by `prior`, chosen uniformly with a seeded generator.
///
/// Each element draws a uniform score from `Xoshiro256PlusPlus::seed_from_u64(seed)` in
/// row-major order and the lowest scores are pruned, so the same seed gives the same mask on
/// every machine.
///
/// # Errors
/// [`Error::InvalidAmount`]; [`Error::ShapeMismatch`] for a prior of another shape.
pub fn random_unstructured(
    shape: &[usize],
    amount: Amount,
    prior: Option<&Mask>,
    seed: u64,
) -> Result<Mask> {
    let n: usize = shape.iter().product();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let scores: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    unstructured(
        &HostTensor::new(scores, shape, "random scores")?,
        amount,
        prior,
    )
}

/// Prunes the same `amount` inside every 1-D slice along `dim` — the per-output comparison
/// group of Wanda (for burn's `Linear` weight `[d_in, d_out]`, `dim = 0` ranks the inputs of
/// each output neuron).
///
/// Wanda's reference code prunes `int(d_in · ratio)` per row (truncation); this crate keeps
/// torch's rounding (half to even) everywhere, so the two differ by at most one weight per
/// slice when `d_in · ratio` has a fractional part ≥ 0.5.
///
/// # Errors
/// [`Error::OutOfRange`] when `dim` is not a dimension of the scores; [`Error::InvalidAmount`];
/// [`Error::ShapeMismatch`] for a prior of another shape.
///
/// ```
/// use pruning::{unstructured_along, Amount, HostTensor};
///
/// // [d_in = 3, d_out = 2]: each column (output) keeps its 2 best inputs.
/// let s = HostTensor::new(vec![1.0, 6.0, 2.0, 5.0, 3.0, 4.0], &[3, 2], "s").unwrap();
/// let m = unstructured_along(&s, Amount::Count(1), 0, None).unwrap();
/// assert_eq!(m.as_slice(), &[false, true, true, true, true, false]);
/// ```
pub fn unstructured_along(
    scores: &HostTensor,
    amount: Amount,
    dim: usize,
    prior: Option<&Mask>,
) -> Result<Mask> {
    let shape = scores.shape();
    check_dim(shape, dim)?;
    if let Some(p) = prior {
        p.check_shape(shape, "the scores")?;
    }
    let (outer, len, inner) = split_at_dim(shape, dim);
    let mut keep = vec![false; scores.len()];
    let mut slice_scores = vec![0f32; len];
    let mut slice_eligible = vec![true; len];
    for o in 0..outer {
        for i in 0..inner {
            let index = |j: usize| (o * len + j) * inner + i;
            for j in 0..len {
                slice_scores[j] = scores.values()[index(j)];
                slice_eligible[j] = prior.is_none_or(|p| p.as_slice()[index(j)]);
            }
            let remaining = slice_eligible.iter().filter(|&&k| k).count();
            let k_prune = amount.to_prune(remaining)?;
            let kept = keep_top_k(&slice_scores, Some(&slice_eligible), remaining - k_prune);
            for j in 0..len {
                keep[index(j)] = kept[j];
            }
        }
    }
    Mask::from_vec(keep, shape)
}

/// `(outer, len, inner)` with `shape = [outer…, len, inner…]` around `dim`.
pub(crate) fn split_at_dim(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

pub(crate) fn check_dim(shape: &[usize], dim: usize) -> Result<()> {
    if dim >= shape.len() {
        return Err(Error::OutOfRange {
            what: "dim".into(),
            value: dim.to_string(),
            reason: format!("the tensor has shape {shape:?} (rank {})", shape.len()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(values: Vec<f32>, shape: &[usize]) -> HostTensor {
        HostTensor::new(values, shape, "t").unwrap()
    }

    /// torch: `l1_unstructured(m, 'weight', 0.2)` twice on 100 weights leaves 36 pruned.
    #[test]
    fn compounding_matches_torch_worked_case() {
        let w = host(
            (0..100).map(|i| (i as f32 - 49.5) * 0.01).collect(),
            &[10, 10],
        );
        let m1 = magnitude(&w, Amount::Fraction(0.2), None).unwrap();
        assert_eq!(m1.pruned(), 20);
        let m2 = magnitude(&w, Amount::Fraction(0.2), Some(&m1)).unwrap();
        assert_eq!(m2.pruned(), 36);
        // The second mask only removes more: a subset of the first.
        assert!(
            m2.as_slice()
                .iter()
                .zip(m1.as_slice())
                .all(|(&b, &a)| !b || a)
        );
        // The 36 smallest |w| are exactly the ones pruned (|w| = |i - 49.5|·0.01).
        let mut order: Vec<usize> = (0..100).collect();
        order.sort_by(|&a, &b| {
            let (fa, fb) = ((a as f32 - 49.5).abs(), (b as f32 - 49.5).abs());
            fa.partial_cmp(&fb).unwrap().then(b.cmp(&a))
        });
        for &i in &order[..36] {
            assert!(!m2.as_slice()[i], "weight {i} should be pruned");
        }
    }

    /// Half-to-even worked cases: 5 weights, 0.5 → round(2.5) = 2 pruned; again on the 3 left
    /// → round(1.5) = 2 more; a count is absolute among the remaining.
    #[test]
    fn half_to_even_and_counts_compound() {
        let w = host(vec![5.0, 4.0, 3.0, 2.0, 1.0], &[5]);
        let m1 = magnitude(&w, Amount::Fraction(0.5), None).unwrap();
        assert_eq!(m1.as_slice(), &[true, true, true, false, false]);
        let m2 = magnitude(&w, Amount::Fraction(0.5), Some(&m1)).unwrap();
        assert_eq!(m2.as_slice(), &[true, false, false, false, false]);
        let m3 = magnitude(&w, Amount::Count(1), Some(&m2)).unwrap();
        assert_eq!(m3.kept(), 0);
        assert!(magnitude(&w, Amount::Count(1), Some(&m3)).is_err());
        // Amount 0 leaves the mask unchanged.
        assert_eq!(magnitude(&w, Amount::Fraction(0.0), Some(&m1)).unwrap(), m1);
    }

    #[test]
    fn global_pruning_compounds_across_tensors() {
        let a = host(vec![0.1, 0.2, 0.3, 0.4], &[2, 2]);
        let b = host(vec![0.15, 0.25, 0.35, 0.45, 0.5, 0.6], &[6]);
        let m = global_magnitude(&[&a, &b], Amount::Fraction(0.5), &[]).unwrap();
        assert_eq!(m[0].pruned() + m[1].pruned(), 5);
        assert_eq!(m[0].as_slice(), &[false, false, false, true]);
        let m2 = global_magnitude(
            &[&a, &b],
            Amount::Fraction(0.5),
            &[Some(&m[0]), Some(&m[1])],
        )
        .unwrap();
        // 5 left → round(2.5) = 2 more.
        assert_eq!(m2[0].pruned() + m2[1].pruned(), 7);
        assert!(global_magnitude(&[], Amount::Count(0), &[]).is_err());
    }

    #[test]
    fn random_is_seeded() {
        let a = random_unstructured(&[8, 8], Amount::Fraction(0.3), None, 7).unwrap();
        let b = random_unstructured(&[8, 8], Amount::Fraction(0.3), None, 7).unwrap();
        let c = random_unstructured(&[8, 8], Amount::Fraction(0.3), None, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.pruned(), 19); // round(19.2)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any sequence of fractions prunes exactly Σ round(f_i · remaining_i), keeps a nested
        /// chain of masks, and never keeps a weight smaller than one it prunes in the same round.
        #[test]
        fn repeated_fractions_compound_like_torch(
            values in prop::collection::vec(-5.0f32..5.0, 1..120),
            fractions in prop::collection::vec(0.0f64..=1.0, 1..5),
        ) {
            let n = values.len();
            let w = host(values, &[n]);
            let mut mask = Mask::ones(&[n]);
            let mut remaining = n;
            for f in fractions {
                let next = magnitude(&w, Amount::Fraction(f), Some(&mask)).unwrap();
                let expected = remaining - (f * remaining as f64).round_ties_even() as usize;
                prop_assert_eq!(next.kept(), expected);
                for i in 0..n {
                    prop_assert!(!next.as_slice()[i] || mask.as_slice()[i]);
                }
                let min_kept = (0..n).filter(|&i| next.as_slice()[i]).map(|i| w.values()[i].abs()).fold(f32::INFINITY, f32::min);
                let max_pruned_now = (0..n).filter(|&i| mask.as_slice()[i] && !next.as_slice()[i]).map(|i| w.values()[i].abs()).fold(0.0, f32::max);
                if next.kept() > 0 && next.kept() < mask.kept() {
                    prop_assert!(min_kept >= max_pruned_now);
                }
                remaining = expected;
                mask = next;
            }
        }

        #[test]
        fn along_dim_prunes_each_slice_equally(
            d0 in 1usize..6, d1 in 1usize..6, d2 in 1usize..4, f in 0.0f64..=1.0, seed in any::<u64>()
        ) {
            let n = d0 * d1 * d2;
            let vals: Vec<f32> = (0..n).map(|i| ((i as u64).wrapping_mul(seed | 1) % 97) as f32).collect();
            let s = host(vals, &[d0, d1, d2]);
            let m = unstructured_along(&s, Amount::Fraction(f), 1, None).unwrap();
            let per = d1 - (f * d1 as f64).round_ties_even() as usize;
            for o in 0..d0 { for i in 0..d2 {
                let kept = (0..d1).filter(|&j| m.as_slice()[(o * d1 + j) * d2 + i]).count();
                prop_assert_eq!(kept, per);
            }}
        }
    }
}
