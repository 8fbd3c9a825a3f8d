//! A bounds-checked little-endian reader over the bytes of a GGUF file.
//!
//! Every read checks the bytes left first, and every length or count is checked against the
//! bytes left (times the fewest bytes one item can take) before anything is allocated for it,
//! so a hostile length can never trigger an unbounded allocation.

use super::error::GgufError;

/// A position in a byte slice; reads advance it.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// The current offset.
    pub(crate) fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left from the current offset.
    pub(crate) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// The next `n` bytes; `what` names the field in the error if fewer are left.
    pub(crate) fn take(
        &mut self,
        n: u64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos(),
                needed: n,
                available: self.remaining(),
            });
        }
        // `n <= remaining <= usize::MAX`, so the cast is exact.
        let n = n as usize;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A little-endian `u32`.
    pub(crate) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a `u64` count of items taking at least `min_bytes` each and checks that they fit in
    /// the bytes left; returns the count as a `usize` that is safe to preallocate for.
    pub(crate) fn count(
        &mut self,
        min_bytes: u64,
        what: impl Fn() -> String,
    ) -> Result<usize, GgufError> {
        let offset = self.pos();
        let count = self.u64(&what)?;
        let need = count.saturating_mul(min_bytes);
        if need > self.remaining() || (min_bytes == 0 && count > self.remaining()) {
            return Err(GgufError::TooLarge {
                what: what(),
                offset,
                count,
                min_bytes: need,
                available: self.remaining(),
            });
        }
        // `count * max(min_bytes, 1) <= remaining <= usize::MAX`.
        Ok(count as usize)
    }

    /// A GGUF string: `u64` length, then that many UTF-8 bytes.
    pub(crate) fn string(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let len = self.count(1, || format!("string length of {}", what()))?;
        let offset = self.pos();
        let bytes = self.take(len as u64, &what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                what: what(),
                offset,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_little_endian_and_bounded() {
        let bytes = [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.u32(|| "a".into()).unwrap(), 1);
        assert_eq!(c.u64(|| "b".into()).unwrap(), 2);
        assert_eq!(c.remaining(), 1);
        let err = c.u32(|| "c".into()).unwrap_err();
        assert_eq!(
            err,
            GgufError::Truncated {
                what: "c".into(),
                offset: 12,
                needed: 4,
                available: 1
            }
        );
        // A failed read does not move the cursor.
        assert_eq!(c.pos(), 12);
    }

    #[test]
    fn huge_counts_are_refused_before_allocation() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend([0; 16]);
        let err = Cursor::new(&bytes).count(4, || "n".into()).unwrap_err();
        assert!(matches!(
            err,
            GgufError::TooLarge {
                count: u64::MAX,
                min_bytes: u64::MAX,
                available: 16,
                ..
            }
        ));
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend([0; 16]);
        assert!(Cursor::new(&bytes).count(4, || "n".into()).is_err());
        assert_eq!(Cursor::new(&bytes).count(3, || "n".into()).unwrap(), 5);
    }

    #[test]
    fn strings_are_checked_utf8() {
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend([0xC3, 0xA9]);
        assert_eq!(Cursor::new(&bytes).string(|| "s".into()).unwrap(), "é");
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend([0xC3, 0x28]);
        assert_eq!(
            Cursor::new(&bytes).string(|| "s".into()).unwrap_err(),
            GgufError::InvalidUtf8 {
                what: "s".into(),
                offset: 8
            }
        );
    }
}
