//! Train a TopK SAE on a shard written by `extract_activations` — the whole path from text to a
//! SAELens folder in Rust, no Python anywhere:
//!
//! ```sh
//! cargo run --release -p examples --example extract_activations -- --out target/acts --max-sequences 256
//! cargo run --release -p examples --example train_sae_on_activations -- \
//!     --shard target/acts/shard-00000.safetensors --hook blocks.12.hook_resid_pre --out target/acts-sae
//! ```
//!
//! The last eighth of the shard's rows is held out. Tokens above 10× the median norm (the
//! attention sink at each sequence's first position, norm ≈ 180× the median) are filtered from
//! training as in the sae-train guide.

use std::error::Error;
use std::path::PathBuf;

use burn::module::Module;
use clap::Parser;
use sae_core::TopKSaeConfig;
use sae_core::io::{SaeLensSaveOptions, save_saelens};
use sae_train::{
    ActivationSource, AuxKConfig, BatchStream, BatchStreamConfig, Decay, FitOptions, LrSchedule,
    SaeRunConfig, SafetensorsSource, TokenFilter, Trainer, TrainerConfig, evaluate,
};

#[derive(Parser, Debug)]
#[command(about = "Train a TopK SAE on one activation shard and save it as a SAELens folder")]
struct Args {
    /// A shard written by `extract_activations`.
    #[arg(long)]
    shard: PathBuf,
    /// The hook point (tensor name in the shard).
    #[arg(long, default_value = "blocks.12.hook_resid_pre")]
    hook: String,
    /// Output folder (SAELens format).
    #[arg(long)]
    out: PathBuf,
    /// Latents.
    #[arg(long, default_value_t = 4608)]
    width: usize,
    /// Active latents per token.
    #[arg(long, default_value_t = 32)]
    k: usize,
    /// Training steps of 1,024 tokens.
    #[arg(long, default_value_t = 300)]
    steps: u64,
}

fn main() {
    examples::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let device = examples::device();
    let ad = device.clone().autodiff();
    ad.seed(0);
    let probe = SafetensorsSource::open(&args.shard, &args.hook)?;
    let (rows, d_in) = (
        probe.num_rows().ok_or("shard has no row count")?,
        probe.d_in(),
    );
    let held = rows / 8;
    let (train_rows, held_rows) = (0..rows - held, rows - held..rows);
    let filter = TokenFilter::none().max_norm_ratio(10.0);
    let source = SafetensorsSource::open(&args.shard, &args.hook)?.with_rows(train_rows.clone())?;
    let config = BatchStreamConfig::new(1024)
        .with_seed(0)
        .with_shuffle_rows((train_rows.end - train_rows.start) as usize)
        .with_filter(filter.clone());
    let mut stream = BatchStream::new(source, config)?;
    let calibration = stream.calibration();
    let sae = TopKSaeConfig::new(d_in, args.width, args.k)
        .with_unit_norm_decoder(true)
        .with_rescale_acts_by_decoder_norm(false)
        .init(&ad);
    let lr = LrSchedule::new(
        1e-3,
        args.steps / 20,
        args.steps,
        Decay::Linear {
            fraction: 0.2,
            final_fraction: 0.0,
        },
    );
    let run = SaeRunConfig::new("topk", lr).with_aux_k(Some(AuxKConfig::default()));
    let mut trainer = Trainer::new(
        TrainerConfig::new(args.steps),
        vec![(run, sae_core::AnySae::from(sae))],
        &ad,
    );
    let summary = trainer.fit(
        &mut stream,
        FitOptions {
            progress: true,
            ..Default::default()
        },
    )?;
    println!(
        "trained {} steps ({} tokens) in {:.1} s",
        summary.steps, summary.tokens, summary.seconds
    );

    let held_source = SafetensorsSource::open(&args.shard, &args.hook)?.with_rows(held_rows)?;
    let mut held_stream = BatchStream::with_calibration(
        held_source,
        BatchStreamConfig::new(1024)
            .with_repeat(false)
            .with_filter(filter),
        calibration,
    )?;
    let report = evaluate(
        &trainer.sae(0).clone().valid(),
        &mut held_stream,
        &device,
        None,
    )?;
    println!(
        "held out ({held} rows, norm-filtered): FVU {:.3}, L0 {:.1}, dead over the split {:.1}%",
        report.reconstruction.fvu,
        report.sparsity.l0,
        100.0 * report.sparsity.dead_fraction
    );
    let exported = trainer.export(0, &calibration);
    let options = SaeLensSaveOptions::new()
        .with_metadata("hook_name", args.hook.as_str())
        .with_sparsity(&report.sparsity);
    save_saelens(&exported, &args.out, &options)?;
    println!("saved SAELens folder {}", args.out.display());
    Ok(())
}
