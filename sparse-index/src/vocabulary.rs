//! Term ↔ component id mapping for text-keyed sparse vectors (SPLADE tokens).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// A vocabulary: the component id of every term and the term of every id (ids `0..len`).
///
/// ```
/// use sparse_index::Vocabulary;
///
/// let mut vocab = Vocabulary::from_terms(["wing", "lift"])?;
/// assert_eq!(vocab.id("lift"), Some(1));
/// assert_eq!(vocab.get_or_insert("drag"), 2);
/// assert_eq!(vocab.term(2), Some("drag"));
/// assert!(Vocabulary::from_terms(["a", "a"]).is_err());
/// # Ok::<(), sparse_index::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    terms: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    /// An empty vocabulary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Terms in id order.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming a repeated term; [`Error::TooLarge`] beyond `u32::MAX` terms.
    pub fn from_terms<S: Into<String>>(terms: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut v = Self::new();
        for t in terms {
            let t = t.into();
            if v.ids.contains_key(&t) {
                return Err(Error::corrupt(
                    "<vocabulary>",
                    format!("term {t:?} appears twice"),
                ));
            }
            v.insert_new(t)?;
        }
        Ok(v)
    }

    fn insert_new(&mut self, t: String) -> Result<u32> {
        let id = u32::try_from(self.terms.len()).map_err(|_| Error::TooLarge {
            what: "vocabulary",
            found: self.terms.len() as u64 + 1,
            limit: u64::from(u32::MAX),
        })?;
        self.ids.insert(t.clone(), id);
        self.terms.push(t);
        Ok(id)
    }

    /// The id of `term`, if known.
    pub fn id(&self, term: &str) -> Option<u32> {
        self.ids.get(term).copied()
    }

    /// The term of `id`, if in range.
    pub fn term(&self, id: u32) -> Option<&str> {
        self.terms.get(id as usize).map(String::as_str)
    }

    /// The id of `term`, adding it (with the next id) if new.
    ///
    /// # Panics
    /// If the vocabulary already holds `u32::MAX` terms.
    pub fn get_or_insert(&mut self, term: &str) -> u32 {
        match self.ids.get(term) {
            Some(&id) => id,
            None => self
                .insert_new(term.to_string())
                .expect("vocabulary holds at most u32::MAX terms"),
        }
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there is no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// All terms in id order.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Saves as a JSON array of terms in id order, atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::write_atomically(path.as_ref(), |w| {
            serde_json::to_writer(&mut *w, &self.terms).map_err(std::io::Error::other)
        })
    }

    /// Loads a vocabulary saved by [`Self::save`].
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Corrupt`] if the file is not a JSON array of distinct strings.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let terms: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| Error::corrupt(path, format!("not a JSON array of terms: {e}")))?;
        Self::from_terms(terms).map_err(|e| match e {
            Error::Corrupt { reason, .. } => Error::corrupt(path, reason),
            other => other,
        })
    }
}
