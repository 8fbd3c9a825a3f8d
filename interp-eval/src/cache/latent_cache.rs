//! The cache itself: read-only, in memory or memory-mapped, one posting list per latent.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use half::f16;

use super::config::CacheConfig;
use super::format::{self, HEADER_LEN, Header, Layout};
use crate::error::{Error, Result};

enum Bytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// SAE codes of a token stream, as posting lists by latent: for every latent, the
/// `(row, position, value)` of every token where it fires, in token order.
///
/// Built by [`crate::CacheBuilder`], saved with [`Self::save`] and opened memory-mapped with
/// [`Self::open`] (the format is documented in [`crate::cache`]'s `format` module and in the
/// crate guide). Token ids are stored once, values as f16. Every read decodes little-endian
/// bytes in place, so a mapped cache is never copied and a latent's postings stream from the
/// file ([`Self::postings`]).
///
/// ```
/// use interp_eval::{CacheBuilder, CacheConfig, CodeEntry, LatentCache};
///
/// let mut builder = CacheBuilder::new(CacheConfig::new(2, 2));
/// builder.push_entries(&[5, 6], &[CodeEntry { row: 0, pos: 1, latent: 1, value: 3.0 }])?;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("codes.cache");
/// builder.finish().save(&path)?;
/// let cache = LatentCache::open(&path)?;
/// assert_eq!(cache.max_activation(1), 3.0);
/// assert_eq!(cache.postings(1).next().unwrap().pos, 1);
/// # Ok::<(), interp_eval::Error>(())
/// ```
pub struct LatentCache {
    header: Header,
    layout: Layout,
    bytes: Bytes,
}

impl std::fmt::Debug for LatentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatentCache")
            .field("ctx_len", &self.header.ctx_len)
            .field("n_latents", &self.header.n_latents)
            .field("n_rows", &self.header.n_rows)
            .field("n_entries", &self.header.n_entries)
            .field("mapped", &matches!(self.bytes, Bytes::Mapped(_)))
            .finish()
    }
}

/// One stored code: latent fires with `value` at position `pos` of row `row`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posting {
    /// Cache row.
    pub row: u32,
    /// Position within the row.
    pub pos: u32,
    /// The code value (stored as f16).
    pub value: f32,
}

/// The postings of one latent in token order, decoded as they are read.
#[derive(Clone)]
pub struct Postings<'a> {
    tokens: &'a [u8],
    values: &'a [u8],
    ctx_len: u32,
    next: usize,
    end: usize,
}

impl std::fmt::Debug for Postings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postings")
            .field("remaining", &(self.end - self.next))
            .finish()
    }
}

impl Postings<'_> {
    /// Flat token address `row · ctx_len + pos` of the next posting, without consuming it.
    pub fn peek_token(&self) -> Option<u32> {
        (self.next < self.end).then(|| read_u32(self.tokens, self.next))
    }
}

