//! Quality of sparse-attention masks on real attention: SmolLM2-135M's q, k, v on
//! State-of-the-Union speeches, every layer, every estimator, every density.
//!
//! The model runs once per window with an attention override in the chosen layers that hands
//! the layer's q/k/v to sparse-attn and returns **dense** attention (so the model's output, and
//! every later layer's input, is the unchanged dense model's). Inside the override, each
//! method of [`examples::attn_methods::METHODS`] builds its mask at each target density
//! (calibrated as that module documents) and [`sparse_attn::evaluate_masks`] judges them all in
//! one chunked pass over the exact probabilities: attention-mass recall (mean and 5th
//! percentile over rows), oracle recall (overlap with each row's exact top-`n_i` keys), output
//! relative error `‖O_sparse − O_dense‖_F / ‖O_dense‖_F` and the achieved density. Only one
//! layer's problem exists at a time (the dense `L × L` probabilities are never all in memory
//! either: evaluate works in query chunks).
//!
//! The windows are the first `L` tokens of speeches with at least `max(contexts)` tokens, chosen
//! by a seeded shuffle, so every context sees the same texts. Results: `quality.json` (one row
//! per context × window × layer × method × density), `quality.md` (per context: method ×
//! density averaged over layers and windows; a per-layer table at `--layer-density`) and
//! `recall-per-layer-<L>.png`, under `--out`, rewritten after every window.
//!
//! ```text
//! cargo run --release -p examples --example sparse_attn_quality -- --contexts 2048,4096 --windows 1
//! cargo run --release -p examples --example sparse_attn_quality -- --quick
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::prelude::*;
use clap::Parser;
use examples::attn_methods::Method;
use examples::experiment::{
    ArgError, GroupMeans, markdown_table, parse_counts, parse_densities, parse_layers,
    parse_methods,
};
use examples::plot::{Axes, Series, line_plot};
use examples::sotu::{SpeechWindow, read_speeches, sotu_path, speech_windows};
use examples::sparse_bridge::with_method_in_layers;
use hooked_transformer::llama::Llama;
use hooked_transformer::{Hooks, Tokenizer};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sparse_attn::{AttentionProblem, Candidate, QualityOptions, dense_attention, evaluate_masks};

#[derive(Parser, Debug)]
#[command(about = "Mask quality of sparse-attention estimators on SmolLM2's real attention")]
struct Args {
    /// Context lengths in tokens (at most the model's 8192).
    #[arg(long, default_value = "2048,4096,8192")]
    contexts: String,
    /// Speech windows per context.
    #[arg(long, default_value_t = 1)]
    windows: usize,
    /// Target densities (kept over valid causal cells).
    #[arg(long, default_value = "0.05,0.1,0.2,0.3,0.5")]
    densities: String,
    /// `all`, or layers and ranges: `0,5,10-12`.
    #[arg(long, default_value = "all")]
    layers: String,
    /// `all`, or method names (see examples::attn_methods::METHODS).
    #[arg(long, default_value = "all")]
    methods: String,
    /// Seed of the speech choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The density of the per-layer table and plot (the closest one of --densities).
    #[arg(long, default_value_t = 0.1)]
    layer_density: f64,
    /// Output folder.
    #[arg(long, default_value = "target/sparse-attn-quality")]
    out: PathBuf,
    /// The SmolLM2 GGUF file (default: shared data).
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// A short run: 1024 tokens, one window, densities 0.1 and 0.3, layers 0, 15, 29.
    #[arg(long)]
    quick: bool,
}

/// One (context, window, layer, method, density) measurement.
#[derive(Clone, Debug)]
struct Row {
    context: usize,
    window: usize,
    layer: usize,
    method: usize,
    target: usize,
    setting: String,
    /// density, mass recall mean, mass recall p5, oracle recall, output rel. error, KL.
    values: [f64; 6],
}

const VALUE_NAMES: [&str; 6] = [
    "density",
    "recall_mean",
    "recall_p5",
    "oracle_recall",
    "output_rel_error",
    "kl_mean",
];

fn main() {
    examples::exit_on_error(run(Args::parse()));
}

