//! Rotary position embeddings in the Hugging Face `rotate_half` layout.
//!
//! Head channel `i < d/2` pairs with channel `i + d/2`; pair `i` turns by `pos · θ^(−2i/d)`.
//! GGUF files from llama.cpp's converter store q/k rows permuted for the adjacent-pair layout;
//! the GGUF loader un-permutes them, so this one layout serves every file and hook values are in
//! Hugging Face / TransformerLens channel order.

use burn::prelude::*;

/// Precomputed cos/sin tables `[max_positions, d_head]` (`cat(freqs, freqs)` as HF builds them).
#[derive(Clone, Debug)]
pub struct RotaryTables {
    cos: Tensor<2>,
    sin: Tensor<2>,
    max_positions: usize,
}

impl RotaryTables {
    /// Tables for positions `0..max_positions`. Angles are computed in f64 and rounded once.
    ///
    /// # Panics
    /// If `d_head` is odd or zero.
    pub fn new(d_head: usize, theta: f64, max_positions: usize, device: &Device) -> Self {
        assert!(
            d_head > 0 && d_head.is_multiple_of(2),
            "RotaryTables: d_head expected even and positive, found {d_head}"
        );
        let half = d_head / 2;
        let inv: Vec<f64> = (0..half)
            .map(|i| theta.powf(-(2.0 * i as f64) / d_head as f64))
            .collect();
        let mut cos = Vec::with_capacity(max_positions * d_head);
        let mut sin = Vec::with_capacity(max_positions * d_head);
        for pos in 0..max_positions {
            // cat(freqs, freqs): channel i and i + d/2 share an angle.
            for _ in 0..2 {
                for &f in &inv {
                    let angle = pos as f64 * f;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let shape = [max_positions, d_head];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
            max_positions,
        }
    }

    /// The number of positions the tables cover.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// cos and sin rows for `positions` (`[batch, pos]`), shaped `[batch, pos, 1, d_head]` to
    /// broadcast over the heads of `[batch, pos, heads, d_head]`.
    pub fn gather(&self, positions: Tensor<2, Int>) -> (Tensor<4>, Tensor<4>) {
        let [b, p] = positions.dims();
        let d = self.cos.dims()[1];
        let flat = positions.reshape([b * p]);
        let cos = self
            .cos
            .clone()
            .select(0, flat.clone())
            .reshape([b, p, 1, d]);
        let sin = self.sin.clone().select(0, flat).reshape([b, p, 1, d]);
        (cos, sin)
    }

    /// Rotates `x` (`[batch, pos, heads, d_head]`) by the gathered tables.
    pub fn apply(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
        x.clone() * cos.clone() + rotate_half(x) * sin.clone()
    }
}

/// `cat(−x₂, x₁)` over the last dimension.
fn rotate_half(x: Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let first = x.clone().narrow(3, 0, d / 2);
    let second = x.narrow(3, d / 2, d / 2);
    Tensor::cat(vec![second.neg(), first], 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn rotation_preserves_norm_and_relative_position() {
        let d = Device::flex();
        d.seed(1);
        let tables = RotaryTables::new(8, 10_000.0, 32, &d);
        let q = Tensor::<4>::random([1, 1, 1, 8], Distribution::Normal(0.0, 1.0), &d);
        let k = Tensor::<4>::random([1, 1, 1, 8], Distribution::Normal(0.0, 1.0), &d);
        let at = |x: Tensor<4>, pos: i64| {
            let (c, s) = tables.gather(Tensor::<2, Int>::from_data([[pos]], &d));
            RotaryTables::apply(x, &c, &s)
        };
        // ⟨R(m)q, R(n)k⟩ depends on m − n only.
        let dot = |a: Tensor<4>, b: Tensor<4>| (a * b).sum().into_scalar::<f32>();
        let s1 = dot(at(q.clone(), 7), at(k.clone(), 3));
        let s2 = dot(at(q.clone(), 20), at(k.clone(), 16));
        approx::assert_relative_eq!(s1, s2, max_relative = 1e-4);
        let n0 = q.clone().powi_scalar(2).sum().into_scalar::<f32>();
        let n1 = at(q.clone(), 11).powi_scalar(2).sum().into_scalar::<f32>();
        approx::assert_relative_eq!(n0, n1, max_relative = 1e-5);
        // Position 0 is the identity.
        at(q.clone(), 0)
            .into_data()
            .assert_approx_eq::<f32>(&q.into_data(), Tolerance::absolute(1e-7));
    }
}
