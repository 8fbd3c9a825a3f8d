//! Dataset 2: the hierarchical feature tree of the MP-SAE paper (Costa et al. 2025, after
//! Nabeshima's Matryoshka toy).

use burn::prelude::*;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::linalg::orthonormal_rows;
use super::{SyntheticBatch, SyntheticDataset};
use crate::rng::{purpose, rng_for};

/// Mixing strengths within sibling triples, by level (MP-SAE `toy_model.py`).
const EPS_CHILDREN: [f64; 9] = [
    0.0, 0.0895, 0.163, 0.226, 0.282, 0.3335, 0.3825, 0.431, 0.482,
];
/// Mixing strengths among the root's children, by level.
const EPS_PARENTS: [f64; 9] = [0.0, 0.3, 0.44, 0.529, 0.594, 0.6467, 0.692, 0.733, 0.7739];

/// Settings of [`HierarchicalTree`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HierarchicalTreeConfig {
    /// Mixing level 0–8 (0: orthogonal directions; 1: pairwise cosine ≈ 0.1 within groups).
    pub level: usize,
    /// Seed of the directions.
    pub seed: u64,
}

impl Default for HierarchicalTreeConfig {
    fn default() -> Self {
        Self { level: 1, seed: 0 }
    }
}

/// 20 read-out features in 20 dimensions arranged as a tree.
///
/// An always-active root (not read out) picks exactly one child: one of three *parents* with
/// probability 0.2 each, or one of eight *leaves* with 0.05 each. An active parent picks at most one
/// of its three children (0.2 each, none with 0.4). Features are numbered depth-first: parents 0, 4,
/// 8, their children 1–3, 5–7, 9–11, leaves 12–19; the mean L0 is `1 + 0.6·0.6 = 1.36`. Active
/// features get magnitude `1.5 + 0.25·N(0, 1)`.
///
/// Directions start orthonormal (QR of a Gaussian matrix) and are then mixed within groups —
/// `q_i ← (1 − ε) q_i + ε/(m − 1) Σ_{j≠i} q_j` for the root's 11 children with `ε_parents[level]`
/// and for each sibling triple with `ε_children[level]` — and renormalised, so that siblings share
/// direction as in real hierarchies (the setting in which absorption and hedging show).
///
/// ```
/// use burn::prelude::*;
/// use sae_train::{HierarchicalTree, HierarchicalTreeConfig, SyntheticDataset};
/// let tree = HierarchicalTree::new(HierarchicalTreeConfig::default());
/// assert_eq!((tree.d_in(), tree.num_features()), (20, 20));
/// let batch = tree.sample(0, 4, &Device::flex());
/// assert_eq!(batch.codes.len(), 4 * 20);
/// ```
#[derive(Debug, Clone)]
pub struct HierarchicalTree {
    config: HierarchicalTreeConfig,
    features: Vec<f32>,
}

/// The parents' indices, each followed by its three children.
const PARENTS: [usize; 3] = [0, 4, 8];
/// The leaves.
const LEAVES: std::ops::Range<usize> = 12..20;

fn mix_group(q: &mut [f64], n: usize, group: &[usize], eps: f64) {
    if eps == 0.0 {
        return;
    }
    let m = group.len() as f64;
    let old: Vec<Vec<f64>> = group
        .iter()
        .map(|&i| q[i * n..(i + 1) * n].to_vec())
        .collect();
    let total: Vec<f64> = (0..n).map(|c| old.iter().map(|r| r[c]).sum()).collect();
    for (g, &i) in group.iter().enumerate() {
        for c in 0..n {
            let others = total[c] - old[g][c];
            q[i * n + c] = (1.0 - eps) * old[g][c] + eps / (m - 1.0) * others;
        }
    }
}

impl HierarchicalTree {
    /// Builds the directions for the config's level and seed.
    ///
    /// # Panics
    /// If `level > 8`.
    pub fn new(config: HierarchicalTreeConfig) -> Self {
        assert!(
            config.level < EPS_CHILDREN.len(),
            "level must be in 0..=8, got {}",
            config.level
        );
        let n = 20;
        let mut rng = rng_for(config.seed, purpose::SYNTHETIC_SETUP, 0);
        let mut q: Vec<f64> = (0..n * n)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        orthonormal_rows(&mut q, n);
        let roots: Vec<usize> = PARENTS.iter().copied().chain(LEAVES).collect();
        mix_group(&mut q, n, &roots, EPS_PARENTS[config.level]);
        for p in PARENTS {
            mix_group(
                &mut q,
                n,
                &[p + 1, p + 2, p + 3],
                EPS_CHILDREN[config.level],
            );
        }
        let mut features = Vec::with_capacity(n * n);
        for row in q.chunks(n) {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            features.extend(row.iter().map(|v| (v / norm) as f32));
        }
        Self { config, features }
    }

