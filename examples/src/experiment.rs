//! Shared pieces of the sparse-attention experiment programs: command-line lists with typed
//! errors, averaging over groups, markdown tables.

use std::collections::BTreeMap;

use crate::attn_methods::{METHODS, Method, method};

/// A command-line value that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    /// An item of a list is not what the flag takes.
    #[error("--{flag}: `{item}` is not {expected}")]
    Bad {
        /// The flag, without dashes.
        flag: &'static str,
        /// The offending item.
        item: String,
        /// What the flag takes.
        expected: String,
    },
    /// A list with nothing in it.
    #[error("--{flag}: the list is empty")]
    Empty {
        /// The flag, without dashes.
        flag: &'static str,
    },
    /// A method name not in [`METHODS`].
    #[error("--methods: unknown method `{name}` (known: {known})")]
    UnknownMethod {
        /// The name given.
        name: String,
        /// The known names.
        known: String,
    },
}

fn items(flag: &'static str, s: &str) -> Result<Vec<String>, ArgError> {
    let v: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect();
    if v.is_empty() {
        return Err(ArgError::Empty { flag });
    }
    Ok(v)
}

/// A comma-separated list of integers in `min..=max`.
///
/// # Errors
/// [`ArgError`] naming the first bad item, or an empty list.
pub fn parse_counts(
    flag: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<Vec<usize>, ArgError> {
    items(flag, s)?
        .into_iter()
        .map(|item| match item.parse::<usize>() {
            Ok(x) if (min..=max).contains(&x) => Ok(x),
            _ => Err(ArgError::Bad {
                flag,
                item,
                expected: format!("an integer in {min}..={max}"),
            }),
        })
        .collect()
}

/// A comma-separated list of densities in `(0, 1]`.
///
/// # Errors
/// [`ArgError`] naming the first bad item, or an empty list.
pub fn parse_densities(flag: &'static str, s: &str) -> Result<Vec<f64>, ArgError> {
    items(flag, s)?
        .into_iter()
        .map(|item| match item.parse::<f64>() {
            Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
            _ => Err(ArgError::Bad {
                flag,
                item,
                expected: "a density in (0, 1]".into(),
            }),
        })
        .collect()
}

/// `all`, or a comma-separated list of layer indices and inclusive ranges `a-b`, each below
/// `n_layers`; sorted, duplicates removed.
///
/// # Errors
/// [`ArgError`] naming the first bad item, or an empty list.
pub fn parse_layers(s: &str, n_layers: usize) -> Result<Vec<usize>, ArgError> {
    if s.trim() == "all" {
        return Ok((0..n_layers).collect());
    }
    let bad = |item: &str| ArgError::Bad {
        flag: "layers",
        item: item.to_string(),
        expected: format!("`all`, a layer in 0..{n_layers} or a range `a-b`"),
    };
    let mut out = Vec::new();
    for item in items("layers", s)? {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (item.parse::<usize>(), item.parse::<usize>()),
        };
        match (a, b) {
            (Ok(a), Ok(b)) if a <= b && b < n_layers => out.extend(a..=b),
            _ => return Err(bad(&item)),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `all`, or a comma-separated list of [`METHODS`] names (in the order given).
///
/// # Errors
/// [`ArgError::UnknownMethod`] for a name not in [`METHODS`], or an empty list.
pub fn parse_methods(s: &str) -> Result<Vec<Method>, ArgError> {
    if s.trim() == "all" {
        return Ok(METHODS.to_vec());
    }
    items("methods", s)?
        .into_iter()
        .map(|name| {
            method(&name).ok_or_else(|| ArgError::UnknownMethod {
                name,
                known: METHODS
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect()
}

/// Running means of several values per key (the average over layers and windows of a table
/// cell).
#[derive(Clone, Debug)]
pub struct GroupMeans<K: Ord> {
    groups: BTreeMap<K, (Vec<f64>, usize)>,
}

impl<K: Ord> Default for GroupMeans<K> {
    fn default() -> Self {
        Self {
            groups: BTreeMap::new(),
        }
    }
}

impl<K: Ord> GroupMeans<K> {
    /// Adds one observation of `values` to `key`'s group.
    ///
    /// # Panics
    /// If `values` has another length than the group's earlier observations.
    pub fn add(&mut self, key: K, values: &[f64]) {
        let (sum, n) = self
            .groups
            .entry(key)
            .or_insert_with(|| (vec![0.0; values.len()], 0));
        assert_eq!(
            sum.len(),
            values.len(),
            "GroupMeans::add: expected {} values, found {}",
            sum.len(),
            values.len()
        );
        sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
        *n += 1;
    }

    /// The means of `key`'s group and its observation count.
    pub fn get(&self, key: &K) -> Option<(Vec<f64>, usize)> {
        self.groups
            .get(key)
            .map(|(sum, n)| (sum.iter().map(|s| s / *n as f64).collect(), *n))
    }
}

/// A GitHub-flavoured markdown table.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", header.join(" | "));
    for _ in header {
        s.push_str("---|");
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_items_are_named() {
        assert_eq!(
            parse_counts("contexts", "2048, 4096", 2, 8192).unwrap(),
            vec![2048, 4096]
        );
        let e = parse_counts("contexts", "2048,9000", 2, 8192).unwrap_err();
        assert!(e.to_string().contains("`9000`"), "{e}");
        assert!(matches!(
            parse_counts("windows", " , ", 1, 9),
            Err(ArgError::Empty { flag: "windows" })
        ));
        assert_eq!(
            parse_densities("densities", "0.05,0.5,1").unwrap(),
            vec![0.05, 0.5, 1.0]
        );
        for bad in ["0", "1.5", "x", "-0.1"] {
            assert!(parse_densities("densities", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layers_take_all_lists_and_ranges() {
        assert_eq!(parse_layers("all", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_layers("5,0-2,1", 30).unwrap(), vec![0, 1, 2, 5]);
        for bad in ["30", "3-1", "a", "1-x"] {
            let e = parse_layers(bad, 30).unwrap_err().to_string();
            assert!(e.contains("--layers"), "{e}");
        }
    }

    #[test]
    fn methods_are_looked_up_by_name() {
        assert_eq!(parse_methods("all").unwrap().len(), METHODS.len());
        let m = parse_methods("vertical-slash,oracle-element").unwrap();
        assert_eq!(m[0].name, "vertical-slash");
        assert_eq!(m[1].name, "oracle-element");
        let e = parse_methods("quest").unwrap_err().to_string();
        assert!(e.contains("`quest`") && e.contains("block-topk"), "{e}");
    }

    #[test]
    fn group_means_average_per_key() {
        let mut g = GroupMeans::default();
        g.add(("a", 1), &[1.0, 10.0]);
        g.add(("a", 1), &[3.0, 20.0]);
        g.add(("b", 1), &[5.0, 5.0]);
        assert_eq!(g.get(&("a", 1)), Some((vec![2.0, 15.0], 2)));
        assert_eq!(g.get(&("b", 1)), Some((vec![5.0, 5.0], 1)));
        assert_eq!(g.get(&("c", 1)), None);
    }

    #[test]
    fn markdown_tables_have_a_rule_under_the_header() {
        let t = markdown_table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
