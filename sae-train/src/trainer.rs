//! The trainer: several SAEs trained from one activation stream, with schedules, aux-K, gradient
//! clipping, decoder constraints, dead-latent tracking, logs and exact checkpoint/resume.

use std::any::Any;
use std::path::PathBuf;
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use sae_core::{DecoderConstraint, SparseAutoencoder, StepContext};
use serde::{Deserialize, Serialize};

use crate::clip::clip_global_norm;
use crate::fast_topk::{FastStep, fast_topk_step};
use crate::{
    ActivationSource, BatchStream, Calibration, CheckpointDir, CoefficientWarmup, DeadLatents,
    Error, MetricRecord, MetricsLog, Result, SaeRunConfig, StreamState, TrainerConfig, aux_k_loss,
    plot_training,
};

/// One SAE of a run with its optimiser and dead-latent counters.
struct Member<S> {
    run: SaeRunConfig,
    sae: Option<S>,
    optim: ModuleOptimizer,
    dead: DeadLatents,
}

/// What one step measured for one SAE.
#[derive(Debug, Clone, Copy)]
struct StepStats {
    loss: f64,
    mse: f64,
    aux_loss: f64,
    l0: f64,
    dense_fraction: f64,
}

/// Options of [`Trainer::fit`].
#[derive(Debug, Default)]
pub struct FitOptions {
    /// Append metrics here every `log_every` steps.
    pub log: Option<MetricsLog>,
    /// Save checkpoints here every `checkpoint_every` steps and at the end.
    pub checkpoints: Option<CheckpointDir>,
    /// Show a progress bar (indicatif) with loss, L0, FVU and dead %.
    pub progress: bool,
    /// Stop after this step even if `total_steps` is larger (for interrupted runs and tests).
    pub stop_after: Option<u64>,
    /// Draw the curves of `log` into this PNG at the end.
    pub plot: Option<PathBuf>,
}

/// What [`Trainer::fit`] did.
#[derive(Debug, Clone)]
pub struct FitSummary {
    /// Steps taken in this call.
    pub steps: u64,
    /// Tokens trained on in this call.
    pub tokens: u64,
    /// Wall-clock seconds of this call.
    pub seconds: f64,
    /// The last metric record of each SAE.
    pub last: Vec<MetricRecord>,
}

/// The run's state saved in `state.json` of a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    format: u32,
    step: u64,
    tokens: u64,
    config: TrainerConfig,
    members: Vec<SavedMember>,
    stream: StreamState,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedMember {
    run: SaeRunConfig,
    architecture: String,
    d_in: usize,
    d_sae: usize,
    dead: DeadLatents,
}

const STATE_FILE: &str = "state.json";

/// Trains one or more SAEs of type `S` (one architecture, or [`sae_core::AnySae`] to mix them)
/// on the same batches.
///
/// Every step, for each SAE: the architecture's training forward (its loss terms with the
/// sparsity coefficient warmed up), plus the [auxiliary-K loss](crate::AuxKConfig) on dead
/// latents; backward (or, for TopK SAEs on the CPU, the [hand-written k-sparse
/// step](crate::TrainerConfig::fast_topk)); gradient projection for unit-norm decoders; global
/// gradient clipping; Adam with the SAE's learning-rate schedule; the decoder constraint;
/// dead-latent counters. A step of every SAE is deterministic given the batch, so
/// checkpoint/resume reproduces an uninterrupted run bit for bit on the CPU.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::TopKSaeConfig;
/// use sae_train::*;
///
/// let device = Device::flex().autodiff();
/// device.seed(0);
/// let data = HierarchicalTree::new(HierarchicalTreeConfig::default());
/// let source = SyntheticSource::new(data, 256, None, Device::flex());
/// let mut stream = BatchStream::new(source, BatchStreamConfig::new(64))?;
/// let sae = TopKSaeConfig::new(20, 40, 2).init(&device);
/// let lr = LrSchedule::new(1e-2, 5, 30, Decay::Constant);
/// let mut trainer = Trainer::new(TrainerConfig::new(30), vec![(SaeRunConfig::new("topk", lr), sae)], &device);
/// let summary = trainer.fit(&mut stream, FitOptions::default())?;
/// assert_eq!(summary.steps, 30);
/// assert!(summary.last[0].fvu < 1.0);
/// # Ok::<(), sae_train::Error>(())
/// ```
pub struct Trainer<S> {
    config: TrainerConfig,
    members: Vec<Member<S>>,
    device: Device,
    step: u64,
    tokens: u64,
}

