//! k-row sparse decoding and its backward products, on host memory and as tensor ops.
//!
//! For k-sparse codes `(indices, values)` (`[batch, k]`) and a decoder `W [n, d]`:
//! - forward: `out[b] = Σ_j values[b, j] · W[indices[b, j]] (+ bias)` — [`sparse_decode`];
//! - gradient wrt the values: `gv[b, j] = W[indices[b, j]] · g[b]` — [`sparse_decode_backward_values`];
//! - gradient wrt the decoder rows: `gW[i] = Σ_{(b, j): indices[b, j] = i} values[b, j] · g[b]`,
//!   a scatter of outer products — [`scatter_outer`].
//!
//! The same three products give the encoder side of a TopK SAE whose upstream gradient is
//! k-sparse: with `gp [batch, k]` the gradient wrt the selected pre-activations,
//! `∂L/∂W_encᵀ = scatter_outer(indices, gp, x)` (`[d_sae, d_in]`, transpose for `W_enc`),
//! `∂L/∂b_enc = scatter_sum(indices, gp)` and `∂L/∂x = sparse_decode(indices, gp, W_encᵀ)`.
//! Every kernel touches only the `k` selected rows per example: `O(batch · k · d)` work instead of
//! the dense `O(batch · n · d)`.

use burn::prelude::*;
use rayon::prelude::*;

use super::ComputePath;
use super::host::{f32_slice, host_data, to_host_i64, values_tensor};
use super::vector_ops::{axpy, dot};
use crate::SparseCodes;

const ROWS_PER_TASK: usize = 16;

fn check_indices(indices: &[u32], n: usize, what: &str) {
    if let Some(&bad) = indices.iter().find(|&&i| i as usize >= n) {
        panic!("{what}: latent index {bad} is out of range for {n} decoder rows");
    }
}

/// Forward k-row decode on host memory.
///
/// `indices`, `values`: `batch × k` row-major; `weights`: `n × d` row-major; `bias`: `d` or none.
/// Returns `batch × d`. Rows run in parallel.
///
/// # Panics
/// On inconsistent lengths or an index `≥ n`.
pub fn sparse_decode(
    indices: &[u32],
    values: &[f32],
    k: usize,
    weights: &[f32],
    d: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert_eq!(
        indices.len(),
        values.len(),
        "sparse_decode: indices and values differ in length"
    );
    assert!(
        d > 0 && weights.len().is_multiple_of(d),
        "sparse_decode: weights length {} is not a multiple of d = {d}",
        weights.len()
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            d,
            "sparse_decode: bias has length {}, expected d = {d}",
            b.len()
        );
    }
    let n = weights.len() / d;
    check_indices(indices, n, "sparse_decode");
    let batch = indices.len().checked_div(k).unwrap_or(0);
    let mut out = vec![0f32; batch * d];
    if let Some(b) = bias {
        out.chunks_exact_mut(d)
            .for_each(|row| row.copy_from_slice(b));
    }
    if k == 0 {
        return out;
    }
    out.par_chunks_mut(d * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (r, row) in chunk.chunks_exact_mut(d).enumerate() {
                let b = task * ROWS_PER_TASK + r;
                let idx = &indices[b * k..(b + 1) * k];
                let val = &values[b * k..(b + 1) * k];
                for (&i, &v) in idx.iter().zip(val) {
                    if v == 0.0 {
                        continue;
                    }
                    let w = &weights[i as usize * d..(i as usize + 1) * d];
                    axpy(v, w, row);
                }
            }
        });
    out
}

/// Gradient of [`sparse_decode`] wrt the values: `gv[b, j] = W[indices[b, j]] · upstream[b]`.
///
/// `upstream`: `batch × d`. Returns `batch × k`.
///
/// # Panics
/// On inconsistent lengths or an index `≥ n`.
pub fn sparse_decode_backward_values(
    indices: &[u32],
    k: usize,
    weights: &[f32],
    d: usize,
    upstream: &[f32],
) -> Vec<f32> {
    assert!(
        d > 0 && weights.len().is_multiple_of(d),
        "sparse_decode_backward_values: weights length is not a multiple of d = {d}"
    );
    let n = weights.len() / d;
    check_indices(indices, n, "sparse_decode_backward_values");
    let batch = indices.len().checked_div(k).unwrap_or(0);
    assert_eq!(
        upstream.len(),
        batch * d,
        "sparse_decode_backward_values: upstream has length {}, expected batch·d = {}",
        upstream.len(),
        batch * d
    );
    let mut out = vec![0f32; batch * k];
    if k == 0 {
        return out;
    }
    out.par_chunks_mut(k * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (r, gv) in chunk.chunks_exact_mut(k).enumerate() {
                let b = task * ROWS_PER_TASK + r;
                let g = &upstream[b * d..(b + 1) * d];
                for (o, &i) in gv.iter_mut().zip(&indices[b * k..(b + 1) * k]) {
                    *o = dot(&weights[i as usize * d..(i as usize + 1) * d], g);
                }
            }
        });
    out
}

