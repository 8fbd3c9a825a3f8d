//! Document reordering for memory locality: similar documents get neighbouring internal ids.
//!
//! A posting-list block holds documents that are similar to each other; re-scoring a block
//! reads their forward rows. With documents in collection order those rows are scattered over
//! the whole forward index (one cache and TLB miss each); grouping similar documents makes the
//! rows of a block tend to sit together. The grouping is one pass of the same "random k-means"
//! the blocks use, over the whole collection: `n / 32` sampled documents are centroids and
//! every document joins the centroid with the largest inner product on its `doc_cut` largest
//! components. Documents are then ordered by (centroid, id). The order changes no result:
//! documents keep their ids outside the index.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::collection::SparseCollection;

/// Documents per centroid of the grouping pass.
const GROUP_SIZE: usize = 32;

/// The new order: `order[internal id] = original id`.
pub(crate) fn locality_order(docs: &SparseCollection, doc_cut: usize, seed: u64) -> Vec<u32> {
    let n = docs.len();
    let n_centroids = n / GROUP_SIZE;
    if n_centroids <= 1 {
        return (0..n as u32).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0f10_ca11);
    let centroids: Vec<u32> = rand::seq::index::sample(&mut rng, n, n_centroids)
        .into_iter()
        .map(|i| i as u32)
        .collect();

    // Inverted index over the centroids' vectors (counting sort by component).
    let dim = docs.dim() as usize;
    let mut starts = vec![0u32; dim + 1];
    for &c in &centroids {
        for &comp in docs.get(c as usize).indices() {
            starts[comp as usize + 1] += 1;
        }
    }
    for i in 0..dim {
        starts[i + 1] += starts[i];
    }
    let mut fill = starts.clone();
    let mut entries = vec![(0u32, 0f32); starts[dim] as usize];
    for (ci, &c) in centroids.iter().enumerate() {
        for (comp, v) in docs.get(c as usize).iter() {
            let slot = &mut fill[comp as usize];
            entries[*slot as usize] = (ci as u32, v);
            *slot += 1;
        }
    }

    let assignment: Vec<u32> = (0..n)
        .into_par_iter()
        .map_init(
            || {
                (
                    vec![0f32; n_centroids],
                    Vec::<u32>::new(),
                    Vec::<(u32, f32)>::new(),
                )
            },
            |(scores, touched, top), d| {
                top.clear();
                top.extend(docs.get(d).iter());
                if top.len() > doc_cut {
                    top.select_nth_unstable_by(doc_cut - 1, |a, b| b.1.total_cmp(&a.1));
                    top.truncate(doc_cut);
                }
                for &(comp, dv) in top.iter() {
                    let (s, e) = (
                        starts[comp as usize] as usize,
                        starts[comp as usize + 1] as usize,
                    );
                    for &(ci, cv) in &entries[s..e] {
                        if scores[ci as usize] == 0.0 {
                            touched.push(ci);
                        }
                        scores[ci as usize] += cv * dv;
                    }
                }
                let mut best = (u32::MAX, f32::NEG_INFINITY);
                for &ci in touched.iter() {
                    let s = scores[ci as usize];
                    if s > best.1 || (s == best.1 && ci < best.0) {
                        best = (ci, s);
                    }
                    scores[ci as usize] = 0.0;
                }
                touched.clear();
                best.0
            },
        )
        .collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&d| (assignment[d as usize], d));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::SparseVector;

    #[test]
    fn order_is_a_permutation_that_groups_similar_documents() {
        // Two interleaved groups of documents on disjoint components.
        let docs: SparseCollection = (0..256u32)
            .map(|d| {
                let base = if d % 2 == 0 { 0 } else { 100 };
                SparseVector::new(vec![base + d % 3, base + 10], vec![1.0, 2.0]).unwrap()
            })
            .collect();
        let order = locality_order(&docs, 15, 1);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..256).collect::<Vec<u32>>());
        // Neighbours in the new order mostly come from the same group.
        let same = order.windows(2).filter(|w| w[0] % 2 == w[1] % 2).count();
        assert!(same >= 240, "{same} of 255 neighbouring pairs agree");
    }
}
