//! The two dense-row primitives every host kernel here is built from, shared with
//! `sae-train`'s fused TopK step so both vectorise the same way.

/// `y += a · x` over the common length of `x` and `y`.
///
/// ```
/// let mut y = [1.0, 2.0, 3.0];
/// sae_core::kernels::axpy(2.0, &[1.0, 0.0, -1.0], &mut y);
/// assert_eq!(y, [3.0, 2.0, 1.0]);
/// ```
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `Σ a_i · b_i` over the common length of `a` and `b`, in eight interleaved partial sums (so
/// the compiler vectorises the reduction) added in a fixed order: the result is deterministic,
/// though not bit-equal to a sequential sum.
///
/// ```
/// let d = sae_core::kernels::dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
/// assert_eq!(d, 32.0);
/// ```
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// `dot` equals the sequential f64 sum within float tolerance, for any length
        /// (remainders included); `axpy` equals the element-wise update exactly.
        #[test]
        fn dot_and_axpy_equal_the_plain_loops(
            pairs in prop::collection::vec((-4.0f32..4.0, -4.0f32..4.0), 0..70),
            a in -3.0f32..3.0,
        ) {
            let (x, y): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
            let want: f64 = x.iter().zip(&y).map(|(&p, &q)| p as f64 * q as f64).sum();
            assert_relative_eq!(dot(&x, &y) as f64, want, epsilon = 1e-3, max_relative = 1e-4);
            let mut got = y.clone();
            axpy(a, &x, &mut got);
            let expected: Vec<f32> = y.iter().zip(&x).map(|(&q, &p)| q + a * p).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
