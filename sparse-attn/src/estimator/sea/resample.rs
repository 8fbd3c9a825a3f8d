//! PyTorch's `F.interpolate` along one axis, as the fixed linear maps SEA's decoders use: `area`
//! (adaptive average pooling) when shrinking and `bilinear` with `align_corners = False` when
//! growing, plus `nearest` upsampling by an integer factor.
//!
//! Each is a constant `[in, out]` matrix applied by a matmul, so gradients flow through it on
//! every backend.

use burn::prelude::*;

/// How one axis is resampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Output cell `i` averages inputs `⌊i·in/out⌋ .. ⌈(i+1)·in/out⌉` (torch `area`).
    Area,
    /// Linear interpolation at source `(i + ½)·in/out − ½`, clamped at 0 (torch `bilinear`,
    /// `align_corners = False`).
    Linear,
}

impl Resample {
    /// What `F.interpolate(mode=None)` in the reference's `interpolate` helper picks: linear when
    /// the output is at least as wide, area otherwise.
    pub fn reference_choice(input: usize, output: usize) -> Self {
        if output >= input {
            Self::Linear
        } else {
            Self::Area
        }
    }
}

/// The `[input, output]` matrix (row-major) of one axis' resampling.
///
/// # Panics
/// If `input` or `output` is zero.
pub fn resample_matrix(input: usize, output: usize, mode: Resample) -> Vec<f32> {
    assert!(
        input > 0 && output > 0,
        "resample_matrix: sizes must be positive, found {input} → {output}"
    );
    let mut m = vec![0.0f32; input * output];
    let scale = input as f64 / output as f64;
    for i in 0..output {
        match mode {
            Resample::Area => {
                let start = (i * input) / output;
                let end = ((i + 1) * input).div_ceil(output);
                let w = 1.0 / (end - start) as f32;
                for s in start..end {
                    m[s * output + i] += w;
                }
            }
            Resample::Linear => {
                let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(input - 1);
                let i1 = (i0 + 1).min(input - 1);
                let lambda = (src - i0 as f64) as f32;
                m[i0 * output + i] += 1.0 - lambda;
                m[i1 * output + i] += lambda;
            }
        }
    }
    m
}

/// Resamples the last axis of `x` `[B, C, H, W]` to `width`.
pub fn resample_width(x: Tensor<4>, width: usize, mode: Resample) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if w == width {
        return x;
    }
    let device = x.device();
    let m = Tensor::<2>::from_data(
        TensorData::new(resample_matrix(w, width, mode), [w, width]),
        &device,
    );
    x.reshape([b * c * h, w])
        .matmul(m)
        .reshape([b, c, h, width])
}

/// Resamples the third axis of `x` `[B, C, H, W]` to `height`.
pub fn resample_height(x: Tensor<4>, height: usize, mode: Resample) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if h == height {
        return x;
    }
    let device = x.device();
    // out[.., i, :] = Σ_s m[s, i] · x[.., s, :]: a left product with mᵀ.
    let mt = Tensor::<2>::from_data(
        TensorData::new(resample_matrix(h, height, mode), [h, height]),
        &device,
    )
    .transpose()
    .reshape([1, height, h])
    .expand([b * c, height, h]);
    mt.matmul(x.reshape([b * c, h, w]))
        .reshape([b, c, height, w])
}

/// Nearest-neighbour upsampling of the last axis by an integer `factor` (torch `nearest` with
/// an integer `scale_factor`: every column repeated `factor` times).
pub fn repeat_width(x: Tensor<4>, factor: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.unsqueeze_dim::<5>(4)
        .expand([b, c, h, w, factor])
        .reshape([b, c, h, w * factor])
}

/// Nearest-neighbour upsampling of the third axis by an integer `factor`.
pub fn repeat_height(x: Tensor<4>, factor: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.unsqueeze_dim::<5>(3)
        .expand([b, c, h, factor, w])
        .reshape([b, c, h * factor, w])
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn area_pools_uneven_windows_like_adaptive_average_pooling() {
        // 5 → 2: windows [0, 3) and [2, 5).
        let m = resample_matrix(5, 2, Resample::Area);
        let col = |i: usize| (0..5).map(|s| m[s * 2 + i]).collect::<Vec<_>>();
        let third = 1.0 / 3.0;
        assert_eq!(col(0), vec![third, third, third, 0.0, 0.0]);
        assert_eq!(col(1), vec![0.0, 0.0, third, third, third]);
    }

    #[test]
    fn linear_matches_torch_half_pixel_interpolation() {
        // 2 → 4 with align_corners=False: sources -0.25→0, 0.25, 0.75, 1.25→clamped row 1.
        let m = resample_matrix(2, 4, Resample::Linear);
        let x = [1.0f32, 3.0];
        let out: Vec<f32> = (0..4)
            .map(|i| (0..2).map(|s| x[s] * m[s * 4 + i]).sum())
            .collect();
        let expected = [1.0, 1.5, 2.5, 3.0];
        for (a, b) in out.iter().zip(expected) {
            assert_relative_eq!(*a, b, epsilon = 1e-6);
        }
    }

    #[test]
    fn nearest_repeat_duplicates_columns() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0]]]], &device);
        let y = repeat_width(x, 3).into_data();
        y.assert_eq(
            &TensorData::from([[[[1.0f32, 1.0, 1.0, 2.0, 2.0, 2.0]]]]),
            false,
        );
    }

    proptest! {
        #[test]
        fn every_output_is_a_convex_combination(input in 1usize..40, output in 1usize..40, linear in any::<bool>()) {
            let mode = if linear { Resample::Linear } else { Resample::Area };
            let m = resample_matrix(input, output, mode);
            for i in 0..output {
                let col_sum: f32 = (0..input).map(|s| m[s * output + i]).sum();
                prop_assert!((col_sum - 1.0).abs() < 1e-5, "column {i} sums to {col_sum}");
                prop_assert!((0..input).all(|s| m[s * output + i] >= 0.0));
            }
            if input == output {
                for s in 0..input {
                    for i in 0..output {
                        prop_assert_eq!(m[s * output + i], if s == i { 1.0 } else { 0.0 });
                    }
                }
            }
        }
    }
}
