//! Structured masks: whole channels along one dimension, by Ln norm or at random.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::select::keep_top_k;
use super::unstructured::{check_dim, split_at_dim};
use super::{Amount, HostTensor, Mask};
use crate::{Error, Result};

/// The norm a channel is ranked by in [`ln_structured`] (torch's `n` argument).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// Σ|x|.
    L1,
    /// (Σx²)^½.
    L2,
    /// (Σ|x|^p)^(1/p), `p > 0`.
    Lp(f64),
    /// max |x|.
    Inf,
}

impl Norm {
    fn of(&self, values: impl Iterator<Item = f32>) -> f64 {
        match *self {
            Norm::L1 => values.map(|v| v.abs() as f64).sum(),
            Norm::L2 => values.map(|v| (v as f64).powi(2)).sum::<f64>().sqrt(),
            Norm::Lp(p) => values
                .map(|v| (v.abs() as f64).powf(p))
                .sum::<f64>()
                .powf(1.0 / p),
            Norm::Inf => values.map(|v| v.abs() as f64).fold(0.0, f64::max),
        }
    }
}

/// Prunes whole channels along `dim`: the `amount` channels with the smallest `norm` (torch's
/// `ln_structured`).
///
/// A channel is the slice `scores[.., c, ..]` at index `c` of `dim`; its norm runs over every
/// other dimension of `scores` (the dense weights, not the masked ones, as in torch). With a
/// `prior`, channels that are already entirely pruned do not compete and the fraction is of
/// the channels left (torch's container for structured methods); the result is ANDed with the
/// prior. Ties keep the lower channel index. For burn's `Linear` weight `[d_in, d_out]`,
/// `dim = 1` prunes output neurons and `dim = 0` input features.
///
/// # Errors
/// [`Error::ShapeNotEligible`] for a tensor of rank < 2 (as torch); [`Error::OutOfRange`] for a
/// `dim` out of range or `Lp` with `p ≤ 0`; [`Error::InvalidAmount`];
/// [`Error::ShapeMismatch`] for a prior of another shape.
///
/// ```
/// use pruning::{ln_structured, Amount, HostTensor, Norm};
///
/// // [d_in = 2, d_out = 3]: output columns have L2 norms 1, 5, 2.
/// let w = HostTensor::new(vec![1.0, 3.0, 0.0, 0.0, 4.0, 2.0], &[2, 3], "w").unwrap();
/// let m = ln_structured(&w, Amount::Count(1), Norm::L2, 1, None).unwrap();
/// assert_eq!(m.as_slice(), &[false, true, true, false, true, true]);
/// ```
pub fn ln_structured(
    scores: &HostTensor,
    amount: Amount,
    norm: Norm,
    dim: usize,
    prior: Option<&Mask>,
) -> Result<Mask> {
    if let Norm::Lp(p) = norm
        && !(p.is_finite() && p > 0.0)
    {
        return Err(Error::OutOfRange {
            what: "Lp norm exponent p".into(),
            value: p.to_string(),
            reason: "p must be finite and > 0".into(),
        });
    }
    check_structured(scores.shape(), dim)?;
    let (outer, len, inner) = split_at_dim(scores.shape(), dim);
    let norms: Vec<f32> = (0..len)
        .map(|c| norm.of(channel(outer, len, inner, c).map(|i| scores.values()[i])) as f32)
        .collect();
    structured_from_channel_scores(scores.shape(), dim, &norms, amount, prior)
}

/// Prunes `amount` whole channels along `dim` chosen at random (torch's `random_structured`),
/// with the same compounding as [`ln_structured`]. Channel scores are uniform draws from
/// `Xoshiro256PlusPlus::seed_from_u64(seed)`.
///
/// # Errors
/// As [`ln_structured`].
pub fn random_structured(
    shape: &[usize],
    amount: Amount,
    dim: usize,
    prior: Option<&Mask>,
    seed: u64,
) -> Result<Mask> {
    check_structured(shape, dim)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let scores: Vec<f32> = (0..shape[dim]).map(|_| rng.random::<f32>()).collect();
    structured_from_channel_scores(shape, dim, &scores, amount, prior)
}

