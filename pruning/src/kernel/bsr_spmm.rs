//! Block-sparse (BSR) × dense: the CSR kernel's design with `R × C` tiles.
//!
//! The rows of a tile share its columns, so every panel row loaded for a tile column feeds up to
//! four output rows at once (sub-blocks of 4, 2 and 1 rows cover any `R`); the rest — row tasks
//! of equal cost, column panels, packing, tiled stores, run-time ISA choice — is the CSR kernel's
//! (see [`csr_spmm`](super::csr_spmm)).

use std::ops::Range;

use super::isa::{Isa, fmadd, isa_dispatch};
use super::panel::{
    Operand, Panel, PanelData, Sink, linear_operands, matmul_operands, with_panels,
};
use super::schedule::{balanced_row_ranges, for_each_task, task_count};
use crate::format::BlockSparseMatrix;

/// `C = A · B` for a block-sparse `a` `[m, k]`, `b` row-major `[k, n]`, `c` row-major `[m, n]`
/// (overwritten). Runs on the current rayon pool.
///
/// # Panics
///
/// If `b.len() != k · n` or `c.len() != m · n`.
///
/// # Example
///
/// ```
/// use pruning::format::BlockSparseMatrix;
/// use pruning::kernel::bsr_matmul;
///
/// // 2 × 4 in 2 × 2 tiles: only the right tile is stored.
/// let a = BlockSparseMatrix::from_dense(&[0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0], 2, 4, 2, 2)?;
/// let b = [1.0, 1.0, 1.0, 1.0]; // [4, 1]
/// let mut c = [0.0; 2];
/// bsr_matmul(&a, &b, 1, &mut c);
/// assert_eq!(c, [3.0, 7.0]);
/// # Ok::<(), pruning::format::FormatError>(())
/// ```
pub fn bsr_matmul(a: &BlockSparseMatrix, b: &[f32], n: usize, c: &mut [f32]) {
    bsr_matmul_with(Isa::detect(), a, b, n, c);
}

/// `Y = X · Aᵀ`, a linear layer without bias, for a block-sparse weight `a` `[out, in]`; `x` is
/// row-major `[batch, in]`, `y` row-major `[batch, out]` (overwritten). Runs on the current
/// rayon pool.
///
/// # Panics
///
/// If `x.len() != batch · in` or `y.len() != batch · out`.
pub fn bsr_linear(a: &BlockSparseMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    bsr_linear_with(Isa::detect(), a, x, batch, y);
}

pub(crate) fn bsr_matmul_with(isa: Isa, a: &BlockSparseMatrix, b: &[f32], n: usize, c: &mut [f32]) {
    let (operand, sink) = matmul_operands("bsr_matmul", (a.rows(), a.cols()), b, n, c);
    run(isa, a, operand, n, sink);
}

pub(crate) fn bsr_linear_with(
    isa: Isa,
    a: &BlockSparseMatrix,
    x: &[f32],
    batch: usize,
    y: &mut [f32],
) {
    let (operand, sink) = linear_operands("bsr_linear", (a.rows(), a.cols()), x, batch, y);
    run(isa, a, operand, batch, sink);
}

fn run(isa: Isa, a: &BlockSparseMatrix, operand: Operand<'_>, n: usize, sink: Sink) {
    if n == 0 || a.rows() == 0 {
        return;
    }
    // Tasks are ranges of block rows; the cost model counts stored tiles.
    let ranges = balanced_row_ranges(a.block_indptr(), task_count());
    if n == 1 {
        let x = operand.single_column();
        for_each_task(&ranges, |block_rows| gemv_task(isa, a, block_rows, x, sink));
        return;
    }
    with_panels(operand, a.cols(), n, |prepared| {
        for_each_task(&ranges, |block_rows| {
            panels_task(isa, a, block_rows, prepared, sink)
        });
    });
}

