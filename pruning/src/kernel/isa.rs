//! Runtime choice of the instruction set the kernels are compiled for.
//!
//! The workspace builds for the baseline target (SSE2 on x86-64), so the hot loops are compiled
//! three times — AVX-512, AVX2 + FMA and baseline — and the widest one the CPU supports is picked
//! at run time. The loops are written over fixed-width `[f32; W]` accumulators that LLVM turns
//! into whole vector registers, so no intrinsics are needed.

/// The instruction-set variant of the kernels that runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F (+ AVX2, FMA): 16-lane `f32` vectors, 32 registers.
    Avx512,
    /// AVX2 + FMA: 8-lane vectors, 16 registers.
    Avx2,
    /// Whatever the compilation target guarantees (SSE2 on x86-64, NEON on aarch64), no FMA.
    Baseline,
}

impl Isa {
    /// The best variant for the running CPU (detection is cached by the standard library).
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

/// `a·b + c`, fused when the variant has FMA (it then compiles to one instruction; without FMA
/// hardware `mul_add` would be a slow library call, so the baseline rounds twice instead).
#[inline(always)]
pub(crate) fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Defines `$name(isa, args...)` that runs `$body` (an `#[inline(always)]` generic function
/// taking `<const FMA: bool>`) compiled for the requested instruction set.
macro_rules! isa_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        $vis fn $name(isa: $crate::kernel::isa::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                match isa {
                    // SAFETY: `Isa::detect` returned this variant only after checking that the
                    // CPU supports every enabled feature.
                    $crate::kernel::isa::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::kernel::isa::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernel::isa::Isa::Baseline => {}
                }
            }
            let _ = isa;
            $body::<false>($($arg),*)
        }
    };
}

pub(crate) use isa_dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmadd_agrees_with_separate_rounding_on_exact_values() {
        assert_eq!(fmadd::<true>(2.0, 3.0, 1.0), 7.0);
        assert_eq!(fmadd::<false>(2.0, 3.0, 1.0), 7.0);
    }

    #[test]
    fn detection_is_stable() {
        assert_eq!(Isa::detect(), Isa::detect());
    }
}
