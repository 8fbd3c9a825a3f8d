//! The one range check per architecture config: every `XConfig::check` is built from these
//! rules, `XConfig::init` panics with its message (burn's way for a hyperparameter contract) and
//! every reader turns it into a typed error naming the file's key.

use std::fmt::Display;

/// A hyperparameter of an architecture config outside the range the architecture accepts,
/// found by that config's `check` (e.g. [`crate::TopKSaeConfig::check`]).
///
/// ```
/// use sae_core::TopKSaeConfig;
///
/// let err = TopKSaeConfig::new(16, 64, 80).check().unwrap_err();
/// assert_eq!((err.config, err.field.as_str()), ("TopKSaeConfig", "k"));
/// assert_eq!(err.to_string(), "TopKSaeConfig.k must be an integer in 1..=64 (d_sae), found 80");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{config}.{field} must be {expected}, found {found}")]
pub struct ConfigError {
    /// The config type (`"TopKSaeConfig"`, ...).
    pub config: &'static str,
    /// The field, dotted for nested ones (`"sparsity_loss.target"`, `"base.k"`,
    /// `"inner_level_weights[1]"`).
    pub field: String,
    /// The accepted range, in words (`"positive and finite"`, ...).
    pub expected: String,
    /// The value found, as Rust prints it.
    pub found: String,
}

impl ConfigError {
    /// The same error reported for `config`, with `prefix.` put before the field (a nested
    /// config such as Matryoshka's `base`).
    pub(crate) fn nested_in(self, config: &'static str, prefix: &str) -> Self {
        Self {
            config,
            field: format!("{prefix}.{}", self.field),
            ..self
        }
    }
}

/// Panics with the message of a failed check (what `init` does with `check`'s answer).
pub(crate) fn expect_valid(checked: Result<(), ConfigError>) {
    if let Err(e) = checked {
        panic!("{e}");
    }
}

/// The range rules, for the config called `config`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    config: &'static str,
}

impl Rules {
    /// Rules reporting for the config type called `config`.
    pub(crate) fn of(config: &'static str) -> Self {
        Self { config }
    }

    fn fail(
        &self,
        field: &str,
        expected: impl Into<String>,
        found: impl Display,
    ) -> Result<(), ConfigError> {
        Err(ConfigError {
            config: self.config,
            field: field.to_string(),
            expected: expected.into(),
            found: found.to_string(),
        })
    }

    /// `d_in` and `d_sae` are positive.
    pub(crate) fn dims(&self, d_in: usize, d_sae: usize) -> Result<(), ConfigError> {
        self.count("d_in", d_in)?;
        self.count("d_sae", d_sae)
    }

    /// A count that must be at least 1.
    pub(crate) fn count(&self, field: &str, value: usize) -> Result<(), ConfigError> {
        if value >= 1 {
            Ok(())
        } else {
            self.fail(field, "at least 1", value)
        }
    }

    /// A per-token `k` in `1..=d_sae`.
    pub(crate) fn k(&self, k: usize, d_sae: usize) -> Result<(), ConfigError> {
        if (1..=d_sae).contains(&k) {
            Ok(())
        } else {
            self.fail("k", format!("an integer in 1..={d_sae} (d_sae)"), k)
        }
    }

    /// A value `> 0` that is finite.
    pub(crate) fn positive(&self, field: &str, value: f64) -> Result<(), ConfigError> {
        if value > 0.0 && value.is_finite() {
            Ok(())
        } else {
            self.fail(field, "positive and finite", value)
        }
    }

    /// A value `≥ 0` that is finite.
    pub(crate) fn non_negative(&self, field: &str, value: f64) -> Result<(), ConfigError> {
        if value >= 0.0 && value.is_finite() {
            Ok(())
        } else {
            self.fail(field, "non-negative and finite", value)
        }
    }

