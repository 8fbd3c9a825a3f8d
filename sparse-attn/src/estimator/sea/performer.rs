//! Performer FAVOR+ random features and linear attention (Choromanski et al., ICLR 2021), the
//! kernel SEA runs over `concat(V_pos, v)` to get a linear-cost summary of every query's
//! attention.
//!
//! Followed exactly as SEA's reference uses it (lucidrains' `performer_pytorch.FastAttention`,
//! called by `perlin_attention/attention.py`):
//! - **projection**: `m` Gaussian orthogonal random rows `[m, D]` — blocks of `D` orthonormal
//!   rows (the QR factor of a Gaussian matrix), the last block truncated, each row scaled by
//!   the norm of an independent Gaussian `D`-vector (`ortho_scaling = 0`), with
//!   `m = ⌊D·ln D / nb_factor⌋` ([`performer_features`]).
//! - **softmax kernel** (FAVOR+, positive features; the bidirectional estimator): with
//!   `x' = D^{-1/4}·x`, `u = x'·Wᵀ` and `h(x) = |x|²/(2√D)`,
//!   `φ(x) = m^{-1/2}·(exp(u − h(x) − c) + 10⁻⁴)` where the stabiliser `c` is the row maximum of
//!   `u` for queries and the maximum over all keys and features of one (batch, head) for keys
//!   (detached; it cancels in the normalised attention). `E[φ(q)·φ(k)] ∝ exp(q·k/√D)`.
//! - **generalized kernel** (the causal estimator, `generalized_attention = causal` in the
//!   reference): `φ(x) = ReLU(x'·Wᵀ) + 10⁻³`.
//! - **linear attention**: `out_i = φ(q_i)·Σ_j φ(k_j)v_jᵀ / φ(q_i)·Σ_j φ(k_j)`; causal: the sums
//!   run over `j ≤ i` and the denominator adds `10⁻⁶` to every entry of the key prefix sum (the
//!   reference's `causal_linear_attention_noncuda`). The causal form here runs chunk by chunk
//!   (exact: an intra-chunk masked product plus the running state), so memory stays
//!   `O(T·m + m·E)` instead of the `O(T·m·E)` of a materialised prefix sum.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::random::SplitMix64;

/// Added inside the softmax kernel's exponential features.
pub const SOFTMAX_KERNEL_EPS: f64 = 1e-4;
/// Added to the generalized (ReLU) kernel's features.
pub const RELU_KERNEL_EPS: f64 = 1e-3;
/// Added to every entry of the causal key prefix sum before the denominator's dot product.
pub const CAUSAL_DENOMINATOR_EPS: f64 = 1e-6;
/// Rows per chunk of the causal linear attention.
const CAUSAL_CHUNK: usize = 64;

/// The number of random features: `⌊D·ln D / nb_factor⌋`, at least 1 (SEA's
/// `performer_nb_features`; `D = 64` gives 266 at `nb_factor = 1`, 33 at the OPT scripts' 8).
///
/// # Panics
/// If `head_dim` or `nb_factor` is zero.
pub fn performer_features(head_dim: usize, nb_factor: usize) -> usize {
    assert!(
        head_dim > 0 && nb_factor > 0,
        "performer_features: head_dim and nb_factor must be positive, found {head_dim} and {nb_factor}"
    );
    let d = head_dim as f64;
    ((d * d.ln() / nb_factor as f64).floor() as usize).max(1)
}

/// A Gaussian orthogonal random matrix `[rows, cols]`, row-major (see the module docs).
///
/// # Panics
/// If `rows` or `cols` is zero.
pub fn orthogonal_random_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    assert!(
        rows > 0 && cols > 0,
        "orthogonal_random_matrix: rows and cols must be positive, found {rows} and {cols}"
    );
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(rows * cols);
    while out.len() < rows * cols {
        let block = orthonormal_rows(cols, &mut rng);
        let take = (rows * cols - out.len()).min(cols * cols);
        out.extend(block[..take].iter().map(|&x| x as f32));
    }
    // Row norms of an unstructured Gaussian matrix restore the marginal distribution of rows.
    for r in 0..rows {
        let norm = (0..cols).map(|_| rng.normal().powi(2)).sum::<f64>().sqrt() as f32;
        out[r * cols..(r + 1) * cols]
            .iter_mut()
            .for_each(|x| *x *= norm);
    }
    out
}