impl<S: SparseAutoencoder + 'static> Trainer<S> {
    /// A trainer for `saes` (each with its run settings) on `device` (an autodiff device; the
    /// SAEs must live on it).
    ///
    /// # Panics
    /// If `saes` is empty, names repeat, or the SAEs differ in `d_in`.
    pub fn new(config: TrainerConfig, saes: Vec<(SaeRunConfig, S)>, device: &Device) -> Self {
        assert!(!saes.is_empty(), "Trainer needs at least one SAE, got none");
        let d_in = saes[0].1.d_in();
        let mut members = Vec::with_capacity(saes.len());
        for (run, sae) in saes {
            assert_eq!(
                sae.d_in(),
                d_in,
                "SAE {:?} has d_in {}, expected {d_in} like the first SAE",
                run.name,
                sae.d_in()
            );
            assert!(
                members.iter().all(|m: &Member<S>| m.run.name != run.name),
                "SAE name {:?} is used twice",
                run.name
            );
            let optim = AdamConfig::new()
                .with_beta_1(config.adam.beta_1)
                .with_beta_2(config.adam.beta_2)
                .with_epsilon(config.adam.epsilon)
                .init();
            members.push(Member {
                dead: DeadLatents::new(sae.d_sae(), config.dead_after_tokens),
                run,
                sae: Some(sae),
                optim,
            });
        }
        Self {
            config,
            members,
            device: device.clone(),
            step: 0,
            tokens: 0,
        }
    }

    /// The input width.
    pub fn d_in(&self) -> usize {
        self.sae(0).d_in()
    }

    /// The steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The tokens trained on so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// The number of SAEs.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the trainer holds no SAE (never: [`Trainer::new`] requires one).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// SAE `index`.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn sae(&self, index: usize) -> &S {
        self.members[index]
            .sae
            .as_ref()
            .expect("the SAE is only taken out during a step")
    }

    /// The run settings of SAE `index`.
    pub fn run_config(&self, index: usize) -> &SaeRunConfig {
        &self.members[index].run
    }

    /// The dead-latent counters of SAE `index`.
    pub fn dead_latents(&self, index: usize) -> &DeadLatents {
        &self.members[index].dead
    }

    /// Copies of the SAEs.
    pub fn clone_saes(&self) -> Vec<S> {
        (0..self.members.len())
            .map(|i| self.sae(i).clone())
            .collect()
    }

    /// SAE `index` ready to use on **raw** activations: the input normalisation of
    /// `calibration` folded into its weights (`fold_input_scale`), in its inference form
    /// (`into_inference`: TopK decoder norms folded, BatchTopK/Matryoshka exported as JumpReLU).
    /// For every raw input `x`, `export(..).forward(x) == sae.forward(x · s) / s`. Write it with
    /// sae-core's SAELens writer.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn export(&self, index: usize, calibration: &Calibration) -> sae_core::AnySae {
        self.sae(index)
            .clone()
            .valid()
            .fold_input_scale(calibration.normaliser.scale() as f64)
            .into_inference()
    }

    /// Takes the SAEs out of the trainer.
    pub fn into_saes(self) -> Vec<S> {
        self.members
            .into_iter()
            .map(|m| m.sae.expect("the SAE is only taken out during a step"))
            .collect()
    }

    /// One optimiser step of every SAE on `batch` (`[rows, d_in]` row-major, already filtered
    /// and normalised); returns one metric record per SAE.
    ///
    /// The step is all or nothing: every SAE's loss and gradients are computed before any
    /// optimiser step, so when one fails no SAE (weights, Adam state, dead-latent counters) and
    /// no counter has moved, and a retry cannot step an SAE twice. The price: the gradients of
    /// all SAEs are held at once.
    ///
    /// # Errors
    /// [`Error::WidthMismatch`] for a batch of the wrong width, [`Error::NonFinite`] for NaN/Inf
    /// values, [`Error::Diverged`] naming the first SAE whose loss is not finite (nothing is
    /// stepped).
    pub fn train_step(&mut self, batch: &[f32]) -> Result<Vec<MetricRecord>> {
        let d_in = self.d_in();
        if batch.is_empty() || !batch.len().is_multiple_of(d_in) {
            return Err(Error::WidthMismatch {
                source_name: "training batch".into(),
                expected: d_in,
                found: if batch.is_empty() {
                    0
                } else {
                    batch.len() % d_in
                },
            });
        }
        crate::check_finite("training batch", batch, d_in, 0)?;
        let rows = batch.len() / d_in;
        let total_variance = total_variance(batch, d_in);
        let x = Tensor::<2>::from_data(TensorData::new(batch.to_vec(), [rows, d_in]), &self.device);
        let step = self.step;
        let tokens_after = self.tokens + rows as u64;
        // All or nothing: every member's loss and gradients first (nothing is changed yet, so
        // a divergence anywhere leaves every SAE as it was), then every optimiser step.
        let mut pending = Vec::with_capacity(self.members.len());
        for (index, member) in self.members.iter().enumerate() {
            let lr = member.run.lr.lr(step);
            let warmup = CoefficientWarmup::new(1.0, member.run.sparsity_warmup_steps).at(step);
            let gradients = member_gradients(
                member,
                index,
                &self.config,
                batch,
                x.clone(),
                rows,
                step,
                warmup,
            )?;
            pending.push((gradients, lr, warmup));
        }
        let mut records = Vec::with_capacity(self.members.len());
        for (member, (gradients, lr, warmup)) in self.members.iter_mut().zip(pending) {
            let stats = apply_member_step(member, gradients, rows, lr);
            records.push(MetricRecord {
                step,
                tokens: tokens_after,
                sae: member.run.name.clone(),
                loss: stats.loss,
                mse: stats.mse,
                aux_loss: stats.aux_loss,
                fvu: if total_variance > 0.0 {
                    stats.mse * rows as f64 / total_variance
                } else {
                    f64::NAN
                },
                l0: stats.l0,
                dead_fraction: member.dead.dead_fraction(),
                dense_fraction: stats.dense_fraction,
                lr,
                sparsity_scale: warmup,
            });
        }
        self.step += 1;
        self.tokens = tokens_after;
        Ok(records)
    }

    /// Trains until `total_steps` (or `options.stop_after`, or the end of a non-repeating
    /// stream), logging, checkpointing and showing progress as asked.
    ///
    /// # Errors
    /// Stream, I/O and divergence errors; [`Error::WidthMismatch`] if the stream's width is not
    /// the SAEs' `d_in`.
    pub fn fit<Src: ActivationSource>(
        &mut self,
        stream: &mut BatchStream<Src>,
        mut options: FitOptions,
    ) -> Result<FitSummary> {
        if stream.d_in() != self.d_in() {
            return Err(Error::WidthMismatch {
                source_name: stream.source_name(),
                expected: self.d_in(),
                found: stream.d_in(),
            });
        }
        let end = options
            .stop_after
            .map_or(self.config.total_steps, |s| s.min(self.config.total_steps));
        let start = Instant::now();
        let (first_step, first_tokens) = (self.step, self.tokens);
        let bar = options.progress.then(|| {
            let bar = ProgressBar::new(self.config.total_steps);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} ETA {eta} | {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_position(self.step);
            bar
        });
        let mut last = Vec::new();
        while self.step < end {
            let Some(batch) = stream.next_batch()? else {
                break;
            };
            let records = self.train_step(&batch)?;
            let step = self.step - 1;
            let is_last = self.step == end;
            if let Some(bar) = &bar {
                bar.set_position(self.step);
                if step.is_multiple_of(5) || is_last {
                    let r = &records[0];
                    bar.set_message(format!(
                        "{}: loss {:.4} L0 {:.1} FVU {:.4} dead {:.1}%",
                        r.sae,
                        r.loss,
                        r.l0,
                        r.fvu,
                        100.0 * r.dead_fraction
                    ));
                }
            }
            if let Some(log) = options.log.as_mut()
                && (step.is_multiple_of(self.config.log_every) || is_last)
            {
                for r in &records {
                    log.append(r)?;
                }
            }
            if let Some(dir) = &options.checkpoints
                && (is_last
                    || self
                        .config
                        .checkpoint_every
                        .is_some_and(|every| self.step.is_multiple_of(every)))
            {
                self.save_checkpoint(dir, &stream.state())?;
            }
            last = records;
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        if let (Some(plot), Some(log)) = (&options.plot, &options.log) {
            plot_training(&MetricsLog::read(log.path())?.records, plot)?;
        }
        Ok(FitSummary {
            steps: self.step - first_step,
            tokens: self.tokens - first_tokens,
            seconds: start.elapsed().as_secs_f64(),
            last,
        })
    }

    /// Saves the whole run (SAEs, optimiser states, counters, schedule position, stream
    /// position) into `dir` as the checkpoint of the current step.
    ///
    /// # Errors
    /// [`Error::Io`] or a record error; the previous checkpoint stays the latest on failure.
    pub fn save_checkpoint(&self, dir: &CheckpointDir, stream: &StreamState) -> Result<PathBuf> {
        let state = SavedState {
            format: 1,
            step: self.step,
            tokens: self.tokens,
            config: self.config.clone(),
            members: self
                .members
                .iter()
                .map(|m| {
                    let sae = m
                        .sae
                        .as_ref()
                        .expect("the SAE is only taken out during a step");
                    SavedMember {
                        run: m.run.clone(),
                        architecture: sae.architecture().name().to_string(),
                        d_in: sae.d_in(),
                        d_sae: sae.d_sae(),
                        dead: m.dead.clone(),
                    }
                })
                .collect(),
            stream: stream.clone(),
        };
        let record_error = |what: &str, e: burn::store::RecordError| {
            Error::format(dir.root(), format!("cannot serialise {what}: {e:?}"))
        };
        let mut files = vec![(
            STATE_FILE.to_string(),
            serde_json::to_vec_pretty(&state).map_err(|e| Error::Json {
                path: dir.root().join(STATE_FILE),
                source: e,
            })?,
        )];
        for (i, m) in self.members.iter().enumerate() {
            let sae = m
                .sae
                .clone()
                .expect("the SAE is only taken out during a step");
            let bytes = sae
                .into_record()
                .into_bytes()
                .map_err(|e| record_error("an SAE", e))?;
            files.push((format!("sae-{i}.bpk"), bytes.to_vec()));
            let bytes = m
                .optim
                .into_bytes()
                .map_err(|e| record_error("an optimiser state", e))?;
            files.push((format!("optim-{i}.bpk"), bytes.to_vec()));
        }
        let named: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        dir.save(self.step, &named)
    }

    /// Restores the latest checkpoint of `dir` into this trainer and `stream`; returns its step,
    /// or `None` (and changes nothing) if `dir` holds no checkpoint.
    ///
    /// The trainer must have been built like the one that saved (same configuration, SAE names,
    /// architectures and shapes); everything else — weights, Adam moments and step counts, dead
    /// counters, step, tokens, stream position — comes from the checkpoint.
    ///
    /// # Errors
    /// [`Error::CheckpointMismatch`] naming the first difference, [`Error::Format`] for damaged
    /// files; on error the trainer and stream are unchanged.
    pub fn resume<Src: ActivationSource>(
        &mut self,
        dir: &CheckpointDir,
        stream: &mut BatchStream<Src>,
    ) -> Result<Option<u64>> {
        let Some((step, files)) = dir.load_latest()? else {
            return Ok(None);
        };
        let path = dir.root().join(format!("step-{step:010}"));
        let mismatch = |reason: String| Error::CheckpointMismatch {
            path: path.clone(),
            reason,
        };
        let state_bytes = files
            .get(STATE_FILE)
            .ok_or_else(|| Error::format(&path, "checkpoint has no state.json"))?;
        let state: SavedState = serde_json::from_slice(state_bytes).map_err(|e| Error::Json {
            path: path.join(STATE_FILE),
            source: e,
        })?;
        if state.config != self.config {
            return Err(mismatch(format!(
                "trainer config differs: saved {:?}, this run {:?}",
                state.config, self.config
            )));
        }
        if state.members.len() != self.members.len() {
            return Err(mismatch(format!(
                "saved {} SAEs, this run has {}",
                state.members.len(),
                self.members.len()
            )));
        }
        for (saved, m) in state.members.iter().zip(&self.members) {
            let sae = m
                .sae
                .as_ref()
                .expect("the SAE is only taken out during a step");
            let ours = (&m.run, sae.architecture().name(), sae.d_in(), sae.d_sae());
            let theirs = (
                &saved.run,
                saved.architecture.as_str(),
                saved.d_in,
                saved.d_sae,
            );
            if ours != theirs {
                return Err(mismatch(format!(
                    "SAE {:?}: saved (settings, architecture, d_in, d_sae) = {theirs:?}, this run {ours:?}",
                    m.run.name
                )));
            }
        }
        if state.stream.config != *stream.config() {
            return Err(mismatch(format!(
                "batch stream config differs: saved {:?}, this run {:?}",
                state.stream.config,
                stream.config()
            )));
        }
        // Decode everything before touching the trainer, so that a failure changes nothing.
        let mut restored = Vec::with_capacity(self.members.len());
        for (i, m) in self.members.iter().enumerate() {
            let get = |name: String| {
                files
                    .get(&name)
                    .ok_or_else(|| Error::format(&path, format!("checkpoint lacks {name}")))
            };
            let sae_bytes = get(format!("sae-{i}.bpk"))?;
            let record = burn::store::ModuleRecord::from_bytes(
                burn::tensor::Bytes::from_bytes_vec(sae_bytes.clone()),
            )
            .map_err(|e| Error::format(&path, format!("sae-{i}.bpk: {e:?}")))?;
            let sae = m
                .sae
                .clone()
                .expect("the SAE is only taken out during a step")
                .try_load_record(record)
                .map_err(|e| {
                    mismatch(format!(
                        "sae-{i}.bpk does not fit SAE {:?}: {e:?}",
                        m.run.name
                    ))
                })?;
            let optim_bytes = get(format!("optim-{i}.bpk"))?;
            let optim = m
                .optim
                .clone()
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(optim_bytes.clone()))
                .map_err(|e| Error::format(&path, format!("optim-{i}.bpk: {e:?}")))?;
            restored.push((sae, optim));
        }
        stream.restore(state.stream)?;
        for ((m, (sae, optim)), saved) in self.members.iter_mut().zip(restored).zip(state.members) {
            m.sae = Some(sae);
            m.optim = optim;
            m.dead = saved.dead;
        }
        self.step = state.step;
        self.tokens = state.tokens;
        Ok(Some(step))
    }
}

