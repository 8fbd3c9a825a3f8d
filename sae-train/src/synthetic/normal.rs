//! The standard normal CDF and its inverse, for copulas and probability maps.

/// Φ(x), the standard normal CDF, via erfc (Abramowitz & Stegun 7.1.26; absolute error < 1.5e-7).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let r = poly * (-z * z).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2e-9), for p in (0, 1).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_abs_diff_eq!(normal_cdf(0.0), 0.5, epsilon = 1e-7);
        assert_abs_diff_eq!(normal_cdf(1.0), 0.841_344_746, epsilon = 2e-7);
        assert_abs_diff_eq!(normal_cdf(-1.959_963_985), 0.025, epsilon = 2e-7);
        assert_abs_diff_eq!(normal_quantile(0.975), 1.959_963_985, epsilon = 1e-8);
        assert_abs_diff_eq!(normal_quantile(0.001), -3.090_232_306, epsilon = 1e-8);
    }

    proptest! {
        #[test]
        fn quantile_inverts_the_cdf(p in 1e-6f64..(1.0 - 1e-6)) {
            prop_assert!((normal_cdf(normal_quantile(p)) - p).abs() < 3e-7);
        }
    }
}