    /// The indices of the parents and, for each, its children.
    pub fn hierarchy() -> Vec<(usize, [usize; 3])> {
        PARENTS
            .iter()
            .map(|&p| (p, [p + 1, p + 2, p + 3]))
            .collect()
    }

    /// The configuration.
    pub fn config(&self) -> &HierarchicalTreeConfig {
        &self.config
    }
}

impl SyntheticDataset for HierarchicalTree {
    fn name(&self) -> String {
        format!("hierarchical tree (level {})", self.config.level)
    }
    fn d_in(&self) -> usize {
        20
    }
    fn num_features(&self) -> usize {
        20
    }
    fn features(&self) -> &[f32] {
        &self.features
    }
    fn expected_l0(&self) -> f64 {
        1.36
    }

    fn sample(&self, index: u64, batch_size: usize, device: &Device) -> SyntheticBatch {
        let n = 20;
        let mut rng = rng_for(self.config.seed, purpose::SYNTHETIC_BATCH, index);
        let mut codes = vec![0f32; batch_size * n];
        let magnitude = |rng: &mut rand::rngs::Xoshiro256PlusPlus| {
            let z: f64 = StandardNormal.sample(rng);
            (1.5 + 0.25 * z) as f32
        };
        for b in 0..batch_size {
            let row = &mut codes[b * n..(b + 1) * n];
            // Root: three parents at 0.2 each, eight leaves at 0.05 each (sums to 1).
            let u: f64 = rng.random();
            if u < 0.6 {
                let p = PARENTS[((u / 0.2) as usize).min(2)];
                row[p] = magnitude(&mut rng);
                let v: f64 = rng.random();
                if v < 0.6 {
                    let child = p + 1 + ((v / 0.2) as usize).min(2);
                    row[child] = magnitude(&mut rng);
                }
            } else {
                let leaf = LEAVES.start + (((u - 0.6) / 0.05) as usize).min(7);
                row[leaf] = magnitude(&mut rng);
            }
        }
        SyntheticBatch::mix(self, codes, batch_size, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_follows_the_tree() {
        let device = crate::test_device();
        let tree = HierarchicalTree::new(HierarchicalTreeConfig::default());
        let rows = 20_000;
        let b = tree.sample(1, rows, &device);
        let mut l0 = 0usize;
        let mut freq = [0usize; 20];
        for row in b.codes.chunks(20) {
            let active: Vec<usize> = (0..20).filter(|&i| row[i] != 0.0).collect();
            l0 += active.len();
            active.iter().for_each(|&i| freq[i] += 1);
            // Exactly one root child; a child only under its own parent.
            let roots = active
                .iter()
                .filter(|&&i| PARENTS.contains(&i) || LEAVES.contains(&i))
                .count();
            assert_eq!(roots, 1);
            for &i in &active {
                if !PARENTS.contains(&i) && !LEAVES.contains(&i) {
                    assert!(row[(i - 1) / 4 * 4] != 0.0, "child {i} without its parent");
                }
            }
        }
        let l0 = l0 as f64 / rows as f64;
        assert!((l0 - 1.36).abs() < 0.02, "L0 {l0}");
        let p0 = freq[0] as f64 / rows as f64;
        let c1 = freq[1] as f64 / rows as f64;
        let leaf = freq[12] as f64 / rows as f64;
        assert!(
            (p0 - 0.2).abs() < 0.015 && (c1 - 0.04).abs() < 0.008 && (leaf - 0.05).abs() < 0.008
        );
    }

    #[test]
    fn level_zero_is_orthonormal_and_level_one_mixes_siblings() {
        let cos = |f: &[f32], i: usize, j: usize| -> f32 {
            (0..20).map(|c| f[i * 20 + c] * f[j * 20 + c]).sum()
        };
        let flat = HierarchicalTree::new(HierarchicalTreeConfig { level: 0, seed: 2 });
        let mixed = HierarchicalTree::new(HierarchicalTreeConfig { level: 1, seed: 2 });
        for i in 0..20 {
            approx::assert_abs_diff_eq!(cos(flat.features(), i, i), 1.0, epsilon = 1e-5);
            approx::assert_abs_diff_eq!(cos(mixed.features(), i, i), 1.0, epsilon = 1e-5);
            for j in 0..i {
                approx::assert_abs_diff_eq!(cos(flat.features(), i, j), 0.0, epsilon = 1e-5);
            }
        }
        // Siblings 1 and 2 share direction (≈ 0.1 at level 1); a child and an unrelated leaf do not.
        let sib = cos(mixed.features(), 1, 2);
        assert!((0.05..0.2).contains(&sib), "sibling cosine {sib}");
        assert!(cos(mixed.features(), 1, 13).abs() < 0.05);
    }
}