/// `Σ_t ‖x_t − x̄‖²` of a batch (the FVU denominator).
fn total_variance(batch: &[f32], d: usize) -> f64 {
    let rows = batch.len() / d;
    let mut mean = vec![0f64; d];
    for row in batch.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    batch
        .chunks_exact(d)
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, m)| (v as f64 - m).powi(2))
                .sum::<f64>()
        })
        .sum()
}

/// Firing statistics from per-latent firing counts of a batch of `rows` tokens.
fn firing_stats(counts: &[u32], rows: usize) -> (f64, f64, Vec<bool>) {
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    let dense = counts
        .iter()
        .filter(|&&c| c as f64 > 0.1 * rows as f64)
        .count();
    (
        total as f64 / rows as f64,
        dense as f64 / counts.len().max(1) as f64,
        counts.iter().map(|&c| c > 0).collect(),
    )
}

/// One SAE's loss and its gradients for this step, ready for the optimiser (projected and
/// clipped); the SAE itself is not touched.
struct MemberGradients {
    grads: GradientsParams,
    loss: f64,
    mse: f64,
    aux_loss: f64,
    firing_counts: Vec<u32>,
    /// The training output, for `update_running_state` (autodiff path only).
    output: Option<sae_core::TrainingOutput>,
}

/// The loss and gradients of member `index` on this batch, without changing it.
///
/// # Errors
/// [`Error::Diverged`] naming `index` when the loss is not finite.
#[allow(clippy::too_many_arguments)]
fn member_gradients<S: SparseAutoencoder + 'static>(
    member: &Member<S>,
    index: usize,
    config: &TrainerConfig,
    batch: &[f32],
    x: Tensor<2>,
    rows: usize,
    step: u64,
    sparsity_scale: f64,
) -> Result<MemberGradients> {
    let sae = member
        .sae
        .as_ref()
        .expect("the SAE is only taken out during a step");
    let dead_mask = member.dead.dead_mask();
    let fast = if config.fast_topk {
        fast_topk_step(
            sae as &dyn Any,
            batch,
            rows,
            &dead_mask,
            member.run.aux_k.as_ref(),
            config.grad_clip_norm,
        )
    } else {
        None
    };
    let (mut grads, loss, mse, aux_loss, firing_counts, output, finalised) = match fast {
        Some(FastStep {
            grads,
            loss,
            mse,
            aux_loss,
            firing_counts,
        }) => (grads, loss, mse, aux_loss, firing_counts, None, true),
        None => {
            let (g, l, m, a, f, o) =
                autodiff_step(sae, member, x, step, sparsity_scale, &dead_mask)?;
            (g, l, m, a, f, o, false)
        }
    };
    if !loss.is_finite() {
        return Err(Error::Diverged {
            step,
            sae: index,
            value: loss as f32,
        });
    }
    // The fast step projects and clips on the host itself.
    if !finalised {
        if sae.decoder_constraint() == DecoderConstraint::UnitNorm {
            sae.project_gradients(&mut grads);
        }
        if let Some(max_norm) = config.grad_clip_norm {
            clip_global_norm(sae, &mut grads, max_norm);
        }
    }
    Ok(MemberGradients {
        grads,
        loss,
        mse,
        aux_loss,
        firing_counts,
        output,
    })
}

