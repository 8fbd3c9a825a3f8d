//! The essential-sparsity sweep (Jaiswal et al., NeurIPS'23): one-shot global magnitude
//! pruning over a grid, the knee of the curve, and a plot.

use std::path::Path;

use burn::module::Module;

use crate::{Amount, Error, NmPattern, ParamFilter, Pruner, PruningMethod, Remainder, Result};

/// One point of a sweep: what was pruned and the metric measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    /// The sparsity of the selected weights after pruning (exact, from the masks).
    pub sparsity: f64,
    /// The N:M pattern of this point, `None` for unstructured.
    pub pattern: Option<NmPattern>,
    /// The user's metric (higher is better).
    pub metric: f64,
}

/// The result of [`essential_sparsity_sweep`]: the dense metric, the unstructured curve and the
/// N:M points.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepResult {
    /// The metric of the unpruned model.
    pub dense_metric: f64,
    /// One-shot global magnitude pruning at each grid sparsity, in grid order.
    pub unstructured: Vec<SweepPoint>,
    /// One-shot N:M magnitude pruning, one point per pattern.
    pub nm: Vec<SweepPoint>,
}

impl SweepResult {
    /// Knee rule 1 — the **essential sparsity** at tolerance `delta`: the largest grid sparsity
    /// whose metric is within `delta` (absolute) of the dense metric, with every smaller grid
    /// sparsity also within it (the curve is read from the dense end, so a lucky point after a
    /// drop does not count). `None` when even the first grid point falls out.
    pub fn essential_sparsity(&self, delta: f64) -> Option<f64> {
        let mut best = None;
        for p in &self.unstructured {
            if p.metric >= self.dense_metric - delta {
                best = Some(p.sparsity);
            } else {
                break;
            }
        }
        best
    }

    /// Knee rule 2 — the **maximum-curvature point** of the unstructured curve. Both axes are
    /// min-max normalised to `[0, 1]` (the dense point `(0, dense)` included), the curvature
    /// `κ = |y''| / (1 + y'²)^{3/2}` is estimated at each interior point with the three-point
    /// finite differences of a non-uniform grid, and the grid point with the largest κ where the
    /// curve bends downward (`y'' < 0`) is returned. `None` with fewer than three points or
    /// no downward bend.
    pub fn max_curvature_sparsity(&self) -> Option<f64> {
        let mut pts: Vec<(f64, f64)> = vec![(0.0, self.dense_metric)];
        pts.extend(self.unstructured.iter().map(|p| (p.sparsity, p.metric)));
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts.dedup_by(|a, b| a.0 == b.0);
        if pts.len() < 3 {
            return None;
        }
        let norm = |v: Vec<f64>| {
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                    (l.min(x), h.max(x))
                });
            let span = if hi > lo { hi - lo } else { 1.0 };
            v.into_iter().map(|x| (x - lo) / span).collect::<Vec<_>>()
        };
        let xs = norm(pts.iter().map(|p| p.0).collect());
        let ys = norm(pts.iter().map(|p| p.1).collect());
        let mut best: Option<(f64, f64)> = None;
        for i in 1..pts.len() - 1 {
            let (h0, h1) = (xs[i] - xs[i - 1], xs[i + 1] - xs[i]);
            let d1 = (ys[i + 1] - ys[i]) / h1 * h0 / (h0 + h1)
                + (ys[i] - ys[i - 1]) / h0 * h1 / (h0 + h1);
            let d2 = 2.0 * ((ys[i + 1] - ys[i]) / h1 - (ys[i] - ys[i - 1]) / h0) / (h0 + h1);
            if d2 >= 0.0 {
                continue;
            }
            let kappa = d2.abs() / (1.0 + d1 * d1).powf(1.5);
            if best.is_none_or(|(k, _)| kappa > k) {
                best = Some((kappa, pts[i].0));
            }
        }
        best.map(|(_, s)| s)
    }

    /// Writes a PNG plot: metric against sparsity (the unstructured curve, the N:M points, the
    /// dense level and the two knees), with an embedded DejaVu font (no system fonts needed).
    ///
    /// # Errors
    /// [`Error::Plot`] when drawing or writing fails.
    pub fn plot_png(
        &self,
        path: impl AsRef<Path>,
        title: &str,
        metric_name: &str,
        delta: f64,
    ) -> Result<()> {
        super::plot::sweep_png(self, path.as_ref(), title, metric_name, delta)
    }
}

