//! The container of saved indexes: a versioned, checksummed header, a JSON metadata block and
//! named, 64-byte-aligned array sections (so that a memory-mapped file can be used in place).
//!
//! ```text
//! offset  size  field
//! 0       8     magic "SPLXIDX\0"
//! 8       4     format version (u32, little-endian), currently 1
//! 12      4     number of sections n (u32)
//! 16      8     metadata length m in bytes (u64)
//! 24      4     CRC-32 of bytes 0..24, the section table and the metadata (u32)
//! 28      4     reserved, 0
//! 32      40·n  section table, per section:
//!                 name (16 bytes, ASCII, zero-padded), offset (u64), length in bytes (u64),
//!                 CRC-32 of the section's bytes (u32), element size in bytes (u32)
//! 32+40n  m     metadata: UTF-8 JSON
//! …             sections, each starting at a multiple of 64, zero padding between
//! ```
//! All integers and arrays are little-endian.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::storage::{Array, Region};

pub(crate) const MAGIC: [u8; 8] = *b"SPLXIDX\0";
pub(crate) const VERSION: u32 = 1;
const HEADER: usize = 32;
const ENTRY: usize = 40;
const ALIGN: usize = 64;

/// One array to write.
pub(crate) struct Section<'a> {
    pub(crate) name: &'static str,
    pub(crate) elem_size: u32,
    pub(crate) bytes: &'a [u8],
}

impl<'a> Section<'a> {
    pub(crate) fn of<T: Pod>(name: &'static str, data: &'a [T]) -> Self {
        assert!(
            name.len() <= 16,
            "section name {name} is longer than 16 bytes"
        );
        Self {
            name,
            elem_size: size_of::<T>() as u32,
            bytes: bytemuck::cast_slice(data),
        }
    }
}