/// Applies computed gradients: the optimiser step, the constraints, the running state and the
/// dead-latent counters. Cannot fail, so a step of several SAEs is all or nothing.
fn apply_member_step<S: SparseAutoencoder + 'static>(
    member: &mut Member<S>,
    gradients: MemberGradients,
    rows: usize,
    lr: f64,
) -> StepStats {
    let MemberGradients {
        grads,
        loss,
        mse,
        aux_loss,
        firing_counts,
        output,
    } = gradients;
    let sae = member
        .sae
        .take()
        .expect("the SAE is only taken out during a step");
    let mut sae = member.optim.step(lr, sae, grads).apply_constraints();
    if let Some(output) = &output {
        sae = sae.update_running_state(output);
    }
    member.sae = Some(sae);
    let (l0, dense_fraction, fired) = firing_stats(&firing_counts, rows);
    member.dead.update(&fired, rows as u64);
    StepStats {
        loss,
        mse,
        aux_loss,
        l0,
        dense_fraction,
    }
}

type AutodiffOutcome = (
    GradientsParams,
    f64,
    f64,
    f64,
    Vec<u32>,
    Option<sae_core::TrainingOutput>,
);

/// The portable step: the architecture's training forward, aux-K, burn autodiff.
fn autodiff_step<S: SparseAutoencoder>(
    sae: &S,
    member: &Member<S>,
    x: Tensor<2>,
    step: u64,
    sparsity_scale: f64,
    dead_mask: &[bool],
) -> Result<AutodiffOutcome> {
    let device = x.device();
    let dead_tensor = Tensor::<1, Bool>::from_data(
        TensorData::new(dead_mask.to_vec(), [dead_mask.len()]),
        &device,
    );
    let ctx = StepContext::new(step)
        .with_sparsity_scale(sparsity_scale)
        .with_dead_latents(dead_tensor);
    let output = sae.training_forward(x.clone(), &ctx);
    let mut total = output.total_loss();
    let mse = output
        .loss("mse")
        .map(|t| t.value.clone().into_scalar::<f32>() as f64)
        .unwrap_or(f64::NAN);
    let mut aux_loss = 0.0;
    if let (Some(cfg), Some(pre)) = (&member.run.aux_k, &output.pre_activations) {
        let mut cfg = *cfg;
        cfg.signed |= output.signed_codes;
        let residual = x - output.reconstruction.clone();
        if let Some(aux) = aux_k_loss(pre.clone(), residual, sae.dictionary(), dead_mask, &cfg) {
            aux_loss = aux.clone().into_scalar::<f32>() as f64;
            total = total + aux * cfg.coefficient as f32;
        }
    }
    let loss = total.clone().into_scalar::<f32>() as f64;
    let counts: Vec<u32> = output
        .codes
        .clone()
        .detach()
        .not_equal_elem(0.0)
        .int()
        .sum_dim(0)
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("an int tensor converts to i64")
        .into_iter()
        .map(|c| c as u32)
        .collect();
    let grads = GradientsParams::from_grads(total.backward(), sae);
    Ok((grads, loss, mse, aux_loss, counts, Some(output)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AuxKConfig, BatchStreamConfig, Decay, HierarchicalTree, HierarchicalTreeConfig,
        InMemorySource, LrSchedule, SyntheticSource, TokenFilter,
    };
    use sae_core::{AnySae, ReluSaeConfig, TopKSaeConfig};

    fn tree_stream(batch: usize) -> BatchStream<SyntheticSource<HierarchicalTree>> {
        let data = HierarchicalTree::new(HierarchicalTreeConfig::default());
        let source = SyntheticSource::new(data, 96, Some(5), crate::test_device());
        let config = BatchStreamConfig::new(batch)
            .with_seed(11)
            .with_shuffle_rows(128)
            .with_filter(TokenFilter::none().drop_positions(7, vec![3]));
        BatchStream::new(source, config).unwrap()
    }

    /// Two SAEs of different architectures in one run, seeded identically every time.
    fn trainer(steps: u64, seed: u64) -> Trainer<AnySae> {
        let device = crate::test_device().autodiff();
        device.seed(seed);
        let topk: AnySae = TopKSaeConfig::new(20, 32, 3)
            .with_unit_norm_decoder(true)
            .with_rescale_acts_by_decoder_norm(false)
            .init(&device)
            .into();
        let relu: AnySae = ReluSaeConfig::new(20, 24).init(&device).into();
        let lr = LrSchedule::new(
            5e-3,
            3,
            steps,
            Decay::Cosine {
                final_fraction: 0.1,
            },
        );
        let config = TrainerConfig::new(steps).with_dead_after_tokens(64);
        Trainer::new(
            config,
            vec![
                (
                    SaeRunConfig::new("topk", lr).with_aux_k(Some(AuxKConfig::default())),
                    topk,
                ),
                (SaeRunConfig::new("relu", lr).with_sparsity_warmup(4), relu),
            ],
            &device,
        )
    }

    fn weights(t: &Trainer<AnySae>) -> Vec<Vec<f32>> {
        t.clone_saes()
            .into_iter()
            .flat_map(|s| {
                [
                    s.dictionary(),
                    s.encode(Tensor::ones([1, 20], &s.dictionary().device())),
                ]
            })
            .map(|w| {
                w.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn resume_is_bit_identical_to_an_uninterrupted_run() {
        let (n, k) = (14, 6);
        let mut straight = trainer(n, 0);
        let mut stream = tree_stream(32);
        straight.fit(&mut stream, FitOptions::default()).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ckpt = CheckpointDir::new(dir.path(), 2);
        let mut first = trainer(n, 0);
        let mut stream = tree_stream(32);
        let options = FitOptions {
            checkpoints: Some(ckpt.clone()),
            stop_after: Some(k),
            ..Default::default()
        };
        first.fit(&mut stream, options).unwrap();
        // The SAE stopped at step k (saved there); keep training it to make sure the resumed
        // run does not just continue from memory.
        drop(first);

        // A new process: different initial weights, fresh stream, then resume.
        let mut second = trainer(n, 99);
        let mut stream = tree_stream(32);
        assert_eq!(second.resume(&ckpt, &mut stream).unwrap(), Some(k));
        assert_eq!(second.step(), k);
        second.fit(&mut stream, FitOptions::default()).unwrap();
        assert_eq!(second.step(), n);
        assert_eq!(second.tokens(), straight.tokens());
        assert_eq!(weights(&second), weights(&straight));
        for i in 0..2 {
            assert_eq!(second.dead_latents(i), straight.dead_latents(i));
        }
    }

    #[test]
    fn a_checkpoint_of_another_run_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = CheckpointDir::new(dir.path(), 2);
        let mut a = trainer(10, 0);
        let mut stream = tree_stream(32);
        a.fit(
            &mut stream,
            FitOptions {
                checkpoints: Some(ckpt.clone()),
                stop_after: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        let mut other = trainer(11, 5); // different total_steps and schedules
        let before = weights(&other);
        let mut stream = tree_stream(32);
        assert!(matches!(
            other.resume(&ckpt, &mut stream),
            Err(Error::CheckpointMismatch { .. })
        ));
        assert_eq!(weights(&other), before);
        assert_eq!(other.step(), 0);
        // A different batch size is refused too.
        let mut same = trainer(10, 5);
        let mut stream = tree_stream(16);
        assert!(matches!(
            same.resume(&ckpt, &mut stream),
            Err(Error::CheckpointMismatch { .. })
        ));
    }

    #[test]
    fn bad_batches_are_typed_errors() {
        let mut t = trainer(5, 0);
        let mut bad = vec![0.5f32; 4 * 20];
        bad[7] = f32::NAN;
        assert!(matches!(t.train_step(&bad), Err(Error::NonFinite { .. })));
        assert!(matches!(
            t.train_step(&[1.0; 21]),
            Err(Error::WidthMismatch { .. })
        ));
        let source = InMemorySource::new(vec![1.0; 30], 3).unwrap();
        let mut stream = BatchStream::new(source, BatchStreamConfig::new(2)).unwrap();
        assert!(matches!(
            t.fit(&mut stream, FitOptions::default()),
            Err(Error::WidthMismatch { .. })
        ));
        assert_eq!(t.step(), 0);
    }

    /// A step is all or nothing: when the second SAE's loss is not finite, the first is not
    /// stepped either (weights, dead-latent counters, step and token counts stay), so a retry
    /// cannot step it twice.
    #[test]
    fn a_step_where_one_sae_diverges_steps_none() {
        let device = crate::test_device().autodiff();
        device.seed(7);
        let good: AnySae = ReluSaeConfig::new(20, 24).init(&device).into();
        // Weights of 1e20 make the reconstruction overflow f32: the loss is infinite.
        let huge = |shape: [usize; 2]| Tensor::<2>::full(shape, 1e20, &device);
        let bad: AnySae = sae_core::ReluSae::from_tensors(
            &ReluSaeConfig::new(20, 24),
            huge([20, 24]),
            Tensor::zeros([24], &device),
            huge([24, 20]),
            Tensor::zeros([20], &device),
        )
        .unwrap()
        .into();
        let lr = LrSchedule::new(1e-2, 0, 10, Decay::Constant);
        let mut t = Trainer::new(
            TrainerConfig::new(10).with_dead_after_tokens(4),
            vec![
                (SaeRunConfig::new("good", lr), good),
                (SaeRunConfig::new("bad", lr), bad),
            ],
            &device,
        );
        let before = weights(&t);
        let dead_before = t.dead_latents(0).clone();
        let batch: Vec<f32> = (0..8 * 20).map(|i| ((i % 7) as f32 - 3.0) / 3.0).collect();
        for _ in 0..2 {
            match t.train_step(&batch) {
                Err(Error::Diverged { sae, step, .. }) => assert_eq!((sae, step), (1, 0)),
                other => panic!("expected SAE 1 to diverge, got {other:?}"),
            }
            assert_eq!(weights(&t)[..2], before[..2], "the first SAE was stepped");
            assert_eq!(t.dead_latents(0), &dead_before);
            assert_eq!((t.step(), t.tokens()), (0, 0));
        }
    }

    #[test]
    fn training_reduces_the_loss_and_logs_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = trainer(40, 1);
        let mut stream = tree_stream(64);
        let log = MetricsLog::create(dir.path().join("m.jsonl")).unwrap();
        let plot = dir.path().join("curves.png");
        t.fit(
            &mut stream,
            FitOptions {
                log: Some(log),
                plot: Some(plot.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        let records = MetricsLog::read(&dir.path().join("m.jsonl"))
            .unwrap()
            .records;
        let topk: Vec<&MetricRecord> = records.iter().filter(|r| r.sae == "topk").collect();
        assert_eq!(topk.len(), 5); // steps 0, 10, 20, 30 and the last
        assert!(topk.last().unwrap().fvu < 0.5 * topk[0].fvu);
        assert!(topk.iter().all(|r| r.l0 <= 3.0));
        // The logged sparsity scale is the warm-up factor: "relu" warms up over 4 steps
        // ((step + 1) / 4 at step 0), "topk" has no warm-up.
        let relu: Vec<&MetricRecord> = records.iter().filter(|r| r.sae == "relu").collect();
        assert_eq!((relu[0].step, relu[0].sparsity_scale), (0, 0.25));
        assert!(relu[1..].iter().all(|r| r.sparsity_scale == 1.0));
        assert!(topk.iter().all(|r| r.sparsity_scale == 1.0));
        assert!(plot.exists());
    }

    #[test]
    fn export_folds_the_normaliser_for_raw_inputs() {
        let mut t = trainer(6, 2);
        let mut stream = tree_stream(32);
        t.fit(&mut stream, FitOptions::default()).unwrap();
        let cal = stream.calibration();
        let s = cal.normaliser.scale();
        assert!(
            (s - 1.0).abs() > 1e-3,
            "the test needs a non-trivial scale, got {s}"
        );
        let device = crate::test_device();
        let x = Tensor::<2>::random(
            [5, 20],
            burn::tensor::Distribution::Normal(0.0, 2.0),
            &device,
        );
        for i in 0..t.len() {
            let trained = t.sae(i).clone().valid();
            let expected = trained.forward(x.clone() * s) / s;
            let got = t.export(i, &cal).forward(x.clone());
            got.into_data().assert_approx_eq::<f32>(
                &expected.into_data(),
                burn::tensor::Tolerance::rel_abs(1e-4, 1e-5),
            );
        }
    }

    #[test]
    fn fast_and_autodiff_steps_train_alike() {
        let run = |fast: bool| {
            let device = crate::test_device().autodiff();
            device.seed(3);
            let sae = TopKSaeConfig::new(20, 32, 3).init(&device);
            let lr = LrSchedule::new(5e-3, 2, 20, Decay::Constant);
            let config = TrainerConfig::new(20)
                .with_fast_topk(fast)
                .with_dead_after_tokens(64);
            let mut t = Trainer::new(
                config,
                vec![(
                    SaeRunConfig::new("t", lr).with_aux_k(Some(AuxKConfig::default())),
                    sae,
                )],
                &device,
            );
            let mut stream = tree_stream(32);
            t.fit(&mut stream, FitOptions::default()).unwrap().last[0].loss
        };
        let (fast, slow) = (run(true), run(false));
        approx::assert_relative_eq!(fast, slow, max_relative = 1e-2);
    }
}
