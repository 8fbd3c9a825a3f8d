//! Benchmark program of sae-train: what the trainer recovers and how fast it runs.
//!
//! ```sh
//! cargo run --release -p examples --example bench_sae_train -- [SECTION ...] [--real PATH] [--only TERMS]
//! ```
//!
//! `--only A,B` trains only the SAEs whose label contains one of the comma-separated terms
//! (`synthetic1`, `synthetic1tune`, `real`). Every SAE is still initialised, in the same order,
//! so a selected SAE starts from the same weights, and sees the same batches, as in the full run.
//!
//! Sections (all when none is named):
//! - `throughput` — one TopK training step (d 576, width 4608, k 32, batch 4096): the k-sparse
//!   fast step and burn's autodiff step against a dense matmul of the same shapes, same run;
//! - `synthetic1long` — TopK k 5 with 2,048 latents, 2,000 steps: the MMCS ≥ 0.9 run;
//! - `synthetic1` — every sae-core architecture on the correlated-features data (512 features in
//!   256 dimensions, ~5 active): MMCS, MCC, FVU, L0, dead %;
//! - `synthetic1tune` — the same run plus the candidate settings that chose the JumpReLU, Gated
//!   and top-AFA configurations of `synthetic1` (use `--only JumpReLU,Gated,top-AFA`);
//! - `synthetic2` — the MP-SAE hierarchical tree: MCC of matching pursuit vs TopK vs ReLU;
//! - `synthetic3` — signed features: share of directions recovered at |cos| > 0.9, AbsTopK vs TopK;
//! - `real` — SmolLM2-135M layer-12 activations: TopK (k 32, width 4608) and JumpReLU on a
//!   held-out split, with and without the norm filter. The file is
//!   `$SPARSELAND_SHARED/data/smollm2-sotu/smollm2-135m-layer12.safetensors` (default
//!   `../shared`), or `--real PATH`.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use sae_core::metrics::{SaeMetrics, ground_truth_recovery};
use sae_core::{
    AbsTopKSaeConfig, AnySae, ArchetypalSaeConfig, BatchTopKSaeConfig, GatedSaeConfig,
    JumpReluSaeConfig, JumpReluSparsityLoss, MatchingPursuitSaeConfig, MatryoshkaSaeConfig,
    ReluSaeConfig, SparseAutoencoder, TopAfaSaeConfig, TopKSaeConfig,
};
use sae_train::{
    AuxKConfig, BatchStream, BatchStreamConfig, CorrelatedFeatures, CorrelatedFeaturesConfig,
    Decay, FitOptions, HierarchicalTree, HierarchicalTreeConfig, LrSchedule, SaeRunConfig,
    SafetensorsSource, SignedFeatures, SignedFeaturesConfig, SyntheticDataset, SyntheticSource,
    TokenFilter, Trainer, TrainerConfig,
};

fn load() -> String {
    std::process::Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "uptime unavailable".into())
}