fn pad(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Writes `meta` and `sections` to `path` atomically (`crate::io::write_atomically`: random
/// temporary sibling, fsync, rename, folder fsync).
pub(crate) fn write(path: &Path, meta: &str, sections: &[Section<'_>]) -> Result<()> {
    crate::io::write_atomically(path, |w| write_to(w, meta, sections))
}

fn write_to(w: &mut impl Write, meta: &str, sections: &[Section<'_>]) -> std::io::Result<()> {
    let n = sections.len();
    let mut table = Vec::with_capacity(n * ENTRY);
    let mut offset = pad(HEADER + n * ENTRY + meta.len());
    let mut offsets = Vec::with_capacity(n);
    for s in sections {
        let mut name = [0u8; 16];
        name[..s.name.len()].copy_from_slice(s.name.as_bytes());
        table.extend_from_slice(&name);
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        table.extend_from_slice(&crc32fast::hash(s.bytes).to_le_bytes());
        table.extend_from_slice(&s.elem_size.to_le_bytes());
        offsets.push(offset);
        offset = pad(offset + s.bytes.len());
    }
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(&MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(n as u32).to_le_bytes());
    head.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&table);
    crc.update(meta.as_bytes());
    head.extend_from_slice(&crc.finalize().to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());

    w.write_all(&head)?;
    w.write_all(&table)?;
    w.write_all(meta.as_bytes())?;
    let mut pos = HEADER + table.len() + meta.len();
    let zeros = [0u8; ALIGN];
    for (s, &at) in sections.iter().zip(&offsets) {
        w.write_all(&zeros[..at - pos])?;
        w.write_all(s.bytes)?;
        pos = at + s.bytes.len();
    }
    Ok(())
}

/// A parsed, checksum-verified index file.
pub(crate) struct IndexFile {
    pub(crate) path: PathBuf,
    pub(crate) region: Arc<Region>,
    pub(crate) meta: String,
    entries: Vec<(String, usize, usize, u32)>,
}

/// Reads a whole file into an 8-byte-aligned buffer.
pub(crate) fn read_region(path: &Path) -> Result<Region> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
    let mut words = vec![0u64; len.div_ceil(8)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    file.read_exact(&mut bytes[..len])
        .map_err(|e| Error::io(path, e))?;
    Ok(Region::Heap { words, len })
}

/// Maps a whole file read-only.
///
/// # Safety
/// The file must not be modified or truncated while the mapping lives (see
/// [`memmap2::Mmap::map`]).
pub(crate) unsafe fn map_region(path: &Path) -> Result<Region> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: forwarded to the caller.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Region::Mapped(map))
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl IndexFile {
    /// Checks magic, version, header checksum, section bounds, alignment and checksums.
    pub(crate) fn parse(path: &Path, region: Region) -> Result<Self> {
        let region = Arc::new(region);
        let bytes = region.bytes();
        let len = bytes.len() as u64;
        let truncated = |what: &str, needed: u64, offset: u64| Error::Truncated {
            path: path.to_path_buf(),
            what: what.to_string(),
            needed,
            offset,
            len,
        };
        if bytes.len() < HEADER {
            return Err(truncated("header", HEADER as u64, 0));
        }
        if bytes[..8] != MAGIC {
            return Err(Error::corrupt(
                path,
                "not a sparse-index file (bad magic bytes)",
            ));
        }
        let version = le_u32(bytes, 8);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: VERSION,
            });
        }
        let n = le_u32(bytes, 12) as u64;
        let meta_len = le_u64(bytes, 16);
        let head_end = (HEADER as u64)
            .checked_add(n.saturating_mul(ENTRY as u64))
            .and_then(|x| x.checked_add(meta_len))
            .unwrap_or(u64::MAX);
        if head_end > len {
            return Err(truncated(
                "section table and metadata",
                head_end - HEADER as u64,
                HEADER as u64,
            ));
        }
        let head_end = head_end as usize;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[..24]);
        crc.update(&bytes[HEADER..head_end]);
        if crc.finalize() != le_u32(bytes, 24) {
            return Err(Error::corrupt(path, "header checksum mismatch"));
        }
        let table_end = HEADER + n as usize * ENTRY;
        let meta = std::str::from_utf8(&bytes[table_end..head_end])
            .map_err(|_| Error::corrupt(path, "metadata is not UTF-8"))?
            .to_string();
        let mut entries = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let e = &bytes[HEADER + i * ENTRY..HEADER + (i + 1) * ENTRY];
            let name_len = e[..16].iter().position(|&b| b == 0).unwrap_or(16);
            let name = std::str::from_utf8(&e[..name_len])
                .map_err(|_| Error::corrupt(path, format!("section {i} has a non-UTF-8 name")))?
                .to_string();
            let offset = le_u64(e, 16);
            let size = le_u64(e, 24);
            let sum = le_u32(e, 32);
            let elem = le_u32(e, 36);
            let end = offset.saturating_add(size);
            if end > len {
                return Err(truncated(&format!("section {name}"), size, offset));
            }
            if !offset.is_multiple_of(ALIGN as u64) || offset < head_end as u64 {
                return Err(Error::corrupt(path, format!("section {name} is misplaced")));
            }
            if elem == 0 || !size.is_multiple_of(u64::from(elem)) {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "section {name}: {size} bytes is not a whole number of {elem}-byte elements"
                    ),
                ));
            }
            let data = &bytes[offset as usize..end as usize];
            if crc32fast::hash(data) != sum {
                return Err(Error::corrupt(
                    path,
                    format!("section {name}: checksum mismatch"),
                ));
            }
            entries.push((name, offset as usize, size as usize, elem));
        }
        Ok(Self {
            path: path.to_path_buf(),
            region,
            meta,
            entries,
        })
    }

    /// Every section as (name, element size, bytes), in file order.
    #[cfg(test)]
    pub(crate) fn sections(&self) -> Vec<(String, u32, Vec<u8>)> {
        self.entries
            .iter()
            .map(|(name, offset, size, elem)| {
                (
                    name.clone(),
                    *elem,
                    self.region.bytes()[*offset..offset + size].to_vec(),
                )
            })
            .collect()
    }

    /// The section `name` as an array of `T`, optionally of a required length.
    pub(crate) fn array<T: Pod>(
        &self,
        name: &str,
        expected_len: Option<usize>,
    ) -> Result<Array<T>> {
        let &(_, offset, size, elem) = self
            .entries
            .iter()
            .find(|e| e.0 == name)
            .ok_or_else(|| Error::corrupt(&self.path, format!("section {name} is missing")))?;
        if elem as usize != size_of::<T>() {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "section {name} holds {elem}-byte elements, expected {}",
                    size_of::<T>()
                ),
            ));
        }
        let len = size / size_of::<T>();
        if let Some(expected) = expected_len
            && expected != len
        {
            return Err(Error::corrupt(
                &self.path,
                format!("section {name} has {len} elements, expected {expected}"),
            ));
        }
        Array::shared(&self.region, offset, len)
            .ok_or_else(|| Error::corrupt(&self.path, format!("section {name} is misaligned")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.idx");
        let a: Vec<u32> = (0..100).collect();
        let b: Vec<f32> = vec![1.5, -2.0];
        write(
            &path,
            r#"{"k":1}"#,
            &[Section::of("a", &a), Section::of("b", &b)],
        )
        .unwrap();
        let f = IndexFile::parse(&path, read_region(&path).unwrap()).unwrap();
        assert_eq!(f.meta, r#"{"k":1}"#);
        assert_eq!(&*f.array::<u32>("a", Some(100)).unwrap(), &a[..]);
        assert_eq!(&*f.array::<f32>("b", None).unwrap(), &b[..]);
        assert!(f.array::<u64>("a", None).is_err(), "element size");
        assert!(f.array::<u32>("a", Some(3)).is_err(), "length");
        assert!(f.array::<u32>("c", None).is_err(), "missing");

        let good = std::fs::read(&path).unwrap();
        // Every truncation is an error.
        for cut in [0, 7, 31, 60, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(
                IndexFile::parse(&path, read_region(&path).unwrap()).is_err(),
                "cut {cut}"
            );
        }
        // Every single-byte flip is an error (header, table, metadata or a section checksum).
        for at in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&path, &bad).unwrap();
            let parsed = IndexFile::parse(&path, read_region(&path).unwrap());
            let padding = parsed.is_ok();
            if padding {
                // Only zero padding between sections is not covered by a checksum.
                let f = parsed.unwrap();
                assert_eq!(&*f.array::<u32>("a", None).unwrap(), &a[..]);
                assert_eq!(&*f.array::<f32>("b", None).unwrap(), &b[..]);
            }
        }
    }
}
