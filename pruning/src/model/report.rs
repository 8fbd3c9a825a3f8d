//! Per-tensor and total sparsity of a model, and which tensors fit which pattern.

use burn::module::Module;

use super::filter::{ParamFilter, ParamInfo};
use super::walk::select;
use crate::{NmPattern, Result};

/// Whether a tensor can take an N:M pattern and the 2:4 hardware formats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eligibility {
    /// The dimension N:M groups run along (the input dimension), if known.
    pub input_dim: Option<usize>,
    /// For each pattern asked about: whether the input dimension is a multiple of M.
    pub patterns: Vec<(NmPattern, bool)>,
    /// NVIDIA ASP's gate for 2-D weights in torch layout `[out, in]`: `out % 8 == 0` and
    /// `in % 16 == 0` (ASP skips other tensors).
    pub asp: bool,
    /// The CUTLASS / PyTorch semi-structured 2:4 layout for fp16/bf16: `out % 32 == 0` and
    /// `in % 16 == 0`.
    pub cutlass_2_4: bool,
}

impl Eligibility {
    /// Eligibility of a parameter for the given patterns.
    pub fn of(info: &ParamInfo, patterns: &[NmPattern]) -> Self {
        let input_dim = info.input_dim();
        let patterns = patterns
            .iter()
            .map(|&p| {
                let ok = input_dim.is_some_and(|d| info.shape[d].is_multiple_of(p.m()));
                (p, ok)
            })
            .collect();
        // Hardware gates speak of a 2-D weight in torch layout [out, in]; burn's Linear stores
        // [in, out].
        let (out, inp) = match (info.owner.as_str(), info.shape.as_slice()) {
            ("Linear", [i, o]) => (Some(*o), Some(*i)),
            (_, [o, i]) => (Some(*o), Some(*i)),
            _ => (None, None),
        };
        let gate = |ro: usize, ri: usize| match (out, inp) {
            (Some(o), Some(i)) => o % ro == 0 && i % ri == 0,
            _ => false,
        };
        Self {
            input_dim,
            patterns,
            asp: gate(8, 16),
            cutlass_2_4: gate(32, 16),
        }
    }
}

/// One parameter's line in a [`SparsityReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct TensorReport {
    /// Path, owner type and shape.
    pub info: ParamInfo,
    /// Number of elements.
    pub numel: usize,
    /// Elements the mask prunes (0 when the parameter carries no mask).
    pub masked: usize,
    /// Elements of the effective weight that are exactly zero (masked or not).
    pub zeros: usize,
    /// Whether the parameter carries a mask.
    pub pruned: bool,
    /// Which patterns and formats it fits.
    pub eligibility: Eligibility,
}

impl TensorReport {
    /// Fraction of elements pruned by the mask.
    pub fn sparsity(&self) -> f64 {
        ratio(self.masked, self.numel)
    }
}

/// Per-tensor and total sparsity over the parameters a filter selects — only those count, so the
/// eligible set is explicit (papers differ on embeddings and heads).
#[derive(Clone, Debug, PartialEq)]
pub struct SparsityReport {
    /// One line per selected parameter, in module order.
    pub tensors: Vec<TensorReport>,
}

impl SparsityReport {
    /// Total elements.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(|t| t.numel).sum()
    }

    /// Total elements pruned by masks.
    pub fn masked(&self) -> usize {
        self.tensors.iter().map(|t| t.masked).sum()
    }

    /// Total exact zeros in the effective weights.
    pub fn zeros(&self) -> usize {
        self.tensors.iter().map(|t| t.zeros).sum()
    }

    /// Masked fraction over all selected parameters.
    pub fn total_sparsity(&self) -> f64 {
        ratio(self.masked(), self.numel())
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl std::fmt::Display for SparsityReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pats: Vec<String> = self
            .tensors
            .first()
            .map(|t| {
                t.eligibility
                    .patterns
                    .iter()
                    .map(|(p, _)| p.to_string())
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            f,
            "{:<32} {:>14} {:>10} {:>9} {:>8}  {:<6} {:<5} {}",
            "parameter",
            "shape",
            "numel",
            "sparsity",
            "zeros",
            "ASP",
            "2:4HW",
            pats.join(" ")
        )?;
        for t in &self.tensors {
            let fits: Vec<String> = t
                .eligibility
                .patterns
                .iter()
                .map(|(p, ok)| {
                    format!(
                        "{:>width$}",
                        if *ok { "yes" } else { "no" },
                        width = p.to_string().len()
                    )
                })
                .collect();
            writeln!(
                f,
                "{:<32} {:>14} {:>10} {:>8.2}% {:>7.2}%  {:<6} {:<5} {}",
                t.info.path,
                format!("{:?}", t.info.shape),
                t.numel,
                100.0 * t.sparsity(),
                100.0 * ratio(t.zeros, t.numel),
                if t.eligibility.asp { "yes" } else { "no" },
                if t.eligibility.cutlass_2_4 {
                    "yes"
                } else {
                    "no"
                },
                fits.join(" ")
            )?;
        }
        write!(
            f,
            "total: {} of {} pruned ({:.2}%), {} exact zeros",
            self.masked(),
            self.numel(),
            100.0 * self.total_sparsity(),
            self.zeros()
        )
    }
}

/// Reports the sparsity of the parameters `filter` selects and their eligibility for
/// `patterns` (empty: 2:4, 1:4, 4:8, 1:8).
///
/// # Errors
/// [`Error::NoMatch`](crate::Error::NoMatch) when the filter selects nothing.
pub fn sparsity_report<M: Module>(
    model: &M,
    filter: &ParamFilter,
    patterns: &[NmPattern],
) -> Result<SparsityReport> {
    let default_patterns: Vec<NmPattern> = [(2, 4), (1, 4), (4, 8), (1, 8)]
        .into_iter()
        .map(|(n, m)| NmPattern::new(n, m).expect("valid"))
        .collect();
    let patterns = if patterns.is_empty() {
        &default_patterns[..]
    } else {
        patterns
    };
    let found = select(model, filter, true)?;
    let tensors = found
        .into_iter()
        .map(|f| {
            let values = f.values.expect("selected parameters are read");
            let numel = values.len();
            let zeros = match &f.mask {
                Some(m) => values
                    .values()
                    .iter()
                    .zip(m.as_slice())
                    .filter(|(v, k)| !**k || **v == 0.0)
                    .count(),
                None => values.values().iter().filter(|v| **v == 0.0).count(),
            };
            TensorReport {
                eligibility: Eligibility::of(&f.info, patterns),
                numel,
                masked: f.mask.as_ref().map_or(0, |m| m.pruned()),
                zeros,
                pruned: f.mask.is_some(),
                info: f.info,
            }
        })
        .collect();
    Ok(SparsityReport { tensors })
}
