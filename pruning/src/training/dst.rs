//! Dynamic sparse training: layer budgets (uniform, ER, ERK) and the prune-and-grow step of
//! SET and RigL.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::mask::keep_top_k;
use crate::{Error, HostTensor, Mask, Result};

/// How a global density is spread over layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Every layer at the same density.
    Uniform,
    /// Erdős–Rényi (SET): density ∝ `(n_in + n_out)/(n_in · n_out)` over the first two dimensions
    /// only.
    Er,
    /// Erdős–Rényi-Kernel (RigL): density ∝ `(Σ dims / Π dims)^power` over all dimensions
    /// (RigL's `erk_power_scale`, default 1).
    Erk {
        /// The exponent applied to the raw score.
        power: f64,
    },
}

/// Per-layer densities that keep `density` of all weights overall, with RigL's rule for layers
/// whose density would exceed 1 (they are made dense and ε is solved again).
///
/// `dense[i]` forces layer `i` dense (e.g. the first layer); its weights still count in the
/// total, so the others get sparser to meet the budget (RigL's `custom_sparsity_map`).
///
/// # Errors
/// [`Error::OutOfRange`] when `density` is not in `(0, 1]` or the dense layers alone exceed the
/// budget; [`Error::ShapeMismatch`] when `dense` has another length; [`Error::Empty`] for no
/// layer.
///
/// ```
/// use pruning::{layer_densities, Distribution};
///
/// let shapes = [vec![64, 256], vec![256, 256], vec![256, 10]];
/// let d = layer_densities(&shapes, 0.1, Distribution::Erk { power: 1.0 }, &[]).unwrap();
/// let total: f64 = shapes.iter().zip(&d).map(|(s, d)| d * s.iter().product::<usize>() as f64).sum();
/// assert!((total / (64.0 * 256.0 + 256.0 * 256.0 + 2560.0) - 0.1).abs() < 1e-9);
/// assert!(d[2] > d[1]); // small layers are denser under ERK
/// ```
pub fn layer_densities(
    shapes: &[Vec<usize>],
    density: f64,
    distribution: Distribution,
    dense: &[bool],
) -> Result<Vec<f64>> {
    if shapes.is_empty() {
        return Err(Error::Empty {
            what: "the list of layers".into(),
        });
    }
    if !(density > 0.0 && density <= 1.0) {
        return Err(Error::OutOfRange {
            what: "density".into(),
            value: density.to_string(),
            reason: "must lie in (0, 1]".into(),
        });
    }
    if !dense.is_empty() && dense.len() != shapes.len() {
        return Err(Error::ShapeMismatch {
            what: "dense-layer flags vs layers".into(),
            expected: vec![shapes.len()],
            found: vec![dense.len()],
        });
    }
    let sizes: Vec<f64> = shapes
        .iter()
        .map(|s| s.iter().product::<usize>() as f64)
        .collect();
    let raw: Vec<f64> = shapes
        .iter()
        .map(|s| match distribution {
            Distribution::Uniform => 1.0,
            Distribution::Er => {
                let (a, b) = (s[0] as f64, s.get(1).copied().unwrap_or(1) as f64);
                (a + b) / (a * b)
            }
            Distribution::Erk { power } => {
                let sum: usize = s.iter().sum();
                let prod: usize = s.iter().product();
                (sum as f64 / prod as f64).powf(power)
            }
        })
        .collect();
    let mut is_dense: Vec<bool> = (0..shapes.len())
        .map(|i| dense.get(i).copied().unwrap_or(false))
        .collect();
    loop {
        // Σ_sparse ε·raw_l·N_l = Σ_sparse density·N_l − Σ_dense (1 − density)·N_l.
        let mut rhs = 0.0;
        let mut divisor = 0.0;
        for i in 0..shapes.len() {
            if is_dense[i] {
                rhs -= (1.0 - density) * sizes[i];
            } else {
                rhs += density * sizes[i];
                divisor += raw[i] * sizes[i];
            }
        }
        if divisor == 0.0 {
            // Every layer is dense.
            return Ok(vec![1.0; shapes.len()]);
        }
        let eps = rhs / divisor;
        if eps <= 0.0 {
            return Err(Error::OutOfRange {
                what: "density".into(),
                value: density.to_string(),
                reason: "the layers forced dense already exceed the budget".into(),
            });
        }
        let max_raw = (0..shapes.len())
            .filter(|&i| !is_dense[i])
            .map(|i| raw[i])
            .fold(f64::NEG_INFINITY, f64::max);
        if eps * max_raw > 1.0 {
            for i in 0..shapes.len() {
                if !is_dense[i] && raw[i] == max_raw {
                    is_dense[i] = true;
                }
            }
            continue;
        }
        return Ok((0..shapes.len())
            .map(|i| if is_dense[i] { 1.0 } else { eps * raw[i] })
            .collect());
    }
}

