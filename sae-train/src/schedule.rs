//! Learning-rate and coefficient schedules: pure functions of the step.

use serde::{Deserialize, Serialize};

/// How the learning rate decays after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Decay {
    /// Constant after warm-up.
    Constant,
    /// Linear from the peak to `final_fraction × peak`, over the last `fraction` of training
    /// (sparsify decays linearly to 0 over all steps; SAELens and the JumpReLU recipes over the
    /// last 20 %).
    Linear {
        /// The share of all steps over which the rate decays (in `(0, 1]`).
        fraction: f64,
        /// The final rate as a fraction of the peak.
        final_fraction: f64,
    },
    /// Cosine from the peak to `final_fraction × peak` over all steps after warm-up (SAELens'
    /// `cosineannealing`, whose default end is `lr / 10`).
    Cosine {
        /// The final rate as a fraction of the peak.
        final_fraction: f64,
    },
}

/// The learning rate at each step: linear warm-up from 0 to `peak` over `warmup_steps`, then
/// [`Decay`], over `total_steps` steps.
///
/// Steps are 0-based; the rate used at step `t` is `lr(t)`. During warm-up
/// `lr(t) = peak · (t + 1) / warmup_steps`, so the first step is not wasted at a rate of 0.
///
/// ```
/// use sae_train::{Decay, LrSchedule};
/// let s = LrSchedule::new(1e-3, 100, 1_000, Decay::Cosine { final_fraction: 0.1 });
/// assert!((s.lr(99) - 1e-3).abs() < 1e-12);
/// assert!((s.lr(999) - 1e-4).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The peak learning rate.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup_steps: u64,
    /// All steps of the run.
    pub total_steps: u64,
    /// The decay after warm-up.
    pub decay: Decay,
}

impl LrSchedule {
    /// A schedule; see the type docs.
    ///
    /// # Panics
    /// If `peak` is not finite and positive, `total_steps` is 0, or a decay fraction lies outside
    /// its range.
    pub fn new(peak: f64, warmup_steps: u64, total_steps: u64, decay: Decay) -> Self {
        assert!(
            peak.is_finite() && peak > 0.0,
            "peak learning rate must be finite and positive, got {peak}"
        );
        assert!(total_steps > 0, "total_steps must be positive, got 0");
        match decay {
            Decay::Constant => {}
            Decay::Linear {
                fraction,
                final_fraction,
            } => {
                assert!(
                    fraction > 0.0 && fraction <= 1.0,
                    "Decay::Linear fraction must lie in (0, 1], got {fraction}"
                );
                assert!(
                    (0.0..=1.0).contains(&final_fraction),
                    "final_fraction must lie in [0, 1], got {final_fraction}"
                );
            }
            Decay::Cosine { final_fraction } => assert!(
                (0.0..=1.0).contains(&final_fraction),
                "final_fraction must lie in [0, 1], got {final_fraction}"
            ),
        }
        Self {
            peak,
            warmup_steps,
            total_steps,
            decay,
        }
    }

    /// The learning rate of step `step` (0-based; steps past the end keep the final rate).
    pub fn lr(&self, step: u64) -> f64 {
        let step = step.min(self.total_steps - 1);
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear {
                fraction,
                final_fraction,
            } => {
                let decay_steps = ((self.total_steps as f64) * fraction).round().max(1.0) as u64;
                let start = self
                    .total_steps
                    .saturating_sub(decay_steps)
                    .max(self.warmup_steps);
                if step < start {
                    return self.peak;
                }
                let span = (self.total_steps - start).max(1) as f64;
                let t = ((step - start + 1) as f64 / span).min(1.0);
                self.peak * (1.0 - t * (1.0 - final_fraction))
            }
            Decay::Cosine { final_fraction } => {
                let span = (self.total_steps - self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps + 1) as f64 / span).min(1.0);
                let floor = self.peak * final_fraction;
                floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// A coefficient (sparsity penalty λ, L0 coefficient) warmed up linearly from 0 to `value` over
/// `warmup_steps` (SAELens' `l1_warm_up_steps`, dictionary_learning's sparsity warm-up).
///
/// ```
/// use sae_train::CoefficientWarmup;
/// let w = CoefficientWarmup::new(5.0, 10);
/// assert_eq!(w.at(4), 2.5);
/// assert_eq!(w.at(100), 5.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CoefficientWarmup {
    /// The final value.
    pub value: f64,
    /// Steps to reach it (0: from the start).
    pub warmup_steps: u64,
}

impl CoefficientWarmup {
    /// Warms up to `value` over `warmup_steps`.
    ///
    /// # Panics
    /// If `value` is negative or not finite.
    pub fn new(value: f64, warmup_steps: u64) -> Self {
        assert!(
            value.is_finite() && value >= 0.0,
            "coefficient must be finite and non-negative, got {value}"
        );
        Self {
            value,
            warmup_steps,
        }
    }

