//! Pearson correlation, per sequence and pooled, for simulation scoring's aggregation.

/// Pearson's r of `x` and `y`; `None` when fewer than two values or either is constant
/// (delphi gets NaN there).
///
/// # Panics
/// If the slices differ in length.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(
        x.len(),
        y.len(),
        "pearson: {} values against {}",
        x.len(),
        y.len()
    );
    if x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Simulation scoring's group score (research note §1.A10.3): Pearson's r over the
/// **concatenation** of the group's sequences (true activations against simulated ones), not
/// the mean of per-sequence correlations — the two differ, and sequences that are constant
/// on their own still contribute.
///
/// ```
/// use interp_eval::metrics::{pearson, pooled_pearson};
///
/// let a = ([0.0, 1.0], [0.0, 1.0]);
/// let b = ([5.0, 6.0], [1.0, 2.0]);
/// // Each sequence alone correlates perfectly; pooled, the offsets disagree.
/// assert_eq!(pearson(&a.0, &a.1), Some(1.0));
/// assert_eq!(pearson(&b.0, &b.1), Some(1.0));
/// let pooled = pooled_pearson(&[(&a.0[..], &a.1[..]), (&b.0[..], &b.1[..])]).unwrap();
/// assert!(pooled < 0.9);
/// ```
///
/// # Panics
/// If a sequence's two slices differ in length.
pub fn pooled_pearson(sequences: &[(&[f64], &[f64])]) -> Option<f64> {
    let (x, y): (Vec<f64>, Vec<f64>) = sequences
        .iter()
        .flat_map(|(t, s)| {
            assert_eq!(t.len(), s.len(), "pooled_pearson: sequence lengths differ");
            t.iter().copied().zip(s.iter().copied())
        })
        .unzip();
    pearson(&x, &y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn concatenation_differs_from_the_mean_and_constants_are_none() {
        let seqs: [(&[f64], &[f64]); 2] = [
            (&[0.0, 1.0, 2.0], &[0.0, 1.0, 2.0]),
            (&[3.0, 3.0, 3.0], &[0.0, 1.0, 0.0]),
        ];
        assert_eq!(pearson(seqs[1].0, seqs[1].1), None, "constant truth");
        let pooled = pooled_pearson(&seqs).unwrap();
        // x = 0 1 2 3 3 3, y = 0 1 2 0 1 0.
        let x = [0.0, 1.0, 2.0, 3.0, 3.0, 3.0];
        let y = [0.0, 1.0, 2.0, 0.0, 1.0, 0.0];
        assert_relative_eq!(pooled, pearson(&x, &y).unwrap());
        assert!(
            (pooled - 1.0).abs() > 0.5,
            "the mean of defined per-sequence r would be 1"
        );
        assert_eq!(pearson(&[1.0], &[2.0]), None);
        assert_relative_eq!(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0);
    }
}