fn throughput(reps: usize) -> Result<(), Box<dyn Error>> {
    let (batch, d, m, k) = (4096usize, 576usize, 4608usize, 32usize);
    println!("\n## throughput: TopK step, d {d}, width {m}, k {k}, batch {batch}");
    println!("load before: {}", load());
    let device = examples::device();
    device.seed(0);
    let a = Tensor::<2>::random([batch, d], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<2>::random([d, m], Distribution::Normal(0.0, 0.05), &device);
    let batch_host: Vec<f32> = a
        .clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("floats");

    // One trainer per variant. `dead_half`: the encoder columns of latents m/2.. are scaled by
    // 0.1, so those latents never reach the top k, are dead after one batch, and aux-K
    // (k_aux = d/2 = 288 of them per token) runs on every measured step.
    let trainer = |fast: bool, dead_half: bool| -> Trainer<AnySae> {
        let ad = device.clone().autodiff();
        ad.seed(1);
        let mut sae = unit_norm_topk(d, m, k).init(&ad);
        if dead_half {
            let scale: Vec<f32> = (0..m).map(|i| if i < m / 2 { 1.0 } else { 0.1 }).collect();
            let scale = Tensor::<1>::from_data(TensorData::new(scale, [m]), &ad);
            sae.W_enc = sae
                .W_enc
                .map(|w| (w * scale.unsqueeze::<2>()).detach().require_grad());
        }
        let lr = LrSchedule::new(1e-4, 1, 1_000, Decay::Constant);
        let config = TrainerConfig::new(1_000)
            .with_fast_topk(fast)
            .with_dead_after_tokens(0);
        let run = SaeRunConfig::new("topk", lr).with_aux_k(Some(AuxKConfig::default()));
        Trainer::new(config, vec![(run, sae.into())], &ad)
    };
    let mut variants = vec![
        (
            "fast k-sparse step, no dead latents (aux-K idle)",
            trainer(true, false),
        ),
        (
            "fast k-sparse step, aux-K active (half the latents dead)",
            trainer(true, true),
        ),
        (
            "burn autodiff step, no dead latents (aux-K idle)",
            trainer(false, false),
        ),
        (
            "burn autodiff step, aux-K active (half the latents dead)",
            trainer(false, true),
        ),
    ];
    // Two warm-up steps: the first marks the silent latents dead, the second runs aux-K.
    for (_, t) in &mut variants {
        for _ in 0..2 {
            t.train_step(&batch_host)?;
        }
    }
    let matmul_once = || {
        let t = Instant::now();
        let _: f32 = a
            .clone()
            .matmul(b.clone())
            .slice([0..1, 0..1])
            .into_scalar();
        t.elapsed().as_secs_f64()
    };
    matmul_once();
    // Round-robin: every repetition times the matmul and each step back to back, so a burst of
    // load hits all of them alike; medians are reported.
    let mut matmul = Vec::new();
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for rep in 0..reps {
        matmul.push(matmul_once());
        for (i, (_, t)) in variants.iter_mut().enumerate() {
            // The autodiff steps are slow: time them every other repetition.
            if i >= 2 && rep % 2 == 1 {
                continue;
            }
            let start = Instant::now();
            t.train_step(&batch_host)?;
            steps[i].push(start.elapsed().as_secs_f64());
        }
    }
    let matmul = examples::median(matmul);
    let matmul_flops = 2.0 * (batch * d * m) as f64;
    println!(
        "dense matmul [{batch}×{d}]·[{d}×{m}] (burn flex, simd+rayon): {:.1} ms, {:.1} GFLOP/s",
        matmul * 1e3,
        matmul_flops / matmul / 1e9
    );
    // FLOPs the fast step executes: the dense encoder product plus the k-row gathers/scatters
    // (decode, its value and weight gradients, the encoder weight gradient) for k (and k_aux).
    // A dense TopK step would run five products of the matmul's size (encoder forward, decoder
    // forward, decoder and code gradients, encoder gradient).
    let dense_equivalent = 5.0 * matmul_flops;
    let k_aux = d / 2;
    for ((name, t), times) in variants.iter().zip(steps) {
        let secs = examples::median(times);
        let dead = t.dead_latents(0).dead_fraction();
        let active_k = if dead > 0.0 { k + k_aux } else { k };
        let executed = matmul_flops + 2.0 * (batch * d) as f64 * (4 * active_k) as f64;
        println!(
            "{name}: {:.1} ms = {:.0} tokens/s; {:.2}× the matmul's time; {:.0}% dead; \
             executes {:.1} GFLOP/s, {:.1} dense-equivalent GFLOP/s",
            secs * 1e3,
            batch as f64 / secs,
            secs / matmul,
            100.0 * dead,
            executed / secs / 1e9,
            dense_equivalent / secs / 1e9,
        );
    }
    println!("load after: {}", load());
    Ok(())
}

/// Trains every `(run, sae)` on one stream of `data` for `steps` steps of `batch` tokens and
/// evaluates each on 16,384 held-out tokens: (name, MMCS, MCC, FVU, L0, dead %, best |cos| per
/// true feature).
struct Row {
    name: String,
    mmcs: f64,
    mcc: f64,
    fvu: f64,
    l0: f64,
    dead: f64,
    best_cos: Vec<f64>,
}

fn train_and_evaluate<D: SyntheticDataset + Clone>(
    data: &D,
    saes: Vec<(SaeRunConfig, AnySae)>,
    steps: u64,
    batch: usize,
    dead_after: u64,
) -> Result<Vec<Row>, Box<dyn Error>> {
    let device = examples::device();
    let ad = device.clone().autodiff();
    let source = SyntheticSource::new(data.clone(), 8 * batch, None, device.clone());
    let mut stream = BatchStream::new(source, BatchStreamConfig::new(batch).with_seed(1))?;
    let config = TrainerConfig::new(steps).with_dead_after_tokens(dead_after);
    let mut trainer = Trainer::new(config, saes, &ad);
    let start = Instant::now();
    trainer.fit(&mut stream, FitOptions::default())?;
    println!(
        "  trained {} SAEs × {steps} steps × {batch} tokens in {:.1} s",
        trainer.len(),
        start.elapsed().as_secs_f64()
    );
    let scale = stream.calibration().normaliser.scale();
    let held_out = data.sample(1 << 40, 16_384, &device);
    let x = Tensor::<2>::from_data(
        TensorData::new(held_out.activations, [16_384, data.d_in()]),
        &device,
    ) * scale as f32;
    let truth = data.features_tensor(&device);
    let truth_unit = unit_rows(truth.clone());
    let mut rows = Vec::new();
    for i in 0..trainer.len() {
        let sae = trainer.sae(i).clone().valid();
        let mut metrics = SaeMetrics::new();
        for chunk in 0..4 {
            let xs = x.clone().narrow(0, chunk * 4096, 4096);
            let codes = sae.encode(xs.clone());
            let x_hat = sae.decode(codes.clone());
            metrics.update(&xs, &x_hat, &codes);
        }
        let report = metrics.report().expect("batches were seen");
        let dict = sae.dictionary();
        let recovery = ground_truth_recovery(&dict, &truth);
        let cos = truth_unit.clone().matmul(unit_rows(dict).transpose()).abs();
        let best_cos: Vec<f64> = cos
            .max_dim(1)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("floats")
            .into_iter()
            .map(f64::from)
            .collect();
        rows.push(Row {
            name: trainer.run_config(i).name.clone(),
            mmcs: recovery.mmcs,
            mcc: recovery.mcc,
            fvu: report.reconstruction.fvu,
            l0: report.sparsity.l0,
            dead: report.sparsity.dead_fraction,
            best_cos,
        });
    }
    Ok(rows)
}

fn unit_rows(w: Tensor<2>) -> Tensor<2> {
    let n = w.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    w / n
}

fn print_rows(rows: &[Row]) {
    println!("| SAE | MMCS | MCC | FVU | L0 | dead % |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.4} | {:.2} | {:.1} |",
            r.name,
            r.mmcs,
            r.mcc,
            r.fvu,
            r.l0,
            100.0 * r.dead
        );
    }
}

