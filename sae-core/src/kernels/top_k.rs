//! Row-wise top-k selection: a partial-selection host kernel and the tensor-op oracle.

use burn::prelude::*;
use rayon::prelude::*;

use super::ComputePath;
use super::host::{f32_slice, host_data, indices_tensor, values_tensor};

/// How a row's entries are ranked for selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rank {
    /// By value, largest first (TopK, BatchTopK).
    Value,
    /// By absolute value, largest first; the selected entries keep their sign (AbsTopK).
    Magnitude,
}

/// Row-wise top-k on host memory: for each of the `data.len() / cols` rows of the row-major
/// matrix `data`, the `k` best entries under `rank`.
///
/// Returns `(indices, values)`, each `rows × k` row-major, every row ordered best first. `values`
/// are the original entries (signed, for [`Rank::Magnitude`]).
///
/// **Tie rule**: among entries with the same score the lower column index wins, both for
/// membership in the top k and for the order within it. **NaN** scores rank as `−∞`
/// (below every finite number; selected only when a row has fewer than `k` others).
///
/// Algorithm: one pass per row with a size-k min-heap of the best entries so far, scanned in
/// blocks of 16 that are skipped with one vectorised comparison against the heap's root unless an
/// entry beats it, then a sort of the k winners: `O(cols + k log k · (replacements))` per row instead of the full `O(cols log cols)`
/// sort that burn's `topk` performs. Rows run in parallel on rayon's pool.
///
/// # Panics
/// If `cols == 0`, `k > cols`, or `data.len()` is not a multiple of `cols`.
pub fn top_k_rows(data: &[f32], cols: usize, k: usize, rank: Rank) -> (Vec<u32>, Vec<f32>) {
    assert!(cols > 0, "top_k_rows: `cols` must be positive");
    assert!(
        k <= cols,
        "top_k_rows: k = {k} exceeds the row length cols = {cols}"
    );
    assert_eq!(
        data.len() % cols,
        0,
        "top_k_rows: data length {} is not a multiple of cols = {cols}",
        data.len()
    );
    let rows = data.len() / cols;
    let mut indices = vec![0u32; rows * k];
    let mut values = vec![0f32; rows * k];
    if k == 0 || rows == 0 {
        return (indices, values);
    }
    const ROWS_PER_TASK: usize = 16;
    indices
        .par_chunks_mut(k * ROWS_PER_TASK)
        .zip(values.par_chunks_mut(k * ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, (idx_out, val_out))| {
            let mut heap: Vec<(f32, u32)> = Vec::with_capacity(k);
            let first_row = task * ROWS_PER_TASK;
            for (r, (idx_row, val_row)) in idx_out
                .chunks_exact_mut(k)
                .zip(val_out.chunks_exact_mut(k))
                .enumerate()
            {
                let row = &data[(first_row + r) * cols..(first_row + r + 1) * cols];
                match rank {
                    Rank::Value => select_row(row, k, &mut heap, |v| v),
                    Rank::Magnitude => select_row(row, k, &mut heap, f32::abs),
                }
                for (j, &(_, i)) in heap.iter().enumerate() {
                    idx_row[j] = i;
                    val_row[j] = row[i as usize];
                }
            }
        });
    (indices, values)
}

/// Score with NaN mapped to `−∞`, so comparisons are a total order.
#[inline(always)]
fn key(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else {
        score
    }
}