isa_dispatch! {
    /// All column panels for one range of block rows.
    fn panels_task(
        a: &BlockSparseMatrix,
        block_rows: Range<usize>,
        panels: &[(Panel, PanelData<'_>)],
        sink: Sink,
    ) => panels_body
}

#[inline(always)]
fn panels_body<const FMA: bool>(
    a: &BlockSparseMatrix,
    block_rows: Range<usize>,
    panels: &[(Panel, PanelData<'_>)],
    sink: Sink,
) {
    for &(p, data) in panels {
        match p.width {
            // 4 rows × W lanes of accumulators: 16 vector registers at W = 64 with AVX-512.
            64 => block_rows_panel::<64, FMA>(a, block_rows.clone(), p, data, sink),
            32 => block_rows_panel::<32, FMA>(a, block_rows.clone(), p, data, sink),
            16 => block_rows_panel::<16, FMA>(a, block_rows.clone(), p, data, sink),
            8 => block_rows_panel::<8, FMA>(a, block_rows.clone(), p, data, sink),
            w => unreachable!("no micro-kernel for panel width {w}"),
        }
    }
}

#[inline(always)]
fn block_rows_panel<const W: usize, const FMA: bool>(
    a: &BlockSparseMatrix,
    block_rows: Range<usize>,
    p: Panel,
    data: PanelData<'_>,
    sink: Sink,
) {
    let (r, _) = a.block_shape();
    for br in block_rows {
        // Sub-blocks of 4, then 2, then 1 rows cover any block height.
        let mut i0 = 0;
        while i0 < r {
            let count = match r - i0 {
                left if left >= 4 => 4,
                left if left >= 2 => 2,
                _ => 1,
            };
            let rows = match count {
                4 => sub_block::<W, 4, FMA>(a, br, i0, data),
                2 => widen(sub_block::<W, 2, FMA>(a, br, i0, data)),
                _ => widen(sub_block::<W, 1, FMA>(a, br, i0, data)),
            };
            // SAFETY: rows br·R + i0 .. + count lie in the matrix and p.start + p.valid <= n;
            // block rows are disjoint per task.
            unsafe { sink.write_tile(br * r + i0, p.start, p.valid, &rows[..count]) };
            i0 += count;
        }
    }
}

/// Pads a sub-block result to 4 rows (the unused rows are never written out).
#[inline(always)]
fn widen<const W: usize, const RR: usize>(rows: [[f32; W]; RR]) -> [[f32; W]; 4] {
    let mut out = [[0.0; W]; 4];
    out[..RR].copy_from_slice(&rows);
    out
}

/// Rows `i0 .. i0 + RR` of block row `br` times one panel.
#[inline(always)]
fn sub_block<const W: usize, const RR: usize, const FMA: bool>(
    a: &BlockSparseMatrix,
    br: usize,
    i0: usize,
    data: PanelData<'_>,
) -> [[f32; W]; RR] {
    let (r, c) = a.block_shape();
    let (indptr, indices, blocks) = (a.block_indptr(), a.block_indices(), a.blocks());
    let base = data.base.as_ptr();
    let mut acc = [[0.0f32; W]; RR];
    for b in indptr[br]..indptr[br + 1] {
        let tile = &blocks[b * r * c..(b + 1) * r * c];
        let first_col = indices[b] as usize * c;
        for j in 0..c {
            // SAFETY: first_col + j < k (a BlockSparseMatrix invariant) and `with_panels`
            // asserted that the panel holds (k - 1) · stride + W floats.
            let row = unsafe { &*base.add((first_col + j) * data.stride).cast::<[f32; W]>() };
            for (ii, acc_i) in acc.iter_mut().enumerate() {
                let v = tile[(i0 + ii) * c + j];
                for t in 0..W {
                    acc_i[t] = fmadd::<FMA>(v, row[t], acc_i[t]);
                }
            }
        }
    }
    acc
}

isa_dispatch! {
    /// Matrix × vector for one range of block rows.
    fn gemv_task(a: &BlockSparseMatrix, block_rows: Range<usize>, x: &[f32], sink: Sink) => gemv_body
}

#[inline(always)]
fn gemv_body<const FMA: bool>(
    a: &BlockSparseMatrix,
    block_rows: Range<usize>,
    x: &[f32],
    sink: Sink,
) {
    let (r, c) = a.block_shape();
    let (indptr, indices, blocks) = (a.block_indptr(), a.block_indices(), a.blocks());
    for br in block_rows {
        for i in 0..r {
            let mut sum = 0.0f32;
            for b in indptr[br]..indptr[br + 1] {
                let tile_row = &blocks[b * r * c + i * c..b * r * c + (i + 1) * c];
                let xs = &x[indices[b] as usize * c..indices[b] as usize * c + c];
                for (&v, &xv) in tile_row.iter().zip(xs) {
                    sum = fmadd::<FMA>(v, xv, sum);
                }
            }
            // SAFETY: row br·R + i < m, one column; block rows are disjoint per task.
            unsafe { sink.write(br * r + i, 0, &[sum]) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{assert_close, dense_matmul, isas, masked, transpose, weight};
    use proptest::prelude::*;

    fn check_both(a: &BlockSparseMatrix, b: &[f32], n: usize) {
        let (m, k) = (a.rows(), a.cols());
        let expected = dense_matmul(&a.to_dense(), b, m, k, n);
        let x = transpose(b, k, n);
        for isa in isas() {
            let mut c = vec![f32::NAN; m * n];
            bsr_matmul_with(isa, a, b, n, &mut c);
            assert_close(&c, &expected, &format!("bsr matmul {isa:?} {m}x{k}x{n}"));
            let mut y = vec![f32::NAN; n * m];
            bsr_linear_with(isa, a, &x, n, &mut y);
            assert_close(
                &transpose(&y, n, m),
                &expected,
                &format!("bsr linear {isa:?} {m}x{k}x{n}"),
            );
        }
    }

    #[test]
    #[should_panic(expected = "bsr_matmul: c has 3 floats, expected m·n = 2·1")]
    fn a_wrong_output_length_names_the_entry_point_and_array() {
        let a = BlockSparseMatrix::from_dense(&[1.0; 8], 2, 4, 2, 2).unwrap();
        bsr_matmul(&a, &[1.0; 4], 1, &mut [0.0; 3]);
    }

    #[test]
    fn every_block_height_and_panel_width() {
        for (r, c) in [
            (1, 1),
            (1, 4),
            (2, 2),
            (3, 1),
            (4, 4),
            (5, 2),
            (8, 1),
            (7, 3),
        ] {
            let (m, k) = (r * 3, c * 5);
            let dense: Vec<f32> = (0..m * k)
                .map(|i| ((i * 31 % 13) as f32 - 6.0) / 4.0)
                .collect();
            let mask: Vec<bool> = (0..m * k)
                .map(|i| (i / k / r + i % k / c) % 3 != 1)
                .collect();
            let a = BlockSparseMatrix::from_masked(&dense, &mask, m, k, r, c).unwrap();
            for n in [1, 3, 8, 17, 64, 70] {
                let b: Vec<f32> = (0..k * n)
                    .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
                    .collect();
                check_both(&a, &b, n);
            }
        }
    }

    #[test]
    fn empty_and_threaded() {
        let a = BlockSparseMatrix::from_dense(&[0.0; 16], 4, 4, 2, 2).unwrap();
        check_both(&a, &[1.0; 4 * 9], 9);
        let (m, k, n) = (48, 32, 20);
        let dense: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let mask: Vec<bool> = (0..m * k)
            .map(|i| (i / k / 4) % 3 == 0 || i % 5 == 0)
            .collect();
        let a = BlockSparseMatrix::from_masked(&dense, &mask, m, k, 4, 2).unwrap();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 9) as f32 * 0.5).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| check_both(&a, &b, n));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn equals_the_dense_product(
            (r, c, brows, bcols) in (1usize..=5, 1usize..=4, 0usize..=4, 0usize..=6),
            n in prop_oneof![Just(1usize), 2usize..20, 60usize..70],
            seed in any::<u64>(),
        ) {
            let (m, k) = (r * brows, c * bcols);
            let value = |i: usize, salt: u64| {
                let h = (i as u64 ^ seed ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                (h % 1000) as f32 / 125.0 - 4.0
            };
            let dense: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
            let mask: Vec<bool> = (0..m * k).map(|i| value(i / c, 2) > 1.0).collect();
            let a = BlockSparseMatrix::from_masked(&dense, &mask, m, k, r, c).unwrap();
            prop_assert_eq!(a.to_dense(), masked(&dense, &mask));
            let b: Vec<f32> = (0..k * n).map(|i| value(i, 3)).collect();
            check_both(&a, &b, n);
        }

        #[test]
        fn equals_the_dense_product_with_strategy_weights(
            w in proptest::collection::vec(weight(), 6 * 8),
            b in proptest::collection::vec(weight(), 8 * 5),
        ) {
            let a = BlockSparseMatrix::from_dense(&w, 6, 8, 3, 2).unwrap();
            check_both(&a, &b, 5);
        }
    }
}