/// The number of weights RigL keeps for a layer of `size` at `density`: `size − floor((1 −
/// density)·size)` (RigL floors the number of zeros).
pub fn kept_for_density(size: usize, density: f64) -> usize {
    size - ((1.0 - density) * size as f64).floor() as usize
}

/// How new connections are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// SET: uniformly at random among inactive connections.
    Random,
    /// RigL: the inactive connections with the largest |dense gradient|.
    Gradient,
}

/// One prune-and-grow update of a layer (SET / RigL): drop the `k` active weights of smallest
/// |w|, then grow `k` among the inactive ones (including those just dropped) by `growth`.
///
/// RigL details kept: a weight dropped and regrown in the same update stays (with its value);
/// newly grown weights start at zero (the caller zeroes the dense weights outside the mask);
/// the number of active weights never changes. Ties follow the crate's rule (the reference
/// breaks them with N(0, 1e-5) noise; ours are deterministic). `k` is clamped to the number of
/// active and of inactive weights.
///
/// # Errors
/// [`Error::ShapeMismatch`] when weights, mask and gradient disagree; [`Error::Empty`] when
/// `Growth::Gradient` is asked without a gradient.
///
/// ```
/// use pruning::{prune_and_grow, Growth, HostTensor, Mask};
///
/// let w = HostTensor::new(vec![0.9, 0.1, 0.0, 0.0, 0.5, 0.0], &[6], "w").unwrap();
/// let g = HostTensor::new(vec![0.0, 0.0, 0.2, 0.8, 0.0, 0.1], &[6], "g").unwrap();
/// let mask = Mask::from_vec(vec![true, true, false, false, true, false], &[6]).unwrap();
/// let next = prune_and_grow(&w, &mask, Some(&g), 1, Growth::Gradient, 0).unwrap();
/// // Drops 0.1 (index 1), grows index 3 (largest |g| among the inactive).
/// assert_eq!(next.as_slice(), &[true, false, false, true, true, false]);
/// ```
pub fn prune_and_grow(
    weights: &HostTensor,
    mask: &Mask,
    gradient: Option<&HostTensor>,
    k: usize,
    growth: Growth,
    seed: u64,
) -> Result<Mask> {
    mask.check_shape(weights.shape(), "the weights")?;
    let active = mask.kept();
    let k = k.min(active).min(mask.len() - active);
    if k == 0 {
        return Ok(mask.clone());
    }
    // Drop: keep the active - k largest |w| among the active.
    let abs = weights.abs();
    let survivors = keep_top_k(abs.values(), Some(mask.as_slice()), active - k);
    let candidates: Vec<bool> = survivors.iter().map(|&s| !s).collect();
    let grow_scores: Vec<f32> = match growth {
        Growth::Gradient => {
            let g = gradient.ok_or_else(|| Error::Empty {
                what: "the dense gradient RigL grows by".into(),
            })?;
            if g.shape() != weights.shape() {
                return Err(Error::ShapeMismatch {
                    what: "gradient vs weights".into(),
                    expected: weights.shape().to_vec(),
                    found: g.shape().to_vec(),
                });
            }
            g.abs().into_values()
        }
        Growth::Random => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..mask.len()).map(|_| rng.random::<f32>()).collect()
        }
    };
    let grown = keep_top_k(&grow_scores, Some(&candidates), k);
    let keep = survivors
        .iter()
        .zip(&grown)
        .map(|(&s, &g)| s || g)
        .collect();
    Mask::from_vec(keep, mask.shape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn erk_matches_rigl_by_hand() {
        // Two layers 10x10 and 10x100 at density 0.5. raw = 0.2 and 0.11.
        let d = layer_densities(
            &[vec![10, 10], vec![10, 100]],
            0.5,
            Distribution::Erk { power: 1.0 },
            &[],
        )
        .unwrap();
        let eps = (0.5 * 1100.0) / (0.2 * 100.0 + 0.11 * 1000.0);
        assert!((d[0] - eps * 0.2).abs() < 1e-12 && (d[1] - eps * 0.11).abs() < 1e-12);
        // At high density the small layer saturates and becomes dense.
        let d = layer_densities(
            &[vec![10, 10], vec![10, 100]],
            0.95,
            Distribution::Erk { power: 1.0 },
            &[],
        )
        .unwrap();
        assert_eq!(d[0], 1.0);
        assert!((100.0 + d[1] * 1000.0 - 0.95 * 1100.0).abs() < 1e-9);
        let u = layer_densities(&[vec![3, 3], vec![5]], 0.3, Distribution::Uniform, &[]).unwrap();
        assert!(u.iter().all(|&x| (x - 0.3).abs() < 1e-12));
        assert!(layer_densities(&[vec![10, 10]], 0.0, Distribution::Uniform, &[]).is_err());
        assert_eq!(kept_for_density(10, 0.35), 4); // zeros = floor(6.5) = 6
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn budgets_add_up(shapes in prop::collection::vec(prop::collection::vec(1usize..40, 2), 1..6), density in 0.01f64..1.0, first_dense in any::<bool>()) {
            let total: f64 = shapes.iter().map(|s| (s[0] * s[1]) as f64).sum();
            let first = (shapes[0][0] * shapes[0][1]) as f64;
            let mut dense = vec![false; shapes.len()];
            dense[0] = first_dense && shapes.len() > 1;
            for dist in [Distribution::Uniform, Distribution::Er, Distribution::Erk { power: 1.0 }] {
                match layer_densities(&shapes, density, dist, &dense) {
                    Ok(d) => {
                        let kept: f64 = shapes.iter().zip(&d).map(|(s, d)| d * (s[0] * s[1]) as f64).sum();
                        prop_assert!((kept / total - density).abs() < 1e-9 || d.iter().all(|&x| x == 1.0));
                        prop_assert!(d.iter().all(|&x| x > 0.0 && x <= 1.0 + 1e-12));
                    }
                    Err(_) => prop_assert!(dense[0] && first >= density * total),
                }
            }
        }

        #[test]
        fn prune_and_grow_keeps_the_budget(vals in prop::collection::vec(-1.0f32..1.0, 2..80), seed in any::<u64>(), k in 0usize..40) {
            let n = vals.len();
            let w = HostTensor::new(vals.clone(), &[n], "w").unwrap();
            let g = HostTensor::new(vals.iter().rev().copied().collect(), &[n], "g").unwrap();
            let mask = Mask::from_vec((0..n).map(|i| (seed >> (i % 64)) & 1 == 1).collect(), &[n]).unwrap();
            for growth in [Growth::Random, Growth::Gradient] {
                let next = prune_and_grow(&w, &mask, Some(&g), k, growth, seed).unwrap();
                prop_assert_eq!(next.kept(), mask.kept());
            }
        }
    }
}
