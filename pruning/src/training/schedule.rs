//! Sparsity schedules as pure functions of the training step.

use crate::{Error, NmPattern, Result};

/// Zhu & Gupta's gradual (cubic) magnitude-pruning schedule (GMP; tfmot's `PolynomialDecay`
/// with power 3):
///
/// `s_t = s_f + (s_i − s_f) · (1 − (t − t₀)/(t_end − t₀))³`, evaluated at the last update step
/// `t ∈ {t₀, t₀ + Δt, …}` at or before the current step, and at `t_end` from `t_end` on. Before
/// `t₀` nothing is pruned.
///
/// ```
/// use pruning::CubicSchedule;
///
/// let s = CubicSchedule::new(0.0, 0.9, 100, 1100, 100).unwrap();
/// assert_eq!(s.sparsity(0), 0.0);
/// assert_eq!(s.sparsity(100), 0.0);           // s_i at t₀
/// assert!((s.sparsity(600) - 0.7875).abs() < 1e-12); // 0.9 − 0.9·0.5³
/// assert_eq!(s.sparsity(650), s.sparsity(600)); // constant between updates
/// assert_eq!(s.sparsity(5000), 0.9);
/// assert!(s.is_update_step(700) && !s.is_update_step(750));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CubicSchedule {
    initial: f64,
    target: f64,
    begin: u64,
    end: u64,
    frequency: u64,
}

impl CubicSchedule {
    /// From `initial` sparsity at step `begin` to `target` at step `end`, masks updated every
    /// `frequency` steps.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for sparsities outside `[0, 1]`, `end < begin` or `frequency == 0`.
    pub fn new(initial: f64, target: f64, begin: u64, end: u64, frequency: u64) -> Result<Self> {
        for (what, v) in [("initial sparsity", initial), ("target sparsity", target)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::OutOfRange {
                    what: what.into(),
                    value: v.to_string(),
                    reason: "must lie in [0, 1]".into(),
                });
            }
        }
        if end < begin || frequency == 0 {
            return Err(Error::OutOfRange {
                what: "cubic schedule steps".into(),
                value: format!("begin {begin}, end {end}, frequency {frequency}"),
                reason: "need begin ≤ end and frequency ≥ 1".into(),
            });
        }
        Ok(Self {
            initial,
            target,
            begin,
            end,
            frequency,
        })
    }

    /// The target sparsity in force at `step`.
    pub fn sparsity(&self, step: u64) -> f64 {
        if step < self.begin {
            return 0.0;
        }
        if step >= self.end || self.end == self.begin {
            return self.target;
        }
        let last = self.begin + (step - self.begin) / self.frequency * self.frequency;
        let progress = (last - self.begin) as f64 / (self.end - self.begin) as f64;
        self.target + (self.initial - self.target) * (1.0 - progress).powi(3)
    }

    /// Whether masks are recomputed at `step`: `t₀ ≤ step ≤ t_end` on the `Δt` grid, and
    /// `t_end` itself.
    pub fn is_update_step(&self, step: u64) -> bool {
        step >= self.begin
            && step <= self.end
            && ((step - self.begin).is_multiple_of(self.frequency) || step == self.end)
    }

    /// The final sparsity.
    pub fn target(&self) -> f64 {
        self.target
    }
}

/// Progressive Gradient Flow's mask decay (MDGF): pruned weights enter the forward pass scaled
/// by `α(t)` (the soft mask `E + (1 − E)·α`), with `t` the step since the sparse phase began.
///
/// ```
/// use pruning::MaskDecay;
///
/// assert_eq!(MaskDecay::Step.alpha(10), 0.0);
/// assert_eq!(MaskDecay::Linear { rate: 0.01 }.alpha(50), 0.5);
/// assert_eq!(MaskDecay::Linear { rate: 0.01 }.alpha(500), 0.0);
/// assert!((MaskDecay::Exponential { rate: 1e-4 }.alpha(10_000) - (-1f64).exp()).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaskDecay {
    /// `α = 0`: a binary mask (plain STE / SR-STE).
    Step,
    /// `α(t) = max(0, 1 − rate·t)`.
    Linear {
        /// The decay rate `c` per step.
        rate: f64,
    },
    /// `α(t) = exp(−rate·t)` (PGF's ViT default `c = 1e-4`).
    Exponential {
        /// The decay rate `c` per step.
        rate: f64,
    },
}

