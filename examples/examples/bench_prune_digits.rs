//! Pruning on real data: a small MLP on the UCI handwritten digits (`shared/data/digits/`).
//!
//! 1. Trains a dense MLP 64 → 256 → 256 → 10 (seeded 80/20 split).
//! 2. Essential-sparsity sweep: one-shot global magnitude pruning of the hidden `Linear`
//!    weights (the head excluded, as in the paper) over a sparsity grid, plus one-shot 2:4, 1:4
//!    and 1:8; the knee by both documented rules; a PNG plot.
//! 3. 1:8 N:M training from scratch with plain STE, SR-STE and Progressive Gradient Flow (mask
//!    decay and structure decay), same steps, optimiser and seeds; test accuracy of each.
//!
//! ```text
//! cargo run --release -p examples --example bench_prune_digits -- \
//!     --data ../shared/data/digits/digits.csv.gz --seeds 3 --plot docs/src/images/pruning-digits-essential.png
//! ```

use std::io::Read;
use std::path::PathBuf;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, SgdConfig, momentum::MomentumConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use burn::tensor::loss::cross_entropy_with_logits;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use pruning::{
    MaskDecay, NmPattern, NmSte, ParamFilter, SparseMethod, SparseTrainer, StructureDecay,
    essential_sparsity_sweep, masks, remove, satisfies_nm, sparsity_report,
};

#[derive(Parser)]
struct Args {
    /// The digits CSV (gzip): 64 pixel values then the label per row.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seeds (runs) per method.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Training epochs for every run.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Where to write the essential-sparsity plot.
    #[arg(long, default_value = "pruning-digits-essential.png")]
    plot: PathBuf,
}

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    head: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(64, 256).init(device),
            fc2: LinearConfig::new(256, 256).init(device),
            head: LinearConfig::new(256, 10).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.head
            .forward(relu(self.fc2.forward(relu(self.fc1.forward(x)))))
    }
}

struct Split {
    x_train: Vec<f32>,
    y_train: Vec<i64>,
    x_test: Vec<f32>,
    y_test: Vec<i64>,
}

fn load(path: &PathBuf) -> Result<(Vec<[f32; 64]>, Vec<i64>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: not a gzip CSV ({e})", path.display()))?;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.trim().split(',').collect();
        if fields.len() != 65 {
            return Err(format!(
                "line {}: {} fields, expected 65",
                line_no + 1,
                fields.len()
            ));
        }
        let mut x = [0f32; 64];
        for (j, f) in fields[..64].iter().enumerate() {
            let v: f32 = f
                .parse()
                .map_err(|_| format!("line {}: bad pixel `{f}`", line_no + 1))?;
            if !(0.0..=16.0).contains(&v) {
                return Err(format!("line {}: pixel {v} outside 0..=16", line_no + 1));
            }
            x[j] = v / 16.0;
        }
        let y: i64 = fields[64]
            .parse()
            .map_err(|_| format!("line {}: bad label", line_no + 1))?;
        if !(0..10).contains(&y) {
            return Err(format!("line {}: label {y} outside 0..=9", line_no + 1));
        }
        xs.push(x);
        ys.push(y);
    }
    Ok((xs, ys))
}

/// Seeded 80/20 split (a Fisher–Yates shuffle with a small LCG, so it is the same everywhere).
fn split(xs: &[[f32; 64]], ys: &[i64], seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..idx.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((state >> 33) as usize) % (i + 1);
        idx.swap(i, j);
    }
    let n_test = xs.len() / 5;
    let take = |range: &[usize]| {
        (
            range.iter().flat_map(|&i| xs[i]).collect::<Vec<f32>>(),
            range.iter().map(|&i| ys[i]).collect::<Vec<i64>>(),
        )
    };
    let (x_test, y_test) = take(&idx[..n_test]);
    let (x_train, y_train) = take(&idx[n_test..]);
    Split {
        x_train,
        y_train,
        x_test,
        y_test,
    }
}

fn accuracy(model: &Mlp, data: &Split, device: &Device) -> f64 {
    let n = data.y_test.len();
    let x = Tensor::<2>::from_data(TensorData::new(data.x_test.clone(), [n, 64]), device);
    let pred = model.forward(x).argmax(1).into_data().convert::<i64>();
    let pred = pred.as_slice::<i64>().expect("i64 after convert");
    pred.iter()
        .zip(&data.y_test)
        .filter(|(p, y)| *p == *y)
        .count() as f64
        / n as f64
}

const BATCH: usize = 64;

