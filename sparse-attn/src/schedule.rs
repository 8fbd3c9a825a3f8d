//! Schedules: which denoising (or decoding) steps run dense attention, which build a mask and
//! which reuse it — a value of its own, separate from how a mask is built.
//!
//! SparseD runs the first steps densely (they decide the output's structure), builds its
//! head-specific mask at the last dense step from that step's q and k, and reuses it for every
//! later step. Reuse for a bounded number of steps, and Sirius-style periodic dense correction
//! steps, are the two other knobs the literature uses; [`Schedule`] has all three.

/// What one step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepAction {
    /// Dense attention; the cached mask (if any) is left as it is.
    Dense,
    /// Dense attention, and a new mask is built from this step's q and k (replacing the cached
    /// one).
    DenseAndBuild,
    /// Sparse attention with the cached mask.
    Reuse,
}

/// When to run dense, build and reuse (see [`Schedule::action`] for the exact rule).
///
/// The mask is always built at a dense step (its output is computed densely, as SparseD does),
/// so at least one step is dense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// Steps `0..dense_steps` are dense; the last of them, `dense_steps − 1`, builds the mask.
    pub dense_steps: usize,
    /// `Some(r)`: a mask is used for `r` steps, then the next step rebuilds it (a build every
    /// `r + 1` steps). `None`: built once, reused to the end.
    pub reuse_steps: Option<usize>,
    /// `Some(m)`: every `m`-th step after a build is a dense correction step that keeps the
    /// mask (Sirius's periodic full-model correction). `None`: no refresh.
    pub refresh_every: Option<usize>,
}

