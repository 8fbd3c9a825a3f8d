//! ggml tensor types: the `type` id of a GGUF tensor, with its block size and bytes per block.
//!
//! Every type ggml knows is listed, so the size of every tensor in a file can be validated even
//! when this crate cannot dequantise it; an id ggml does not know (or has removed: 4, 5, 31–33,
//! 36–38) is refused when the file is parsed.

use std::fmt;

/// A ggml tensor type (`enum ggml_type`), as stored in a GGUF tensor info.
///
/// Quantised types store blocks of [`block_size`](Self::block_size) consecutive elements along
/// the fastest-varying dimension (`ne[0]`) in [`type_size`](Self::type_size) bytes each.
///
/// ```
/// use hooked_transformer::gguf::GgmlType;
///
/// let ty = GgmlType::from_id(3).unwrap();
/// assert_eq!(ty, GgmlType::Q4_1);
/// assert_eq!((ty.block_size(), ty.type_size()), (32, 20));
/// assert_eq!(ty.row_bytes(576), Some(360));
/// assert!(GgmlType::from_id(4).is_none()); // Q4_2, removed from ggml
/// ```
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit IEEE float (id 0).
    F32,
    /// 16-bit IEEE float (id 1).
    F16,
    /// 4-bit, blocks of 32: f16 scale, 16 bytes of codes (id 2).
    Q4_0,
    /// 4-bit, blocks of 32: f16 scale, f16 minimum, 16 bytes of codes (id 3).
    Q4_1,
    /// 5-bit, blocks of 32 (id 6).
    Q5_0,
    /// 5-bit with minimum, blocks of 32 (id 7).
    Q5_1,
    /// 8-bit, blocks of 32: f16 scale, 32 signed bytes (id 8).
    Q8_0,
    /// 8-bit with sum, blocks of 32 (id 9).
    Q8_1,
    /// 2-bit k-quant, super-blocks of 256 (id 10).
    Q2_K,
    /// 3-bit k-quant, super-blocks of 256 (id 11).
    Q3_K,
    /// 4-bit k-quant, super-blocks of 256 (id 12).
    Q4_K,
    /// 5-bit k-quant, super-blocks of 256 (id 13).
    Q5_K,
    /// 6-bit k-quant, super-blocks of 256 (id 14).
    Q6_K,
    /// 8-bit k-quant (intermediate type), super-blocks of 256 (id 15).
    Q8_K,
    /// 2-bit i-quant, super-blocks of 256 (id 16).
    IQ2_XXS,
    /// 2-bit i-quant, super-blocks of 256 (id 17).
    IQ2_XS,
    /// 3-bit i-quant, super-blocks of 256 (id 18).
    IQ3_XXS,
    /// 1-bit i-quant, super-blocks of 256 (id 19).
    IQ1_S,
    /// 4-bit non-linear, blocks of 32 (id 20).
    IQ4_NL,
    /// 3-bit i-quant, super-blocks of 256 (id 21).
    IQ3_S,
    /// 2-bit i-quant, super-blocks of 256 (id 22).
    IQ2_S,
    /// 4-bit i-quant, super-blocks of 256 (id 23).
    IQ4_XS,
    /// 8-bit signed integer (id 24).
    I8,
    /// 16-bit signed integer (id 25).
    I16,
    /// 32-bit signed integer (id 26).
    I32,
    /// 64-bit signed integer (id 27).
    I64,
    /// 64-bit IEEE float (id 28).
    F64,
    /// 1-bit i-quant, super-blocks of 256 (id 29).
    IQ1_M,
    /// bfloat16 (id 30).
    BF16,
    /// Ternary, super-blocks of 256 (id 34).
    TQ1_0,
    /// Ternary, super-blocks of 256 (id 35).
    TQ2_0,
    /// Microscaling FP4, blocks of 32 (id 39).
    MXFP4,
}