/// Trains from a seeded init; `trainer` (if any) wraps every step.
fn train(
    data: &Split,
    seed: u64,
    epochs: usize,
    mut trainer: Option<&mut SparseTrainer>,
    bar: &ProgressBar,
) -> Mlp {
    let device = examples::device().autodiff();
    device.seed(seed);
    let mut model = Mlp::new(&device);
    if let Some(t) = trainer.as_deref_mut() {
        model = t.init(model).expect("trainer init");
    }
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .init();
    let n = data.y_train.len();
    let steps_per_epoch = n.div_ceil(BATCH);
    let total = (epochs * steps_per_epoch) as f64;
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut step = 0u64;
    for _ in 0..epochs {
        for i in (1..n).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, ((state >> 33) as usize) % (i + 1));
        }
        for b in order.chunks(BATCH) {
            let x: Vec<f32> = b
                .iter()
                .flat_map(|&i| data.x_train[i * 64..(i + 1) * 64].to_vec())
                .collect();
            let y: Vec<i64> = b.iter().map(|&i| data.y_train[i]).collect();
            let x = Tensor::<2>::from_data(TensorData::new(x, [b.len(), 64]), &device);
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [b.len()]), &device);
            if let Some(t) = trainer.as_deref_mut() {
                model = t.before_forward(model, step).expect("before_forward");
            }
            let logits = model.forward(x);
            let loss = cross_entropy_with_logits(logits, y.one_hot(10).float());
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            if let Some(t) = trainer.as_deref_mut() {
                t.before_optimizer(&model, &mut grads, step)
                    .expect("before_optimizer");
            }
            // Cosine learning rate from 0.05.
            let lr = 0.05 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total).cos());
            model = optim.step(lr, model, grads);
            if let Some(t) = trainer.as_deref_mut() {
                model = t.after_optimizer(model, step).expect("after_optimizer");
            }
            step += 1;
        }
        bar.inc(1);
    }
    if let Some(t) = trainer {
        // Final masks from the final weights (fine-tune phase: binary), then made permanent.
        model = t.before_forward(model, step).expect("final masks");
    }
    model.valid()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