impl Schedule {
    /// SparseD's schedule (INV-WZQ/SparseD `modeling_llada.py`): with
    /// `E = ⌊total_steps · skip⌋ + 1`, steps `0..=E` are dense, the mask is built at step `E`,
    /// and every later step reuses it. (The `+ 1` is the reference code's: `end_time =
    /// int(whole_steps*skip)+1` and dense while `now_step <= end_time`, so `E + 1` steps are
    /// dense — one more than "the first `skip` fraction".)
    ///
    /// # Panics
    /// If `skip` is outside `[0, 1]` or NaN.
    pub fn sparsed(total_steps: usize, skip: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&skip),
            "Schedule::sparsed: skip must be in [0, 1], found {skip}"
        );
        let end = (total_steps as f64 * skip) as usize + 1;
        Self::dense_first(end + 1)
    }

    /// Dense for the first `n` steps (building at step `n − 1`), then reuse to the end.
    ///
    /// # Panics
    /// If `n` is 0 (a mask is built from a dense step).
    pub fn dense_first(n: usize) -> Self {
        assert!(
            n >= 1,
            "Schedule::dense_first: dense_steps must be at least 1, found 0"
        );
        Self {
            dense_steps: n,
            reuse_steps: None,
            refresh_every: None,
        }
    }

    /// Rebuilds the mask after every `r` reusing steps.
    pub fn reuse_for(mut self, r: usize) -> Self {
        self.reuse_steps = Some(r);
        self
    }

    /// A dense correction step every `m` steps after a build.
    ///
    /// # Panics
    /// If `m` is 0.
    pub fn with_refresh(mut self, m: usize) -> Self {
        assert!(
            m >= 1,
            "Schedule::with_refresh: refresh_every must be at least 1, found 0"
        );
        self.refresh_every = Some(m);
        self
    }

    /// The action of step `step` (0-based). With `D = dense_steps` and `u` the steps since the
    /// last build: steps `< D − 1` are [`StepAction::Dense`], step `D − 1` is
    /// [`StepAction::DenseAndBuild`]; after it, `u = (step − (D − 1)) mod (r + 1)` with reuse
    /// steps `r` (no modulus without), and `u = 0` builds again, `u` a multiple of the refresh
    /// period is [`StepAction::Dense`], anything else [`StepAction::Reuse`].
    ///
    /// # Panics
    /// If `dense_steps` or `refresh_every` is 0 (fields set by hand).
    pub fn action(&self, step: usize) -> StepAction {
        assert!(
            self.dense_steps >= 1,
            "Schedule::action: dense_steps must be at least 1, found 0"
        );
        let build = self.dense_steps - 1;
        if step < build {
            return StepAction::Dense;
        }
        let mut u = step - build;
        if let Some(r) = self.reuse_steps {
            u %= r + 1;
        }
        if u == 0 {
            return StepAction::DenseAndBuild;
        }
        match self.refresh_every {
            Some(0) => panic!("Schedule::action: refresh_every must be at least 1, found 0"),
            Some(m) if u.is_multiple_of(m) => StepAction::Dense,
            _ => StepAction::Reuse,
        }
    }

    /// The actions of steps `0..n`.
    pub fn actions(&self, n: usize) -> Vec<StepAction> {
        (0..n).map(|s| self.action(s)).collect()
    }

    /// The fraction of `0..n` steps that run dense attention (build steps included).
    pub fn dense_fraction(&self, n: usize) -> f64 {
        if n == 0 {
            return 0.0;
        }
        let dense = self
            .actions(n)
            .iter()
            .filter(|a| **a != StepAction::Reuse)
            .count();
        dense as f64 / n as f64
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::StepAction::*;
    use super::*;

    #[test]
    fn sparsed_schedule_matches_the_reference_loop() {
        // 10 steps, skip 0.2: end_time = int(2.0) + 1 = 3, dense while step <= 3.
        let s = Schedule::sparsed(10, 0.2);
        assert_eq!(
            s.actions(10),
            vec![
                Dense,
                Dense,
                Dense,
                DenseAndBuild,
                Reuse,
                Reuse,
                Reuse,
                Reuse,
                Reuse,
                Reuse
            ]
        );
        // skip 0: steps 0 and 1 dense (end_time = 1).
        assert_eq!(
            Schedule::sparsed(4, 0.0).actions(4),
            vec![Dense, DenseAndBuild, Reuse, Reuse]
        );
    }

    #[test]
    fn reuse_and_refresh_interleave() {
        let s = Schedule::dense_first(1).reuse_for(3).with_refresh(2);
        assert_eq!(
            s.actions(9),
            vec![
                DenseAndBuild,
                Reuse,
                Dense,
                Reuse,
                DenseAndBuild,
                Reuse,
                Dense,
                Reuse,
                DenseAndBuild
            ]
        );
    }

    #[test]
    #[should_panic(expected = "dense_steps must be at least 1")]
    fn no_dense_step_panics() {
        Schedule::dense_first(0);
    }

    proptest! {
        #[test]
        fn every_reuse_follows_a_build(
            dense in 1usize..6,
            reuse in proptest::option::of(0usize..5),
            refresh in proptest::option::of(1usize..4),
            n in 0usize..40,
        ) {
            let s = Schedule { dense_steps: dense, reuse_steps: reuse, refresh_every: refresh };
            let acts = s.actions(n);
            let mut built = false;
            let mut since_build = 0usize;
            for (step, a) in acts.iter().enumerate() {
                if step < dense - 1 {
                    prop_assert_eq!(*a, Dense);
                }
                match a {
                    DenseAndBuild => { built = true; since_build = 0; }
                    Reuse => { prop_assert!(built); since_build += 1; }
                    Dense => { if built { since_build += 1; } }
                }
                if let Some(r) = reuse {
                    // A mask never lives longer than r steps past its build.
                    prop_assert!(since_build <= r);
                }
            }
            // Without reuse limit and refresh, exactly `dense` steps are dense.
            if reuse.is_none() && refresh.is_none() {
                let d = acts.iter().filter(|a| **a != Reuse).count();
                prop_assert_eq!(d, dense.min(n));
            }
        }

        #[test]
        fn sparsed_dense_count(total in 1usize..300, skip_pct in 0u32..=100) {
            let skip = skip_pct as f64 / 100.0;
            let s = Schedule::sparsed(total, skip);
            let end = (total as f64 * skip) as usize + 1;
            let acts = s.actions(total);
            for (step, a) in acts.iter().enumerate() {
                let expected = if step < end { Dense } else if step == end { DenseAndBuild } else { Reuse };
                prop_assert_eq!(*a, expected);
            }
        }
    }
}