/// `n` orthonormal rows of length `n`: modified Gram–Schmidt on Gaussian rows (the orthogonal
/// factor of a Gaussian matrix with a positive triangular factor, i.e. Haar distributed).
fn orthonormal_rows(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let mut m: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = (0..n).map(|c| m[i * n + c] * m[j * n + c]).sum();
            for c in 0..n {
                m[i * n + c] -= dot * m[j * n + c];
            }
        }
        let norm = (0..n).map(|c| m[i * n + c].powi(2)).sum::<f64>().sqrt();
        for c in 0..n {
            m[i * n + c] /= norm;
        }
    }
    m
}

/// The Performer's settings.
#[derive(Config, Debug)]
pub struct PerformerConfig {
    /// Head dimension `D` of queries and keys.
    pub head_dim: usize,
    /// `m = ⌊D·ln D / nb_factor⌋` features (reference default 1; its OPT scripts use 8).
    #[config(default = 1)]
    pub nb_factor: usize,
    /// The generalized ReLU kernel (reference: used exactly when the attention is causal)
    /// instead of the softmax kernel.
    #[config(default = false)]
    pub generalized: bool,
    /// Seed of the random projection.
    #[config(default = 0)]
    pub seed: u64,
}

impl PerformerConfig {
    /// A Performer with a freshly drawn projection.
    ///
    /// # Panics
    /// If `head_dim` or `nb_factor` is zero.
    pub fn init(&self, device: &Device) -> Performer {
        let m = performer_features(self.head_dim, self.nb_factor);
        Performer {
            projection: projection_param(m, self.head_dim, self.seed, device),
            generalized: self.generalized,
        }
    }
}

fn projection_param(m: usize, d: usize, seed: u64, device: &Device) -> Param<Tensor<2>> {
    let data = TensorData::new(orthogonal_random_matrix(m, d, seed), [m, d]);
    // Fixed features, not trained (the reference redraws them, it never learns them).
    Param::from_tensor(Tensor::from_data(data, device)).set_require_grad(false)
}

/// Performer random-feature attention (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct Performer {
    /// The random projection `W`, `[m, D]` (saved with the module, never trained).
    pub projection: Param<Tensor<2>>,
    /// ReLU features instead of softmax features.
    pub generalized: bool,
}

impl Performer {
    /// Number of random features `m`.
    pub fn n_features(&self) -> usize {
        self.projection.dims()[0]
    }

    /// The same Performer with a new projection drawn from `seed` (the reference's
    /// `redraw_projection_matrix`).
    pub fn redraw(mut self, seed: u64) -> Self {
        let [m, d] = self.projection.dims();
        let device = self.projection.device();
        self.projection = projection_param(m, d, seed, &device);
        self
    }

    /// `D^{-1/4}·x·Wᵀ`, `[B, H, T, m]`.
    fn project(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, _, d] = x.dims();
        let [m, dw] = self.projection.dims();
        assert!(
            d == dw,
            "Performer: input head dim expected {dw} (the projection's), found {d}"
        );
        let w = self
            .projection
            .val()
            .transpose()
            .reshape([1, 1, d, m])
            .expand([b, h, d, m]);
        x.mul_scalar((d as f64).powf(-0.25)).matmul(w)
    }

    /// Features of queries `[B, H, T, D]` → `[B, H, T, m]`.
    pub fn query_features(&self, q: Tensor<4>) -> Tensor<4> {
        self.features(q, true)
    }

    /// Features of keys `[B, H, T, D]` → `[B, H, T, m]`.
    pub fn key_features(&self, k: Tensor<4>) -> Tensor<4> {
        self.features(k, false)
    }

    fn features(&self, x: Tensor<4>, is_query: bool) -> Tensor<4> {
        let u = self.project(x.clone());
        if self.generalized {
            return relu(u).add_scalar(RELU_KERNEL_EPS);
        }
        let d = x.dims()[3] as f64;
        let m = self.n_features() as f64;
        let half_norm = x.powi_scalar(2).sum_dim(3).mul_scalar(0.5 / d.sqrt());
        let stabiliser = if is_query {
            u.clone().max_dim(3)
        } else {
            u.clone().max_dim(3).max_dim(2)
        }
        .detach();
        (u - half_norm - stabiliser)
            .exp()
            .add_scalar(SOFTMAX_KERNEL_EPS)
            .mul_scalar(m.powf(-0.5))
    }

    /// Linear attention of `q`, `k` `[B, H, T, D]` over values `v` `[B, H, T, E]`:
    /// `[B, H, T, E]`, causal or bidirectional.
    pub fn forward(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
        let qf = self.query_features(q);
        let kf = self.key_features(k);
        if causal {
            causal_linear_attention(qf, kf, v)
        } else {
            linear_attention(qf, kf, v)
        }
    }
}

