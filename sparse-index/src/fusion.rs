//! Dense + sparse score fusion by convex interpolation of normalised scores (Li et al., "To
//! Interpolate or not to Interpolate: PRF, Dense and Sparse Retrievers", SIGIR 2022):
//! `fused = α · norm(dense) + (1 − α) · norm(sparse)`.

use std::collections::HashMap;

use crate::topk::ScoredDoc;

/// How scores are normalised before interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// `(s − min) / (max − min)`; 0 when all scores are equal.
    MinMax,
    /// `(s − mean) / std` (population standard deviation); 0 when all scores are equal.
    ZScore,
}

fn normalize(scores: &[f32], norm: Normalization) -> Vec<f32> {
    if scores.is_empty() {
        return Vec::new();
    }
    match norm {
        Normalization::MinMax => {
            let lo = scores.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let range = hi - lo;
            scores
                .iter()
                .map(|&s| if range > 0.0 { (s - lo) / range } else { 0.0 })
                .collect()
        }
        Normalization::ZScore => {
            let n = scores.len() as f64;
            let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
            let var = scores
                .iter()
                .map(|&s| (f64::from(s) - mean).powi(2))
                .sum::<f64>()
                / n;
            let std = var.sqrt();
            scores
                .iter()
                .map(|&s| {
                    if std > 0.0 {
                        ((f64::from(s) - mean) / std) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        }
    }
}

/// Fuses two result lists for the same query into the `k` best by
/// `α · norm(dense) + (1 − α) · norm(sparse)`, each list normalised over its own results.
///
/// A document missing from one list gets that list's lowest normalised score (it ranked below
/// everything the list returned). Ties: ascending document id.
///
/// # Panics
/// If `alpha` is outside `[0, 1]`.
///
/// ```
/// use sparse_index::ScoredDoc;
/// use sparse_index::fusion::{Normalization, fuse_results};
///
/// let dense = [ScoredDoc { doc: 1, score: 0.9 }, ScoredDoc { doc: 2, score: 0.1 }];
/// let sparse = [ScoredDoc { doc: 2, score: 30.0 }, ScoredDoc { doc: 3, score: 10.0 }];
/// let fused = fuse_results(&dense, &sparse, 0.4, Normalization::MinMax, 10);
/// assert_eq!(fused[0].doc, 2); // 0.4 · 0 + 0.6 · 1 beats doc 1's 0.4 · 1 + 0.6 · 0
/// assert_eq!(fused.len(), 3);
/// ```
pub fn fuse_results(
    dense: &[ScoredDoc],
    sparse: &[ScoredDoc],
    alpha: f32,
    norm: Normalization,
    k: usize,
) -> Vec<ScoredDoc> {
    assert!(
        (0.0..=1.0).contains(&alpha),
        "fuse_results: alpha must be in [0, 1], found {alpha}"
    );
    let nd = normalize(&dense.iter().map(|h| h.score).collect::<Vec<_>>(), norm);
    let ns = normalize(&sparse.iter().map(|h| h.score).collect::<Vec<_>>(), norm);
    let floor = |v: &[f32]| v.iter().copied().fold(f32::INFINITY, f32::min);
    let (fd, fs) = (floor(&nd), floor(&ns));
    let mut by_doc: HashMap<u32, (Option<f32>, Option<f32>)> = HashMap::new();
    for (h, &s) in dense.iter().zip(&nd) {
        by_doc.entry(h.doc).or_default().0 = Some(s);
    }
    for (h, &s) in sparse.iter().zip(&ns) {
        by_doc.entry(h.doc).or_default().1 = Some(s);
    }
    let mut fused: Vec<ScoredDoc> = by_doc
        .into_iter()
        .map(|(doc, (d, s))| ScoredDoc {
            doc,
            score: alpha * d.unwrap_or(fd) + (1.0 - alpha) * s.unwrap_or(fs),
        })
        .collect();
    fused.sort_by(ScoredDoc::rank_cmp);
    fused.truncate(k);
    fused
}

/// Fuses candidate score matrices on a burn device (feature `burn`): row `i` holds the dense
/// and the sparse scores of the same candidates of query `i`; each row is normalised over its
/// candidates.
///
/// # Shapes
/// - `dense`, `sparse`: `[batch, n_candidates]`
/// - returns `[batch, n_candidates]`
///
/// # Panics
/// If the shapes differ or `alpha` is outside `[0, 1]`.
///
/// ```
/// use burn::prelude::*;
/// use sparse_index::fusion::{Normalization, fuse_score_tensors};
///
/// let device = Device::flex();
/// let dense = Tensor::<2>::from_floats([[0.2, 0.4, 0.6]], &device);
/// let sparse = Tensor::<2>::from_floats([[30.0, 10.0, 20.0]], &device);
/// let fused = fuse_score_tensors(dense, sparse, 0.5, Normalization::MinMax);
/// let v: Vec<f32> = fused.into_data().try_into_vec_as::<f32>().unwrap();
/// for (got, want) in v.iter().zip([0.5, 0.25, 0.75]) {
///     assert!((got - want).abs() < 1e-6);
/// }
/// ```
#[cfg(feature = "burn")]
pub fn fuse_score_tensors(
    dense: burn::prelude::Tensor<2>,
    sparse: burn::prelude::Tensor<2>,
    alpha: f32,
    norm: Normalization,
) -> burn::prelude::Tensor<2> {
    use burn::prelude::Tensor;
    assert_eq!(
        dense.dims(),
        sparse.dims(),
        "fuse_score_tensors: dense {:?} and sparse {:?} scores must have the same shape",
        dense.dims(),
        sparse.dims()
    );
    assert!(
        (0.0..=1.0).contains(&alpha),
        "fuse_score_tensors: alpha must be in [0, 1], found {alpha}"
    );
    let norm_rows = |s: Tensor<2>| -> Tensor<2> {
        match norm {
            Normalization::MinMax => {
                let lo = s.clone().min_dim(1);
                let range = s.clone().max_dim(1) - lo.clone();
                let safe = range.clone().clamp_min(f32::MIN_POSITIVE);
                ((s - lo) / safe).mask_fill(range.equal_elem(0.0), 0.0)
            }
            Normalization::ZScore => {
                let mean = s.clone().mean_dim(1);
                let centred = s - mean;
                let std = centred.clone().powi_scalar(2).mean_dim(1).sqrt();
                let safe = std.clone().clamp_min(f32::MIN_POSITIVE);
                (centred / safe).mask_fill(std.equal_elem(0.0), 0.0)
            }
        }
    };
    norm_rows(dense) * alpha + norm_rows(sparse) * (1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_and_missing_documents() {
        let dense = [
            ScoredDoc { doc: 1, score: 3.0 },
            ScoredDoc { doc: 2, score: 1.0 },
        ];
        let sparse = [ScoredDoc { doc: 3, score: 5.0 }];
        // dense z: [1, -1]; sparse z: [0] (single value).
        let fused = fuse_results(&dense, &sparse, 0.5, Normalization::ZScore, 10);
        let get = |d: u32| fused.iter().find(|h| h.doc == d).unwrap().score;
        assert_eq!(get(1), 0.5 * 1.0 + 0.5 * 0.0);
        assert_eq!(get(3), -0.5);
        assert_eq!(get(2), -0.5);
        assert_eq!(fused[1].doc, 2, "ties by document id");
    }

    #[cfg(feature = "burn")]
    #[test]
    fn tensor_fusion_matches_list_fusion() {
        use burn::prelude::*;
        let device = Device::flex();
        let d = [0.3f32, -1.0, 2.5, 0.0];
        let s = [7.0f32, 1.0, 1.0, 4.0];
        for norm in [Normalization::MinMax, Normalization::ZScore] {
            let t = fuse_score_tensors(
                Tensor::<2>::from_floats([d], &device),
                Tensor::<2>::from_floats([s], &device),
                0.3,
                norm,
            );
            let got: Vec<f32> = t.into_data().try_into_vec_as::<f32>().unwrap();
            let hits = |v: &[f32]| -> Vec<ScoredDoc> {
                v.iter()
                    .enumerate()
                    .map(|(i, &x)| ScoredDoc {
                        doc: i as u32,
                        score: x,
                    })
                    .collect()
            };
            let listed = fuse_results(&hits(&d), &hits(&s), 0.3, norm, 10);
            for h in listed {
                approx::assert_abs_diff_eq!(got[h.doc as usize], h.score, epsilon = 1e-5);
            }
        }
    }
}
