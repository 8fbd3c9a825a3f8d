//! Which tensors each architecture stores, with which shapes, and the checks that name what is
//! wrong when a file does not match.

use std::path::Path;

use super::tensors::TensorSet;
use crate::{Architecture, Error, Result};

/// One dimension of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    /// `d_in`.
    In,
    /// `d_sae`.
    Sae,
    /// The number of archetypal candidate points (free, but equal across tensors).
    Candidates,
    /// Exactly this size.
    Fixed(usize),
}

/// A tensor's expected shape. `Scalar` accepts `[]` and `[1]` (SAELens stores 0-d buffers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    Dims(Vec<Dim>),
    Scalar,
}

/// The tensors an architecture stores, in the order they are checked.
pub(crate) fn layout(architecture: Architecture) -> Vec<(&'static str, Shape)> {
    use Dim::*;
    let d = |dims: &[Dim]| Shape::Dims(dims.to_vec());
    let standard = || {
        vec![
            ("W_enc", d(&[In, Sae])),
            ("b_enc", d(&[Sae])),
            ("W_dec", d(&[Sae, In])),
            ("b_dec", d(&[In])),
        ]
    };
    match architecture {
        Architecture::Relu | Architecture::TopK | Architecture::AbsTopK => standard(),
        Architecture::JumpRelu => {
            let mut l = standard();
            l.push(("threshold", d(&[Sae])));
            l
        }
        Architecture::BatchTopK | Architecture::Matryoshka => {
            let mut l = standard();
            l.push(("topk_threshold", Shape::Scalar));
            l
        }
        Architecture::Gated => vec![
            ("W_enc", d(&[In, Sae])),
            ("b_gate", d(&[Sae])),
            ("r_mag", d(&[Sae])),
            ("b_mag", d(&[Sae])),
            ("W_dec", d(&[Sae, In])),
            ("b_dec", d(&[In])),
        ],
        Architecture::MatchingPursuit => vec![("W_dec", d(&[Sae, In])), ("b_dec", d(&[In]))],
        Architecture::TopAfa => vec![
            ("W_enc", d(&[In, Sae])),
            ("W_dec", d(&[Sae, In])),
            ("b_dec", d(&[In])),
        ],
        Architecture::Archetypal => vec![
            ("W_enc", d(&[In, Sae])),
            ("b_enc", d(&[Sae])),
            ("candidates", d(&[Candidates, In])),
            ("mixing", d(&[Sae, Candidates])),
            ("relaxation", d(&[Sae, In])),
            ("log_multiplier", d(&[Fixed(1)])),
            ("b_dec", d(&[In])),
        ],
    }
}

/// Checks that `tensors` are exactly what `architecture` stores, with shapes consistent with
/// `d_in` and `d_sae` (which came from `dims_from`, e.g. `cfg.json`); see [`check_tensors`].
pub(crate) fn check_layout(
    path: &Path,
    architecture: Architecture,
    d_in: usize,
    d_sae: usize,
    dims_from: &str,
    tensors: &TensorSet,
) -> Result<()> {
    check_tensors(
        path,
        &layout(architecture),
        architecture.name(),
        d_in,
        d_sae,
        dims_from,
        tensors,
    )
}