/// Scatter of outer products: `out[i] = Σ_{(b, j): indices[b, j] = i} coeffs[b, j] · rows[b]`,
/// `out` being `n × d`.
///
/// This is the gradient wrt the decoder of [`sparse_decode`] (`coeffs` = values, `rows` = the
/// upstream gradient) and, transposed, the gradient wrt a TopK encoder (`coeffs` = gradient wrt
/// the selected pre-activations, `rows` = the encoder input).
///
/// The (b, j) pairs are bucketed by latent (a counting sort), then latents are summed in
/// parallel, each in increasing `b`: the result is deterministic and needs no atomics.
///
/// # Panics
/// On inconsistent lengths or an index `≥ n`.
pub fn scatter_outer(
    indices: &[u32],
    coeffs: &[f32],
    k: usize,
    rows: &[f32],
    d: usize,
    n: usize,
) -> Vec<f32> {
    assert_eq!(
        indices.len(),
        coeffs.len(),
        "scatter_outer: indices and coeffs differ in length"
    );
    check_indices(indices, n, "scatter_outer");
    let batch = indices.len().checked_div(k).unwrap_or(0);
    assert_eq!(
        rows.len(),
        batch * d,
        "scatter_outer: rows have length {}, expected batch·d = {}",
        rows.len(),
        batch * d
    );
    let (offsets, entries) = bucket_by_latent(indices, coeffs, k, n);
    let mut out = vec![0f32; n * d];
    if d == 0 {
        return out;
    }
    out.par_chunks_mut(d).enumerate().for_each(|(i, out_row)| {
        for &(b, c) in &entries[offsets[i]..offsets[i + 1]] {
            if c != 0.0 {
                axpy(c, &rows[b as usize * d..(b as usize + 1) * d], out_row);
            }
        }
    });
    out
}

/// `out[i] = Σ_{(b, j): indices[b, j] = i} coeffs[b, j]`, `out` of length `n`: the gradient wrt
/// an encoder bias when the pre-activation gradient is k-sparse.
///
/// # Panics
/// On inconsistent lengths or an index `≥ n`.
pub fn scatter_sum(indices: &[u32], coeffs: &[f32], n: usize) -> Vec<f32> {
    assert_eq!(
        indices.len(),
        coeffs.len(),
        "scatter_sum: indices and coeffs differ in length"
    );
    check_indices(indices, n, "scatter_sum");
    let mut out = vec![0f32; n];
    for (&i, &c) in indices.iter().zip(coeffs) {
        out[i as usize] += c;
    }
    out
}