/// Bidirectional linear attention on features: `φq·(φkᵀ·v) / φq·Σ_j φk_j`.
///
/// # Panics
/// If the shapes disagree.
pub fn linear_attention(qf: Tensor<4>, kf: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    check_feature_shapes(&qf, &kf, &v);
    let context = kf.clone().transpose().matmul(v); // [B, H, m, E]
    let k_sum = kf.sum_dim(2); // [B, H, 1, m]
    let denominator = qf.clone().matmul(k_sum.transpose()); // [B, H, T, 1]
    qf.matmul(context).div(denominator)
}

/// Causal linear attention on features: row `i` sums keys `j ≤ i`; the denominator is
/// `φq_i·(Σ_{j≤i} φk_j + 10⁻⁶)`.
///
/// # Panics
/// If the shapes disagree or query and key lengths differ.
pub fn causal_linear_attention(qf: Tensor<4>, kf: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    check_feature_shapes(&qf, &kf, &v);
    let [b, h, t, m] = qf.dims();
    assert!(
        kf.dims()[2] == t,
        "causal_linear_attention: query and key lengths must agree, found {t} and {}",
        kf.dims()[2]
    );
    let e = v.dims()[3];
    let device = qf.device();
    let mut state = Tensor::<4>::zeros([b, h, m, e], &device);
    let mut key_sum = Tensor::<4>::zeros([b, h, 1, m], &device);
    let mut outs = Vec::with_capacity(t.div_ceil(CAUSAL_CHUNK));
    for c0 in (0..t).step_by(CAUSAL_CHUNK) {
        let c1 = (c0 + CAUSAL_CHUNK).min(t);
        let qc = qf.clone().slice([0..b, 0..h, c0..c1, 0..m]);
        let kc = kf.clone().slice([0..b, 0..h, c0..c1, 0..m]);
        let vc = v.clone().slice([0..b, 0..h, c0..c1, 0..e]);
        let future = Tensor::<2, Bool>::tril_mask([c1 - c0, c1 - c0], 0, &device)
            .reshape([1, 1, c1 - c0, c1 - c0])
            .expand([b, h, c1 - c0, c1 - c0]);
        let within = qc
            .clone()
            .matmul(kc.clone().transpose())
            .mask_fill(future, 0.0);
        let numerator = within.clone().matmul(vc.clone()) + qc.clone().matmul(state.clone());
        let denominator = within.sum_dim(3)
            + qc.clone().matmul(key_sum.clone().transpose())
            + qc.clone().sum_dim(3).mul_scalar(CAUSAL_DENOMINATOR_EPS);
        outs.push(numerator.div(denominator));
        state = state + kc.clone().transpose().matmul(vc);
        key_sum = key_sum + kc.sum_dim(2);
    }
    Tensor::cat(outs, 2)
}