fn check_structured(shape: &[usize], dim: usize) -> Result<()> {
    if shape.len() < 2 {
        return Err(Error::ShapeNotEligible {
            tensor: "the tensor".into(),
            shape: shape.to_vec(),
            pattern: "structured (channel) pruning".into(),
            reason: "structured pruning needs at least 2 dimensions".into(),
        });
    }
    check_dim(shape, dim)
}

fn channel(outer: usize, len: usize, inner: usize, c: usize) -> impl Iterator<Item = usize> {
    (0..outer).flat_map(move |o| (0..inner).map(move |i| (o * len + c) * inner + i))
}

fn structured_from_channel_scores(
    shape: &[usize],
    dim: usize,
    channel_scores: &[f32],
    amount: Amount,
    prior: Option<&Mask>,
) -> Result<Mask> {
    if let Some(p) = prior {
        p.check_shape(shape, "the tensor")?;
    }
    let (outer, len, inner) = split_at_dim(shape, dim);
    // torch: channels with any kept weight still compete; fully pruned ones are skipped.
    let alive: Vec<bool> = (0..len)
        .map(|c| prior.is_none_or(|p| channel(outer, len, inner, c).any(|i| p.as_slice()[i])))
        .collect();
    let remaining = alive.iter().filter(|&&a| a).count();
    let k_prune = amount.to_prune(remaining)?;
    let keep_channel = keep_top_k(channel_scores, Some(&alive), remaining - k_prune);
    let mut keep = vec![false; shape.iter().product()];
    for (c, &kc) in keep_channel.iter().enumerate() {
        if kc {
            for i in channel(outer, len, inner, c) {
                keep[i] = prior.is_none_or(|p| p.as_slice()[i]);
            }
        }
    }
    Mask::from_vec(keep, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_compounds_over_channels_left() {
        // 4 output channels with L1 norms 4, 1, 3, 2 (shape [2, 4], dim 1).
        let w =
            HostTensor::new(vec![2.0, 0.5, 1.5, 1.0, 2.0, 0.5, 1.5, 1.0], &[2, 4], "w").unwrap();
        let m1 = ln_structured(&w, Amount::Fraction(0.5), Norm::L1, 1, None).unwrap();
        assert_eq!(
            m1.as_slice(),
            &[true, false, true, false, true, false, true, false]
        );
        // 2 channels left, 0.5 → 1 more: the one with norm 3.
        let m2 = ln_structured(&w, Amount::Fraction(0.5), Norm::L1, 1, Some(&m1)).unwrap();
        assert_eq!(
            m2.as_slice(),
            &[true, false, false, false, true, false, false, false]
        );
        assert!(ln_structured(&w, Amount::Count(2), Norm::L1, 1, Some(&m2)).is_err());
    }

    #[test]
    fn norms_and_errors() {
        let w = HostTensor::new(vec![3.0, -4.0], &[2], "w").unwrap();
        assert!(matches!(
            ln_structured(&w, Amount::Count(1), Norm::L2, 0, None),
            Err(Error::ShapeNotEligible { .. })
        ));
        assert_eq!(Norm::L2.of([3.0f32, -4.0].into_iter()), 5.0);
        assert_eq!(Norm::Inf.of([3.0f32, -4.0].into_iter()), 4.0);
        assert!((Norm::Lp(3.0).of([1.0f32, 2.0].into_iter()) - 9f64.cbrt()).abs() < 1e-12);
        let w2 = HostTensor::new(vec![1.0; 4], &[2, 2], "w").unwrap();
        assert!(ln_structured(&w2, Amount::Count(1), Norm::Lp(0.0), 0, None).is_err());
        assert!(ln_structured(&w2, Amount::Count(1), Norm::L1, 2, None).is_err());
        // Equal norms: the lower channel index is kept.
        let m = ln_structured(&w2, Amount::Count(1), Norm::L1, 0, None).unwrap();
        assert_eq!(m.as_slice(), &[true, true, false, false]);
    }

    #[test]
    fn random_structured_prunes_whole_channels() {
        let m = random_structured(&[3, 10], Amount::Fraction(0.3), 1, None, 5).unwrap();
        let pruned_cols: Vec<usize> = (0..10).filter(|&c| !m.as_slice()[c]).collect();
        assert_eq!(pruned_cols.len(), 3);
        for c in 0..10 {
            let col: Vec<bool> = (0..3).map(|r| m.as_slice()[r * 10 + c]).collect();
            assert!(col.iter().all(|&k| k == col[0]));
        }
    }
}
