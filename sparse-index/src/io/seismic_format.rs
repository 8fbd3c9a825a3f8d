//! Seismic's binary vector format (`documents.bin`, `queries.bin`).
//!
//! Little-endian: `u32 n_vectors`, then per vector `u32 len`, `len × u32` component ids
//! (strictly increasing) and `len × f32` values. There is no dimension header; readers take the
//! largest id plus one. Written by Seismic's `convert_json_to_inner_format.py` and by
//! `gen_splade_like.py`, read by `vectorium::read_seismic_format`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::collection::SparseCollection;
use crate::error::{Error, Result};

/// Reads a file in Seismic's binary format, validating every vector.
///
/// # Errors
/// [`Error::Io`]; [`Error::Truncated`] when the file ends inside a vector or holds fewer vectors
/// than announced; [`Error::Corrupt`] when bytes are left after the last vector;
/// [`Error::InVector`] (unsorted ids, non-finite values) naming the vector.
pub fn read_seismic_bin(path: impl AsRef<Path>) -> Result<SparseCollection> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut pos = 0u64;
    let truncated = |what: String, needed: u64, offset: u64| Error::Truncated {
        path: path.to_path_buf(),
        what,
        needed,
        offset,
        len,
    };
    let read_u32 = |r: &mut BufReader<File>, pos: &mut u64, what: &dyn Fn() -> String| {
        let mut b = [0u8; 4];
        if *pos + 4 > len {
            return Err(truncated(what(), 4, *pos));
        }
        r.read_exact(&mut b).map_err(|e| Error::io(path, e))?;
        *pos += 4;
        Ok(u32::from_le_bytes(b))
    };
    let n = read_u32(&mut r, &mut pos, &|| "vector count".into())? as usize;
    let mut docs = SparseCollection::new();
    let mut bytes = Vec::new();
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for v in 0..n {
        let nnz = read_u32(&mut r, &mut pos, &|| format!("length of vector {v}"))? as u64;
        let need = nnz * 8;
        if pos + need > len {
            return Err(truncated(format!("vector {v} ({nnz} entries)"), need, pos));
        }
        bytes.resize(need as usize, 0);
        r.read_exact(&mut bytes).map_err(|e| Error::io(path, e))?;
        pos += need;
        let (id_bytes, value_bytes) = bytes.split_at(nnz as usize * 4);
        ids.clear();
        ids.extend(
            id_bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
        values.clear();
        values.extend(
            value_bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
        docs.push_parts(&ids, &values).map_err(|e| e.in_vector(v))?;
    }
    if pos != len {
        return Err(Error::corrupt(
            path,
            format!("{} bytes after the last of {n} vectors", len - pos),
        ));
    }
    Ok(docs)
}

/// Writes a collection in Seismic's binary format, atomically (temporary sibling + rename).
///
/// # Errors
/// [`Error::Io`]; [`Error::TooLarge`] for more than `u32::MAX` vectors.
pub fn write_seismic_bin(path: impl AsRef<Path>, docs: &SparseCollection) -> Result<()> {
    let path = path.as_ref();
    let n = u32::try_from(docs.len()).map_err(|_| Error::TooLarge {
        what: "collection for the Seismic format",
        found: docs.len() as u64,
        limit: u64::from(u32::MAX),
    })?;
    super::write_atomically(path, |w: &mut BufWriter<File>| {
        w.write_all(&n.to_le_bytes())?;
        for v in docs.iter() {
            w.write_all(&(v.nnz() as u32).to_le_bytes())?;
            for &c in v.indices() {
                w.write_all(&c.to_le_bytes())?;
            }
            for &x in v.values() {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::SparseVector;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.bin");
        let docs: SparseCollection = [
            SparseVector::new(vec![1, 9], vec![0.5, 2.0]).unwrap(),
            SparseVector::default(),
            SparseVector::new(vec![0], vec![-1.0]).unwrap(),
        ]
        .into_iter()
        .collect();
        write_seismic_bin(&path, &docs).unwrap();
        assert_eq!(read_seismic_bin(&path).unwrap(), docs);

        let good = std::fs::read(&path).unwrap();
        for cut in [0, 3, 4, 9, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(
                matches!(read_seismic_bin(&path), Err(Error::Truncated { .. })),
                "cut {cut}"
            );
        }
        let mut extra = good.clone();
        extra.push(0);
        std::fs::write(&path, &extra).unwrap();
        assert!(matches!(
            read_seismic_bin(&path),
            Err(Error::Corrupt { .. })
        ));
        // Swap the two ids of vector 0: unsorted.
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&9u32.to_le_bytes());
        bad[12..16].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            read_seismic_bin(&path),
            Err(Error::InVector { index: 0, .. })
        ));
        // A NaN value in vector 2.
        let mut nan = good.clone();
        let at = nan.len() - 4;
        nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&path, &nan).unwrap();
        assert!(matches!(
            read_seismic_bin(&path),
            Err(Error::InVector { index: 2, .. })
        ));
        // A huge announced length is a truncation, not an allocation.
        let mut huge = good;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(matches!(
            read_seismic_bin(&path),
            Err(Error::Truncated { .. })
        ));
    }
}