/// TopK with a unit-norm decoder and codes not rescaled by decoder norms: every TopK run of
/// this benchmark but the one labelled "SAELens rescaled".
fn unit_norm_topk(d_in: usize, d_sae: usize, k: usize) -> TopKSaeConfig {
    TopKSaeConfig::new(d_in, d_sae, k)
        .with_unit_norm_decoder(true)
        .with_rescale_acts_by_decoder_norm(false)
}

fn lr(peak: f64, steps: u64) -> LrSchedule {
    LrSchedule::new(
        peak,
        steps / 20,
        steps,
        Decay::Linear {
            fraction: 0.2,
            final_fraction: 0.0,
        },
    )
}

/// The `--only` terms: an SAE is trained when its label contains one of them (every SAE when
/// there are none).
#[derive(Debug, Default)]
struct Only(Vec<String>);

impl Only {
    fn keeps(&self, label: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|t| label.contains(t.as_str()))
    }
}

/// `z` with `P(N(0, 1) > z) = p`, for `0 < p ≤ ½`: bisection on the Abramowitz–Stegun 7.1.26
/// approximation of the normal tail (absolute error < 1.5e-7).
fn normal_upper_quantile(p: f64) -> f64 {
    let tail = |z: f64| {
        let x = z / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        0.5 * poly * (-x * x).exp()
    };
    let (mut lo, mut hi) = (0.0f64, 10.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A target-L0 JumpReLU with unit-norm tied weights whose initial threshold already gives the
/// target L0.
///
/// Why: sae-core learns `ln θ` (as SAELens), and Adam moves a parameter by about the learning
/// rate per step, so θ changes by at most a factor `e^(lr · steps)` in a run: from SAELens'
/// θ₀ = 0.01, 1,000 steps at 2e-3 reach at most θ ≈ 0.07 and 300 steps at 1e-3 θ ≈ 0.013, far
/// below the pre-activations of inputs normalised to norm √d, so the L0 stayed in the hundreds
/// (the rows published before this change: 510 of 512, and 1,761 and 3,858 of 4,608). With
/// unit-norm encoder columns (`W_enc = W_decᵀ`) a token of norm `n` projects on a random
/// direction with standard deviation `σ ≈ n/√d`, so `θ₀ = σ·Φ⁻¹(1 − target/d_sae)` makes
/// `target` latents fire per token at initialisation and the penalty only has to hold the L0
/// there. The bandwidth is `σ` (the scale of the pre-activations; Anthropic's January-2025
/// setup uses ε = 2 on inputs of the same normalisation), and λ = `d_in`: dictionary_learning's
/// target-L0 penalty has λ = 1 on inputs of unit mean squared norm, and the SSE it is weighed
/// against grows with the square of the input scale (√d here). The decoder is unit-norm with
/// gradient projection, as in dictionary_learning's `JumpReluTrainer`.
fn target_l0_jumprelu(d_in: usize, d_sae: usize, target: f64, sigma: f64) -> JumpReluSaeConfig {
    JumpReluSaeConfig::new(d_in, d_sae)
        .with_sparsity_loss(JumpReluSparsityLoss::TargetL0 { target })
        .with_unit_norm_decoder(true)
        .with_init_threshold(sigma * normal_upper_quantile(target / d_sae as f64))
        .with_bandwidth(sigma)
        .with_l0_coefficient(d_in as f64)
}

/// Every sae-core architecture on dataset (1); with `tune`, also the candidate settings that
/// chose the JumpReLU, Gated and top-AFA rows (appended after the table's SAEs, so the table's
/// SAEs start from the same weights either way).
fn synthetic1(steps: u64, only: &Only, tune: bool) -> Result<(), Box<dyn Error>> {
    let data = CorrelatedFeatures::new(CorrelatedFeaturesConfig::default());
    println!(
        "\n## synthetic (1): {} — every architecture at L0 ≈ 5, width 512",
        data.name()
    );
    let ad = examples::device().autodiff();
    ad.seed(0);
    let (d, m, k) = (256, 512, 5);
    let aux = Some(AuxKConfig::default());
    // Archetypal dictionaries live in the hull of data points: 4,096 normalised samples.
    let sample = data.sample(1 << 41, 4096, &examples::device()).activations;
    let mean_norm = sample
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
        .sum::<f32>()
        / 4096.0;
    let candidates = Tensor::<2>::from_data(TensorData::new(sample, [4096, d]), &ad)
        * ((d as f32).sqrt() / mean_norm);
    let run = |name: &str, peak: f64| SaeRunConfig::new(name, lr(peak, steps));
    let mut saes: Vec<(SaeRunConfig, AnySae)> = vec![
        (
            run("TopK k5", 2e-3).with_aux_k(aux),
            unit_norm_topk(d, m, k).init(&ad).into(),
        ),
        (
            run("TopK k5 (SAELens rescaled)", 2e-3).with_aux_k(aux),
            TopKSaeConfig::new(d, m, k).init(&ad).into(),
        ),
        (
            run("BatchTopK k5", 2e-3).with_aux_k(aux),
            BatchTopKSaeConfig::new(d, m, k as f64).init(&ad).into(),
        ),
        (
            run("Matryoshka k5 [64,128,256,512]", 2e-3).with_aux_k(aux),
            MatryoshkaSaeConfig::new(
                BatchTopKSaeConfig::new(d, m, k as f64),
                vec![64, 128, 256, 512],
            )
            .init(&ad)
            .into(),
        ),
        (
            run("AbsTopK k5", 2e-3).with_aux_k(aux),
            AbsTopKSaeConfig::new(d, m, k).init(&ad).into(),
        ),
        (
            // Inputs have mean norm √d, so pre-activations start with σ ≈ 1. 1,000 steps at 2e-3
            // let θ grow e²-fold, so it can start at 1 (log θ₀ = 0, as the JumpReLU of the top-AFA
            // reference code) and rise to the target: more latents learn while the L0 is high
            // than when θ starts at the target (2.34), which left more latents dead (tuning run).
            run("JumpReLU target-L0 5", 2e-3).with_sparsity_warmup(steps / 10),
            target_l0_jumprelu(d, m, k as f64, 1.0)
                .with_init_threshold(1.0)
                .init(&ad)
                .into(),
        ),
        (
            run("ReLU L1 λ 3", 2e-3).with_sparsity_warmup(steps / 10),
            ReluSaeConfig::new(d, m)
                .with_l1_coefficient(3.0)
                .init(&ad)
                .into(),
        ),
        (
            // The gate path is a ReLU SAE with a constrained decoder (L1 on ReLU(π_gate) plus the
            // auxiliary reconstruction), so λ sits beside the ReLU row's; dictionary_learning's
            // λ 0.1 on inputs of unit mean squared norm is 1.6 at norm √256 (L1 grows with the
            // input scale, SSE with its square).
            run("Gated λ 4", 2e-3).with_sparsity_warmup(steps / 10),
            GatedSaeConfig::new(d, m)
                .with_l1_coefficient(4.0)
                .init(&ad)
                .into(),
        ),
        (
            // The AFA coefficient is the paper's L0 knob (the reference's own sweep, 12,288 latents
            // on GPT-2: L0 2,344 at 1/16, 2,037 at 1/32, 315 at 1/128), but here it barely moves
            // the L0 in 1,000 steps (476 at 1/128, 386 at 0: tuning run). The reference code's
            // optional L1 on the kept codes (`l1_coeff`, default 0) at the ReLU row's strength —
            // λ 3 on SSE per token is 3/256 on the reference's mean over d — makes it sparse.
            run("top-AFA afa 1/128 + L1 3/256", 2e-3),
            TopAfaSaeConfig::new(d, m)
                .with_afa_coefficient(1.0 / 128.0)
                .with_l1_coefficient(3.0 / 256.0)
                .init(&ad)
                .into(),
        ),
        (
            run("archetypal k5", 2e-3).with_aux_k(aux),
            ArchetypalSaeConfig::new(d, m, k)
                .init(candidates, &ad)?
                .into(),
        ),
        (
            run("matching pursuit ≤5 iters", 2e-3),
            MatchingPursuitSaeConfig::new(d, m)
                .with_max_iterations(Some(k))
                .init(&ad)
                .into(),
        ),
    ];
    if tune {
        saes.extend(synthetic1_candidates(d, m, k, steps, &ad));
    }
    let saes: Vec<_> = saes
        .into_iter()
        .filter(|(run, _)| only.keeps(&run.name))
        .collect();
    if saes.is_empty() {
        println!("no SAE matches --only");
        return Ok(());
    }
    let rows = train_and_evaluate(&data, saes, steps, 1024, 200_000)?;
    print_rows(&rows);
    Ok(())
}

/// The settings tried before choosing synthetic (1)'s JumpReLU, Gated and top-AFA rows.
fn synthetic1_candidates(
    d: usize,
    m: usize,
    k: usize,
    steps: u64,
    ad: &Device,
) -> Vec<(SaeRunConfig, AnySae)> {
    let run = |name: &str| SaeRunConfig::new(name, lr(2e-3, steps));
    let jumprelu = || target_l0_jumprelu(d, m, k as f64, 1.0);
    vec![
        (
            run("candidate JumpReLU target-L0 5, θ₀ at the target (2.34)")
                .with_sparsity_warmup(steps / 10),
            jumprelu().init(ad).into(),
        ),
        (
            run("candidate JumpReLU target-L0 5, θ₀ 1, λ 1").with_sparsity_warmup(steps / 10),
            jumprelu()
                .with_init_threshold(1.0)
                .with_l0_coefficient(1.0)
                .init(ad)
                .into(),
        ),
        (
            // SAELens' recipe for Anthropic's January-2025 method on inputs normalised to √d:
            // tanh penalty (c 4), λ 5 warmed up over the whole run, ε 2, θ₀ 0.1, pre-act loss 3e-6.
            run("candidate JumpReLU tanh λ 5 (Anthropic/SAELens recipe)")
                .with_sparsity_warmup(steps),
            JumpReluSaeConfig::new(d, m)
                .with_sparsity_loss(JumpReluSparsityLoss::Tanh { tanh_scale: 4.0 })
                .with_l0_coefficient(5.0)
                .with_bandwidth(2.0)
                .with_init_threshold(0.1)
                .with_pre_act_loss_coefficient(Some(3e-6))
                .init(ad)
                .into(),
        ),
        (
            run("candidate Gated λ 8").with_sparsity_warmup(steps / 10),
            GatedSaeConfig::new(d, m)
                .with_l1_coefficient(8.0)
                .init(ad)
                .into(),
        ),
        (
            run("candidate top-AFA afa 1/128, no L1"),
            TopAfaSaeConfig::new(d, m)
                .with_afa_coefficient(1.0 / 128.0)
                .init(ad)
                .into(),
        ),
        (
            run("candidate top-AFA afa 0, no L1"),
            TopAfaSaeConfig::new(d, m)
                .with_afa_coefficient(0.0)
                .init(ad)
                .into(),
        ),
    ]
}

/// TopK at the true L0 with 4× as many latents as features, trained longer: the MMCS ≥ 0.9 claim.
fn synthetic1_long(steps: u64) -> Result<(), Box<dyn Error>> {
    let data = CorrelatedFeatures::new(CorrelatedFeaturesConfig::default());
    println!("\n## synthetic (1), long: TopK k5, width 2048, {steps} steps × 1024 tokens");
    let ad = examples::device().autodiff();
    ad.seed(0);
    let saes: Vec<(SaeRunConfig, AnySae)> = vec![(
        SaeRunConfig::new(
            "TopK k5 w2048",
            LrSchedule::new(
                3e-3,
                50,
                steps,
                Decay::Linear {
                    fraction: 0.3,
                    final_fraction: 0.0,
                },
            ),
        )
        .with_aux_k(Some(AuxKConfig::default())),
        unit_norm_topk(256, 2048, 5).init(&ad).into(),
    )];
    let rows = train_and_evaluate(&data, saes, steps, 1024, 50_000)?;
    print_rows(&rows);
    Ok(())
}

fn synthetic2(steps: u64) -> Result<(), Box<dyn Error>> {
    let data = HierarchicalTree::new(HierarchicalTreeConfig::default());
    println!(
        "\n## synthetic (2): {} — MCC of matching pursuit vs TopK vs ReLU, width 20",
        data.name()
    );
    let mut all = Vec::new();
    for seed in 0..3u64 {
        let ad = examples::device().autodiff();
        ad.seed(seed);
        let run = |name: &str, peak: f64| SaeRunConfig::new(name, lr(peak, steps));
        let saes: Vec<(SaeRunConfig, AnySae)> = vec![
            (
                run("matching pursuit (residual < 0.05)", 3e-3),
                MatchingPursuitSaeConfig::new(20, 20)
                    .with_residual_threshold(0.05)
                    .with_apply_b_dec_to_input(false)
                    .init(&ad)
                    .into(),
            ),
            (
                run("TopK k2", 3e-3).with_aux_k(Some(AuxKConfig::default())),
                unit_norm_topk(20, 20, 2).init(&ad).into(),
            ),
            (
                run("ReLU L1 λ 0.1", 3e-3),
                ReluSaeConfig::new(20, 20)
                    .with_l1_coefficient(0.1)
                    .init(&ad)
                    .into(),
            ),
        ];
        let rows = train_and_evaluate(&data, saes, steps, 200, 20_000)?;
        all.push(rows);
    }
    println!("| SAE | MCC (seeds 0, 1, 2) | mean MCC | FVU | L0 | dead % |");
    println!("|---|---|---|---|---|---|");
    for i in 0..all[0].len() {
        let mccs: Vec<f64> = all.iter().map(|r| r[i].mcc).collect();
        let mean = mccs.iter().sum::<f64>() / mccs.len() as f64;
        let r = &all[0][i];
        println!(
            "| {} | {} | {:.3} | {:.4} | {:.2} | {:.1} |",
            r.name,
            mccs.iter()
                .map(|m| format!("{m:.3}"))
                .collect::<Vec<_>>()
                .join(", "),
            mean,
            r.fvu,
            r.l0,
            100.0 * r.dead
        );
    }
    Ok(())
}

fn synthetic3(steps: u64) -> Result<(), Box<dyn Error>> {
    let data = SignedFeatures::new(SignedFeaturesConfig::default());
    let n = data.num_features();
    println!(
        "\n## synthetic (3): {} — signed directions recovered at |cos| > 0.9, width {n}",
        data.name()
    );
    let ad = examples::device().autodiff();
    ad.seed(0);
    let aux = Some(AuxKConfig::default());
    let run = |name: &str| SaeRunConfig::new(name, lr(2e-3, steps)).with_aux_k(aux);
    let saes: Vec<(SaeRunConfig, AnySae)> = vec![
        (
            run("AbsTopK k4"),
            AbsTopKSaeConfig::new(64, n, 4)
                .with_unit_norm_decoder(true)
                .with_rescale_acts_by_decoder_norm(false)
                .init(&ad)
                .into(),
        ),
        (run("TopK k4"), unit_norm_topk(64, n, 4).init(&ad).into()),
        (
            run("TopK k8 (two latents per feature allowed)"),
            unit_norm_topk(64, n, 8).init(&ad).into(),
        ),
    ];
    let rows = train_and_evaluate(&data, saes, steps, 1024, 200_000)?;
    println!("| SAE | recovered at |cos| > 0.9 | MMCS | MCC | FVU | L0 | dead % |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let rec = r.best_cos.iter().filter(|&&c| c > 0.9).count() as f64 / r.best_cos.len() as f64;
        println!(
            "| {} | {:.1} % | {:.3} | {:.3} | {:.4} | {:.2} | {:.1} |",
            r.name,
            100.0 * rec,
            r.mmcs,
            r.mcc,
            r.fvu,
            r.l0,
            100.0 * r.dead
        );
    }
    Ok(())
}

/// Held-out metrics of `sae` on `source` filtered as `filter` says, with `calibration`'s scale.
fn held_out_report<S: SparseAutoencoder>(
    sae: &S,
    path: &std::path::Path,
    rows: std::ops::Range<u64>,
    filter: TokenFilter,
    calibration: sae_train::Calibration,
) -> Result<sae_core::metrics::SaeMetricsReport, Box<dyn Error>> {
    let source = SafetensorsSource::open(path, "activations")?.with_rows(rows)?;
    let config = BatchStreamConfig::new(1024)
        .with_repeat(false)
        .with_shuffle_rows(1)
        .with_filter(filter);
    let mut stream = BatchStream::with_calibration(source, config, calibration)?;
    Ok(sae_train::evaluate(
        sae,
        &mut stream,
        &examples::device(),
        None,
    )?)
}

fn real(path: &std::path::Path, steps: u64, only: &Only) -> Result<(), Box<dyn Error>> {
    println!("\n## real activations: {}", path.display());
    if !path.exists() {
        println!("skipped: file not found (set SPARSELAND_SHARED or pass --real PATH)");
        return Ok(());
    }
    // 64 sequences of 256 tokens: sequences 0–55 train (14,336 tokens), 56–63 are held out.
    let (train_rows, held_rows) = (0..14_336u64, 14_336..16_384u64);
    let norm_filter = TokenFilter::none().max_norm_ratio(10.0);
    let mut table = Vec::new();
    for (label, filter) in [
        ("no filter", TokenFilter::none()),
        ("norm filter 10× median", norm_filter.clone()),
    ] {
        let device = examples::device();
        let ad = device.clone().autodiff();
        ad.seed(0);
        let source = SafetensorsSource::open(path, "activations")?.with_rows(train_rows.clone())?;
        let config = BatchStreamConfig::new(1024)
            .with_seed(0)
            .with_shuffle_rows(14_336)
            .with_filter(filter.clone());
        let mut stream = BatchStream::new(source, config)?;
        let cal = stream.calibration();
        println!(
            "{label}: median norm {:.1}, norm limit {}, mean kept norm {:.1}, input scale {:.4}",
            cal.median_norm,
            if cal.norm_limit.is_finite() {
                format!("{:.1}", cal.norm_limit)
            } else {
                "none".into()
            },
            cal.mean_norm,
            cal.normaliser.scale()
        );
        let run = |name: &str| SaeRunConfig::new(name, lr(1e-3, steps));
        // JumpReLU starts centred, b_dec = the geometric median of 4,096 training tokens (OpenAI's
        // and dictionary_learning's initialisation): two massive dimensions carry most of this
        // layer's mean (norm ≈ 17.6 of the normalised 24), and Adam at lr 1e-3 moves b_dec by at
        // most 0.3 per coordinate in 300 steps, so from b_dec = 0 the mean would stay in every
        // pre-activation. A median-norm centred token projects on a random unit direction with
        // σ = ‖x − b_dec‖/√d, which sets θ₀ and ε (see `target_l0_jumprelu`).
        let sample = {
            let source =
                SafetensorsSource::open(path, "activations")?.with_rows(train_rows.clone())?;
            let config = BatchStreamConfig::new(4096)
                .with_seed(1)
                .with_shuffle_rows(14_336)
                .with_filter(filter.clone());
            BatchStream::with_calibration(source, config, cal)?
                .next_batch()?
                .ok_or("no calibration batch")?
        };
        let centre: Vec<f32> = sae_core::init::geometric_median(
            Tensor::<2>::from_data(
                TensorData::new(sample.clone(), [sample.len() / 576, 576]),
                &device,
            ),
            sae_core::init::WeiszfeldOptions::default(),
        )?
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("floats");
        let centred_norms: Vec<f64> = sample
            .chunks(576)
            .map(|row| {
                row.iter()
                    .zip(&centre)
                    .map(|(v, c)| f64::from(v - c).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let sigma = examples::median(centred_norms) / 576f64.sqrt();
        let jumprelu = target_l0_jumprelu(576, 4608, 32.0, sigma);
        println!(
            "  JumpReLU: |b_dec| {:.2}, σ {sigma:.3}, θ₀ {:.3}, ε {:.3}, λ {}",
            centre.iter().map(|c| c * c).sum::<f32>().sqrt(),
            jumprelu.init_threshold,
            jumprelu.bandwidth,
            jumprelu.l0_coefficient
        );
        let topk: AnySae = unit_norm_topk(576, 4608, 32).init(&ad).into();
        let mut jumprelu_sae = jumprelu.init(&ad);
        jumprelu_sae.b_dec =
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(centre, [576]), &ad));
        let saes: Vec<(SaeRunConfig, AnySae)> = vec![
            (
                run("TopK k32 w4608").with_aux_k(Some(AuxKConfig::default())),
                topk,
            ),
            (
                run("JumpReLU target-L0 32 w4608").with_sparsity_warmup(steps / 5),
                jumprelu_sae.into(),
            ),
        ];
        let saes: Vec<_> = saes
            .into_iter()
            .filter(|(run, _)| only.keeps(&format!("{} — trained with {label}", run.name)))
            .collect();
        if saes.is_empty() {
            continue;
        }
        let config = TrainerConfig::new(steps).with_dead_after_tokens(200_000);
        let mut trainer = Trainer::new(config, saes, &ad);
        let start = Instant::now();
        trainer.fit(&mut stream, FitOptions::default())?;
        let dropped = stream.counters();
        println!(
            "  trained {steps} steps × 1024 tokens in {:.0} s; the filter dropped {} of {} tokens read",
            start.elapsed().as_secs_f64(),
            dropped.dropped_norm + dropped.dropped_position,
            dropped.tokens_served + dropped.dropped_norm + dropped.dropped_position
        );
        for i in 0..trainer.len() {
            let sae = trainer.sae(i).clone().valid();
            let mut cal_all = cal;
            cal_all.norm_limit = f32::INFINITY;
            let all = held_out_report(&sae, path, held_rows.clone(), TokenFilter::none(), cal_all)?;
            let mut cal_f = cal;
            cal_f.norm_limit = norm_filter.norm_limit(cal.median_norm);
            let kept = held_out_report(&sae, path, held_rows.clone(), norm_filter.clone(), cal_f)?;
            table.push((
                format!("{} — trained with {label}", trainer.run_config(i).name),
                all,
                kept,
                trainer.dead_latents(i).dead_fraction(),
            ));
        }
    }
    println!(
        "| SAE | held-out FVU, all tokens | held-out FVU, sinks/outliers removed | L0 | dead % (held out) | dead % (training, 200k tokens) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, all, kept, dead_train) in &table {
        println!(
            "| {name} | {:.4} | {:.4} | {:.1} | {:.1} | {:.1} |",
            all.reconstruction.fvu,
            kept.reconstruction.fvu,
            kept.sparsity.l0,
            100.0 * kept.sparsity.dead_fraction,
            100.0 * dead_train
        );
    }
    Ok(())
}

fn main() {
    // Errors print with their Display message, not Debug.
    examples::exit_on_error(run());
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut sections = Vec::new();
    let mut real_arg = None;
    let mut reps = 7;
    let mut only = Only::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--real" {
            real_arg = args.next().map(PathBuf::from);
        } else if a == "--reps" {
            reps = args
                .next()
                .and_then(|r| r.parse().ok())
                .ok_or("--reps needs a positive number")?;
        } else if a == "--only" {
            let terms = args.next().unwrap_or_default();
            only.0.extend(
                terms
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            );
        } else {
            sections.push(a);
        }
    }
    let all = sections.is_empty();
    let want = |s: &str| all || sections.iter().any(|x| x == s);
    println!(
        "# sae-train benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let real_path = real_arg.unwrap_or_else(|| {
        examples::shared_dir().join("data/smollm2-sotu/smollm2-135m-layer12.safetensors")
    });
    if want("throughput") {
        throughput(reps)?;
    }
    if want("synthetic1") {
        synthetic1(1_000, &only, false)?;
    }
    if sections.iter().any(|x| x == "synthetic1tune") {
        synthetic1(1_000, &only, true)?;
    }
    if want("synthetic1long") {
        synthetic1_long(2_000)?;
    }
    if want("synthetic2") {
        synthetic2(3_000)?;
    }
    if want("synthetic3") {
        synthetic3(1_500)?;
    }
    if want("real") {
        real(&real_path, 300, &only)?;
    }
    Ok(())
}
