//! Quickstart: train a TopK sparse autoencoder on synthetic activations whose true features are
//! known, measure how well it recovered them on held-out tokens, and export it for raw
//! activations (input normalisation folded into the weights).
//!
//! ```sh
//! cargo run --release -p examples --example quickstart
//! ```
//!
//! Runs on the CPU in well under two minutes and downloads nothing: the activations are the
//! Sharkey/Braun toy data (512 correlated ground-truth features in 256 dimensions, ~5 active per
//! token) generated on the fly. Writes `target/quickstart/metrics.jsonl` and
//! `target/quickstart/training.png`.

use std::error::Error;
use std::path::PathBuf;

use burn::prelude::*;
use sae_core::metrics::ground_truth_recovery;
use sae_core::{SparseAutoencoder, TopKSaeConfig};
use sae_train::{
    AuxKConfig, BatchStream, BatchStreamConfig, CorrelatedFeatures, CorrelatedFeaturesConfig,
    Decay, FitOptions, LrSchedule, MetricsLog, SaeRunConfig, SyntheticDataset, SyntheticSource,
    Trainer, TrainerConfig, evaluate,
};

const STEPS: u64 = 800;
const BATCH: usize = 1_024;

fn main() -> Result<(), Box<dyn Error>> {
    let device = examples::device();
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let out = PathBuf::from("target/quickstart");
    std::fs::create_dir_all(&out)?;

    // 1. Activations with known ground truth.
    let data = CorrelatedFeatures::new(CorrelatedFeaturesConfig::default());
    println!("data: {} (true L0 {})", data.name(), data.expected_l0());
    let source = SyntheticSource::new(data.clone(), 8 * BATCH, None, device.clone());
    let mut stream = BatchStream::new(source, BatchStreamConfig::new(BATCH).with_seed(0))?;

    // 2. A TopK SAE with k at the true L0, twice as many latents as true features, unit-norm
    //    decoder rows (OpenAI-style) and aux-K for dead latents. (The benchmark program trains
    //    longer and wider to reach MMCS ≥ 0.9; this run is sized to finish quickly.)
    let sae = TopKSaeConfig::new(256, 1024, 5)
        .with_unit_norm_decoder(true)
        .with_rescale_acts_by_decoder_norm(false)
        .init(&train_device);
    let lr = LrSchedule::new(
        2e-3,
        50,
        STEPS,
        Decay::Linear {
            fraction: 0.3,
            final_fraction: 0.0,
        },
    );
    let run = SaeRunConfig::new("topk-k5-w1024", lr).with_aux_k(Some(AuxKConfig::default()));
    let config = TrainerConfig::new(STEPS)
        .with_dead_after_tokens(50_000)
        .with_log_every(20);
    let mut trainer = Trainer::new(config, vec![(run, sae)], &train_device);
    let summary = trainer.fit(
        &mut stream,
        FitOptions {
            log: Some(MetricsLog::create(out.join("metrics.jsonl"))?),
            progress: true,
            plot: Some(out.join("training.png")),
            ..Default::default()
        },
    )?;
    println!(
        "trained {} steps ({} tokens) in {:.1} s",
        summary.steps, summary.tokens, summary.seconds
    );

    // 3. Held-out tokens (batches the training stream never reaches), same normalisation.
    let calibration = stream.calibration();
    let held_out = SyntheticSource::new(data.clone(), 4 * BATCH, Some(4), device.clone())
        .with_first_chunk(1 << 40);
    let mut held_out = BatchStream::with_calibration(
        held_out,
        BatchStreamConfig::new(BATCH).with_repeat(false),
        calibration,
    )?;
    let sae = trainer.sae(0).clone().valid();
    let report = evaluate(&sae, &mut held_out, &device, None)?;
    let recovery = ground_truth_recovery(&sae.dictionary(), &data.features_tensor(&device));
    println!(
        "held out: MMCS {:.3}  MCC {:.3}  FVU {:.4}  L0 {:.2}  dead {:.1}% (training) / {:.1}% (held out)",
        recovery.mmcs,
        recovery.mcc,
        report.reconstruction.fvu,
        report.sparsity.l0,
        100.0 * trainer.dead_latents(0).dead_fraction(),
        100.0 * report.sparsity.dead_fraction,
    );

    // 4. Export for raw activations (normalisation folded in).
    let exported = trainer.export(0, &calibration);
    let raw = data.sample(1 << 41, 64, &device).activations;
    let x = Tensor::<2>::from_data(TensorData::new(raw, [64, 256]), &device);
    let scale = calibration.normaliser.scale();
    let expected = sae.forward(x.clone() * scale) / scale;
    let diff: f32 = (exported.forward(x) - expected).abs().max().into_scalar();
    println!("exported SAE on raw activations: max |Δ| = {diff:.2e}");
    println!("plot: {}", out.join("training.png").display());
    Ok(())
}