/// `a` is worse than `b`: lower key, or the same key and a higher index (the tie rule).
#[inline(always)]
fn worse(a: (f32, u32), b: (f32, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

/// Leaves the row's best `k` entries in `heap`, sorted best first.
#[inline(always)]
fn select_row(row: &[f32], k: usize, heap: &mut Vec<(f32, u32)>, score: impl Fn(f32) -> f32) {
    heap.clear();
    heap.extend(
        row[..k]
            .iter()
            .enumerate()
            .map(|(i, &v)| (key(score(v)), i as u32)),
    );
    // Min-heap on "worse": the root is the worst entry kept so far.
    for i in (0..k / 2).rev() {
        sift_down(heap, i);
    }
    let mut threshold = heap[0].0;
    // Blocks of 16: a branch-free comparison of the whole block against the k-th best so far
    // yields a bit mask (vectorised); only the entries whose bit is set are visited, re-checked
    // against the (possibly raised) threshold and pushed. A NaN score never compares greater.
    const BLOCK: usize = 16;
    let tail = &row[k..];
    let mut blocks = tail.chunks_exact(BLOCK);
    let mut base = k;
    for block in &mut blocks {
        let mut mask = 0u32;
        for (i, &v) in block.iter().enumerate() {
            mask |= u32::from(score(v) > threshold) << i;
        }
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let s = score(block[i]);
            // Scanning in increasing index, a later entry with an equal score loses the tie: strict >.
            if s > threshold {
                heap[0] = (s, (base + i) as u32);
                sift_down(heap, 0);
                threshold = heap[0].0;
            }
        }
        base += BLOCK;
    }
    for (i, &v) in blocks.remainder().iter().enumerate() {
        let s = score(v);
        if s > threshold {
            heap[0] = (s, (base + i) as u32);
            sift_down(heap, 0);
            threshold = heap[0].0;
        }
    }
    heap.sort_unstable_by(|a, b| {
        if worse(*b, *a) {
            std::cmp::Ordering::Less
        } else if worse(*a, *b) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

#[inline(always)]
fn sift_down(heap: &mut [(f32, u32)], mut i: usize) {
    let n = heap.len();
    loop {
        let l = 2 * i + 1;
        if l >= n {
            return;
        }
        let r = l + 1;
        let child = if r < n && worse(heap[r], heap[l]) {
            r
        } else {
            l
        };
        if worse(heap[child], heap[i]) {
            heap.swap(child, i);
            i = child;
        } else {
            return;
        }
    }
}

/// Top-k over all entries of `data` (a whole batch flattened, as BatchTopK selects): the flat
/// indices of the `k` largest entries, in increasing index order.
///
/// Same tie rule as [`top_k_rows`] (lower index wins; NaN ranks as `−∞`). Finds the
/// k-th largest score with an `O(n)` selection on a copy of the scores, then keeps every entry
/// above it and the lowest-indexed entries equal to it.
///
/// # Panics
/// If `k > data.len()`.
pub fn top_k_flat(data: &[f32], k: usize) -> Vec<u32> {
    assert!(
        k <= data.len(),
        "top_k_flat: k = {k} exceeds the number of entries {}",
        data.len()
    );
    if k == 0 {
        return Vec::new();
    }
    let mut scores: Vec<f32> = data.par_iter().map(|&v| key(v)).collect();
    // The k-th largest score: position k − 1 in descending order.
    let (_, kth, _) = scores.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    let above = data.par_iter().filter(|&&v| key(v) > kth).count();
    let mut ties_left = k - above;
    let mut out = Vec::with_capacity(k);
    for (i, &v) in data.iter().enumerate() {
        let s = key(v);
        if s > kth {
            out.push(i as u32);
        } else if s == kth && ties_left > 0 {
            out.push(i as u32);
            ties_left -= 1;
        }
    }
    debug_assert_eq!(out.len(), k);
    out
}

/// Batch-level top-k of a `[batch, n]` tensor: a `[batch, n]` mask-free selection returned as
/// dense codes, the `k_total` largest entries of the whole batch kept and every other entry
/// zeroed (BatchTopK). Differentiable in `scores` (gradient to the kept entries).
///
/// [`ComputePath::HostKernels`] selects with [`top_k_flat`] (lower flat index wins ties);
/// [`ComputePath::TensorOps`] with burn's `topk` on the flattened tensor.
///
/// # Panics
/// If `k_total` exceeds `batch · n`.
pub fn batch_top_k(scores: Tensor<2>, k_total: usize, path: ComputePath) -> Tensor<2> {
    let [batch, n] = scores.dims();
    let total = batch * n;
    assert!(
        k_total <= total,
        "batch_top_k: k_total = {k_total} exceeds batch·n = {total}"
    );
    let device = scores.device();
    let flat = scores.reshape([1, total]);
    let indices = match path {
        ComputePath::HostKernels => {
            let host = host_data(flat.clone().detach());
            indices_tensor(top_k_flat(f32_slice(&host), k_total), [1, k_total], &device)
        }
        ComputePath::TensorOps => flat.clone().topk_with_indices(k_total, 1).1,
    };
    let values = flat.clone().gather(1, indices.clone());
    flat.zeros_like()
        .scatter(1, indices, values, burn::tensor::IndexingUpdateOp::Assign)
        .reshape([batch, n])
}

/// Row-wise top-k of a `[batch, n]` tensor: `(indices [batch, k], values [batch, k])`, best
/// first, `values` gathered from `scores`.
///
/// With [`ComputePath::HostKernels`] this runs [`top_k_rows`] (tie rule: lower index wins).
/// With [`ComputePath::TensorOps`] it runs burn's `topk_with_indices` (on `scores.abs()` for
/// [`Rank::Magnitude`]) and `gather`; burn's sort is unstable, so which of several tied entries is
/// kept is unspecified there, though exactly `k` are always kept.
///
/// The returned `values` are gathered from `scores` with tensor ops in both paths when `scores`
/// is tracked by autodiff, so gradients flow to the selected entries (selection itself has no
/// gradient).
///
/// # Panics
/// If `k` exceeds `n`.
pub fn top_k(
    scores: Tensor<2>,
    k: usize,
    rank: Rank,
    path: ComputePath,
) -> (Tensor<2, Int>, Tensor<2>) {
    let [batch, n] = scores.dims();
    assert!(k <= n, "top_k: k = {k} exceeds the row length {n}");
    let device = scores.device();
    match path {
        ComputePath::HostKernels => {
            if scores.is_tracked() {
                // Keep the tracked tensor for a differentiable gather of the selected values.
                let host = host_data(scores.clone().detach());
                let (idx, _) = top_k_rows(f32_slice(&host), n, k, rank);
                let indices = indices_tensor(idx, [batch, k], &device);
                (indices.clone(), scores.gather(1, indices))
            } else {
                // Moving the tensor lets `flex` hand over its buffer without a copy.
                let host = host_data(scores);
                let (idx, vals) = top_k_rows(f32_slice(&host), n, k, rank);
                (
                    indices_tensor(idx, [batch, k], &device),
                    values_tensor(vals, [batch, k], &device),
                )
            }
        }
        ComputePath::TensorOps => {
            let indices = match rank {
                Rank::Value => scores.clone().topk_with_indices(k, 1).1,
                Rank::Magnitude => scores.clone().abs().topk_with_indices(k, 1).1,
            };
            let values = scores.gather(1, indices.clone());
            (indices, values)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use proptest::prelude::*;

    /// Brute force: sort all (score, index) pairs by the documented order, take k.
    fn reference(data: &[f32], cols: usize, k: usize, rank: Rank) -> (Vec<u32>, Vec<f32>) {
        let mut idx_out = Vec::new();
        let mut val_out = Vec::new();
        for row in data.chunks_exact(cols) {
            let mut order: Vec<usize> = (0..cols).collect();
            let s = |i: usize| {
                let v = match rank {
                    Rank::Value => row[i],
                    Rank::Magnitude => row[i].abs(),
                };
                if v.is_nan() { f32::NEG_INFINITY } else { v }
            };
            order.sort_by(|&a, &b| s(b).partial_cmp(&s(a)).unwrap().then(a.cmp(&b)));
            for &i in &order[..k] {
                idx_out.push(i as u32);
                val_out.push(row[i]);
            }
        }
        (idx_out, val_out)
    }

    fn matrix(max_rows: usize, max_cols: usize) -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
        (1..=max_rows, 1..=max_cols).prop_flat_map(|(rows, cols)| {
            // A small grid makes ties common; NaN must rank as −∞.
            let value = prop_oneof![
                8 => (-4i32..=4).prop_map(|v| v as f32 * 0.5),
                8 => -10.0f32..10.0,
                1 => Just(f32::NAN),
            ];
            (
                Just(rows),
                Just(cols),
                prop::collection::vec(value, rows * cols),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn host_top_k_equals_brute_force_with_tie_rule(
            (rows, cols, data) in matrix(6, 40),
            k_frac in 0.0f64..=1.0,
            magnitude in any::<bool>(),
        ) {
            let k = ((cols as f64) * k_frac).round() as usize;
            let rank = if magnitude { Rank::Magnitude } else { Rank::Value };
            let (idx, vals) = top_k_rows(&data, cols, k, rank);
            let (ref_idx, ref_vals) = reference(&data, cols, k, rank);
            prop_assert_eq!(idx.len(), rows * k);
            prop_assert_eq!(idx, ref_idx);
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            prop_assert_eq!(bits(vals), bits(ref_vals));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The tensor-op path keeps the same set as the host kernel whenever there are no ties.
        #[test]
        fn both_paths_select_the_same_entries_without_ties(
            rows in 1usize..5,
            cols in 1usize..30,
            seed in any::<u64>(),
            k_frac in 0.0f64..=1.0,
            magnitude in any::<bool>(),
        ) {
            let k = ((cols as f64) * k_frac).round() as usize;
            let rank = if magnitude { Rank::Magnitude } else { Rank::Value };
            // Distinct magnitudes: a permutation of 1..=n, signs alternating pseudo-randomly.
            let mut data: Vec<f32> = (0..rows * cols).map(|i| (i + 1) as f32).collect();
            let mut state = seed | 1;
            for i in (1..data.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                data.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for (i, v) in data.iter_mut().enumerate() {
                if (seed >> (i % 64)) & 1 == 1 { *v = -*v; }
            }
            let device = test_device();
            let t = Tensor::<2>::from_data(TensorData::new(data.clone(), [rows, cols]), &device);
            let (hi, hv) = top_k(t.clone(), k, rank, ComputePath::HostKernels);
            let (ti, tv) = top_k(t, k, rank, ComputePath::TensorOps);
            hi.into_data().assert_eq(&ti.into_data(), false);
            hv.into_data().assert_eq(&tv.into_data(), false);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn flat_top_k_equals_brute_force(
            (rows, cols, data) in matrix(4, 30),
            k_frac in 0.0f64..=1.0,
        ) {
            let n = rows * cols;
            let k = ((n as f64) * k_frac).round() as usize;
            let got = top_k_flat(&data, k);
            let (mut expected, _) = reference(&data, n, k, Rank::Value);
            expected.sort_unstable();
            prop_assert_eq!(got, expected);
        }

        /// BatchTopK keeps exactly k_total entries over the batch (values may be 0 where the
        /// scores are), on both paths, and they are the largest ones.
        #[test]
        fn batch_top_k_keeps_exactly_k_total(
            rows in 1usize..5,
            cols in 1usize..20,
            seed in any::<u64>(),
            k_frac in 0.0f64..=1.0,
        ) {
            let n = rows * cols;
            let k = ((n as f64) * k_frac).round() as usize;
            // Distinct positive values: a permutation of 1..=n.
            let mut data: Vec<f32> = (1..=n).map(|v| v as f32).collect();
            let mut state = seed | 1;
            for i in (1..n).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                data.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let device = test_device();
            let t = Tensor::<2>::from_data(TensorData::new(data.clone(), [rows, cols]), &device);
            for path in [ComputePath::HostKernels, ComputePath::TensorOps] {
                let out = batch_top_k(t.clone(), k, path).into_data().try_to_vec::<f32>().unwrap();
                prop_assert_eq!(out.iter().filter(|v| **v != 0.0).count(), k);
                for (o, d) in out.iter().zip(&data) {
                    // Kept iff among the k largest of 1..=n, i.e. d > n − k.
                    let kept = *d > (n - k) as f32;
                    prop_assert_eq!(*o, if kept { *d } else { 0.0 });
                }
            }
        }
    }

    #[test]
    fn nan_ranks_last_and_ties_prefer_lower_index() {
        let data = [1.0, f32::NAN, 3.0, 3.0, -5.0];
        let (idx, vals) = top_k_rows(&data, 5, 3, Rank::Value);
        assert_eq!(idx, vec![2, 3, 0]);
        assert_eq!(vals, vec![3.0, 3.0, 1.0]);
        let (idx, vals) = top_k_rows(&data, 5, 2, Rank::Magnitude);
        assert_eq!(idx, vec![4, 2]);
        assert_eq!(vals, vec![-5.0, 3.0]);
    }

    #[test]
    fn gathered_values_carry_gradient_on_both_paths() {
        let device = test_device().autodiff();
        for path in [ComputePath::HostKernels, ComputePath::TensorOps] {
            let x = Tensor::<2>::from_floats([[1.0, 4.0, 2.0]], &device).require_grad();
            let (_, v) = top_k(x.clone(), 2, Rank::Value, path);
            let grads = (v * Tensor::<2>::from_floats([[10.0, 100.0]], &device))
                .sum()
                .backward();
            x.grad(&grads)
                .unwrap()
                .into_data()
                .assert_eq(&TensorData::from([[0.0f32, 10.0, 100.0]]), false);
        }
    }
}