impl Iterator for Postings<'_> {
    type Item = Posting;

    fn next(&mut self) -> Option<Posting> {
        if self.next >= self.end {
            return None;
        }
        let t = read_u32(self.tokens, self.next);
        let v = read_f16(self.values, self.next);
        self.next += 1;
        Some(Posting {
            row: t / self.ctx_len,
            pos: t % self.ctx_len,
            value: v,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Postings<'_> {}

#[inline]
fn read_u32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"))
}

#[inline]
fn read_u64(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

#[inline]
fn read_f16(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes(
        b[2 * i..2 * i + 2].try_into().expect("2 bytes"),
    ))
    .to_f32()
}

impl LatentCache {
    /// A cache from its parts (the builder's output), encoded into its file image.
    pub(crate) fn from_parts(
        config: CacheConfig,
        tokens: &[u32],
        offsets: &[usize],
        entry_tokens: &[u32],
        values: &[f16],
    ) -> Self {
        let header = Header {
            ctx_len: config.ctx_len as u32,
            n_latents: config.n_latents as u32,
            threshold: config.threshold,
            n_rows: (tokens.len() / config.ctx_len) as u64,
            n_entries: entry_tokens.len() as u64,
        };
        let max_activation: Vec<f32> = offsets
            .windows(2)
            .map(|w| {
                values[w[0]..w[1]]
                    .iter()
                    .map(|v| v.to_f32())
                    .fold(None, |m: Option<f32>, v| Some(m.map_or(v, |m| m.max(v))))
                    .unwrap_or(0.0)
            })
            .collect();
        let bytes = format::encode(
            &header,
            tokens,
            offsets,
            &max_activation,
            entry_tokens,
            values,
        );
        let (layout, _) = header.layout().expect("in-memory sizes fit");
        Self {
            header,
            layout,
            bytes: Bytes::Owned(bytes),
        }
    }

    /// Writes the cache to `path` atomically (temporary sibling, fsync, rename, directory
    /// fsync).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        format::write_atomic(path.as_ref(), self.bytes.as_slice())
    }

    /// The file image (what [`Self::save`] writes).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    fn check_size(path: &Path, head: &[u8], len: u64) -> Result<(Header, u32, Layout)> {
        let (header, payload_crc) = Header::parse(path, head)?;
        let (layout, expected) = header.layout().expect("checked by parse");
        if expected != len {
            return Err(Error::SizeMismatch {
                path: path.to_path_buf(),
                expected,
                found: len,
            });
        }
        Ok((header, payload_crc, layout))
    }

    /// Opens a cache file memory-mapped, after checking its header, its length, its checksums
    /// and its structure (one pass over the file).
    ///
    /// The mapping assumes the file is not modified while the cache is open (as every
    /// memory-mapped reader does); [`Self::read`] copies it instead.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::BadHeader`], [`Error::SizeMismatch`] (checked before mapping),
    /// [`Error::ChecksumMismatch`], [`Error::Corrupt`] — each naming the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut head = vec![0u8; HEADER_LEN.min(len as usize)];
        file.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        let (header, crc, layout) = Self::check_size(path, &head, len)?;
        // SAFETY: the map is read-only and private to this value; the file is documented as
        // not to be modified while open (memmap2's contract). Every access is bounds-checked
        // against the verified layout.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::verified(path, header, crc, layout, Bytes::Mapped(map))
    }

    /// Reads a cache file into memory, with the checks of [`Self::open`].
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut head = vec![0u8; HEADER_LEN.min(len as usize)];
        file.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        let (header, crc, layout) = Self::check_size(path, &head, len)?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len as usize)
            .map_err(|_| Error::TooLarge {
                what: "cache file for memory",
                found: len,
                limit: isize::MAX as u64,
            })?;
        bytes.extend_from_slice(&head);
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 != len {
            return Err(Error::SizeMismatch {
                path: path.to_path_buf(),
                expected: len,
                found: bytes.len() as u64,
            });
        }
        Self::verified(path, header, crc, layout, Bytes::Owned(bytes))
    }

    /// A cache from a file image in memory (`path` only names it in errors), checked as
    /// [`Self::open`] checks a file.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn from_bytes(bytes: Vec<u8>, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let head = &bytes[..HEADER_LEN.min(bytes.len())];
        let (header, crc, layout) = Self::check_size(path, head, bytes.len() as u64)?;
        Self::verified(path, header, crc, layout, Bytes::Owned(bytes))
    }

    fn verified(
        path: &Path,
        header: Header,
        stored: u32,
        layout: Layout,
        bytes: Bytes,
    ) -> Result<Self> {
        let computed = crc32fast::hash(&bytes.as_slice()[HEADER_LEN..]);
        if computed != stored {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                what: "payload",
                stored,
                computed,
            });
        }
        let cache = Self {
            header,
            layout,
            bytes,
        };
        cache.check_structure(path)?;
        Ok(cache)
    }

    /// Offsets monotone and complete, token addresses in range and increasing per latent,
    /// values finite, stored maxima equal to the values' maxima.
    fn check_structure(&self, path: &Path) -> Result<()> {
        let corrupt = |section, detail: String| Error::Corrupt {
            path: PathBuf::from(path),
            section,
            detail,
        };
        let b = self.bytes.as_slice();
        let offsets = &b[self.layout.offsets.clone()];
        let n_entries = self.header.n_entries;
        let n_tokens = self.n_tokens() as u64;
        if read_u64(offsets, 0) != 0 {
            return Err(corrupt("offsets", "offsets[0] is not 0".into()));
        }
        let last = read_u64(offsets, self.n_latents());
        if last != n_entries {
            return Err(corrupt(
                "offsets",
                format!("offsets[n_latents] = {last}, header has {n_entries} entries"),
            ));
        }
        let tokens = &b[self.layout.entry_tokens.clone()];
        let values = &b[self.layout.entry_values.clone()];
        let maxima = &b[self.layout.max_activation.clone()];
        let mut start = 0u64;
        for j in 0..self.n_latents() {
            let end = read_u64(offsets, j + 1);
            if end < start || end > n_entries {
                return Err(corrupt(
                    "offsets",
                    format!("offsets[{}] = {end} after {start}", j + 1),
                ));
            }
            let mut previous: Option<u32> = None;
            let mut max: Option<f32> = None;
            for i in start as usize..end as usize {
                let t = read_u32(tokens, i);
                if u64::from(t) >= n_tokens || previous.is_some_and(|p| p >= t) {
                    return Err(corrupt(
                        "entry_tokens",
                        format!(
                            "latent {j}, entry {i}: token address {t} (cache has {n_tokens} tokens; addresses must increase)"
                        ),
                    ));
                }
                previous = Some(t);
                let v = read_f16(values, i);
                if !v.is_finite() {
                    return Err(corrupt(
                        "entry_values",
                        format!("latent {j}, entry {i}: value {v}"),
                    ));
                }
                max = Some(max.map_or(v, |m| m.max(v)));
            }
            let stored = f32::from_le_bytes(maxima[4 * j..4 * j + 4].try_into().expect("4"));
            if stored.to_bits() != max.unwrap_or(0.0).to_bits() {
                return Err(corrupt(
                    "max_activation",
                    format!("latent {j}: stored {stored}, values give {:?}", max),
                ));
            }
            start = end;
        }
        Ok(())
    }

    /// The configuration the cache was built with.
    pub fn config(&self) -> CacheConfig {
        CacheConfig {
            ctx_len: self.ctx_len(),
            n_latents: self.n_latents(),
            threshold: self.header.threshold,
        }
    }

    /// Tokens per row.
    pub fn ctx_len(&self) -> usize {
        self.header.ctx_len as usize
    }

    /// Number of latents.
    pub fn n_latents(&self) -> usize {
        self.header.n_latents as usize
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.header.n_rows as usize
    }

    /// Number of tokens (`n_rows · ctx_len`).
    pub fn n_tokens(&self) -> usize {
        self.n_rows() * self.ctx_len()
    }

    /// Number of stored entries over all latents.
    pub fn n_entries(&self) -> usize {
        self.header.n_entries as usize
    }

    /// Whether the cache is memory-mapped (opened with [`Self::open`]).
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(_))
    }

    /// The token id at flat address `row · ctx_len + pos`.
    ///
    /// # Panics
    /// If `flat ≥ n_tokens()`.
    pub fn token_at(&self, flat: usize) -> u32 {
        assert!(
            flat < self.n_tokens(),
            "token address {flat} is outside the cache's {} tokens",
            self.n_tokens()
        );
        read_u32(&self.bytes.as_slice()[self.layout.tokens.clone()], flat)
    }

    /// The token id at position `pos` of row `row`.
    ///
    /// # Panics
    /// If `row ≥ n_rows()` or `pos ≥ ctx_len()`.
    pub fn token(&self, row: usize, pos: usize) -> u32 {
        assert!(
            pos < self.ctx_len(),
            "position {pos} is outside rows of {} tokens",
            self.ctx_len()
        );
        self.token_at(row * self.ctx_len() + pos)
    }

    /// `len` token ids from flat address `start`.
    ///
    /// # Panics
    /// If the range leaves the cache.
    pub fn tokens(&self, start: usize, len: usize) -> Vec<u32> {
        assert!(
            start + len <= self.n_tokens(),
            "tokens {start}..{} are outside the cache's {} tokens",
            start + len,
            self.n_tokens()
        );
        let b = &self.bytes.as_slice()[self.layout.tokens.clone()];
        (start..start + len).map(|i| read_u32(b, i)).collect()
    }

    fn range(&self, latent: usize) -> (usize, usize) {
        assert!(
            latent < self.n_latents(),
            "latent {latent} is outside the cache's {} latents",
            self.n_latents()
        );
        let o = &self.bytes.as_slice()[self.layout.offsets.clone()];
        (
            read_u64(o, latent) as usize,
            read_u64(o, latent + 1) as usize,
        )
    }

    /// The postings of `latent`, in token order, streamed from the cache's bytes.
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn postings(&self, latent: usize) -> Postings<'_> {
        let (next, end) = self.range(latent);
        let b = self.bytes.as_slice();
        Postings {
            tokens: &b[self.layout.entry_tokens.clone()],
            values: &b[self.layout.entry_values.clone()],
            ctx_len: self.header.ctx_len,
            next,
            end,
        }
    }

    /// The flat token addresses and values of `latent`, collected.
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn latent_entries(&self, latent: usize) -> (Vec<u32>, Vec<f32>) {
        let ctx = self.header.ctx_len;
        self.postings(latent)
            .map(|p| (p.row * ctx + p.pos, p.value))
            .unzip()
    }

    /// Number of tokens on which `latent` fires (its stored entries).
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn firing_count(&self, latent: usize) -> u64 {
        let (s, e) = self.range(latent);
        (e - s) as u64
    }

    /// [`Self::firing_count`] of every latent.
    pub fn firing_counts(&self) -> Vec<u64> {
        (0..self.n_latents())
            .map(|j| self.firing_count(j))
            .collect()
    }

    /// The largest stored value of `latent` (0 if it never fires).
    ///
    /// # Panics
    /// If `latent ≥ n_latents()`.
    pub fn max_activation(&self, latent: usize) -> f32 {
        assert!(
            latent < self.n_latents(),
            "latent {latent} is outside the cache's {} latents",
            self.n_latents()
        );
        let b = &self.bytes.as_slice()[self.layout.max_activation.clone()];
        f32::from_le_bytes(b[4 * latent..4 * latent + 4].try_into().expect("4 bytes"))
    }
}
