//! The cache file: a fixed, checksummed header, then five little-endian arrays.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "SPLCACHE"
//! 8       4     format version (u32), currently 1
//! 12      4     ctx_len: tokens per row (u32)
//! 16      4     n_latents (u32)
//! 20      4     threshold (f32 bits): entries with |value| ≤ threshold were not stored
//! 24      8     n_rows (u64)
//! 32      8     n_entries (u64)
//! 40      4     CRC-32 of every byte after the header (u32)
//! 44      4     CRC-32 of bytes 0..44 (u32)
//! 48            tokens          u32 × n_rows·ctx_len    token ids, row-major, stored once
//!               offsets         u64 × (n_latents + 1)   CSR offsets: latent j owns entries
//!                                                       offsets[j]..offsets[j+1]
//!               max_activation  f32 × n_latents         largest stored value per latent (0 if none)
//!               entry_tokens    u32 × n_entries         flat token address row·ctx_len + pos,
//!                                                       strictly increasing within a latent
//!               entry_values    f16 × n_entries         the code values
//! ```
//! The header is read and checked (magic, version, its CRC, sizes against the file length, with
//! overflow-checked arithmetic) before anything is mapped or allocated; then the payload CRC
//! and every structural invariant are verified once, so later reads never fail.

use std::io::Write;
use std::ops::Range;
use std::path::Path;

use half::f16;

use crate::error::{Error, Result};

/// The first eight bytes of every cache file.
pub const MAGIC: &[u8; 8] = b"SPLCACHE";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 48;

/// The header fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Header {
    pub(crate) ctx_len: u32,
    pub(crate) n_latents: u32,
    pub(crate) threshold: f32,
    pub(crate) n_rows: u64,
    pub(crate) n_entries: u64,
}

/// Byte ranges of the sections.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub(crate) tokens: Range<usize>,
    pub(crate) offsets: Range<usize>,
    pub(crate) max_activation: Range<usize>,
    pub(crate) entry_tokens: Range<usize>,
    pub(crate) entry_values: Range<usize>,
}

impl Header {
    /// Section ranges and total length, `None` on overflow.
    pub(crate) fn layout(&self) -> Option<(Layout, u64)> {
        let n_tokens = self.n_rows.checked_mul(u64::from(self.ctx_len))?;
        let sizes = [
            n_tokens.checked_mul(4)?,
            (u64::from(self.n_latents) + 1).checked_mul(8)?,
            u64::from(self.n_latents) * 4,
            self.n_entries.checked_mul(4)?,
            self.n_entries.checked_mul(2)?,
        ];
        let mut at = HEADER_LEN as u64;
        let mut ranges = Vec::with_capacity(5);
        for s in sizes {
            let end = at.checked_add(s)?;
            ranges.push(usize::try_from(at).ok()?..usize::try_from(end).ok()?);
            at = end;
        }
        let mut r = ranges.into_iter();
        let mut next = || r.next().expect("five sections");
        Some((
            Layout {
                tokens: next(),
                offsets: next(),
                max_activation: next(),
                entry_tokens: next(),
                entry_values: next(),
            },
            at,
        ))
    }

    fn fixed_bytes(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.ctx_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.n_latents.to_le_bytes());
        b[20..24].copy_from_slice(&self.threshold.to_bits().to_le_bytes());
        b[24..32].copy_from_slice(&self.n_rows.to_le_bytes());
        b[32..40].copy_from_slice(&self.n_entries.to_le_bytes());
        b
    }

    /// Parses and checks the first [`HEADER_LEN`] bytes of `path`.
    pub(crate) fn parse(path: &Path, b: &[u8]) -> Result<(Header, u32)> {
        let p = || path.to_path_buf();
        if b.len() < 8 || &b[..8] != MAGIC {
            return Err(Error::BadMagic {
                path: p(),
                found: b[..b.len().min(8)].to_vec(),
                expected: MAGIC,
            });
        }
        if b.len() < HEADER_LEN {
            return Err(Error::SizeMismatch {
                path: p(),
                expected: HEADER_LEN as u64,
                found: b.len() as u64,
            });
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: p(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored = u32_at(44);
        let computed = crc32fast::hash(&b[..44]);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                path: p(),
                what: "header",
                stored,
                computed,
            });
        }
        let header = Header {
            ctx_len: u32_at(12),
            n_latents: u32_at(16),
            threshold: f32::from_bits(u32_at(20)),
            n_rows: u64_at(24),
            n_entries: u64_at(32),
        };
        let bad = |field, value: u64, reason| Error::BadHeader {
            path: p(),
            field,
            value,
            reason,
        };
        if header.ctx_len == 0 {
            return Err(bad("ctx_len", 0, "must be at least 1"));
        }
        if header.n_latents == 0 || header.n_latents == u32::MAX {
            return Err(bad(
                "n_latents",
                u64::from(header.n_latents),
                "must be in 1..u32::MAX",
            ));
        }
        if !(header.threshold.is_finite() && header.threshold >= 0.0) {
            return Err(bad(
                "threshold",
                u64::from(header.threshold.to_bits()),
                "must be a finite, non-negative f32 (value shown as bits)",
            ));
        }
        let n_tokens = header.n_rows.checked_mul(u64::from(header.ctx_len));
        if n_tokens.is_none_or(|n| n >= u64::from(u32::MAX)) {
            return Err(bad(
                "n_rows",
                header.n_rows,
                "rows × ctx_len must stay below u32::MAX tokens",
            ));
        }
        if header.layout().is_none() {
            return Err(bad("n_entries", header.n_entries, "section sizes overflow"));
        }
        Ok((header, u32_at(40)))
    }
}

/// The file image of a cache.
pub(crate) fn encode(
    header: &Header,
    tokens: &[u32],
    offsets: &[usize],
    max_activation: &[f32],
    entry_tokens: &[u32],
    values: &[f16],
) -> Vec<u8> {
    let (_, total) = header.layout().expect("sizes of an in-memory cache fit");
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&header.fixed_bytes());
    out.extend_from_slice(&[0u8; 8]);
    for &t in tokens {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for &o in offsets {
        out.extend_from_slice(&(o as u64).to_le_bytes());
    }
    for &m in max_activation {
        out.extend_from_slice(&m.to_le_bytes());
    }
    for &t in entry_tokens {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for &v in values {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    debug_assert_eq!(out.len() as u64, total);
    let payload_crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[40..44].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&out[..44]);
    out[44..48].copy_from_slice(&header_crc.to_le_bytes());
    out
}

/// Writes `bytes` to `path` atomically: a temporary sibling (the `tempfile` crate), fsync,
/// rename over `path`, fsync of the directory (so the rename itself is durable).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".latent-cache-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // The directory entry: without this a crash may lose the rename. Not every platform lets
    // a directory be opened for syncing; there the rename is as durable as the OS makes it.
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}