fn check_feature_shapes(qf: &Tensor<4>, kf: &Tensor<4>, v: &Tensor<4>) {
    let [b, h, _, m] = qf.dims();
    let [bk, hk, tk, mk] = kf.dims();
    let [bv, hv, tv, _] = v.dims();
    assert!(
        b == bk && b == bv && h == hk && h == hv && m == mk && tk == tv,
        "linear attention: features [B,H,Tq,m] {:?}, [B,H,Tk,m] {:?} and values [B,H,Tk,E] {:?} disagree",
        qf.dims(),
        kf.dims(),
        v.dims()
    );
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance, activation::softmax};

    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    fn random(shape: [usize; 4], scale: f64, seed: u64, device: &Device) -> Tensor<4> {
        let mut rng = SplitMix64::new(seed);
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| (rng.normal() * scale) as f32).collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    #[test]
    fn feature_count_follows_the_reference_formula() {
        assert_eq!(performer_features(64, 1), 266);
        assert_eq!(performer_features(64, 8), 33);
        assert_eq!(performer_features(1, 1), 1);
    }

    #[test]
    fn projection_blocks_are_orthogonal_and_seeded() {
        let (m, d) = (10, 4);
        let w = orthogonal_random_matrix(m, d, 5);
        assert_eq!(w, orthogonal_random_matrix(m, d, 5));
        assert_ne!(w, orthogonal_random_matrix(m, d, 6));
        let row = |r: usize| &w[r * d..(r + 1) * d];
        for block in 0..m.div_ceil(d) {
            let rows: Vec<usize> = (block * d..((block + 1) * d).min(m)).collect();
            for &a in &rows {
                for &b in &rows {
                    if a != b {
                        let dot: f32 = row(a).iter().zip(row(b)).map(|(x, y)| x * y).sum();
                        assert!(dot.abs() < 1e-4, "rows {a}, {b}: dot {dot}");
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_features_approach_exact_softmax_attention() {
        let device = device();
        let (d, t) = (4, 6);
        let q = random([1, 1, t, d], 0.4, 1, &device);
        let k = random([1, 1, t, d], 0.4, 2, &device);
        let v = random([1, 1, t, 3], 1.0, 3, &device);
        let performer = Performer {
            projection: projection_param(8192, d, 11, &device),
            generalized: false,
        };
        let scores = q
            .clone()
            .matmul(k.clone().transpose())
            .mul_scalar(1.0 / (d as f64).sqrt());
        let exact = softmax(scores, 3).matmul(v.clone());
        let approx = performer.forward(q, k, v, false);
        approx
            .into_data()
            .assert_approx_eq::<f32>(&exact.into_data(), Tolerance::absolute(0.03));
    }

    #[test]
    fn causal_prefix_sums_equal_the_direct_quadratic_form() {
        let device = device();
        // Longer than one chunk so the running state is exercised.
        let (d, t) = (8, CAUSAL_CHUNK + 9);
        for generalized in [false, true] {
            let performer = PerformerConfig::new(d)
                .with_generalized(generalized)
                .with_seed(3)
                .init(&device);
            let q = random([2, 2, t, d], 0.5, 4, &device);
            let k = random([2, 2, t, d], 0.5, 5, &device);
            let v = random([2, 2, t, 5], 1.0, 6, &device);
            let (qf, kf) = (
                performer.query_features(q.clone()),
                performer.key_features(k.clone()),
            );
            let future = Tensor::<2, Bool>::tril_mask([t, t], 0, &device)
                .reshape([1, 1, t, t])
                .expand([2, 2, t, t]);
            let a = qf.clone().matmul(kf.transpose()).mask_fill(future, 0.0);
            let den = a.clone().sum_dim(3) + qf.sum_dim(3).mul_scalar(CAUSAL_DENOMINATOR_EPS);
            let direct = a.matmul(v.clone()).div(den);
            performer
                .forward(q, k, v, true)
                .into_data()
                .assert_approx_eq::<f32>(&direct.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
        }
    }

    #[test]
    fn bidirectional_linear_attention_equals_the_direct_quadratic_form() {
        let device = device();
        let performer = PerformerConfig::new(6).with_seed(9).init(&device);
        let q = Tensor::<4>::random([1, 2, 5, 6], Distribution::Normal(0.0, 0.5), &device);
        let k = Tensor::<4>::random([1, 2, 7, 6], Distribution::Normal(0.0, 0.5), &device);
        let v = Tensor::<4>::random([1, 2, 7, 3], Distribution::Normal(0.0, 1.0), &device);
        let (qf, kf) = (
            performer.query_features(q.clone()),
            performer.key_features(k.clone()),
        );
        let a = qf.matmul(kf.transpose());
        let direct = a.clone().matmul(v.clone()).div(a.sum_dim(3));
        performer
            .forward(q, k, v, false)
            .into_data()
            .assert_approx_eq::<f32>(&direct.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
    }

    #[test]
    fn causal_rows_ignore_future_keys() {
        let device = device();
        let performer = PerformerConfig::new(4).with_generalized(true).init(&device);
        let q = random([1, 1, 6, 4], 0.5, 1, &device);
        let k = random([1, 1, 6, 4], 0.5, 2, &device);
        let v = random([1, 1, 6, 2], 1.0, 3, &device);
        let out = performer.forward(q.clone(), k.clone(), v.clone(), true);
        let k2 = k.slice_assign(
            [0..1, 0..1, 4..6, 0..4],
            Tensor::ones([1, 1, 2, 4], &device),
        );
        let out2 = performer.forward(q, k2, v, true);
        out.slice([0..1, 0..1, 0..4, 0..2])
            .into_data()
            .assert_approx_eq::<f32>(
                &out2.slice([0..1, 0..1, 0..4, 0..2]).into_data(),
                Tolerance::strict(),
            );
    }

    #[test]
    fn redraw_changes_only_the_projection() {
        let device = device();
        let p = PerformerConfig::new(4).init(&device);
        let before = p.projection.val().into_data();
        let p = p.redraw(1);
        assert_eq!(p.n_features(), performer_features(4, 1));
        assert_ne!(before, p.projection.val().into_data());
    }
}
