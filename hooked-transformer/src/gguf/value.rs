//! GGUF metadata values: the 13 value types, arrays (nested ones included) and typed accessors.
//!
//! Converters are loose about integer widths (gguf-py writes counts such as `block_count` as
//! UINT32, the spec says "by convention uint64", Python ints in arrays become INT32), so the
//! accessors accept any integer type: [`MetadataValue::as_u64`] reads a `u8` as well as a `u64`.

use std::fmt;

use super::cursor::Cursor;
use super::error::GgufError;

/// How deep arrays may nest in a metadata value. Real files nest at most once; the limit keeps a
/// hostile file from exhausting the stack.
pub const MAX_ARRAY_NESTING: usize = 16;

/// The type tag of a GGUF metadata value (`gguf_metadata_value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `UINT8` (0).
    U8,
    /// `INT8` (1).
    I8,
    /// `UINT16` (2).
    U16,
    /// `INT16` (3).
    I16,
    /// `UINT32` (4).
    U32,
    /// `INT32` (5).
    I32,
    /// `FLOAT32` (6).
    F32,
    /// `BOOL` (7), one byte, 0 or 1.
    Bool,
    /// `STRING` (8), `u64` length then UTF-8 bytes.
    String,
    /// `ARRAY` (9), element type, `u64` count, elements.
    Array,
    /// `UINT64` (10).
    U64,
    /// `INT64` (11).
    I64,
    /// `FLOAT64` (12).
    F64,
}

impl ValueType {
    /// The type with tag `tag`, or `None` for a tag outside `0..=12`.
    pub fn from_tag(tag: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match tag {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The tag written in GGUF files.
    pub fn tag(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// The fewest bytes a value of this type occupies (strings: the length; arrays: type and
    /// count), used to bound counts before allocating.
    pub(crate) fn min_bytes(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ValueType::*;
        f.write_str(match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        })
    }
}

/// One GGUF metadata value.
///
/// ```
/// use hooked_transformer::gguf::{MetadataArray, MetadataValue};
///
/// // gguf-py writes counts as UINT32; read them as any integer width.
/// let blocks = MetadataValue::U32(30);
/// assert_eq!(blocks.as_u64(), Some(30));
/// assert_eq!(blocks.as_i64(), Some(30));
/// assert_eq!(MetadataValue::I32(-1).as_u64(), None);
///
/// let tokens = MetadataValue::Array(MetadataArray::String(vec!["<s>".into(), "a".into()]));
/// assert_eq!(tokens.as_string_array().unwrap()[1], "a");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataValue {
    /// `UINT8`.
    U8(u8),
    /// `INT8`.
    I8(i8),
    /// `UINT16`.
    U16(u16),
    /// `INT16`.
    I16(i16),
    /// `UINT32`.
    U32(u32),
    /// `INT32`.
    I32(i32),
    /// `FLOAT32`.
    F32(f32),
    /// `BOOL`.
    Bool(bool),
    /// `STRING`.
    String(String),
    /// `ARRAY`.
    Array(MetadataArray),
    /// `UINT64`.
    U64(u64),
    /// `INT64`.
    I64(i64),
    /// `FLOAT64`.
    F64(f64),
}

/// A GGUF array: homogeneous by construction, one variant per element type. Arrays of arrays
/// hold inner arrays that may each have their own element type, as the format allows.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataArray {
    /// `UINT8` elements.
    U8(Vec<u8>),
    /// `INT8` elements.
    I8(Vec<i8>),
    /// `UINT16` elements.
    U16(Vec<u16>),
    /// `INT16` elements.
    I16(Vec<i16>),
    /// `UINT32` elements.
    U32(Vec<u32>),
    /// `INT32` elements.
    I32(Vec<i32>),
    /// `FLOAT32` elements.
    F32(Vec<f32>),
    /// `BOOL` elements.
    Bool(Vec<bool>),
    /// `STRING` elements.
    String(Vec<String>),
    /// `ARRAY` elements (nested arrays).
    Array(Vec<MetadataArray>),
    /// `UINT64` elements.
    U64(Vec<u64>),
    /// `INT64` elements.
    I64(Vec<i64>),
    /// `FLOAT64` elements.
    F64(Vec<f64>),
}