fn run(mut args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.quick {
        args.contexts = "1024".into();
        args.windows = 1;
        args.densities = "0.1,0.3".into();
        args.layers = "0,15,29".into();
    }
    let device = examples::device();
    let gguf = args.gguf.clone().unwrap_or_else(examples::smollm2_gguf);
    let model = Llama::from_gguf(&gguf, &device)?;
    let n_layers = model.config().n_layers;
    let contexts = parse_counts("contexts", &args.contexts, 64, model.config().max_positions)?;
    if args.windows == 0 {
        return Err(ArgError::Bad {
            flag: "windows",
            item: "0".into(),
            expected: "at least 1".into(),
        }
        .into());
    }
    let densities = parse_densities("densities", &args.densities)?;
    let layers = parse_layers(&args.layers, n_layers)?;
    let methods = parse_methods(&args.methods)?;
    let longest = *contexts.iter().max().expect("non-empty");
    let tokenizer = Tokenizer::from_file(examples::smollm2_dir().join("tokenizer.json"))?;
    let path = sotu_path();
    let speeches = read_speeches(&path)?;
    let windows = speech_windows(
        &speeches,
        &path,
        &tokenizer,
        longest,
        args.windows,
        args.seed,
    )?;
    let layer_target = closest(&densities, args.layer_density);
    std::fs::create_dir_all(&args.out)?;
    let load = examples::load_average();
    println!(
        "SmolLM2-135M ({n_layers} layers), contexts {contexts:?}, {} window(s): {}; layers {:?}; densities {densities:?}; methods {}; {} threads, load average {load}",
        windows.len(),
        windows
            .iter()
            .map(|w| w.title.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        layers,
        methods
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", "),
        rayon::current_num_threads(),
    );

    let style = ProgressStyle::with_template(
        "{msg:<22} [{bar:30}] {pos}/{len} layers {elapsed_precise} (eta {eta})",
    )?;
    let rows: Arc<Mutex<Vec<Row>>> = Arc::default();
    let mut elapsed = Vec::new();
    for (ci, &context) in contexts.iter().enumerate() {
        let bar = ProgressBar::new((windows.len() * layers.len()) as u64)
            .with_style(style.clone())
            .with_message(format!("context {context}"));
        let t0 = Instant::now();
        for (wi, w) in windows.iter().enumerate() {
            let tokens = tokens_tensor(w, context, &device);
            let mut hooks = with_method_in_layers(
                Hooks::new().stop_at_layer(layers[layers.len() - 1] + 1),
                layers.iter().copied(),
                |_| {
                    let (rows, bar) = (rows.clone(), bar.clone());
                    let (methods, densities) = (methods.clone(), densities.clone());
                    move |layer: usize, p: &AttentionProblem| {
                        let measured = judge_layer(p, &methods, &densities);
                        let mut rows = rows.lock().expect("no other holder panicked");
                        for (method, target, setting, values) in measured {
                            rows.push(Row {
                                context: ci,
                                window: wi,
                                layer,
                                method,
                                target,
                                setting,
                                values,
                            });
                        }
                        bar.inc(1);
                        dense_attention(p)
                    }
                },
            );
            model.run(tokens, &mut hooks)?;
            // Rewrite the report after every window, so a long run leaves results as it goes.
            elapsed.truncate(ci);
            elapsed.push(t0.elapsed().as_secs_f64());
            let rows = rows.lock().expect("no other holder panicked").clone();
            Report {
                args: &args,
                gguf: &gguf,
                contexts: &contexts[..=ci],
                windows: &windows,
                densities: &densities,
                layers: &layers,
                methods: &methods,
                layer_target,
                elapsed: &elapsed,
                load: &load,
                rows: &rows,
            }
            .write()?;
        }
        bar.finish();
    }
    println!(
        "wrote {}/quality.json, quality.md and recall-per-layer-*.png",
        args.out.display()
    );
    Ok(())
}

/// Every method at every density on one layer's problem: (method, density index, setting,
/// values).
fn judge_layer(
    p: &AttentionProblem,
    methods: &[Method],
    densities: &[f64],
) -> Vec<(usize, usize, String, [f64; 6])> {
    let masks: Vec<(usize, usize, examples::attn_methods::CalibratedMask)> = methods
        .iter()
        .enumerate()
        .flat_map(|(mi, m)| {
            densities
                .iter()
                .enumerate()
                .map(move |(di, &d)| (mi, di, (m.build)(p, d)))
        })
        .collect();
    let candidates: Vec<Candidate<'_>> = masks
        .iter()
        .map(|(_, _, c)| Candidate::new(&c.mask))
        .collect();
    let quality = evaluate_masks(p, &candidates, &QualityOptions { query_chunk: 128 });
    masks
        .iter()
        .zip(quality)
        .map(|((mi, di, c), q)| {
            let o = q.overall;
            (
                *mi,
                *di,
                c.setting.clone(),
                [
                    o.density,
                    o.recall_mean,
                    o.recall_p5,
                    o.oracle_recall,
                    o.output_rel_error,
                    o.kl_mean,
                ],
            )
        })
        .collect()
}

fn tokens_tensor(w: &SpeechWindow, len: usize, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = w.prefix(len).iter().map(|&t| i64::from(t)).collect();
    Tensor::from_data(TensorData::new(ids, [1, len]), device)
}

/// Index of the value of `values` closest to `x`.
fn closest(values: &[f64], x: f64) -> usize {
    (0..values.len())
        .min_by(|&a, &b| (values[a] - x).abs().total_cmp(&(values[b] - x).abs()))
        .expect("non-empty")
}

struct Report<'a> {
    args: &'a Args,
    gguf: &'a std::path::Path,
    contexts: &'a [usize],
    windows: &'a [SpeechWindow],
    densities: &'a [f64],
    layers: &'a [usize],
    methods: &'a [Method],
    layer_target: usize,
    elapsed: &'a [f64],
    load: &'a str,
    rows: &'a [Row],
}

