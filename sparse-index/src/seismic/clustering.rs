//! Splitting one posting list into blocks: Seismic's one-pass "random k-means" with the
//! approximate inverted-index assignment (`RandomKmeansInvertedIndexApprox`).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::collection::SparseCollection;

/// Reusable per-thread buffers of the clustering (two arrays of `dim` entries).
pub(crate) struct ClusterScratch {
    /// Start of a component's entries in the centroid index, `u32::MAX` when absent.
    start: Vec<u32>,
    end: Vec<u32>,
}

impl ClusterScratch {
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            start: vec![u32::MAX; dim],
            end: vec![0; dim],
        }
    }
}

/// The blocks of one list: the documents reordered block by block, and the block lengths.
pub(crate) struct Blocks {
    pub(crate) docs: Vec<u32>,
    pub(crate) sizes: Vec<u32>,
}

/// Clusters the documents of one posting list.
///
/// 1. `n = max(1, ⌊centroid_fraction · L⌋)` documents of the list, sampled without replacement,
///    are the centroids (real documents; no iteration).
/// 2. Each document goes to the centroid with the largest inner product computed from the
///    document's `doc_cut` largest components only, through an inverted index over the
///    centroids' full vectors (ties: the earliest sampled centroid).
/// 3. Clusters of at most `min_cluster_size` documents are dissolved and their documents
///    reassigned to the best surviving centroid.
/// 4. Blocks are ordered by centroid document id, documents inside a block by id.
pub(crate) fn cluster_list(
    list: &[u32],
    docs: &SparseCollection,
    centroid_fraction: f32,
    min_cluster_size: usize,
    doc_cut: usize,
    seed: u64,
    scratch: &mut ClusterScratch,
) -> Blocks {
    let len = list.len();
    let n_centroids = ((f64::from(centroid_fraction) * len as f64).floor() as usize).max(1);
    if n_centroids <= 1 || len <= 1 {
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        let sizes = if sorted.is_empty() {
            vec![]
        } else {
            vec![len as u32]
        };
        return Blocks {
            docs: sorted,
            sizes,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centroids: Vec<u32> = rand::seq::index::sample(&mut rng, len, n_centroids)
        .into_iter()
        .map(|i| list[i])
        .collect();

    // Inverted index over the centroids: (component, centroid, value) sorted by component.
    let mut entries: Vec<(u32, u32, f32)> = Vec::new();
    for (ci, &c) in centroids.iter().enumerate() {
        for (comp, v) in docs.get(c as usize).iter() {
            entries.push((comp, ci as u32, v));
        }
    }
    entries.sort_unstable_by_key(|&(comp, ci, _)| (comp, ci));
    let mut i = 0;
    while i < entries.len() {
        let comp = entries[i].0 as usize;
        let mut j = i;
        while j < entries.len() && entries[j].0 as usize == comp {
            j += 1;
        }
        scratch.start[comp] = i as u32;
        scratch.end[comp] = j as u32;
        i = j;
    }

    let mut scores = vec![0.0f32; n_centroids];
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(doc_cut);
    let mut assign_doc = |doc: u32, allowed: Option<&[bool]>, scores: &mut Vec<f32>| -> u32 {
        let v = docs.get(doc as usize);
        top.clear();
        top.extend(v.iter());
        if top.len() > doc_cut {
            top.select_nth_unstable_by(doc_cut - 1, |a, b| b.1.total_cmp(&a.1));
            top.truncate(doc_cut);
        }
        scores.iter_mut().for_each(|s| *s = 0.0);
        for &(comp, dv) in &top {
            let s = scratch.start[comp as usize];
            if s == u32::MAX {
                continue;
            }
            for &(_, ci, cv) in &entries[s as usize..scratch.end[comp as usize] as usize] {
                scores[ci as usize] += cv * dv;
            }
        }
        let mut best: Option<(usize, f32)> = None;
        for (ci, &s) in scores.iter().enumerate() {
            if allowed.is_some_and(|a| !a[ci]) {
                continue;
            }
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((ci, s));
            }
        }
        best.map_or(0, |(ci, _)| ci as u32)
    };

    let mut assignment: Vec<u32> = list
        .iter()
        .map(|&d| assign_doc(d, None, &mut scores))
        .collect();

    let mut sizes = vec![0usize; n_centroids];
    for &a in &assignment {
        sizes[a as usize] += 1;
    }
    let survives: Vec<bool> = sizes.iter().map(|&s| s > min_cluster_size).collect();
    if survives.iter().any(|&s| s) && survives.iter().any(|&s| !s) {
        for (k, &d) in list.iter().enumerate() {
            if !survives[assignment[k] as usize] {
                assignment[k] = assign_doc(d, Some(&survives), &mut scores);
            }
        }
    }

    for &(comp, _, _) in &entries {
        scratch.start[comp as usize] = u32::MAX;
    }

    let mut order: Vec<(u32, u32)> = list
        .iter()
        .zip(&assignment)
        .map(|(&d, &a)| (centroids[a as usize], d))
        .collect();
    order.sort_unstable();
    let mut sizes = Vec::new();
    let mut k = 0;
    while k < order.len() {
        let mut j = k;
        while j < order.len() && order[j].0 == order[k].0 {
            j += 1;
        }
        sizes.push((j - k) as u32);
        k = j;
    }
    Blocks {
        docs: order.into_iter().map(|(_, d)| d).collect(),
        sizes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::SparseVector;

    #[test]
    fn blocks_partition_the_list_and_group_similar_documents() {
        // Two obvious groups: documents about components {1, 2} and about {7, 8}.
        let mut docs = SparseCollection::new();
        for d in 0..40u32 {
            let group = if d % 2 == 0 { [1, 2] } else { [7, 8] };
            let w = 1.0 + (d % 5) as f32 * 0.1;
            docs.push(&SparseVector::new(vec![0, group[0], group[1]], vec![0.1, w, w]).unwrap());
        }
        let list: Vec<u32> = (0..40).collect();
        let mut scratch = ClusterScratch::new(docs.dim() as usize);
        let blocks = cluster_list(&list, &docs, 0.1, 2, 15, 3, &mut scratch);
        let mut all = blocks.docs.clone();
        all.sort_unstable();
        assert_eq!(all, list);
        assert_eq!(blocks.sizes.iter().sum::<u32>(), 40);
        let mut start = 0;
        for &s in &blocks.sizes {
            let block = &blocks.docs[start..start + s as usize];
            assert!(s as usize > 2, "small clusters are dissolved");
            assert!(
                block.iter().all(|d| d % 2 == block[0] % 2),
                "a block mixes groups"
            );
            assert!(block.windows(2).all(|w| w[0] < w[1]));
            start += s as usize;
        }
        assert!(
            scratch.start.iter().all(|&s| s == u32::MAX),
            "scratch is reset"
        );
    }
}
