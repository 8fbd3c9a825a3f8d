//! Evaluation of trained SAEs on a (held-out) batch stream with sae-core's metrics.

use burn::prelude::*;
use sae_core::SparseAutoencoder;
use sae_core::metrics::{SaeMetrics, SaeMetricsReport};

use crate::{ActivationSource, BatchStream, Error, Result};

/// Runs `sae` (inference forward, no autodiff) over every batch of `stream` — typically a
/// non-repeating held-out split built [with the training calibration](BatchStream::with_calibration)
/// — and reports sae-core's reconstruction and sparsity metrics (FVU, explained variance, L0,
/// dead and dense fractions, ...). At most `max_batches` batches are read when given.
///
/// Inputs are the stream's rows: normalised when the stream's config normalises (with the
/// calibration it was built with), raw with `with_normalise(false)`. Evaluate a trained SAE on a
/// normalising stream built with the training calibration, and an *exported* SAE (normalisation
/// folded into its weights, [`Trainer::export`](crate::Trainer::export)) on a raw stream: the two
/// give the same metrics. Mixing them up changes FVU and L0 (biases and thresholds are not scale
/// invariant).
///
/// # Errors
/// Stream errors; [`Error::WidthMismatch`] if the stream's width is not the SAE's; [`Error::Empty`]
/// if the stream yields no batch.
pub fn evaluate<S: SparseAutoencoder, Src: ActivationSource>(
    sae: &S,
    stream: &mut BatchStream<Src>,
    device: &Device,
    max_batches: Option<usize>,
) -> Result<SaeMetricsReport> {
    let d = sae.d_in();
    if stream.d_in() != d {
        return Err(Error::WidthMismatch {
            source_name: stream.source_name(),
            expected: d,
            found: stream.d_in(),
        });
    }
    let sae = sae.clone().valid();
    let mut metrics = SaeMetrics::new();
    let mut batches = 0;
    while max_batches.is_none_or(|m| batches < m) {
        let Some(batch) = stream.next_batch()? else {
            break;
        };
        let rows = batch.len() / d;
        let x = Tensor::<2>::from_data(TensorData::new(batch, [rows, d]), device);
        let codes = sae.encode(x.clone());
        let x_hat = sae.decode(codes.clone());
        metrics.update(&x, &x_hat, &codes);
        batches += 1;
    }
    metrics.report().ok_or_else(|| Error::Empty {
        source_name: stream.source_name(),
    })
}