/// `(type, id, name, elements per block, bytes per block)`, from ggml's `type_traits` table.
const TABLE: [(GgmlType, u32, &str, u64, u64); 32] = [
    (GgmlType::F32, 0, "F32", 1, 4),
    (GgmlType::F16, 1, "F16", 1, 2),
    (GgmlType::Q4_0, 2, "Q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "Q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "Q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "Q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "Q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "Q8_1", 32, 36),
    (GgmlType::Q2_K, 10, "Q2_K", 256, 84),
    (GgmlType::Q3_K, 11, "Q3_K", 256, 110),
    (GgmlType::Q4_K, 12, "Q4_K", 256, 144),
    (GgmlType::Q5_K, 13, "Q5_K", 256, 176),
    (GgmlType::Q6_K, 14, "Q6_K", 256, 210),
    (GgmlType::Q8_K, 15, "Q8_K", 256, 292),
    (GgmlType::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
    (GgmlType::IQ2_XS, 17, "IQ2_XS", 256, 74),
    (GgmlType::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
    (GgmlType::IQ1_S, 19, "IQ1_S", 256, 50),
    (GgmlType::IQ4_NL, 20, "IQ4_NL", 32, 18),
    (GgmlType::IQ3_S, 21, "IQ3_S", 256, 110),
    (GgmlType::IQ2_S, 22, "IQ2_S", 256, 82),
    (GgmlType::IQ4_XS, 23, "IQ4_XS", 256, 136),
    (GgmlType::I8, 24, "I8", 1, 1),
    (GgmlType::I16, 25, "I16", 1, 2),
    (GgmlType::I32, 26, "I32", 1, 4),
    (GgmlType::I64, 27, "I64", 1, 8),
    (GgmlType::F64, 28, "F64", 1, 8),
    (GgmlType::IQ1_M, 29, "IQ1_M", 256, 56),
    (GgmlType::BF16, 30, "BF16", 1, 2),
    (GgmlType::TQ1_0, 34, "TQ1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "TQ2_0", 256, 66),
    (GgmlType::MXFP4, 39, "MXFP4", 32, 17),
];

impl GgmlType {
    /// Every known type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|row| row.0)
    }

    /// The type with ggml id `id`, or `None` for an id ggml does not know (or has removed).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TABLE.iter().find(|row| row.1 == id).map(|row| row.0)
    }

    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        // Every variant has exactly one row (checked by a test), so the fallback is never taken.
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The ggml id written in GGUF files.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// ggml's name for the type (`"Q4_1"`, `"BF16"`, ...).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements per block (1 for plain scalar types, 32 or 256 for quantised ones).
    pub fn block_size(self) -> u64 {
        self.row().3
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.row().4
    }

    /// Bytes of a row of `ne0` elements, or `None` if `ne0` is not a multiple of the block size.
    pub fn row_bytes(self, ne0: u64) -> Option<u64> {
        if !ne0.is_multiple_of(self.block_size()) {
            return None;
        }
        (ne0 / self.block_size()).checked_mul(self.type_size())
    }

    /// Whether [`dequantize`](super::dequantize) (and so
    /// [`GgufFile::tensor_f32`](super::GgufFile::tensor_f32)) converts this type to `f32`:
    /// F32, F16, BF16, Q8_0, Q4_0 and Q4_1.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            GgmlType::F32
                | GgmlType::F16
                | GgmlType::BF16
                | GgmlType::Q8_0
                | GgmlType::Q4_0
                | GgmlType::Q4_1
        )
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_row_and_round_trips_its_id() {
        let all: Vec<GgmlType> = GgmlType::all().collect();
        assert_eq!(all.len(), TABLE.len());
        for (i, ty) in all.iter().enumerate() {
            assert_eq!(TABLE.iter().filter(|row| row.0 == *ty).count(), 1, "{ty}");
            assert_eq!(GgmlType::from_id(ty.id()), Some(*ty));
            assert_eq!(ty.row(), &TABLE[i]);
        }
    }

    #[test]
    fn removed_and_unknown_ids_are_refused() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
        for id in (0..=3).chain(6..=30).chain([34, 35, 39]) {
            assert!(GgmlType::from_id(id).is_some(), "id {id}");
        }
    }

    #[test]
    fn row_bytes_follow_the_block_layout() {
        assert_eq!(GgmlType::F32.row_bytes(7), Some(28));
        assert_eq!(GgmlType::Q8_0.row_bytes(64), Some(68));
        assert_eq!(GgmlType::Q4_0.row_bytes(31), None);
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_bytes(32), None);
        assert_eq!(GgmlType::Q8_K.row_bytes(u64::MAX - 255), None);
        // Bits per weight of the common quantised types.
        assert_eq!(
            GgmlType::Q4_1.type_size() * 8 / GgmlType::Q4_1.block_size(),
            5
        );
        assert_eq!(GgmlType::Q6_K.type_size() * 8 * 1000 / 256, 6562);
    }
}
