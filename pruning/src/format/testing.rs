//! proptest strategies shared by the format and kernel tests.

use proptest::prelude::*;

/// A finite weight, zero one time in eight (so that `from_dense` and masks disagree on purpose).
pub(crate) fn weight() -> impl Strategy<Value = f32> {
    prop_oneof![1 => Just(0.0f32), 7 => -4.0f32..4.0]
}

/// A mask of `len` entries whose density is drawn first, so that empty, full and very sparse
/// masks (empty rows, all-zero matrices) all occur.
pub(crate) fn mask(len: usize) -> impl Strategy<Value = Vec<bool>> {
    prop_oneof![Just(0.0f64), Just(0.05), Just(0.3), Just(0.7), Just(1.0)].prop_flat_map(
        move |density| proptest::collection::vec(proptest::bool::weighted(density), len),
    )
}

/// `(rows, cols, dense, mask)` with `rows <= max_rows`, `cols <= max_cols` (zero included).
pub(crate) fn dense_and_mask(
    max_rows: usize,
    max_cols: usize,
) -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    (0..=max_rows, 0..=max_cols).prop_flat_map(|(rows, cols)| {
        (
            Just(rows),
            Just(cols),
            proptest::collection::vec(weight(), rows * cols),
            mask(rows * cols),
        )
    })
}

/// `dense ⊙ mask` with exact zeros where the mask is `false`.
pub(crate) fn masked(dense: &[f32], mask: &[bool]) -> Vec<f32> {
    dense
        .iter()
        .zip(mask)
        .map(|(&v, &m)| if m { v } else { 0.0 })
        .collect()
}

/// Reference product `C[m, n] = A[m, k] · B[k, n]` of row-major matrices in `f64`, with the sum
/// of `|a·b|` per entry (the scale of the rounding error an `f32` kernel may make).
pub(crate) struct Reference {
    /// The exact-ish product.
    pub(crate) value: Vec<f64>,
    /// `Σ |a_ip · b_pj|` per entry.
    pub(crate) magnitude: Vec<f64>,
}

/// See [`Reference`].
pub(crate) fn dense_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Reference {
    let mut value = vec![0.0f64; m * n];
    let mut magnitude = vec![0.0f64; m * n];
    for i in 0..m {
        for p in 0..k {
            let aip = f64::from(a[i * k + p]);
            for j in 0..n {
                let term = aip * f64::from(b[p * n + j]);
                value[i * n + j] += term;
                magnitude[i * n + j] += term.abs();
            }
        }
    }
    Reference { value, magnitude }
}

/// Asserts `found` matches the reference within `f32` rounding of the summed terms.
pub(crate) fn assert_close(found: &[f32], expected: &Reference, what: &str) {
    assert_eq!(found.len(), expected.value.len(), "{what}: length");
    for (i, &f) in found.iter().enumerate() {
        let (e, scale) = (expected.value[i], expected.magnitude[i]);
        let tol = 1e-5 * scale + 1e-6;
        assert!(
            (f64::from(f) - e).abs() <= tol,
            "{what}: element {i}: found {f}, expected {e} (tolerance {tol})"
        );
    }
}

/// Every kernel variant this CPU can run (AVX-512 detection implies AVX2 + FMA).
pub(crate) fn isas() -> Vec<crate::kernel::Isa> {
    use crate::kernel::Isa;
    match Isa::detect() {
        Isa::Avx512 => vec![Isa::Baseline, Isa::Avx2, Isa::Avx512],
        Isa::Avx2 => vec![Isa::Baseline, Isa::Avx2],
        Isa::Baseline => vec![Isa::Baseline],
    }
}

/// The transpose of a row-major `rows × cols` matrix.
pub(crate) fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = x[r * cols + c];
        }
    }
    t
}