impl MaskDecay {
    /// `α(t)` for `t` steps into the sparse phase.
    pub fn alpha(&self, t: u64) -> f64 {
        match *self {
            MaskDecay::Step => 0.0,
            MaskDecay::Linear { rate } => (1.0 - rate * t as f64).max(0.0),
            MaskDecay::Exponential { rate } => (-rate * t as f64).exp(),
        }
    }
}

/// Progressive Gradient Flow's structure decay (SDGF): the N:M pattern steps through a
/// timetable that ends at the target pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum StructureDecay {
    /// PGF `sparsify`: `(M−1):M, M/2:M, M/4:M, …, N:M` (1:8 → 7:8, 4:8, 2:8, 1:8).
    Stepwise,
    /// PGF `fine`: constant density, shrinking groups: `8N:8M, 4N:4M, 2N:2M, N:M`.
    Geometric,
    /// PGF `densify`: `N:8M, N:4M, N:2M, N:M`.
    Densify,
    /// A user timetable; the last entry should be the target.
    Custom(Vec<NmPattern>),
}

impl StructureDecay {
    /// The patterns, in order, for the target pattern.
    ///
    /// ```
    /// use pruning::{NmPattern, StructureDecay};
    ///
    /// let t = NmPattern::new(1, 8).unwrap();
    /// let names: Vec<String> = StructureDecay::Stepwise.patterns(t).iter().map(|p| p.to_string()).collect();
    /// assert_eq!(names, ["7:8", "4:8", "2:8", "1:8"]);
    /// let names: Vec<String> = StructureDecay::Geometric.patterns(t).iter().map(|p| p.to_string()).collect();
    /// assert_eq!(names, ["8:64", "4:32", "2:16", "1:8"]);
    /// ```
    pub fn patterns(&self, target: NmPattern) -> Vec<NmPattern> {
        let (n, m) = (target.n(), target.m());
        let p = |n, m| NmPattern::new(n, m).expect("valid by construction");
        match self {
            StructureDecay::Stepwise => {
                let mut out = vec![];
                let mut push = |k: usize| {
                    if k >= n && out.last().is_none_or(|l: &NmPattern| l.n() != k) {
                        out.push(p(k, m));
                    }
                };
                push(m.saturating_sub(1).max(n));
                let mut k = m / 2;
                while k > n {
                    push(k);
                    k /= 2;
                }
                push(n);
                out
            }
            StructureDecay::Geometric => (0..4).map(|i| p(n << (3 - i), m << (3 - i))).collect(),
            StructureDecay::Densify => (0..4).map(|i| p(n, m << (3 - i))).collect(),
            StructureDecay::Custom(v) => v.clone(),
        }
    }
}

/// Which pattern is in force at a step under a structure-decay timetable: dense before
/// `begin`, then the patterns in equal frames over `[begin, begin + steps)`, then the last one.
///
/// ```
/// use pruning::{NmPattern, StructureDecay, structure_decay_pattern};
///
/// let t = NmPattern::new(1, 8).unwrap();
/// let at = |s| structure_decay_pattern(&StructureDecay::Stepwise, t, 100, 400, s).map(|p| p.to_string());
/// assert_eq!(at(50), None);
/// assert_eq!(at(100).as_deref(), Some("7:8"));
/// assert_eq!(at(299).as_deref(), Some("4:8"));
/// assert_eq!(at(499).as_deref(), Some("1:8"));
/// assert_eq!(at(10_000).as_deref(), Some("1:8"));
/// ```
pub fn structure_decay_pattern(
    decay: &StructureDecay,
    target: NmPattern,
    begin: u64,
    steps: u64,
    step: u64,
) -> Option<NmPattern> {
    if step < begin {
        return None;
    }
    let patterns = decay.patterns(target);
    let last = *patterns.last().unwrap_or(&target);
    if steps == 0 || step >= begin + steps || patterns.is_empty() {
        return Some(last);
    }
    let frame = ((step - begin) as u128 * patterns.len() as u128 / steps as u128) as usize;
    Some(patterns[frame.min(patterns.len() - 1)])
}

/// RigL's drop fraction: `α · ½(1 + cos(π·t / t_end))` for `t ≤ t_end`, 0 after (cosine), or
/// `α` throughout (constant). `t` is the global step, as in RigL's TensorFlow code.
///
/// ```
/// use pruning::DropFraction;
///
/// let f = DropFraction::Cosine { alpha: 0.3, end: 1000 };
/// assert_eq!(f.at(0), 0.3);
/// assert!((f.at(500) - 0.15).abs() < 1e-12);
/// assert_eq!(f.at(2000), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DropFraction {
    /// `α` at every update.
    Constant {
        /// The fraction of active weights replaced per update.
        alpha: f64,
    },
    /// Cosine decay to 0 at `end`.
    Cosine {
        /// The initial fraction (RigL: 0.3).
        alpha: f64,
        /// The step where it reaches 0 (RigL: 75 % of training).
        end: u64,
    },
}