    /// The coefficient at step `step`: `value · min(1, (step + 1) / warmup_steps)`.
    pub fn at(&self, step: u64) -> f64 {
        if self.warmup_steps == 0 {
            return self.value;
        }
        self.value * ((step + 1) as f64 / self.warmup_steps as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    fn decay() -> impl Strategy<Value = Decay> {
        prop_oneof![
            Just(Decay::Constant),
            (0.01f64..=1.0, 0.0f64..=1.0).prop_map(|(fraction, final_fraction)| Decay::Linear {
                fraction,
                final_fraction
            }),
            (0.0f64..=1.0).prop_map(|final_fraction| Decay::Cosine { final_fraction }),
        ]
    }

    proptest! {
        #[test]
        fn warmup_rises_then_decay_never_rises(
            peak in 1e-6f64..1.0, warmup in 0u64..50, total in 1u64..400, decay in decay(),
        ) {
            let s = LrSchedule::new(peak, warmup, total, decay);
            let lrs: Vec<f64> = (0..total + 5).map(|t| s.lr(t)).collect();
            for (t, w) in lrs.windows(2).enumerate() {
                let t = t as u64;
                let may_reach_zero = matches!(
                    decay,
                    Decay::Linear { final_fraction, .. } | Decay::Cosine { final_fraction }
                        if final_fraction == 0.0
                );
                prop_assert!(w[0] > 0.0 || may_reach_zero);
                prop_assert!(w[0] <= peak * (1.0 + 1e-12));
                if t + 1 < warmup.min(total) { prop_assert!(w[1] > w[0]); }
                else if t + 1 >= warmup { prop_assert!(w[1] <= w[0] * (1.0 + 1e-12)); }
            }
            if warmup > 0 && warmup <= total {
                assert_relative_eq!(s.lr(warmup - 1), peak, max_relative = 1e-12);
            }
        }

        #[test]
        fn decay_ends_at_the_final_fraction(
            peak in 1e-6f64..1.0, warmup in 0u64..50, extra in 2u64..400, decay in decay(),
        ) {
            let total = warmup + extra;
            let s = LrSchedule::new(peak, warmup, total, decay);
            let expected = match decay {
                Decay::Constant => peak,
                Decay::Linear { final_fraction, .. } | Decay::Cosine { final_fraction } => {
                    peak * final_fraction
                }
            };
            assert_relative_eq!(s.lr(total - 1), expected, max_relative = 1e-9, epsilon = 1e-15);
        }

        #[test]
        fn coefficient_warmup_is_monotone_and_reaches_its_value(
            value in 0f64..100.0, warmup in 0u64..100, t in 0u64..300,
        ) {
            let w = CoefficientWarmup::new(value, warmup);
            prop_assert!(w.at(t) <= w.at(t + 1));
            prop_assert!(w.at(t) <= value);
            if t + 1 >= warmup { prop_assert_eq!(w.at(t), value); }
        }
    }

    #[test]
    fn linear_decay_starts_late() {
        let s = LrSchedule::new(
            1.0,
            10,
            100,
            Decay::Linear {
                fraction: 0.2,
                final_fraction: 0.0,
            },
        );
        assert_eq!(s.lr(79), 1.0);
        assert!(s.lr(80) < 1.0);
        assert_eq!(s.lr(99), 0.0);
        assert_eq!(s.lr(0), 0.1);
    }
}
