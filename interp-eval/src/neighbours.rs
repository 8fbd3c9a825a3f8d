//! Neighbour latents: by co-occurrence (Jaccard) or by the cosine of their directions.

use burn::prelude::*;

use crate::cache::Cooccurrence;
use crate::error::{Error, Result};

/// A latent close to another, with the similarity that ranks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The neighbour latent.
    pub latent: u32,
    /// Jaccard index or cosine similarity.
    pub similarity: f32,
}

fn top_n(mut all: Vec<Neighbour>, n: usize) -> Vec<Neighbour> {
    // Highest similarity first; ties by the lower latent index.
    all.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(a.latent.cmp(&b.latent))
    });
    all.truncate(n);
    all
}

/// The `n` latents with the highest Jaccard index `C_ij / (C_ii + C_jj − C_ij)` of co-firing
/// per token with `latent` (delphi's `co-occurrence` neighbours, 250 of them); latents that
/// never co-fire are left out, and so is `latent` itself.
///
/// # Panics
/// If row `latent` of `cooccurrence` was not computed.
pub fn cooccurrence_neighbours(
    cooccurrence: &Cooccurrence,
    latent: u32,
    n: usize,
) -> Vec<Neighbour> {
    let (cols, _) = cooccurrence
        .row(latent)
        .unwrap_or_else(|| panic!("row {latent} of the co-occurrence was not computed"));
    let all = cols
        .iter()
        .filter(|&&j| j != latent)
        .map(|&j| Neighbour {
            latent: j,
            similarity: cooccurrence.jaccard(latent, j) as f32,
        })
        .collect();
    top_n(all, n)
}

/// Unit-normalised direction per latent (decoder rows, or encoder columns), for cosine
/// neighbours (delphi's `decoder_similarity` / `encoder_similarity`).
///
/// ```
/// use interp_eval::neighbours::DirectionSimilarity;
///
/// let rows = [1.0, 0.0, 2.0, 0.1, 0.0, -1.0];
/// let sim = DirectionSimilarity::from_rows(&rows, 3, 2)?;
/// let near = sim.neighbours(0, 2);
/// assert_eq!(near[0].latent, 1);
/// assert_eq!(near[1].latent, 2);
/// assert!((sim.cosine(0, 2)).abs() < 1e-6);
/// # Ok::<(), interp_eval::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionSimilarity {
    n_latents: usize,
    dim: usize,
    unit: Vec<f32>,
}

impl DirectionSimilarity {
    /// From `n_latents` rows of `dim` values, row-major. A zero row has cosine 0 with
    /// everything.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `rows` is not `n_latents · dim` long,
    /// [`Error::NonFinite`] for a NaN or infinite value.
    pub fn from_rows(rows: &[f32], n_latents: usize, dim: usize) -> Result<Self> {
        if rows.len() != n_latents.saturating_mul(dim) {
            return Err(Error::ShapeMismatch {
                what: "direction rows length (n_latents × dim)",
                expected: n_latents.saturating_mul(dim),
                found: rows.len(),
            });
        }
        if let Some((index, &value)) = rows.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "latent directions",
                index,
                value,
            });
        }
        let mut unit = rows.to_vec();
        if dim > 0 {
            for row in unit.chunks_exact_mut(dim) {
                let norm = row
                    .iter()
                    .map(|x| f64::from(*x).powi(2))
                    .sum::<f64>()
                    .sqrt();
                if norm > 0.0 {
                    row.iter_mut()
                        .for_each(|x| *x = (f64::from(*x) / norm) as f32);
                }
            }
        }
        Ok(Self {
            n_latents,
            dim,
            unit,
        })
    }

    /// From an SAE's dictionary `[d_sae, d_in]` (`SparseAutoencoder::dictionary()`), read back
    /// to the host once.
    ///
    /// # Errors
    /// As [`Self::from_rows`].
    pub fn from_dictionary(dictionary: Tensor<2>) -> Result<Self> {
        let [n, d] = dictionary.dims();
        let rows = dictionary
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("a float tensor converts to f32");
        Self::from_rows(&rows, n, d)
    }

    /// Number of latents.
    pub fn n_latents(&self) -> usize {
        self.n_latents
    }

    fn row(&self, i: usize) -> &[f32] {
        assert!(
            i < self.n_latents,
            "latent {i} is outside the {} directions",
            self.n_latents
        );
        &self.unit[i * self.dim..(i + 1) * self.dim]
    }

    /// Cosine similarity of the directions of `i` and `j`.
    ///
    /// # Panics
    /// If either is `≥ n_latents()`.
    pub fn cosine(&self, i: usize, j: usize) -> f32 {
        self.row(i)
            .iter()
            .zip(self.row(j))
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum::<f64>() as f32
    }

    /// The `n` latents whose directions have the highest cosine with `latent`'s (itself left
    /// out; ties by the lower index).
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn neighbours(&self, latent: usize, n: usize) -> Vec<Neighbour> {
        let all = (0..self.n_latents)
            .filter(|&j| j != latent)
            .map(|j| Neighbour {
                latent: j as u32,
                similarity: self.cosine(latent, j),
            })
            .collect();
        top_n(all, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheBuilder, CacheConfig, CodeEntry};
    use approx::assert_relative_eq;

    #[test]
    fn jaccard_neighbours_rank_by_overlap() {
        let mut b = CacheBuilder::new(CacheConfig::new(4, 4));
        let e = |pos, latent| CodeEntry {
            row: 0,
            pos,
            latent,
            value: 1.0,
        };
        // Latent 0 on tokens 0..4; latent 1 on 0..3 (J = 3/4); latent 2 on 3 (J = 1/4); 3 never.
        let mut entries = vec![e(0, 0), e(1, 0), e(2, 0), e(3, 0), e(3, 2)];
        entries.extend([e(0, 1), e(1, 1), e(2, 1)]);
        b.push_entries(&[0; 4], &entries).unwrap();
        let c = b.finish().cooccurrence(&[0]);
        let near = cooccurrence_neighbours(&c, 0, 10);
        assert_eq!(near.len(), 2);
        assert_eq!(near[0].latent, 1);
        assert_relative_eq!(near[0].similarity, 0.75);
        assert_relative_eq!(near[1].similarity, 0.25);
        assert_eq!(cooccurrence_neighbours(&c, 0, 1).len(), 1);
    }

    #[test]
    fn direction_checks_and_tensor_input() {
        assert!(matches!(
            DirectionSimilarity::from_rows(&[1.0, 2.0, 3.0], 2, 2),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            DirectionSimilarity::from_rows(&[1.0, f32::NAN], 1, 2),
            Err(Error::NonFinite { index: 1, .. })
        ));
        let device = Device::flex();
        let d = Tensor::<2>::from_floats([[3.0, 4.0], [0.0, 0.0], [-3.0, -4.0]], &device);
        let sim = DirectionSimilarity::from_dictionary(d).unwrap();
        assert_relative_eq!(sim.cosine(0, 2), -1.0, epsilon = 1e-6);
        assert_eq!(sim.cosine(0, 1), 0.0);
        assert_eq!(
            sim.neighbours(0, 5)
                .iter()
                .map(|n| n.latent)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}
