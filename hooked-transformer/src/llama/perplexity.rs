//! Next-token loss and perplexity over a corpus, with any hooks applied: the basis of "CE loss
//! recovered" when an SAE is spliced in.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::model::Llama;
use crate::Result;
use crate::hooks::Hooks;

/// Per-position next-token negative log-likelihood, `[batch, pos − 1]`: position `t` scores
/// `tokens[t + 1]` under `logits[t]` (TransformerLens `lm_cross_entropy_loss`, per token).
pub fn next_token_nll(logits: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<2> {
    let [b, p, _] = logits.dims();
    assert!(
        p >= 2,
        "next_token_nll: expected at least 2 positions, found {p}"
    );
    let logp = log_softmax(logits.slice(burn::tensor::s![.., 0..p - 1, ..]), 2);
    let targets = tokens
        .slice(burn::tensor::s![.., 1..p])
        .reshape([b, p - 1, 1]);
    logp.gather(2, targets).reshape([b, p - 1]).neg()
}

/// Mean next-token loss and perplexity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perplexity {
    /// Scored positions.
    pub tokens: usize,
    /// Mean negative log-likelihood in nats.
    pub mean_nll: f64,
    /// `exp(mean_nll)`.
    pub perplexity: f64,
}

impl Llama {
    /// Perplexity of the model over `sequences` (equal-length token-id sequences, run
    /// `batch_size` at a time), every next-token position scored. `hooks` makes the hooks of each
    /// batch (an SAE splice, an ablation); pass `Hooks::new` for the clean model.
    ///
    /// # Errors
    /// [`crate::Error::TokenOutOfRange`], [`crate::Error::SequenceTooLong`],
    /// [`crate::Error::UnknownHookPoint`].
    ///
    /// # Panics
    /// If the sequences differ in length, are shorter than 2, or `batch_size` is 0.
    pub fn perplexity(
        &self,
        sequences: &[Vec<u32>],
        batch_size: usize,
        mut hooks: impl FnMut() -> Hooks,
        device: &Device,
    ) -> Result<Perplexity> {
        assert!(
            batch_size > 0,
            "perplexity: batch_size expected > 0, found 0"
        );
        let mut total = 0.0f64;
        let mut count = 0usize;
        for batch in sequences.chunks(batch_size) {
            let len = batch[0].len();
            assert!(
                batch.iter().all(|s| s.len() == len),
                "perplexity: sequences expected of equal length {len}"
            );
            let ids: Vec<i64> = batch.iter().flatten().map(|&t| i64::from(t)).collect();
            let tokens =
                Tensor::<2, Int>::from_data(TensorData::new(ids, [batch.len(), len]), device);
            let logits = self
                .run(tokens.clone(), &mut hooks())?
                .logits
                .expect("perplexity: hooks must not stop early");
            let nll = next_token_nll(logits, tokens);
            total += f64::from(nll.sum().into_scalar::<f32>());
            count += batch.len() * (len - 1);
        }
        let mean_nll = total / count.max(1) as f64;
        Ok(Perplexity {
            tokens: count,
            mean_nll,
            perplexity: mean_nll.exp(),
        })
    }
}