impl DropFraction {
    /// The fraction at `step`.
    pub fn at(&self, step: u64) -> f64 {
        match *self {
            DropFraction::Constant { alpha } => alpha,
            DropFraction::Cosine { alpha, end } => {
                if step > end || end == 0 {
                    0.0
                } else {
                    alpha * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / end as f64).cos())
                }
            }
        }
    }
}

/// RigL's update gate: `begin ≤ step ≤ end` and `step % frequency == 0`.
pub fn is_update_step(step: u64, begin: u64, end: u64, frequency: u64) -> bool {
    frequency > 0 && step >= begin && step <= end && step.is_multiple_of(frequency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cubic_is_monotone_bounded_and_piecewise_constant(
            si in 0.0f64..0.5, sf in 0.5f64..1.0, begin in 0u64..100, len in 1u64..1000, freq in 1u64..50, step in 0u64..2000,
        ) {
            let s = CubicSchedule::new(si, sf, begin, begin + len, freq).unwrap();
            let a = s.sparsity(step);
            let b = s.sparsity(step + 1);
            prop_assert!(b >= a - 1e-15);
            prop_assert!(a <= sf + 1e-15);
            if step >= begin { prop_assert!(a >= si - 1e-15); } else { prop_assert_eq!(a, 0.0); }
            if !s.is_update_step(step + 1) { prop_assert_eq!(a, b); }
            prop_assert_eq!(s.sparsity(begin + len + step), sf);
        }

        #[test]
        fn mask_decay_is_in_unit_interval_and_decreasing(rate in 0.0f64..0.1, t in 0u64..100_000) {
            for d in [MaskDecay::Step, MaskDecay::Linear { rate }, MaskDecay::Exponential { rate }] {
                let (a, b) = (d.alpha(t), d.alpha(t + 1));
                prop_assert!((0.0..=1.0).contains(&a));
                prop_assert!(b <= a);
            }
        }

        #[test]
        fn structure_decay_ends_at_target_and_density_never_rises(n in 1usize..5, k in 0u32..4, steps in 1u64..500, step in 0u64..1000) {
            let m = n << k;
            let target = NmPattern::new(n, m).unwrap();
            for d in [StructureDecay::Stepwise, StructureDecay::Geometric, StructureDecay::Densify] {
                let pats = d.patterns(target);
                prop_assert_eq!(*pats.last().unwrap(), target);
                if d == StructureDecay::Stepwise {
                    for w in pats.windows(2) { prop_assert!(w[1].sparsity() >= w[0].sparsity()); }
                }
                let now = structure_decay_pattern(&d, target, 10, steps, step);
                let later = structure_decay_pattern(&d, target, 10, steps, step + 1);
                if step < 10 { prop_assert!(now.is_none()); }
                if step >= 10 + steps { prop_assert_eq!(now, Some(target)); }
                if let (Some(a), Some(b)) = (now, later) {
                    let ia = pats.iter().position(|p| *p == a).unwrap();
                    let ib = pats.iter().position(|p| *p == b).unwrap();
                    prop_assert!(ib >= ia);
                }
            }
        }

        #[test]
        fn drop_fraction_is_bounded(alpha in 0.0f64..1.0, end in 1u64..10_000, step in 0u64..20_000) {
            let f = DropFraction::Cosine { alpha, end }.at(step);
            prop_assert!((0.0..=alpha + 1e-15).contains(&f));
            let next = DropFraction::Cosine { alpha, end }.at(step + 1);
            prop_assert!(next <= f + 1e-15 || step >= end);
        }
    }

    #[test]
    fn stepwise_for_2_4_and_gates() {
        let names: Vec<String> = StructureDecay::Stepwise
            .patterns(NmPattern::new(2, 4).unwrap())
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(names, ["3:4", "2:4"]);
        assert!(is_update_step(200, 100, 1000, 100));
        assert!(!is_update_step(250, 100, 1000, 100));
        assert!(!is_update_step(1100, 100, 1000, 100));
        assert!(CubicSchedule::new(0.0, 1.2, 0, 10, 1).is_err());
        assert!(CubicSchedule::new(0.0, 0.5, 10, 0, 1).is_err());
    }
}