impl MetadataValue {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetadataValue::U8(_) => ValueType::U8,
            MetadataValue::I8(_) => ValueType::I8,
            MetadataValue::U16(_) => ValueType::U16,
            MetadataValue::I16(_) => ValueType::I16,
            MetadataValue::U32(_) => ValueType::U32,
            MetadataValue::I32(_) => ValueType::I32,
            MetadataValue::F32(_) => ValueType::F32,
            MetadataValue::Bool(_) => ValueType::Bool,
            MetadataValue::String(_) => ValueType::String,
            MetadataValue::Array(_) => ValueType::Array,
            MetadataValue::U64(_) => ValueType::U64,
            MetadataValue::I64(_) => ValueType::I64,
            MetadataValue::F64(_) => ValueType::F64,
        }
    }

    /// An integer of any width as `i128` (every GGUF integer fits), `None` for other types.
    fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetadataValue::U8(v) => v.into(),
            MetadataValue::I8(v) => v.into(),
            MetadataValue::U16(v) => v.into(),
            MetadataValue::I16(v) => v.into(),
            MetadataValue::U32(v) => v.into(),
            MetadataValue::I32(v) => v.into(),
            MetadataValue::U64(v) => v.into(),
            MetadataValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// An integer of any width as `u64`; `None` for a negative integer or a non-integer.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// An integer of any width as `i64`; `None` for a `u64` above `i64::MAX` or a non-integer.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// An integer of any width as `usize` (counts, sizes, token ids); `None` if negative, too
    /// large or not an integer.
    pub fn as_usize(&self) -> Option<usize> {
        self.as_u64().and_then(|v| usize::try_from(v).ok())
    }

    /// A `FLOAT32` as is, or a `FLOAT64` rounded to `f32`; `None` for other types.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetadataValue::F32(v) => Some(v),
            MetadataValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// A `FLOAT32` or `FLOAT64` as `f64` (exact); `None` for other types.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v.into()),
            MetadataValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A `BOOL`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A `STRING`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(v) => Some(v),
            _ => None,
        }
    }

    /// An `ARRAY` of any element type.
    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            MetadataValue::Array(v) => Some(v),
            _ => None,
        }
    }

    /// An `ARRAY` of `STRING`s (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    pub fn as_string_array(&self) -> Option<&[String]> {
        self.as_array().and_then(MetadataArray::as_strings)
    }

    /// Reads a value of type `ty` for metadata key `key`, arrays nested at most
    /// [`MAX_ARRAY_NESTING`] deep.
    pub(crate) fn read(c: &mut Cursor<'_>, ty: ValueType, key: &str) -> Result<Self, GgufError> {
        Self::read_at_depth(c, ty, key, 0)
    }

    fn read_at_depth(
        c: &mut Cursor<'_>,
        ty: ValueType,
        key: &str,
        depth: usize,
    ) -> Result<Self, GgufError> {
        let what = || format!("value of `{key}`");
        Ok(match ty {
            ValueType::U8 => MetadataValue::U8(u8::from_le_bytes(c.array(what)?)),
            ValueType::I8 => MetadataValue::I8(i8::from_le_bytes(c.array(what)?)),
            ValueType::U16 => MetadataValue::U16(u16::from_le_bytes(c.array(what)?)),
            ValueType::I16 => MetadataValue::I16(i16::from_le_bytes(c.array(what)?)),
            ValueType::U32 => MetadataValue::U32(u32::from_le_bytes(c.array(what)?)),
            ValueType::I32 => MetadataValue::I32(i32::from_le_bytes(c.array(what)?)),
            ValueType::F32 => MetadataValue::F32(f32::from_le_bytes(c.array(what)?)),
            ValueType::U64 => MetadataValue::U64(u64::from_le_bytes(c.array(what)?)),
            ValueType::I64 => MetadataValue::I64(i64::from_le_bytes(c.array(what)?)),
            ValueType::F64 => MetadataValue::F64(f64::from_le_bytes(c.array(what)?)),
            ValueType::Bool => {
                let offset = c.pos();
                let [byte] = c.array(what)?;
                MetadataValue::Bool(read_bool(byte, key, offset)?)
            }
            ValueType::String => MetadataValue::String(c.string(what)?),
            ValueType::Array => MetadataValue::Array(MetadataArray::read(c, key, depth)?),
        })
    }

    /// Appends the value (without its type tag) in GGUF encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MetadataValue::U8(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I8(v) => out.extend(v.to_le_bytes()),
            MetadataValue::U16(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I16(v) => out.extend(v.to_le_bytes()),
            MetadataValue::U32(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I32(v) => out.extend(v.to_le_bytes()),
            MetadataValue::F32(v) => out.extend(v.to_le_bytes()),
            MetadataValue::Bool(v) => out.push(u8::from(*v)),
            MetadataValue::String(v) => encode_string(v, out),
            MetadataValue::Array(v) => v.encode(out),
            MetadataValue::U64(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I64(v) => out.extend(v.to_le_bytes()),
            MetadataValue::F64(v) => out.extend(v.to_le_bytes()),
        }
    }
}