    /// A value in `[0, 1]`.
    pub(crate) fn fraction(&self, field: &str, value: f64) -> Result<(), ConfigError> {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            self.fail(field, "in [0, 1]", value)
        }
    }

    /// A value in `(0, upper]` (BatchTopK's average `k`).
    pub(crate) fn in_half_open(
        &self,
        field: &str,
        value: f64,
        upper: usize,
        upper_name: &str,
    ) -> Result<(), ConfigError> {
        if value > 0.0 && value <= upper as f64 {
            Ok(())
        } else {
            self.fail(field, format!("in (0, {upper}] ({upper_name})"), value)
        }
    }

    /// A rule of its own (`expected` in words).
    pub(crate) fn require(
        &self,
        holds: bool,
        field: &str,
        expected: impl Into<String>,
        found: impl Display,
    ) -> Result<(), ConfigError> {
        if holds {
            Ok(())
        } else {
            self.fail(field, expected, found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_reject_zero_nan_and_infinity() {
        let r = Rules::of("XConfig");
        assert!(r.dims(1, 1).is_ok());
        assert_eq!(
            r.dims(0, 4).unwrap_err().to_string(),
            "XConfig.d_in must be at least 1, found 0"
        );
        assert_eq!(r.dims(4, 0).unwrap_err().field, "d_sae");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(r.positive("p", bad).is_err(), "{bad}");
        }
        for bad in [-1e-9, f64::NAN, f64::INFINITY] {
            assert!(r.non_negative("n", bad).is_err(), "{bad}");
        }
        assert!(r.non_negative("n", 0.0).is_ok());
        assert!(r.fraction("f", f64::NAN).is_err());
        assert!(r.in_half_open("k", f64::NAN, 4, "d_sae").is_err());
        assert!(r.in_half_open("k", 4.0, 4, "d_sae").is_ok());
        assert!(r.k(0, 4).is_err() && r.k(5, 4).is_err() && r.k(4, 4).is_ok());
        let nested = r.k(9, 4).unwrap_err().nested_in("YConfig", "base");
        assert_eq!(
            nested.to_string(),
            "YConfig.base.k must be an integer in 1..=4 (d_sae), found 9"
        );
    }

    /// Each config's `check` names its own type and the field, and `init` panics with
    /// exactly that message.
    #[test]
    fn every_config_names_the_bad_field() {
        use crate::*;
        use burn::prelude::Tensor;
        let cases: Vec<(Result<(), ConfigError>, &str, &str)> = vec![
            (
                ReluSaeConfig::new(4, 8).with_lp_norm(0.0).check(),
                "ReluSaeConfig",
                "lp_norm",
            ),
            (TopKSaeConfig::new(4, 8, 9).check(), "TopKSaeConfig", "k"),
            (
                AbsTopKSaeConfig::new(0, 8, 2).check(),
                "AbsTopKSaeConfig",
                "d_in",
            ),
            (
                BatchTopKSaeConfig::new(4, 8, 2.0)
                    .with_topk_threshold_lr(1.5)
                    .check(),
                "BatchTopKSaeConfig",
                "topk_threshold_lr",
            ),
            (
                MatryoshkaSaeConfig::new(BatchTopKSaeConfig::new(4, 8, 9.0), vec![4]).check(),
                "MatryoshkaSaeConfig",
                "base.k",
            ),
            (
                MatryoshkaSaeConfig::new(BatchTopKSaeConfig::new(4, 8, 2.0), vec![1]).check(),
                "MatryoshkaSaeConfig",
                "widths",
            ),
            (
                JumpReluSaeConfig::new(4, 8)
                    .with_l0_coefficient(f64::NAN)
                    .check(),
                "JumpReluSaeConfig",
                "l0_coefficient",
            ),
            (
                GatedSaeConfig::new(4, 8).with_l1_coefficient(-1.0).check(),
                "GatedSaeConfig",
                "l1_coefficient",
            ),
            (
                MatchingPursuitSaeConfig::new(4, 8)
                    .with_max_iterations(Some(0))
                    .check(),
                "MatchingPursuitSaeConfig",
                "max_iterations",
            ),
            (
                TopAfaSaeConfig::new(4, 8)
                    .with_afa_coefficient(f64::INFINITY)
                    .check(),
                "TopAfaSaeConfig",
                "afa_coefficient",
            ),
            (
                ArchetypalSaeConfig::new(4, 8, 2).with_delta(-0.5).check(),
                "ArchetypalSaeConfig",
                "delta",
            ),
        ];
        for (checked, config, field) in cases {
            let e = checked.expect_err(field);
            assert_eq!((e.config, e.field.as_str()), (config, field), "{e}");
        }
        let device = crate::test_device();
        let message = TopKSaeConfig::new(4, 8, 9).check().unwrap_err().to_string();
        let panic = std::panic::catch_unwind(|| TopKSaeConfig::new(4, 8, 9).init(&device))
            .expect_err("init must panic on a bad k");
        assert_eq!(panic.downcast_ref::<String>(), Some(&message));
        // A constructor from tensors answers with the same rule as an error.
        let e = TopKSae::from_tensors(
            &TopKSaeConfig::new(1, 1, 2),
            Tensor::zeros([1, 1], &device),
            Tensor::zeros([1], &device),
            Tensor::zeros([1, 1], &device),
            Tensor::zeros([1], &device),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Config(ref c) if c.field == "k"), "{e}");
    }

    #[test]
    #[should_panic(expected = "XConfig.d_sae must be at least 1, found 0")]
    fn expect_valid_panics_with_the_message() {
        expect_valid(Rules::of("XConfig").dims(3, 0));
    }
}