/// CSR buckets: `entries[offsets[i]..offsets[i + 1]]` are the `(row, coeff)` pairs of latent `i`
/// in increasing row order.
fn bucket_by_latent(
    indices: &[u32],
    coeffs: &[f32],
    k: usize,
    n: usize,
) -> (Vec<usize>, Vec<(u32, f32)>) {
    let mut offsets = vec![0usize; n + 1];
    for &i in indices {
        offsets[i as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut cursor = offsets.clone();
    let mut entries = vec![(0u32, 0f32); indices.len()];
    for (flat, (&i, &c)) in indices.iter().zip(coeffs).enumerate() {
        let slot = &mut cursor[i as usize];
        entries[*slot] = ((flat / k.max(1)) as u32, c);
        *slot += 1;
    }
    (offsets, entries)
}

fn host_indices(indices: Tensor<2, Int>) -> Vec<u32> {
    to_host_i64(indices)
        .into_iter()
        .map(|i| {
            u32::try_from(i)
                .unwrap_or_else(|_| panic!("latent index {i} is negative or exceeds u32"))
        })
        .collect()
}

/// Decodes k-sparse codes against `w_dec [d_sae, d_in]` (+ `b_dec [d_in]`), `[batch, d_in]`.
///
/// [`ComputePath::HostKernels`] runs [`sparse_decode`] (no autodiff graph);
/// [`ComputePath::TensorOps`] selects the `batch·k` decoder rows, scales and sums them
/// (differentiable in the values, the decoder and the bias).
pub fn sparse_decode_tensor(
    codes: &SparseCodes,
    w_dec: Tensor<2>,
    b_dec: Option<Tensor<1>>,
    path: ComputePath,
) -> Tensor<2> {
    let [batch, k] = codes.values.dims();
    let [_, d] = w_dec.dims();
    let device = w_dec.device();
    match path {
        ComputePath::HostKernels if k > 0 => {
            let idx = host_indices(codes.indices.clone());
            let vals = host_data(codes.values.clone());
            let w = host_data(w_dec);
            let bias = b_dec.map(host_data);
            let out = sparse_decode(
                &idx,
                f32_slice(&vals),
                k,
                f32_slice(&w),
                d,
                bias.as_ref().map(f32_slice),
            );
            values_tensor(out, [batch, d], &device)
        }
        _ => {
            let rows = w_dec
                .select(0, codes.indices.clone().reshape([batch * k]))
                .reshape([batch, k, d]);
            let out = (rows * codes.values.clone().unsqueeze_dim::<3>(2))
                .sum_dim(1)
                .reshape([batch, d]);
            match b_dec {
                Some(b) => out + b.unsqueeze::<2>(),
                None => out,
            }
        }
    }
}

/// Both backward products of a k-sparse decode, given the upstream gradient `[batch, d_in]`:
/// `(∂L/∂values [batch, k], ∂L/∂w_dec [d_sae, d_in])`. (The bias gradient is
/// `upstream.sum_dim(0)`.)
///
/// Use it to register hand-computed gradients (`GradientsParams::register`) when the forward ran
/// on the host kernels. [`ComputePath::TensorOps`] computes the same with `select`, products and
/// `select_assign(.., Add)`.
pub fn sparse_decode_backward(
    codes: &SparseCodes,
    w_dec: Tensor<2>,
    upstream: Tensor<2>,
    path: ComputePath,
) -> (Tensor<2>, Tensor<2>) {
    let [batch, k] = codes.values.dims();
    let [n, d] = w_dec.dims();
    let device = w_dec.device();
    match path {
        ComputePath::HostKernels if k > 0 => {
            let idx = host_indices(codes.indices.clone());
            let vals = host_data(codes.values.clone());
            let w = host_data(w_dec);
            let g = host_data(upstream);
            let gv = sparse_decode_backward_values(&idx, k, f32_slice(&w), d, f32_slice(&g));
            let gw = scatter_outer(&idx, f32_slice(&vals), k, f32_slice(&g), d, n);
            (
                values_tensor(gv, [batch, k], &device),
                values_tensor(gw, [n, d], &device),
            )
        }
        _ => {
            let flat = codes.indices.clone().reshape([batch * k]);
            let rows = w_dec.select(0, flat.clone()).reshape([batch, k, d]);
            let g3 = upstream.unsqueeze_dim::<3>(1);
            let gv = (rows * g3.clone()).sum_dim(2).reshape([batch, k]);
            let contrib = (codes.values.clone().unsqueeze_dim::<3>(2) * g3).reshape([batch * k, d]);
            let gw = Tensor::<2>::zeros([n, d], &device).select_assign(
                0,
                flat,
                contrib,
                burn::tensor::IndexingUpdateOp::Add,
            );
            (gv, gw)
        }
    }
}

/// [`scatter_outer`] on tensors: `out [n, d]`, `out[i] = Σ_{indices[b, j] = i} coeffs[b, j] · rows[b]`
/// with `indices`, `coeffs` `[batch, k]` and `rows` `[batch, d]`.
pub fn scatter_outer_tensor(
    indices: Tensor<2, Int>,
    coeffs: Tensor<2>,
    rows: Tensor<2>,
    n: usize,
    path: ComputePath,
) -> Tensor<2> {
    let [batch, k] = coeffs.dims();
    let [_, d] = rows.dims();
    let device = rows.device();
    match path {
        ComputePath::HostKernels if k > 0 => {
            let idx = host_indices(indices);
            let c = host_data(coeffs);
            let r = host_data(rows);
            values_tensor(
                scatter_outer(&idx, f32_slice(&c), k, f32_slice(&r), d, n),
                [n, d],
                &device,
            )
        }
        _ => {
            let contrib =
                (coeffs.unsqueeze_dim::<3>(2) * rows.unsqueeze_dim::<3>(1)).reshape([batch * k, d]);
            Tensor::<2>::zeros([n, d], &device).select_assign(
                0,
                indices.reshape([batch * k]),
                contrib,
                burn::tensor::IndexingUpdateOp::Add,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    /// Dense reference: scatter the codes into a dense matrix and multiply.
    fn dense_reference(indices: &[u32], values: &[f32], k: usize, w: &[f32], d: usize) -> Vec<f32> {
        let batch = indices.len() / k.max(1);
        let mut out = vec![0f32; batch * d];
        for b in 0..batch {
            for j in 0..k {
                let i = indices[b * k + j] as usize;
                for c in 0..d {
                    out[b * d + c] += values[b * k + j] * w[i * d + c];
                }
            }
        }
        out
    }

    /// (batch, k, n, d, indices, values, weights, upstream)
    type Case = (
        usize,
        usize,
        usize,
        usize,
        Vec<u32>,
        Vec<f32>,
        Vec<f32>,
        Vec<f32>,
    );

    fn case() -> impl Strategy<Value = Case> {
        (1usize..6, 1usize..5, 1usize..12, 1usize..20).prop_flat_map(|(batch, k, n, d)| {
            (
                Just(batch),
                Just(k),
                Just(n),
                Just(d),
                prop::collection::vec(0..n as u32, batch * k),
                prop::collection::vec(-2.0f32..2.0, batch * k),
                prop::collection::vec(-1.0f32..1.0, n * d),
                prop::collection::vec(-1.0f32..1.0, batch * d),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn host_kernels_equal_dense_references((batch, k, n, d, idx, vals, w, g) in case()) {
            let out = sparse_decode(&idx, &vals, k, &w, d, None);
            let reference = dense_reference(&idx, &vals, k, &w, d);
            for (a, b) in out.iter().zip(&reference) {
                prop_assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()));
            }
            // ∂/∂values: dot of the selected row with the upstream gradient.
            let gv = sparse_decode_backward_values(&idx, k, &w, d, &g);
            for b in 0..batch {
                for j in 0..k {
                    let i = idx[b * k + j] as usize;
                    let expected: f32 = (0..d).map(|c| w[i * d + c] * g[b * d + c]).sum();
                    prop_assert!((gv[b * k + j] - expected).abs() <= 1e-4 * (1.0 + expected.abs()));
                }
            }
            // ∂/∂W: dense codesᵀ · upstream.
            let gw = scatter_outer(&idx, &vals, k, &g, d, n);
            let mut dense = vec![0f32; batch * n];
            for b in 0..batch {
                for j in 0..k {
                    dense[b * n + idx[b * k + j] as usize] += vals[b * k + j];
                }
            }
            for i in 0..n {
                for c in 0..d {
                    let expected: f32 = (0..batch).map(|b| dense[b * n + i] * g[b * d + c]).sum();
                    prop_assert!((gw[i * d + c] - expected).abs() <= 1e-4 * (1.0 + expected.abs()));
                }
            }
            let gb = scatter_sum(&idx, &vals, n);
            for i in 0..n {
                let expected: f32 = (0..batch).map(|b| dense[b * n + i]).sum();
                prop_assert!((gb[i] - expected).abs() <= 1e-5 * (1.0 + expected.abs()));
            }
        }

        /// The tensor wrappers agree across paths, and the tensor-op path agrees with autodiff.
        #[test]
        fn both_paths_agree_with_autodiff((batch, k, n, d, idx, vals, w, g) in case()) {
            let device = test_device().autodiff();
            let idx_i: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
            let indices = Tensor::<2, Int>::from_data(TensorData::new(idx_i, [batch, k]), &device);
            let values = Tensor::<2>::from_data(TensorData::new(vals, [batch, k]), &device).require_grad();
            let w_dec = Tensor::<2>::from_data(TensorData::new(w, [n, d]), &device).require_grad();
            let upstream = Tensor::<2>::from_data(TensorData::new(g, [batch, d]), &device);
            let codes = SparseCodes::new(indices.clone(), values.clone());

            let out = sparse_decode_tensor(&codes, w_dec.clone(), None, ComputePath::TensorOps);
            let grads = (out.clone() * upstream.clone()).sum().backward();
            let ad_gv = values.grad(&grads).unwrap();
            let ad_gw = w_dec.grad(&grads).unwrap();

            let plain = SparseCodes::new(indices.inner(), values.inner());
            let host_out = sparse_decode_tensor(&plain, w_dec.clone().inner(), None, ComputePath::HostKernels);
            host_out.into_data().assert_approx_eq::<f32>(&out.inner().into_data(), Default::default());
            for path in [ComputePath::HostKernels, ComputePath::TensorOps] {
                let (gv, gw) = sparse_decode_backward(&plain, w_dec.clone().inner(), upstream.clone().inner(), path);
                gv.into_data().assert_approx_eq::<f32>(&ad_gv.clone().into_data(), Default::default());
                gw.into_data().assert_approx_eq::<f32>(&ad_gw.clone().into_data(), Default::default());
            }
        }
    }

    #[test]
    fn scatter_sum_adds_per_latent() {
        let gb = scatter_sum(&[1, 1, 0], &[1.0, 2.0, 4.0], 2);
        assert_relative_eq!(gb[0], 4.0);
        assert_relative_eq!(gb[1], 3.0);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn out_of_range_index_panics() {
        let _ = sparse_decode(&[3], &[1.0], 1, &[1.0, 2.0], 1, None);
    }
}