impl MetadataArray {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            MetadataArray::U8(_) => ValueType::U8,
            MetadataArray::I8(_) => ValueType::I8,
            MetadataArray::U16(_) => ValueType::U16,
            MetadataArray::I16(_) => ValueType::I16,
            MetadataArray::U32(_) => ValueType::U32,
            MetadataArray::I32(_) => ValueType::I32,
            MetadataArray::F32(_) => ValueType::F32,
            MetadataArray::Bool(_) => ValueType::Bool,
            MetadataArray::String(_) => ValueType::String,
            MetadataArray::Array(_) => ValueType::Array,
            MetadataArray::U64(_) => ValueType::U64,
            MetadataArray::I64(_) => ValueType::I64,
            MetadataArray::F64(_) => ValueType::F64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetadataArray::U8(v) => v.len(),
            MetadataArray::I8(v) => v.len(),
            MetadataArray::U16(v) => v.len(),
            MetadataArray::I16(v) => v.len(),
            MetadataArray::U32(v) => v.len(),
            MetadataArray::I32(v) => v.len(),
            MetadataArray::F32(v) => v.len(),
            MetadataArray::Bool(v) => v.len(),
            MetadataArray::String(v) => v.len(),
            MetadataArray::Array(v) => v.len(),
            MetadataArray::U64(v) => v.len(),
            MetadataArray::I64(v) => v.len(),
            MetadataArray::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements if they are `STRING`s.
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            MetadataArray::String(v) => Some(v),
            _ => None,
        }
    }

    /// The elements if they are `FLOAT32`s (`tokenizer.ggml.scores`).
    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            MetadataArray::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Integer elements of any width as `i64` (`tokenizer.ggml.token_type` is INT32, per-layer
    /// head counts may be UINT32); `None` for non-integer elements or a `u64` above `i64::MAX`.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        fn conv<T: Copy>(v: &[T], f: impl Fn(T) -> Option<i64>) -> Option<Vec<i64>> {
            v.iter().map(|&x| f(x)).collect()
        }
        match self {
            MetadataArray::U8(v) => conv(v, |x| Some(x.into())),
            MetadataArray::I8(v) => conv(v, |x| Some(x.into())),
            MetadataArray::U16(v) => conv(v, |x| Some(x.into())),
            MetadataArray::I16(v) => conv(v, |x| Some(x.into())),
            MetadataArray::U32(v) => conv(v, |x| Some(x.into())),
            MetadataArray::I32(v) => conv(v, |x| Some(x.into())),
            MetadataArray::U64(v) => conv(v, |x| i64::try_from(x).ok()),
            MetadataArray::I64(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Integer elements of any width as `u64`; `None` for non-integer or negative elements.
    pub fn to_u64s(&self) -> Option<Vec<u64>> {
        match self {
            MetadataArray::U64(v) => Some(v.clone()),
            other => other
                .to_i64s()?
                .into_iter()
                .map(|x| u64::try_from(x).ok())
                .collect(),
        }
    }

    fn read(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Self, GgufError> {
        let offset = c.pos();
        if depth >= MAX_ARRAY_NESTING {
            return Err(GgufError::NestingTooDeep {
                key: key.to_owned(),
                offset,
                limit: MAX_ARRAY_NESTING,
            });
        }
        let what = || format!("array of `{key}`");
        let tag = c.u32(what)?;
        let elem = ValueType::from_tag(tag).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_owned(),
            offset,
            tag,
        })?;
        let n = c.count(elem.min_bytes(), || {
            format!("element count of array `{key}`")
        })?;
        // For fixed-size elements `count` already checked that all `n` are present.
        fn fixed<'a, const N: usize, T>(
            c: &mut Cursor<'a>,
            n: usize,
            what: impl FnOnce() -> String,
            f: impl Fn([u8; N]) -> T,
        ) -> Result<Vec<T>, GgufError> {
            let bytes = c.take((n * N) as u64, what)?;
            Ok(bytes
                .chunks_exact(N)
                .map(|ch| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(ch);
                    f(a)
                })
                .collect())
        }
        Ok(match elem {
            ValueType::U8 => MetadataArray::U8(c.take(n as u64, what)?.to_vec()),
            ValueType::I8 => MetadataArray::I8(fixed(c, n, what, i8::from_le_bytes)?),
            ValueType::U16 => MetadataArray::U16(fixed(c, n, what, u16::from_le_bytes)?),
            ValueType::I16 => MetadataArray::I16(fixed(c, n, what, i16::from_le_bytes)?),
            ValueType::U32 => MetadataArray::U32(fixed(c, n, what, u32::from_le_bytes)?),
            ValueType::I32 => MetadataArray::I32(fixed(c, n, what, i32::from_le_bytes)?),
            ValueType::F32 => MetadataArray::F32(fixed(c, n, what, f32::from_le_bytes)?),
            ValueType::U64 => MetadataArray::U64(fixed(c, n, what, u64::from_le_bytes)?),
            ValueType::I64 => MetadataArray::I64(fixed(c, n, what, i64::from_le_bytes)?),
            ValueType::F64 => MetadataArray::F64(fixed(c, n, what, f64::from_le_bytes)?),
            ValueType::Bool => {
                let start = c.pos();
                let bytes = c.take(n as u64, what)?;
                let mut out = Vec::with_capacity(n);
                for (i, &b) in bytes.iter().enumerate() {
                    out.push(read_bool(b, key, start + i as u64)?);
                }
                MetadataArray::Bool(out)
            }
            ValueType::String => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(c.string(|| format!("element {i} of array `{key}`"))?);
                }
                MetadataArray::String(out)
            }
            ValueType::Array => {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(MetadataArray::read(c, key, depth + 1)?);
                }
                MetadataArray::Array(out)
            }
        })
    }

    /// Appends element type, count and elements in GGUF encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.elem_type().tag().to_le_bytes());
        out.extend((self.len() as u64).to_le_bytes());
        fn all<T: Copy, const N: usize>(out: &mut Vec<u8>, v: &[T], f: impl Fn(T) -> [u8; N]) {
            out.reserve(v.len() * N);
            for &x in v {
                out.extend(f(x));
            }
        }
        match self {
            MetadataArray::U8(v) => out.extend_from_slice(v),
            MetadataArray::I8(v) => all(out, v, i8::to_le_bytes),
            MetadataArray::U16(v) => all(out, v, u16::to_le_bytes),
            MetadataArray::I16(v) => all(out, v, i16::to_le_bytes),
            MetadataArray::U32(v) => all(out, v, u32::to_le_bytes),
            MetadataArray::I32(v) => all(out, v, i32::to_le_bytes),
            MetadataArray::F32(v) => all(out, v, f32::to_le_bytes),
            MetadataArray::Bool(v) => all(out, v, |b| [u8::from(b)]),
            MetadataArray::String(v) => v.iter().for_each(|s| encode_string(s, out)),
            MetadataArray::Array(v) => v.iter().for_each(|a| a.encode(out)),
            MetadataArray::U64(v) => all(out, v, u64::to_le_bytes),
            MetadataArray::I64(v) => all(out, v, i64::to_le_bytes),
            MetadataArray::F64(v) => all(out, v, f64::to_le_bytes),
        }
    }

    /// How deep arrays nest inside this one (1 for an array of scalars).
    pub(crate) fn depth(&self) -> usize {
        match self {
            MetadataArray::Array(v) => 1 + v.iter().map(MetadataArray::depth).max().unwrap_or(0),
            _ => 1,
        }
    }
}

