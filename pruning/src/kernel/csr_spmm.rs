//! CSR × dense: the kernel behind [`SparseLinear`](crate::SparseLinear) on the CPU.
//!
//! Work is split three ways:
//! - **row panels across threads**: contiguous row ranges of equal non-zero count (plus a per-row
//!   cost) run as rayon tasks, so a skewed row distribution does not leave a thread idle;
//! - **column panels of the dense operand** (see [`panel`](super::panel)): each output row is
//!   accumulated `W` columns at a time in registers, while the `K × W` panel stays in L2;
//! - **the inner loop** is one broadcast of the stored value times one contiguous `W`-float row of
//!   the panel per stored entry (an axpy), `U` independent accumulator sets deep so that FMA
//!   latency never stalls narrow panels; it compiles to full-width vector FMAs (see
//!   [`isa`](super::isa)).
//!
//! A single column (`n = 1`, matrix × vector) takes a gather-dot path instead.

use std::ops::Range;

use super::isa::{Isa, fmadd, isa_dispatch};
use super::panel::{
    Operand, Panel, PanelData, Sink, linear_operands, matmul_operands, with_panels,
};
use super::schedule::{balanced_row_ranges, for_each_task, task_count};
use crate::format::CsrMatrix;

/// `C = A · B`: `a` is `[m, k]`, `b` row-major `[k, n]`, `c` row-major `[m, n]` (overwritten).
///
/// Runs on the current rayon pool (all its threads; wrap the call in
/// `ThreadPool::install` to choose how many).
///
/// # Panics
///
/// If `b.len() != k · n` or `c.len() != m · n`.
///
/// # Example
///
/// ```
/// use pruning::format::CsrMatrix;
/// use pruning::kernel::csr_matmul;
///
/// let a = CsrMatrix::from_dense(&[1.0, 0.0, 0.0, 2.0], 2, 2)?;
/// let b = [1.0, 2.0, 3.0,
///          4.0, 5.0, 6.0];
/// let mut c = [0.0; 6];
/// csr_matmul(&a, &b, 3, &mut c);
/// assert_eq!(c, [1.0, 2.0, 3.0, 8.0, 10.0, 12.0]);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
pub fn csr_matmul(a: &CsrMatrix, b: &[f32], n: usize, c: &mut [f32]) {
    csr_matmul_with(Isa::detect(), a, b, n, c);
}

/// `Y = X · Aᵀ`, a linear layer without bias: `a` is the weight `[out, in]`, `x` row-major
/// `[batch, in]`, `y` row-major `[batch, out]` (overwritten).
///
/// Runs on the current rayon pool, like [`csr_matmul`].
///
/// # Panics
///
/// If `x.len() != batch · in` or `y.len() != batch · out`.
///
/// # Example
///
/// ```
/// use pruning::format::CsrMatrix;
/// use pruning::kernel::csr_linear;
///
/// // out = 2, in = 3
/// let w = CsrMatrix::from_dense(&[1.0, 0.0, 2.0, 0.0, 3.0, 0.0], 2, 3)?;
/// let x = [1.0, 1.0, 1.0,
///          0.0, 2.0, 1.0];
/// let mut y = [0.0; 4];
/// csr_linear(&w, &x, 2, &mut y);
/// assert_eq!(y, [3.0, 3.0, 2.0, 6.0]);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
pub fn csr_linear(a: &CsrMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    csr_linear_with(Isa::detect(), a, x, batch, y);
}

pub(crate) fn csr_matmul_with(isa: Isa, a: &CsrMatrix, b: &[f32], n: usize, c: &mut [f32]) {
    let (operand, sink) = matmul_operands("csr_matmul", (a.rows(), a.cols()), b, n, c);
    run(isa, a, operand, n, sink);
}

pub(crate) fn csr_linear_with(isa: Isa, a: &CsrMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    let (operand, sink) = linear_operands("csr_linear", (a.rows(), a.cols()), x, batch, y);
    run(isa, a, operand, batch, sink);
}

fn run(isa: Isa, a: &CsrMatrix, operand: Operand<'_>, n: usize, sink: Sink) {
    if n == 0 || a.rows() == 0 {
        return;
    }
    let ranges = balanced_row_ranges(a.indptr(), task_count());
    if n == 1 {
        let x = operand.single_column();
        for_each_task(&ranges, |rows| gemv_task(isa, a, rows, x, sink));
        return;
    }
    with_panels(operand, a.cols(), n, |prepared| {
        for_each_task(&ranges, |rows| panels_task(isa, a, rows, prepared, sink));
    });
}