fn main() {
    let args = Args::parse();
    let path = args
        .data
        .clone()
        .unwrap_or_else(|| examples::shared_dir().join("data/digits/digits.csv.gz"));
    let (xs, ys) = match load(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read the digits data: {e}\n(pass --data or set SPARSELAND_SHARED)");
            std::process::exit(2);
        }
    };
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "# bench_prune_digits: {} rows from {}",
        xs.len(),
        path.display()
    );
    println!("# load average at start: {}", load_avg.trim());
    let data = split(&xs, &ys, 0);
    println!(
        "# split: {} train / {} test (seed 0)",
        data.y_train.len(),
        data.y_test.len()
    );
    let eval_device = examples::device();
    let style = ProgressStyle::with_template("{msg:<28} [{bar:30}] {pos}/{len} epochs {elapsed}")
        .expect("valid template")
        .progress_chars("=> ");
    let bar = |msg: String| {
        let b = ProgressBar::new(args.epochs as u64).with_style(style.clone());
        b.set_message(msg);
        b
    };

    // 1. Dense models.
    let mut dense_acc = vec![];
    let mut dense_models = vec![];
    for seed in 0..args.seeds {
        let b = bar(format!("dense seed {seed}"));
        let model = train(&data, seed, args.epochs, None, &b);
        b.finish_and_clear();
        let model = model.to_device(&eval_device);
        dense_acc.push(accuracy(&model, &data, &eval_device));
        dense_models.push(model);
    }
    let (dm, ds) = mean_std(&dense_acc);
    println!(
        "dense MLP test accuracy: {:.2}% ± {:.2} ({:?})",
        100.0 * dm,
        100.0 * ds,
        dense_acc
    );

    // 2. Essential-sparsity sweep on the seed-0 dense model.
    let filter = ParamFilter::linear_weights().exclude("head.*");
    let grid: Vec<f64> = (1..=19)
        .map(|i| i as f64 * 0.05)
        .chain([0.97, 0.99])
        .collect();
    let patterns: Vec<NmPattern> = [(2, 4), (1, 4), (1, 8)]
        .into_iter()
        .map(|(n, m)| NmPattern::new(n, m).unwrap())
        .collect();
    println!("\n## essential-sparsity sweep (one-shot, no retraining; fc1 + fc2, head dense)");
    println!("{:<8} {:>8} {:>8} {:>8}", "seed", "δ=0.5%", "δ=1%", "max-κ");
    let mut sweeps = vec![];
    for (seed, model) in dense_models.iter().enumerate() {
        let r = essential_sparsity_sweep(model, &filter, &grid, &patterns, |m: &Mlp| {
            accuracy(m, &data, &eval_device)
        })
        .expect("sweep");
        let f = |o: Option<f64>| o.map_or("-".to_string(), |s| format!("{:.0}%", 100.0 * s));
        println!(
            "{:<8} {:>8} {:>8} {:>8}",
            seed,
            f(r.essential_sparsity(0.005)),
            f(r.essential_sparsity(0.01)),
            f(r.max_curvature_sparsity())
        );
        sweeps.push(r);
    }
    println!(
        "\nsparsity  test accuracy (mean over seeds; dense {:.2}%)",
        100.0 * dm
    );
    for i in 0..grid.len() {
        let accs: Vec<f64> = sweeps.iter().map(|r| r.unstructured[i].metric).collect();
        let (m, s) = mean_std(&accs);
        println!(
            "{:>7.0}%  {:>6.2}% ± {:.2}",
            100.0 * sweeps[0].unstructured[i].sparsity,
            100.0 * m,
            100.0 * s
        );
    }
    for (j, p) in patterns.iter().enumerate() {
        let accs: Vec<f64> = sweeps.iter().map(|r| r.nm[j].metric).collect();
        let (m, s) = mean_std(&accs);
        println!(
            "{:>8}  {:>6.2}% ± {:.2}   (one-shot N:M, {:.0}% sparse)",
            p.to_string(),
            100.0 * m,
            100.0 * s,
            100.0 * p.sparsity()
        );
    }
    sweeps[0]
        .plot_png(
            &args.plot,
            "Essential sparsity: MLP on UCI digits (seed 0)",
            "test accuracy",
            0.01,
        )
        .expect("plot");
    println!("plot: {}", args.plot.display());

    // 3. 1:8 training from scratch.
    let target = NmPattern::new(1, 8).unwrap();
    let steps = (args.epochs * data.y_train.len().div_ceil(BATCH)) as u64;
    let dense_steps = steps / 10;
    let decay_steps = steps * 6 / 10;
    let methods: Vec<(&str, SparseMethod)> = vec![
        ("STE", SparseMethod::NmSte(NmSte::ste(target))),
        (
            "SR-STE λ=2e-4",
            SparseMethod::NmSte(NmSte::sr_ste(target, 2e-4)),
        ),
        (
            "SR-STE λ=2e-3",
            SparseMethod::NmSte(NmSte::sr_ste(target, 2e-3)),
        ),
        (
            "PGF mask decay (exp)",
            SparseMethod::NmSte(NmSte::mask_decay(
                target,
                MaskDecay::Exponential {
                    rate: 5.0 / decay_steps as f64,
                },
                dense_steps,
                decay_steps,
            )),
        ),
        (
            "PGF structure decay",
            SparseMethod::NmSte(NmSte::structure_decay(
                target,
                StructureDecay::Stepwise,
                dense_steps,
                decay_steps,
            )),
        ),
    ];
    println!(
        "\n## 1:8 training from scratch ({} epochs = {steps} steps, SGD momentum 0.9, cosine lr 0.05; PGF: {dense_steps} dense + {decay_steps} decay steps)",
        args.epochs
    );
    println!(
        "{:<24} {:>16} {:>10}  per seed",
        "method", "test accuracy", "Δ vs STE"
    );
    let mut ste_mean = 0.0;
    for (name, method) in methods {
        let mut accs = vec![];
        for seed in 0..args.seeds {
            let mut trainer = SparseTrainer::new(filter.clone(), method.clone());
            let b = bar(format!("{name} seed {seed}"));
            let model = train(&data, seed, args.epochs, Some(&mut trainer), &b);
            b.finish_and_clear();
            let model = model.to_device(&eval_device);
            for (path, m) in masks(&model).expect("masks") {
                assert!(satisfies_nm(&m, target, 0), "{path} is not 1:8");
            }
            let report = sparsity_report(&model, &filter, &[]).expect("report");
            assert!((report.total_sparsity() - 0.875).abs() < 1e-9);
            let model = remove(model);
            accs.push(accuracy(&model, &data, &eval_device));
        }
        let (m, s) = mean_std(&accs);
        if name == "STE" {
            ste_mean = m;
        }
        let per: Vec<String> = accs.iter().map(|a| format!("{:.2}", 100.0 * a)).collect();
        println!(
            "{name:<24} {:>9.2}% ± {:.2} {:>+9.2}  [{}]",
            100.0 * m,
            100.0 * s,
            100.0 * (m - ste_mean),
            per.join(", ")
        );
    }
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("# load average at end: {}", load_avg.trim());
}
