//! Small dense linear algebra for dataset setup (f64, host).

/// Orthonormalises the rows of the `n × n` matrix `m` (modified Gram–Schmidt), as the Q of a QR
/// decomposition of `mᵀ`.
pub(crate) fn orthonormal_rows(m: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = (0..n).map(|c| m[i * n + c] * m[j * n + c]).sum();
            for c in 0..n {
                m[i * n + c] -= dot * m[j * n + c];
            }
        }
        let norm = (0..n).map(|c| m[i * n + c].powi(2)).sum::<f64>().sqrt();
        for c in 0..n {
            m[i * n + c] /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn rows_become_orthonormal() {
        let n = 5;
        // Hilbert matrix plus identity: well conditioned, far from orthogonal.
        let mut m: Vec<f64> = (0..n * n)
            .map(|i| 1.0 / ((i / n + i % n + 1) as f64) + if i / n == i % n { 1.0 } else { 0.0 })
            .collect();
        orthonormal_rows(&mut m, n);
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..n).map(|c| m[i * n + c] * m[j * n + c]).sum();
                assert_abs_diff_eq!(dot, if i == j { 1.0 } else { 0.0 }, epsilon = 1e-10);
            }
        }
    }
}
