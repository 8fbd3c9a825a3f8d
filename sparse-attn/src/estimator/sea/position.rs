//! SEA's "position values" `V_pos` `[B, H, T, D]`: what the Performer averages next to `v`, so
//! the linear-attention summary of a query says *where* its attention goes, not only what it
//! reads.
//!
//! - **causal** (the reference's `v_eye_learned_causal`): a learned table `[max_len, D]`,
//!   initialised `N(0, 1)`, rows `0..T` shared by every head and batch.
//! - **bidirectional**: the identity `I_D` resampled along the sequence — bilinear `grid_sample`
//!   with `align_corners = True` at row `pos_t·(D − 1)`, `pos_t = (c_t − 1)/(len − 1 + 10⁻⁸)`,
//!   `c_t` the number of unpadded tokens up to `t`, so token `t` carries the hat function
//!   `max(0, 1 − |pos_t·(D − 1) − j|)` over channels `j`: a soft one-hot of its relative position.
//!   Padded tokens get zeros (the reference zeroes `v_for_atten` there).

use burn::prelude::*;

/// The bidirectional position values `[B, T, D]` for the unpadded lengths `lengths[b]`
/// (tokens `0..len` valid, the rest padding), on the host.
///
/// # Panics
/// If a length exceeds `seq_len` or `head_dim` is zero.
pub fn identity_positions(lengths: &[usize], seq_len: usize, head_dim: usize) -> Vec<f32> {
    assert!(
        head_dim > 0,
        "identity_positions: head_dim must be positive"
    );
    let mut out = vec![0.0f32; lengths.len() * seq_len * head_dim];
    for (b, &len) in lengths.iter().enumerate() {
        assert!(
            len <= seq_len,
            "identity_positions: length of batch {b} must be at most {seq_len}, found {len}"
        );
        for t in 0..len {
            let pos = t as f64 / ((len as f64 - 1.0) + 1e-8);
            let row = pos * (head_dim as f64 - 1.0);
            for j in 0..head_dim {
                let w = (1.0 - (row - j as f64).abs()).max(0.0);
                out[(b * seq_len + t) * head_dim + j] = w as f32;
            }
        }
    }
    out
}

/// The bidirectional position values as a tensor `[B, H, T, D]` (broadcast over heads).
pub fn identity_position_tensor(
    lengths: &[usize],
    heads: usize,
    seq_len: usize,
    head_dim: usize,
    device: &Device,
) -> Tensor<4> {
    let b = lengths.len();
    let data = TensorData::new(
        identity_positions(lengths, seq_len, head_dim),
        [b, 1, seq_len, head_dim],
    );
    Tensor::<4>::from_data(data, device).expand([b, heads, seq_len, head_dim])
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn first_and_last_tokens_are_the_identity_corners() {
        let d = 4;
        let p = identity_positions(&[7], 7, d);
        assert_eq!(&p[..d], &[1.0, 0.0, 0.0, 0.0]);
        let last = &p[6 * d..7 * d];
        assert_relative_eq!(last[3], 1.0, epsilon = 1e-6);
        assert!(last[..3].iter().all(|&x| x.abs() < 1e-6));
    }

    #[test]
    fn middle_token_splits_between_two_channels() {
        // len 3, D 4: token 1 sits at row 1.5 → channels 1 and 2 get ½ each.
        let p = identity_positions(&[3], 3, 4);
        let mid = &p[4..8];
        for (a, b) in mid.iter().zip([0.0, 0.5, 0.5, 0.0]) {
            assert_relative_eq!(*a, b, epsilon = 1e-6);
        }
    }

    #[test]
    fn padding_rows_are_zero() {
        let p = identity_positions(&[2, 4], 4, 3);
        assert!(p[2 * 3..4 * 3].iter().all(|&x| x == 0.0));
        assert!(p[4 * 3..].iter().any(|&x| x > 0.0));
    }

    proptest! {
        #[test]
        fn every_valid_row_sums_to_one(len in 1usize..30, d in 1usize..12) {
            let p = identity_positions(&[len], len, d);
            for t in 0..len {
                let s: f32 = p[t * d..(t + 1) * d].iter().sum();
                prop_assert!((s - 1.0).abs() < 1e-5, "row {t} sums to {s}");
            }
        }
    }
}
