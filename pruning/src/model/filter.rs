//! Which parameters of a module to prune: by layer type and by path patterns.

/// One float parameter of a module as the pruning walk sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// The dotted module path, e.g. `encoder.layers.0.fc1.weight` (burn's record names).
    pub path: String,
    /// The type of the struct that owns the parameter, e.g. `Linear`, `Conv2d`, `Embedding`.
    pub owner: String,
    /// The parameter's shape.
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// The field name of the parameter (the last path component).
    pub fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }

    /// The dimension N:M groups run along for this parameter: the input dimension of the layer.
    ///
    /// burn `Linear` weights are `[d_in, d_out]` → 0; `Conv1d/2d/3d` weights are
    /// `[c_out, c_in / groups, k…]` → 1 (input channels, as ASP and PGF group them);
    /// `ConvTranspose1d/2d/3d` weights are `[c_in, c_out / groups, k…]` → 0. Other layers have
    /// no known input dimension (`None`): give one explicitly.
    pub fn input_dim(&self) -> Option<usize> {
        if self.name() != "weight" {
            return None;
        }
        match self.owner.as_str() {
            "Linear" if self.shape.len() == 2 => Some(0),
            "Conv1d" | "Conv2d" | "Conv3d" if self.shape.len() >= 3 => Some(1),
            "ConvTranspose1d" | "ConvTranspose2d" | "ConvTranspose3d" if self.shape.len() >= 3 => {
                Some(0)
            }
            _ => None,
        }
    }
}

/// Selects parameters of a burn module by layer type and by dotted-path glob patterns.
///
/// A parameter is selected when any include rule matches and no exclude pattern does. Patterns
/// are globs over the whole path: `*` matches any run of characters (dots included), `?` one
/// character.
///
/// ```
/// use pruning::{ParamFilter, ParamInfo};
///
/// let fc1 = ParamInfo { path: "fc1.weight".into(), owner: "Linear".into(), shape: vec![64, 32] };
/// let head = ParamInfo { path: "head.weight".into(), owner: "Linear".into(), shape: vec![32, 10] };
/// let bias = ParamInfo { path: "fc1.bias".into(), owner: "Linear".into(), shape: vec![32] };
///
/// let filter = ParamFilter::linear_weights().exclude("head.*");
/// assert!(filter.matches(&fc1));
/// assert!(!filter.matches(&head));
/// assert!(!filter.matches(&bias));
/// assert!(ParamFilter::paths(["*.bias"]).matches(&bias));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamFilter {
    owners: Vec<(String, String)>,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl ParamFilter {
    /// Selects nothing (add rules with the builder methods).
    pub fn none() -> Self {
        Self::default()
    }

    /// The `weight` of every burn `Linear` (the set essential-sparsity and most N:M recipes
    /// prune).
    pub fn linear_weights() -> Self {
        Self::none().layer("Linear", "weight")
    }

    /// The `weight` of every `Linear` and every convolution.
    pub fn linear_and_conv_weights() -> Self {
        ["Conv1d", "Conv2d", "Conv3d"]
            .into_iter()
            .fold(Self::linear_weights(), |f, t| f.layer(t, "weight"))
    }

    /// Parameters whose path matches any of the glob patterns.
    pub fn paths<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            include: patterns.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Also selects parameter `param` (a field name such as `weight`) of every struct of type
    /// `owner` (e.g. `Embedding`, `Conv2d`, or your own module's name).
    pub fn layer(mut self, owner: &str, param: &str) -> Self {
        self.owners.push((owner.to_string(), param.to_string()));
        self
    }

    /// Also selects parameters whose path matches `pattern`.
    pub fn include(mut self, pattern: &str) -> Self {
        self.include.push(pattern.to_string());
        self
    }

    /// Never selects parameters whose path matches `pattern`.
    pub fn exclude(mut self, pattern: &str) -> Self {
        self.exclude.push(pattern.to_string());
        self
    }

    /// Whether the filter selects this parameter.
    pub fn matches(&self, info: &ParamInfo) -> bool {
        let included = self
            .owners
            .iter()
            .any(|(o, p)| *o == info.owner && p == info.name())
            || self.include.iter().any(|g| glob_match(g, &info.path));
        included && !self.exclude.iter().any(|g| glob_match(g, &info.path))
    }
}

impl std::fmt::Display for ParamFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self
            .owners
            .iter()
            .map(|(o, p)| format!("{o}.{p}"))
            .collect();
        parts.extend(self.include.iter().map(|g| format!("path `{g}`")));
        write!(f, "[{}]", parts.join(", "))?;
        if !self.exclude.is_empty() {
            write!(f, " except {:?}", self.exclude)?;
        }
        Ok(())
    }
}

/// Glob match over the whole string: `*` any run (possibly empty), `?` exactly one character.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("fc?.weight", "fc1.weight"));
        assert!(!glob_match("fc?.weight", "fc12.weight"));
        assert!(glob_match("layers.*.weight", "layers.3.fc.weight"));
        assert!(!glob_match("layers.*.weight", "layers.3.fc.bias"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("a*b", "ab c"));
    }

    #[test]
    fn input_dims() {
        let info = |owner: &str, shape: Vec<usize>| ParamInfo {
            path: "x.weight".into(),
            owner: owner.into(),
            shape,
        };
        assert_eq!(info("Linear", vec![4, 8]).input_dim(), Some(0));
        assert_eq!(info("Conv2d", vec![8, 4, 3, 3]).input_dim(), Some(1));
        assert_eq!(
            info("ConvTranspose2d", vec![4, 8, 3, 3]).input_dim(),
            Some(0)
        );
        assert_eq!(info("Embedding", vec![100, 8]).input_dim(), None);
    }
}