/// A GGUF bool: exactly 0 or 1.
fn read_bool(byte: u8, key: &str, offset: u64) -> Result<bool, GgufError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(GgufError::InvalidBool {
            key: key.to_owned(),
            offset,
            byte,
        }),
    }
}

/// Appends a GGUF string: `u64` length, then the UTF-8 bytes.
pub(crate) fn encode_string(s: &str, out: &mut Vec<u8>) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(ty: ValueType, bytes: &[u8]) -> Result<MetadataValue, GgufError> {
        MetadataValue::read(&mut Cursor::new(bytes), ty, "k")
    }

    #[test]
    fn tags_round_trip() {
        for tag in 0..=12 {
            assert_eq!(ValueType::from_tag(tag).unwrap().tag(), tag);
        }
        assert_eq!(ValueType::from_tag(13), None);
    }

    #[test]
    fn integer_accessors_accept_every_width() {
        let values = [
            MetadataValue::U8(7),
            MetadataValue::I8(7),
            MetadataValue::U16(7),
            MetadataValue::I16(7),
            MetadataValue::U32(7),
            MetadataValue::I32(7),
            MetadataValue::U64(7),
            MetadataValue::I64(7),
        ];
        for v in &values {
            assert_eq!(
                (v.as_u64(), v.as_i64(), v.as_usize()),
                (Some(7), Some(7), Some(7)),
                "{v:?}"
            );
            assert_eq!(v.as_f32(), None);
        }
        assert_eq!(MetadataValue::I64(-3).as_u64(), None);
        assert_eq!(MetadataValue::I64(-3).as_i64(), Some(-3));
        assert_eq!(MetadataValue::U64(u64::MAX).as_i64(), None);
        assert_eq!(MetadataValue::U64(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(MetadataValue::F32(1.5).as_u64(), None);
        assert_eq!(MetadataValue::F64(0.1).as_f64(), Some(0.1));
        assert_eq!(MetadataValue::F32(1e-5).as_f32(), Some(1e-5));
        assert_eq!(MetadataValue::F32(1e-5).as_f64(), Some(f64::from(1e-5f32)));
        assert_eq!(MetadataValue::Bool(true).as_bool(), Some(true));
        assert_eq!(MetadataValue::String("x".into()).as_str(), Some("x"));
        assert_eq!(MetadataValue::String("x".into()).as_bool(), None);
    }

    #[test]
    fn array_accessors() {
        let a = MetadataArray::I32(vec![1, -2, 3]);
        assert_eq!(a.to_i64s(), Some(vec![1, -2, 3]));
        assert_eq!(a.to_u64s(), None);
        assert_eq!(MetadataArray::U32(vec![9, 9]).to_u64s(), Some(vec![9, 9]));
        assert_eq!(MetadataArray::F32(vec![0.5]).as_f32s(), Some(&[0.5][..]));
        assert_eq!(MetadataArray::F32(vec![0.5]).to_i64s(), None);
        assert!(MetadataArray::Bool(vec![]).is_empty());
        let nested = MetadataArray::Array(vec![
            MetadataArray::U8(vec![1]),
            MetadataArray::Array(vec![]),
        ]);
        assert_eq!((nested.len(), nested.depth()), (2, 2));
    }

    #[test]
    fn encode_then_read_is_identity_for_every_type() {
        let values = [
            MetadataValue::U8(200),
            MetadataValue::I8(-100),
            MetadataValue::U16(60_000),
            MetadataValue::I16(-30_000),
            MetadataValue::U32(4_000_000_000),
            MetadataValue::I32(-2_000_000_000),
            MetadataValue::F32(-1.25e-7),
            MetadataValue::Bool(true),
            MetadataValue::Bool(false),
            MetadataValue::String("Ġthe ünïcödé".into()),
            MetadataValue::U64(u64::MAX),
            MetadataValue::I64(i64::MIN),
            MetadataValue::F64(std::f64::consts::PI),
            MetadataValue::Array(MetadataArray::Array(vec![
                MetadataArray::String(vec!["a b".into(), String::new()]),
                MetadataArray::Bool(vec![true, false]),
                MetadataArray::Array(vec![MetadataArray::F64(vec![1.0])]),
            ])),
        ];
        for v in values {
            let mut bytes = Vec::new();
            v.encode(&mut bytes);
            assert_eq!(decode(v.value_type(), &bytes).unwrap(), v);
        }
    }

    #[test]
    fn bad_bool_bytes_are_refused() {
        assert_eq!(
            decode(ValueType::Bool, &[2]).unwrap_err(),
            GgufError::InvalidBool {
                key: "k".into(),
                offset: 0,
                byte: 2
            }
        );
        let mut bytes = Vec::new();
        MetadataArray::U8(vec![1, 0, 7]).encode(&mut bytes);
        bytes[0] = 7; // retag the UINT8 array as BOOL
        let err = decode(ValueType::Array, &bytes).unwrap_err();
        assert_eq!(
            err,
            GgufError::InvalidBool {
                key: "k".into(),
                offset: 14,
                byte: 7
            }
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = MetadataArray::U8(vec![]);
        for _ in 0..MAX_ARRAY_NESTING {
            deep = MetadataArray::Array(vec![deep]);
        }
        let mut bytes = Vec::new();
        deep.encode(&mut bytes);
        assert!(matches!(
            decode(ValueType::Array, &bytes).unwrap_err(),
            GgufError::NestingTooDeep {
                limit: MAX_ARRAY_NESTING,
                ..
            }
        ));
        let MetadataArray::Array(inner) = deep else {
            unreachable!()
        };
        let mut bytes = Vec::new();
        inner[0].encode(&mut bytes);
        assert!(decode(ValueType::Array, &bytes).is_ok());
    }
}
