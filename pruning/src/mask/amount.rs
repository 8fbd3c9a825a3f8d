//! How much to prune: torch's `amount`, an integer count or a fraction of what is left.

use crate::{Error, Result};

/// How many units to prune, with exactly the meaning of `amount` in `torch.nn.utils.prune`.
///
/// - [`Amount::Count`]`(k)` prunes `k` units.
/// - [`Amount::Fraction`]`(f)`, `f ∈ [0, 1]`, prunes `round(f · n)` of the `n` units **not yet
///   pruned**, rounded half to even like Python's `round` (`0.5 · 5 = 2.5 → 2`,
///   `0.35 · 10 = 3.5 → 4`).
///
/// Because the fraction is of what is left, pruning twice compounds: 20 % then 20 % of 100
/// weights prunes 20 and then `round(0.2 · 80) = 16`, 36 in all.
///
/// ```
/// use pruning::Amount;
///
/// assert_eq!(Amount::Fraction(0.2).to_prune(100).unwrap(), 20);
/// assert_eq!(Amount::Fraction(0.2).to_prune(80).unwrap(), 16);
/// assert_eq!(Amount::Fraction(0.5).to_prune(5).unwrap(), 2); // 2.5 rounds to even
/// assert_eq!(Amount::Count(3).to_prune(10).unwrap(), 3);
/// assert!(Amount::Count(11).to_prune(10).is_err());
/// assert!(Amount::Fraction(1.5).to_prune(10).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// Prune exactly this many units (torch: an `int` amount).
    Count(usize),
    /// Prune this fraction of the units not yet pruned (torch: a `float` amount in `[0, 1]`).
    Fraction(f64),
}

impl Amount {
    /// The number of units to prune out of `units` still unpruned (torch's
    /// `_compute_nparams_toprune`, with its validation).
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] when a fraction is not finite or outside `[0, 1]`, or a count
    /// exceeds `units`.
    pub fn to_prune(&self, units: usize) -> Result<usize> {
        match *self {
            Amount::Count(k) => {
                if k > units {
                    return Err(Error::InvalidAmount {
                        amount: k.to_string(),
                        reason: format!("a count must not exceed the {units} units left to prune"),
                    });
                }
                Ok(k)
            }
            Amount::Fraction(f) => {
                if !f.is_finite() || !(0.0..=1.0).contains(&f) {
                    return Err(Error::InvalidAmount {
                        amount: f.to_string(),
                        reason: "a fraction must lie in [0, 1]".into(),
                    });
                }
                // Python's round(): half to even, computed in f64 exactly as torch does.
                Ok((f * units as f64).round_ties_even() as usize)
            }
        }
    }

    /// Checks the amount on its own (before the unit count is known), as torch does at
    /// construction.
    ///
    /// # Errors
    /// [`Error::InvalidAmount`] for a fraction outside `[0, 1]` or not finite.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Amount::Count(_) => Ok(()),
            Amount::Fraction(_) => self.to_prune(0).map(|_| ()),
        }
    }
}

impl From<usize> for Amount {
    fn from(count: usize) -> Self {
        Amount::Count(count)
    }
}

impl From<f64> for Amount {
    fn from(fraction: f64) -> Self {
        Amount::Fraction(fraction)
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Count(k) => write!(f, "{k} units"),
            Amount::Fraction(x) => write!(f, "{x} of the remaining units"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn python_round_half_to_even_cases() {
        // Values checked against CPython: round(0.5*5)=2, round(0.5*7)=4 (3.5), round(0.25*10)=2,
        // round(0.35*10)=4 (0.35*10 == 3.5 in binary64), round(0.3*5)=2 (1.5), round(0.45*10)=4
        // (0.45*10 == 4.5 exactly → 4).
        let cases = [
            (0.5, 5, 2),
            (0.5, 7, 4),
            (0.25, 10, 2),
            (0.35, 10, 4),
            (0.3, 5, 2),
            (0.45, 10, 4),
            (0.2, 100, 20),
            (0.2, 80, 16),
            (1.0, 9, 9),
            (0.0, 9, 0),
        ];
        for (f, n, expected) in cases {
            assert_eq!(
                Amount::Fraction(f).to_prune(n).unwrap(),
                expected,
                "{f}·{n}"
            );
        }
    }

    #[test]
    fn validation_matches_torch() {
        assert!(Amount::Fraction(-0.1).validate().is_err());
        assert!(Amount::Fraction(f64::NAN).validate().is_err());
        assert!(Amount::Fraction(1.0).validate().is_ok());
        assert!(Amount::Count(0).to_prune(0).is_ok());
        assert!(Amount::Count(1).to_prune(0).is_err());
    }

    proptest! {
        #[test]
        fn fraction_never_exceeds_the_units(f in 0.0f64..=1.0, n in 0usize..10_000) {
            let k = Amount::Fraction(f).to_prune(n).unwrap();
            prop_assert!(k <= n);
            prop_assert!((k as f64 - f * n as f64).abs() <= 0.5);
        }
    }
}