/// Runs the essential-sparsity sweep: for each sparsity of `grid`, a fresh copy of `model` is
/// pruned once by global magnitude over the parameters `filter` selects (the paper prunes the
/// encoder/decoder `Linear` weights, not embeddings or heads), and `evaluate` measures it
/// (higher = better: accuracy, negative loss, …). Each pattern of `patterns` is evaluated the
/// same way with a one-shot N:M mask along the input dimension.
///
/// # Errors
/// [`Error::OutOfRange`] for a grid sparsity outside `[0, 1]`; [`Error::NonFinite`] when the
/// evaluation returns NaN/Inf; errors of the pruning itself (shapes that do not fit a
/// pattern).
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use pruning::{essential_sparsity_sweep, NmPattern, ParamFilter};
///
/// let device = Device::flex();
/// let model: Linear = LinearConfig::new(16, 4).init(&device);
/// let x = Tensor::<2>::ones([8, 16], &device);
/// let target = model.forward(x.clone());
/// // Metric: minus the mean squared error to the dense output.
/// let result = essential_sparsity_sweep(
///     &model,
///     &ParamFilter::linear_weights(),
///     &[0.25, 0.5, 0.75],
///     &[NmPattern::new(2, 4).unwrap()],
///     |m: &Linear| -> f64 { -(m.forward(x.clone()) - target.clone()).powi_scalar(2).mean().into_scalar::<f32>() as f64 },
/// ).unwrap();
/// assert_eq!(result.unstructured.len(), 3);
/// assert!(result.unstructured[0].metric >= result.unstructured[2].metric);
/// assert_eq!(result.nm[0].sparsity, 0.5);
/// ```
pub fn essential_sparsity_sweep<M, F>(
    model: &M,
    filter: &ParamFilter,
    grid: &[f64],
    patterns: &[NmPattern],
    mut evaluate: F,
) -> Result<SweepResult>
where
    M: Module + Clone,
    F: FnMut(&M) -> f64,
{
    let mut eval = |m: &M, what: &str| -> Result<f64> {
        let v = evaluate(m);
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: format!("the evaluation of {what}"),
                index: 0,
                value: v as f32,
            });
        }
        Ok(v)
    };
    let dense_metric = eval(model, "the dense model")?;
    let mut unstructured = Vec::with_capacity(grid.len());
    for &s in grid {
        if !(0.0..=1.0).contains(&s) {
            return Err(Error::OutOfRange {
                what: "grid sparsity".into(),
                value: s.to_string(),
                reason: "must lie in [0, 1]".into(),
            });
        }
        let pruner =
            Pruner::new(PruningMethod::GlobalMagnitude(Amount::Fraction(s))).filter(filter.clone());
        let pruned = pruner.apply(model.clone())?;
        let sparsity = crate::sparsity_report(&pruned, filter, &[])?.total_sparsity();
        unstructured.push(SweepPoint {
            sparsity,
            pattern: None,
            metric: eval(&pruned, &format!("sparsity {s}"))?,
        });
    }
    let mut nm = Vec::with_capacity(patterns.len());
    for &p in patterns {
        let pruner = Pruner::new(PruningMethod::Nm {
            pattern: p,
            remainder: Remainder::Error,
        })
        .filter(filter.clone());
        let pruned = pruner.apply(model.clone())?;
        let sparsity = crate::sparsity_report(&pruned, filter, &[])?.total_sparsity();
        nm.push(SweepPoint {
            sparsity,
            pattern: Some(p),
            metric: eval(&pruned, &format!("pattern {p}"))?,
        });
    }
    Ok(SweepResult {
        dense_metric,
        unstructured,
        nm,
    })
}

/// A sweep of unstructured `(sparsity, metric)` points only, dense metric 1 (a test fixture).
#[cfg(test)]
pub(crate) fn curve(points: &[(f64, f64)]) -> SweepResult {
    SweepResult {
        dense_metric: 1.0,
        unstructured: points
            .iter()
            .map(|&(s, m)| SweepPoint {
                sparsity: s,
                pattern: None,
                metric: m,
            })
            .collect(),
        nm: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knees_on_a_synthetic_cliff() {
        // Flat to 0.6, then a cliff.
        let r = curve(&[
            (0.2, 0.999),
            (0.4, 0.998),
            (0.6, 0.995),
            (0.7, 0.9),
            (0.8, 0.6),
            (0.9, 0.2),
        ]);
        assert_eq!(r.essential_sparsity(0.01), Some(0.6));
        assert_eq!(r.essential_sparsity(0.0001), None);
        assert_eq!(r.max_curvature_sparsity(), Some(0.6));
        // A point that recovers after a drop does not extend the essential sparsity.
        let r = curve(&[(0.2, 0.999), (0.4, 0.9), (0.6, 0.999)]);
        assert_eq!(r.essential_sparsity(0.01), Some(0.2));
        // A straight line has no downward bend.
        let r = curve(&[(0.5, 0.5), (1.0, 0.0)]);
        assert_eq!(r.max_curvature_sparsity(), None);
    }
}