impl Report<'_> {
    fn write(&self) -> Result<(), Box<dyn std::error::Error>> {
        let out = &self.args.out;
        std::fs::write(
            out.join("quality.json"),
            serde_json::to_string_pretty(&self.json())?,
        )?;
        let mut md = format!(
            "# sparse-attn mask quality on SmolLM2-135M, SOTU windows\n\n\
             `{}`\n\nModel {}; windows: {}; seed {}; load average at start {}. Dense attention \
             is what the model runs (the override returns it), so every layer sees the dense \
             model's inputs. Values are means over layers ({}) and windows; oracle recall is \
             the overlap with each row's exact top-`n_i` keys (`n_i` the row's kept count), so \
             the element oracle has 1 by construction.\n",
            std::env::args().collect::<Vec<_>>().join(" "),
            self.gguf.display(),
            self.windows
                .iter()
                .map(|w| w.title.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.args.seed,
            self.load,
            fmt_layers(self.layers),
        );
        let mut overall = GroupMeans::default();
        let mut per_layer = GroupMeans::default();
        for r in self.rows {
            overall.add((r.context, r.method, r.target), &r.values);
            per_layer.add((r.context, r.layer, r.method, r.target), &r.values);
        }
        for (ci, &context) in self.contexts.iter().enumerate() {
            md.push_str(&format!(
                "\n## Context {context} tokens ({:.0} s)\n\n",
                self.elapsed[ci]
            ));
            let mut rows = Vec::new();
            for (mi, m) in self.methods.iter().enumerate() {
                for (di, &d) in self.densities.iter().enumerate() {
                    let Some((v, _)) = overall.get(&(ci, mi, di)) else {
                        continue;
                    };
                    rows.push(vec![
                        m.name.to_string(),
                        format!("{d:.2}"),
                        format!("{:.3}", v[0]),
                        format!("{:.3}", v[1]),
                        format!("{:.3}", v[2]),
                        format!("{:.3}", v[3]),
                        format!("{:.3}", v[4]),
                    ]);
                }
            }
            md.push_str(&markdown_table(
                &[
                    "method",
                    "target density",
                    "density",
                    "mass recall",
                    "p5 mass recall",
                    "oracle recall",
                    "output rel. error",
                ],
                &rows,
            ));
            let di = self.layer_target;
            md.push_str(&format!(
                "\nPer layer at target density {:.2}: mass recall / output relative error.\n\n",
                self.densities[di]
            ));
            let mut header = vec!["layer".to_string()];
            header.extend(self.methods.iter().map(|m| m.name.to_string()));
            let mut rows = Vec::new();
            let mut series: Vec<Series> = self
                .methods
                .iter()
                .map(|m| Series::line(m.name, Vec::new()))
                .collect();
            for &layer in self.layers {
                let mut row = vec![layer.to_string()];
                for (mi, s) in series.iter_mut().enumerate() {
                    match per_layer.get(&(ci, layer, mi, di)) {
                        Some((v, _)) => {
                            row.push(format!("{:.3} / {:.3}", v[1], v[4]));
                            s.points.push((layer as f64, v[1]));
                        }
                        None => row.push("–".into()),
                    }
                }
                rows.push(row);
            }
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            md.push_str(&markdown_table(&header, &rows));
            let png = format!("recall-per-layer-{context}.png");
            let title = format!(
                "SmolLM2-135M, SOTU {context} tokens: mass recall per layer at density {:.2}",
                self.densities[di]
            );
            line_plot(
                &self.args.out.join(&png),
                &Axes {
                    title: &title,
                    x: "layer",
                    y: "attention-mass recall",
                    log_y: false,
                },
                &series,
            )?;
            md.push_str(&format!("\n![mass recall per layer]({png})\n"));
        }
        std::fs::write(out.join("quality.md"), md)?;
        Ok(())
    }

    fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut o = json!({
                    "context": self.contexts[r.context],
                    "window": self.windows[r.window].title,
                    "layer": r.layer,
                    "method": self.methods[r.method].name,
                    "target_density": self.densities[r.target],
                    "setting": r.setting,
                });
                for (name, v) in VALUE_NAMES.iter().zip(r.values) {
                    o[*name] = json!(v);
                }
                o
            })
            .collect();
        json!({
            "experiment": "sparse_attn_quality",
            "model": self.gguf.display().to_string(),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "seed": self.args.seed,
            "load_average_at_start": self.load,
            "contexts": self.contexts,
            "elapsed_s": self.elapsed,
            "windows": self.windows.iter().map(|w| w.title.clone()).collect::<Vec<_>>(),
            "densities": self.densities,
            "layers": self.layers,
            "methods": self.methods.iter().map(|m| json!({"name": m.name, "description": m.description})).collect::<Vec<_>>(),
            "rows": rows,
        })
    }
}

fn fmt_layers(layers: &[usize]) -> String {
    if layers.len() > 1 && layers.windows(2).all(|w| w[1] == w[0] + 1) {
        format!("{}–{}", layers[0], layers[layers.len() - 1])
    } else {
        layers
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
