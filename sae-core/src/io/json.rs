//! Typed access to a JSON object read from a file: every failure names the file, the key, the
//! expected JSON type and the value found.

use std::path::Path;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// Reads and parses a JSON file whose top level must be an object.
pub(crate) fn read_json_object(path: &Path) -> Result<Map<String, Value>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::ConfigType {
            path: path.to_path_buf(),
            key: "(top level)".into(),
            expected: "a JSON object",
            found: describe(&other),
        }),
    }
}

/// A JSON value as short text for error messages.
pub(crate) fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let short: String = text.chars().take(77).collect();
        format!("{short}...")
    } else {
        text
    }
}

/// A JSON object with the file it came from and its key prefix (for nested objects).
pub(crate) struct Fields<'a> {
    path: &'a Path,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The top-level object of `path`.
    pub(crate) fn new(path: &'a Path, map: &'a Map<String, Value>) -> Self {
        Self {
            path,
            prefix: String::new(),
            map,
        }
    }

    /// The full (dotted) name of `key`.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The raw value of `key`, treating JSON `null` as absent.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Value) -> Error {
        Error::ConfigType {
            path: self.path.to_path_buf(),
            key: self.key(key),
            expected,
            found: describe(found),
        }
    }

    fn missing(&self, key: &str) -> Error {
        Error::MissingConfigKey {
            path: self.path.to_path_buf(),
            key: self.key(key),
        }
    }

    /// An invalid-value error for `key`.
    pub(crate) fn invalid(&self, key: &str, value: &Value, reason: impl Into<String>) -> Error {
        Error::InvalidConfigValue {
            path: self.path.to_path_buf(),
            key: self.key(key),
            value: describe(value),
            reason: reason.into(),
        }
    }

    /// A non-negative integer, if present.
    pub(crate) fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.raw(key)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| self.wrong(key, "a non-negative integer", v))
            })
            .transpose()
    }

    /// A required non-negative integer.
    pub(crate) fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.missing(key))
    }

    /// A number, if present.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.raw(key)
            .map(|v| v.as_f64().ok_or_else(|| self.wrong(key, "a number", v)))
            .transpose()
    }

    /// A boolean, if present.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.raw(key)
            .map(|v| v.as_bool().ok_or_else(|| self.wrong(key, "a boolean", v)))
            .transpose()
    }

    /// A string, if present.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.raw(key)
            .map(|v| v.as_str().ok_or_else(|| self.wrong(key, "a string", v)))
            .transpose()
    }

    /// A required string.
    pub(crate) fn str(&self, key: &str) -> Result<&'a str> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A nested object, if present.
    pub(crate) fn opt_object(&self, key: &str) -> Result<Option<Fields<'a>>> {
        self.raw(key)
            .map(|v| match v {
                Value::Object(map) => Ok(Fields {
                    path: self.path,
                    prefix: format!("{}{key}.", self.prefix),
                    map,
                }),
                other => Err(self.wrong(key, "a JSON object", other)),
            })
            .transpose()
    }

    /// A list of non-negative integers, if present.
    pub(crate) fn opt_usize_list(&self, key: &str) -> Result<Option<Vec<usize>>> {
        self.raw(key)
            .map(|v| {
                let wrong = || self.wrong(key, "a list of non-negative integers", v);
                v.as_array()
                    .ok_or_else(wrong)?
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(wrong)
                    })
                    .collect()
            })
            .transpose()
    }

    /// The underlying map.
    pub(crate) fn map(&self) -> &'a Map<String, Value> {
        self.map
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn typed_getters_name_key_expected_and_found() {
        let map =
            object(json!({"d_in": "16", "k": 4, "on": true, "meta": {"n": -1}, "w": [1, "x"]}));
        let f = Fields::new(Path::new("cfg.json"), &map);
        assert_eq!(f.usize("k").unwrap(), 4);
        assert_eq!(f.opt_bool("on").unwrap(), Some(true));
        let e = f.usize("d_in").unwrap_err().to_string();
        assert_eq!(
            e,
            "cfg.json: config key `d_in` should be a non-negative integer, found \"16\""
        );
        let e = f.usize("absent").unwrap_err();
        assert!(matches!(e, Error::MissingConfigKey { ref key, .. } if key == "absent"));
        let meta = f.opt_object("meta").unwrap().unwrap();
        let e = meta.opt_usize("n").unwrap_err();
        assert!(matches!(e, Error::ConfigType { ref key, .. } if key == "meta.n"));
        assert!(f.opt_usize_list("w").is_err());
        assert!(f.opt_object("k").is_err());
    }

    #[test]
    fn invalid_json_and_non_object_top_levels_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{\"d_in\": 3,").unwrap();
        assert!(matches!(read_json_object(&bad), Err(Error::Json { .. })));
        let list = dir.path().join("list.json");
        std::fs::write(&list, b"[1, 2]").unwrap();
        assert!(matches!(
            read_json_object(&list),
            Err(Error::ConfigType { .. })
        ));
    }
}
