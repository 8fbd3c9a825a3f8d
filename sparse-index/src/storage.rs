//! Arrays that are either owned or borrowed from a loaded (possibly memory-mapped) file.

use std::ops::Deref;
use std::sync::Arc;

use bytemuck::Pod;

/// The bytes of a loaded index file: read into an 8-byte-aligned heap buffer, or memory-mapped.
pub(crate) enum Region {
    /// The file read into memory (`u64` words keep every section 8-byte aligned).
    Heap { words: Vec<u64>, len: usize },
    /// The file mapped read-only.
    Mapped(memmap2::Mmap),
}

impl Region {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Region::Heap { words, len } => &bytemuck::cast_slice(words)[..*len],
            Region::Mapped(m) => m,
        }
    }
}

/// A read-only array of plain-old-data values.
///
/// Built indexes own their arrays; loaded indexes point into the file's [`Region`], so that a
/// memory-mapped index is never copied. Construction from a region checks bounds, size and
/// alignment, so dereferencing never fails afterwards.
pub(crate) enum Array<T: Pod> {
    Owned(Vec<T>),
    Shared {
        region: Arc<Region>,
        start: usize,
        len: usize,
    },
}

impl<T: Pod> Array<T> {
    /// A view into `region` of `len` values starting at byte `start`; `None` if out of bounds or
    /// misaligned.
    pub(crate) fn shared(region: &Arc<Region>, start: usize, len: usize) -> Option<Self> {
        let bytes = region.bytes();
        let end = start.checked_add(len.checked_mul(size_of::<T>())?)?;
        let slice = bytes.get(start..end)?;
        bytemuck::try_cast_slice::<u8, T>(slice).ok()?;
        Some(Array::Shared {
            region: Arc::clone(region),
            start,
            len,
        })
    }
}

impl<T: Pod> Deref for Array<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Array::Owned(v) => v,
            Array::Shared { region, start, len } => {
                // Checked in `shared`: in bounds, a whole number of values, aligned.
                bytemuck::cast_slice(&region.bytes()[*start..*start + *len * size_of::<T>()])
            }
        }
    }
}

impl<T: Pod> From<Vec<T>> for Array<T> {
    fn from(v: Vec<T>) -> Self {
        Array::Owned(v)
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array(len {})", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_checks_bounds_and_alignment() {
        let words = vec![0x0102_0304_0506_0708u64, 0];
        let region = Arc::new(Region::Heap { words, len: 16 });
        let a = Array::<u32>::shared(&region, 0, 4).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0], 0x0506_0708);
        assert!(
            Array::<u32>::shared(&region, 0, 5).is_none(),
            "past the end"
        );
        assert!(Array::<u32>::shared(&region, 2, 1).is_none(), "misaligned");
        assert!(Array::<u8>::shared(&region, 3, 13).is_some());
        assert!(
            Array::<u8>::shared(&region, usize::MAX, 2).is_none(),
            "overflow"
        );
    }
}