/// Checks that `tensors` are exactly the `expected` ones (`owner` names the architecture or
/// format in errors).
///
/// Errors, in this order: [`Error::MissingTensor`] for the first absent tensor,
/// [`Error::UnexpectedTensor`] for the first extra one, then per tensor [`Error::TensorShape`]
/// (wrong rank, or the transpose of the expected shape) or [`Error::InconsistentDim`] (a
/// dimension that disagrees with `d_in`, `d_sae` or another tensor).
pub(crate) fn check_tensors(
    path: &Path,
    expected: &[(&str, Shape)],
    owner: &str,
    d_in: usize,
    d_sae: usize,
    dims_from: &str,
    tensors: &TensorSet,
) -> Result<()> {
    for (name, _) in expected {
        if !tensors.contains_key(*name) {
            return Err(Error::MissingTensor {
                path: path.to_path_buf(),
                name: name.to_string(),
                architecture: owner.to_string(),
            });
        }
    }
    if let Some(extra) = tensors
        .keys()
        .find(|k| !expected.iter().any(|(n, _)| n == k))
    {
        return Err(Error::UnexpectedTensor {
            path: path.to_path_buf(),
            name: extra.clone(),
            architecture: owner.to_string(),
        });
    }
    let mut candidates: Option<(usize, &str)> = None;
    for (name, shape) in expected {
        let found = tensors[*name].shape();
        let dims = match shape {
            Shape::Scalar => {
                if found.is_empty() || found == [1] {
                    continue;
                }
                return Err(Error::TensorShape {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    expected: Vec::new(),
                    found: found.to_vec(),
                });
            }
            Shape::Dims(dims) => dims,
        };
        let concrete: Vec<usize> = dims
            .iter()
            .zip(found.iter().chain(std::iter::repeat(&0)))
            .map(|(dim, &f)| match dim {
                Dim::In => d_in,
                Dim::Sae => d_sae,
                Dim::Fixed(n) => *n,
                Dim::Candidates => candidates.map_or(f, |(n, _)| n),
            })
            .collect();
        if found == concrete.as_slice() {
            if let Some(i) = dims.iter().position(|d| *d == Dim::Candidates) {
                candidates.get_or_insert((found[i], name));
            }
            continue;
        }
        let mut reversed = concrete.clone();
        reversed.reverse();
        if found.len() != concrete.len() || (concrete.len() > 1 && found == reversed.as_slice()) {
            return Err(Error::TensorShape {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: concrete,
                found: found.to_vec(),
            });
        }
        let i = (0..found.len())
            .find(|&i| found[i] != concrete[i])
            .expect("shapes differ somewhere");
        let (dim, expected_from) = match dims[i] {
            Dim::In => ("d_in", dims_from.to_string()),
            Dim::Sae => ("d_sae", dims_from.to_string()),
            Dim::Candidates => (
                "n_candidates",
                format!("tensor `{}`", candidates.map_or("", |(_, n)| n)),
            ),
            Dim::Fixed(_) => ("size", "the format".to_string()),
        };
        return Err(Error::InconsistentDim {
            path: path.to_path_buf(),
            dim,
            expected: concrete[i],
            expected_from,
            tensor: name.to_string(),
            found: found[i],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::HostTensor;

    fn tensors(entries: &[(&str, Vec<usize>)]) -> TensorSet {
        entries
            .iter()
            .map(|(n, s)| {
                let len = s.iter().product();
                (n.to_string(), HostTensor::new(s.clone(), vec![0.0; len]))
            })
            .collect()
    }

    fn standard(d_in: usize, d_sae: usize) -> Vec<(&'static str, Vec<usize>)> {
        vec![
            ("W_enc", vec![d_in, d_sae]),
            ("b_enc", vec![d_sae]),
            ("W_dec", vec![d_sae, d_in]),
            ("b_dec", vec![d_in]),
        ]
    }

    fn check(arch: Architecture, t: &TensorSet) -> Result<()> {
        check_layout(Path::new("w.safetensors"), arch, 3, 5, "cfg.json", t)
    }

    #[test]
    fn each_failure_gets_its_own_error() {
        assert!(check(Architecture::Relu, &tensors(&standard(3, 5))).is_ok());

        let mut missing = standard(3, 5);
        missing.remove(1);
        let e = check(Architecture::Relu, &tensors(&missing)).unwrap_err();
        assert!(
            matches!(e, Error::MissingTensor { ref name, .. } if name == "b_enc"),
            "{e}"
        );

        let mut extra = standard(3, 5);
        extra.push(("threshold", vec![5]));
        let e = check(Architecture::Relu, &tensors(&extra)).unwrap_err();
        assert!(matches!(e, Error::UnexpectedTensor { ref name, .. } if name == "threshold"));

        let mut transposed = standard(3, 5);
        transposed[2].1 = vec![3, 5];
        let e = check(Architecture::Relu, &tensors(&transposed)).unwrap_err();
        assert!(
            matches!(e, Error::TensorShape { ref name, ref expected, .. }
            if name == "W_dec" && expected == &vec![5, 3])
        );

        let mut rank = standard(3, 5);
        rank[1].1 = vec![5, 1];
        assert!(matches!(
            check(Architecture::Relu, &tensors(&rank)),
            Err(Error::TensorShape { .. })
        ));

        let mut wide = standard(3, 5);
        wide[3].1 = vec![4];
        let e = check(Architecture::Relu, &tensors(&wide)).unwrap_err();
        assert!(
            matches!(e, Error::InconsistentDim { dim: "d_in", expected: 3, found: 4, ref tensor, .. }
            if tensor == "b_dec")
        );
    }

    #[test]
    fn scalars_and_free_dimensions() {
        let mut b = standard(3, 5);
        b.push(("topk_threshold", vec![]));
        assert!(check(Architecture::BatchTopK, &tensors(&b)).is_ok());
        b[4].1 = vec![1];
        assert!(check(Architecture::BatchTopK, &tensors(&b)).is_ok());
        b[4].1 = vec![2];
        assert!(matches!(
            check(Architecture::BatchTopK, &tensors(&b)),
            Err(Error::TensorShape { .. })
        ));

        let arche = |mixing_cols: usize| {
            tensors(&[
                ("W_enc", vec![3, 5]),
                ("b_enc", vec![5]),
                ("candidates", vec![7, 3]),
                ("mixing", vec![5, mixing_cols]),
                ("relaxation", vec![5, 3]),
                ("log_multiplier", vec![1]),
                ("b_dec", vec![3]),
            ])
        };
        assert!(check(Architecture::Archetypal, &arche(7)).is_ok());
        let e = check(Architecture::Archetypal, &arche(6)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InconsistentDim {
                    dim: "n_candidates",
                    expected: 7,
                    found: 6,
                    ..
                }
            ),
            "{e}"
        );
    }
}