isa_dispatch! {
    /// All column panels for one range of rows.
    fn panels_task(a: &CsrMatrix, rows: Range<usize>, panels: &[(Panel, PanelData<'_>)], sink: Sink) => panels_body
}

#[inline(always)]
fn panels_body<const FMA: bool>(
    a: &CsrMatrix,
    rows: Range<usize>,
    panels: &[(Panel, PanelData<'_>)],
    sink: Sink,
) {
    for &(p, data) in panels {
        match p.width {
            64 => rows_panel::<64, 1, FMA>(a, rows.clone(), p, data, sink),
            32 => rows_panel::<32, 2, FMA>(a, rows.clone(), p, data, sink),
            16 => rows_panel::<16, 4, FMA>(a, rows.clone(), p, data, sink),
            8 => rows_panel::<8, 4, FMA>(a, rows.clone(), p, data, sink),
            w => unreachable!("no micro-kernel for panel width {w}"),
        }
    }
}

/// Rows per output tile: results are staged in a small L1-resident tile and written out together
/// (see [`Sink::write_tile`]).
const TILE_ROWS: usize = 16;

#[inline(always)]
fn rows_panel<const W: usize, const U: usize, const FMA: bool>(
    a: &CsrMatrix,
    rows: Range<usize>,
    p: Panel,
    data: PanelData<'_>,
    sink: Sink,
) {
    let (indptr, indices, values) = (a.indptr(), a.indices(), a.values());
    let mut tile = [[0.0f32; W]; TILE_ROWS];
    let mut first = rows.start;
    while first < rows.end {
        let count = TILE_ROWS.min(rows.end - first);
        for (i, out) in tile[..count].iter_mut().enumerate() {
            let entries = indptr[first + i]..indptr[first + i + 1];
            *out = row_times_panel::<W, U, FMA>(&indices[entries.clone()], &values[entries], data);
        }
        // SAFETY: rows first .. first + count < m and p.start + p.valid <= n by construction;
        // rows are disjoint per task.
        unsafe { sink.write_tile(first, p.start, p.valid, &tile[..count]) };
        first += count;
    }
}

/// `Σ_e values[e] · panel[cols[e]]` over one sparse row: `W` lanes, `U` accumulator sets.
#[inline(always)]
fn row_times_panel<const W: usize, const U: usize, const FMA: bool>(
    cols: &[u32],
    vals: &[f32],
    data: PanelData<'_>,
) -> [f32; W] {
    let mut acc = [[0.0f32; W]; U];
    let base = data.base.as_ptr();
    let full = cols.len() / U * U;
    let panel_row = |j: u32| -> &[f32; W] {
        // SAFETY: j < k (a CsrMatrix invariant) and `run` asserted that the panel holds
        // (k - 1) · stride + W floats.
        unsafe { &*base.add(j as usize * data.stride).cast::<[f32; W]>() }
    };
    let mut e = 0;
    while e < full {
        for (u, acc_u) in acc.iter_mut().enumerate() {
            let v = vals[e + u];
            let row = panel_row(cols[e + u]);
            for t in 0..W {
                acc_u[t] = fmadd::<FMA>(v, row[t], acc_u[t]);
            }
        }
        e += U;
    }
    while e < cols.len() {
        let (v, row) = (vals[e], panel_row(cols[e]));
        for t in 0..W {
            acc[0][t] = fmadd::<FMA>(v, row[t], acc[0][t]);
        }
        e += 1;
    }
    let mut total = acc[0];
    for acc_u in &acc[1..] {
        for t in 0..W {
            total[t] += acc_u[t];
        }
    }
    total
}

isa_dispatch! {
    /// Matrix × vector for one range of rows.
    fn gemv_task(a: &CsrMatrix, rows: Range<usize>, x: &[f32], sink: Sink) => gemv_body
}

#[inline(always)]
fn gemv_body<const FMA: bool>(a: &CsrMatrix, rows: Range<usize>, x: &[f32], sink: Sink) {
    const LANES: usize = 8;
    let (indptr, indices, values) = (a.indptr(), a.indices(), a.values());
    for r in rows {
        let (cols, vals) = (
            &indices[indptr[r]..indptr[r + 1]],
            &values[indptr[r]..indptr[r + 1]],
        );
        let mut acc = [0.0f32; LANES];
        let mut col_chunks = cols.chunks_exact(LANES);
        let mut val_chunks = vals.chunks_exact(LANES);
        for (cc, vc) in (&mut col_chunks).zip(&mut val_chunks) {
            for t in 0..LANES {
                // SAFETY: column indices of a CsrMatrix are < k = x.len().
                let xv = unsafe { *x.get_unchecked(cc[t] as usize) };
                acc[t] = fmadd::<FMA>(vc[t], xv, acc[t]);
            }
        }
        let mut sum = acc.iter().sum::<f32>();
        for (&c, &v) in col_chunks.remainder().iter().zip(val_chunks.remainder()) {
            sum = fmadd::<FMA>(v, x[c as usize], sum);
        }
        // SAFETY: r < m, one column; rows are disjoint per task.
        unsafe { sink.write(r, 0, &[sum]) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{
        assert_close, dense_and_mask, dense_matmul, isas, masked, transpose, weight,
    };
    use proptest::prelude::*;
    use rayon::prelude::*;

    fn check_both(dense: &[f32], mask: &[bool], m: usize, k: usize, b: &[f32], n: usize) {
        let a = CsrMatrix::from_masked(dense, mask, m, k).unwrap();
        let expected = dense_matmul(&masked(dense, mask), b, m, k, n);
        let x = transpose(b, k, n);
        for isa in isas() {
            let mut c = vec![f32::NAN; m * n];
            csr_matmul_with(isa, &a, b, n, &mut c);
            assert_close(&c, &expected, &format!("matmul {isa:?} {m}x{k}x{n}"));
            let mut y = vec![f32::NAN; n * m];
            csr_linear_with(isa, &a, &x, n, &mut y);
            assert_close(
                &transpose(&y, n, m),
                &expected,
                &format!("linear {isa:?} {m}x{k}x{n}"),
            );
        }
    }

    #[test]
    #[should_panic(expected = "csr_linear: x has 5 floats, expected batch·in = 2·3")]
    fn a_wrong_input_length_names_the_entry_point_and_array() {
        let w = CsrMatrix::from_dense(&[1.0; 6], 2, 3).unwrap();
        csr_linear(&w, &[0.0; 5], 2, &mut [0.0; 4]);
    }

    #[test]
    fn all_zero_and_empty_shapes() {
        check_both(&[0.0; 12], &[false; 12], 3, 4, &[1.0; 4 * 5], 5);
        check_both(&[], &[], 3, 0, &[], 7);
        check_both(&[], &[], 0, 4, &[1.0; 4 * 2], 2);
        check_both(&[1.0; 6], &[true; 6], 2, 3, &[], 0);
    }

    #[test]
    fn every_panel_width_and_the_ragged_tail() {
        let (m, k) = (7, 33);
        let dense: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let mask: Vec<bool> = (0..m * k).map(|i| i % 3 != 0 && i % 7 != 1).collect();
        for n in [1, 2, 7, 8, 9, 16, 31, 32, 64, 65, 127, 130] {
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
                .collect();
            check_both(&dense, &mask, m, k, &b, n);
        }
    }

    #[test]
    fn threads_split_the_rows() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let (m, k, n) = (50, 40, 24);
        let dense: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let mask: Vec<bool> = (0..m * k).map(|i| (i / k) % 4 != 0 && i % 3 == 0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5).collect();
        pool.install(|| check_both(&dense, &mask, m, k, &b, n));
    }

    #[test]
    fn concurrent_calls_each_get_a_pack_buffer() {
        let (m, k, batch) = (40, 300, 70);
        let dense: Vec<f32> = (0..m * k).map(|i| (i % 9) as f32 - 4.0).collect();
        let mask: Vec<bool> = (0..m * k).map(|i| i % 5 == 0).collect();
        let a = CsrMatrix::from_masked(&dense, &mask, m, k).unwrap();
        let x: Vec<f32> = (0..batch * k).map(|i| (i % 13) as f32 * 0.25).collect();
        let mut expected = vec![0.0; batch * m];
        csr_linear(&a, &x, batch, &mut expected);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            (0..12).into_par_iter().for_each(|i| {
                // Different batch sizes need differently sized buffers.
                let rows = batch - i;
                let mut y = vec![f32::NAN; rows * m];
                csr_linear(&a, &x[..rows * k], rows, &mut y);
                assert_eq!(y, expected[..rows * m]);
            })
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn equals_the_dense_product(
            (m, k, dense, mask) in dense_and_mask(9, 40),
            n in prop_oneof![Just(1usize), 2usize..20, 60usize..70],
            seed in any::<u64>(),
        ) {
            let b: Vec<f32> = (0..k * n)
                .map(|i| {
                    let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    (h % 1000) as f32 / 125.0 - 4.0
                })
                .collect();
            check_both(&dense, &mask, m, k, &b, n);
        }

        #[test]
        fn equals_the_dense_product_for_weights_from_the_strategy(
            w in proptest::collection::vec(weight(), 6 * 10),
            b in proptest::collection::vec(weight(), 10 * 3),
        ) {
            let mask: Vec<bool> = w.iter().map(|&v| v != 0.0).collect();
            check_both(&w, &mask, 6, 10, &b, 3);
        }
    }
}
