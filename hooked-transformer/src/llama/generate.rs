//! Text generation: greedy and seeded temperature / nucleus (top-p) sampling, with or without the
//! KV cache, stopping on any stop token.

use burn::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::Llama;
use crate::Result;
use crate::hooks::Hooks;

/// How the next token is chosen from the logits.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (ties: the lowest id).
    Greedy,
    /// Sample from `softmax(logits / temperature)` restricted to the smallest set of most likely
    /// tokens whose probability reaches `top_p` (nucleus sampling; `top_p = 1` keeps all).
    Sample {
        /// Softmax temperature, > 0.
        temperature: f32,
        /// Nucleus mass in `(0, 1]`.
        top_p: f32,
        /// Seed of the sampler's random stream: same seed, same text.
        seed: u64,
    },
}

/// What [`Llama::generate`] does.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateConfig {
    /// The most tokens to generate.
    pub max_new_tokens: usize,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Generation stops after producing any of these (the token is included in the output).
    pub stop_tokens: Vec<u32>,
    /// Reuse keys and values of earlier positions (the normal way). `false` re-runs the whole
    /// sequence at every step: the baseline the cache is measured against.
    pub use_kv_cache: bool,
}

impl GenerateConfig {
    /// Greedy decoding of at most `max_new_tokens`, with the KV cache, stopping on `stop_tokens`.
    pub fn greedy(max_new_tokens: usize, stop_tokens: Vec<u32>) -> Self {
        Self {
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_tokens,
            use_kv_cache: true,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A stop token was produced.
    StopToken,
    /// `max_new_tokens` were produced.
    MaxTokens,
}

/// Generated tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The new tokens (a final stop token included).
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub stop: StopReason,
}

impl Llama {
    /// Continues `prompt` (token ids, one sequence) on `device`.
    ///
    /// # Errors
    /// [`crate::Error::TokenOutOfRange`], [`crate::Error::SequenceTooLong`].
    ///
    /// # Panics
    /// If `prompt` is empty, or the sampling temperature is not positive or `top_p` is outside
    /// `(0, 1]`.
    pub fn generate(
        &self,
        prompt: &[u32],
        config: &GenerateConfig,
        device: &Device,
    ) -> Result<Generation> {
        assert!(
            !prompt.is_empty(),
            "generate: prompt expected at least one token, found none"
        );
        if let Sampling::Sample {
            temperature, top_p, ..
        } = config.sampling
        {
            assert!(
                temperature > 0.0,
                "generate: temperature expected > 0, found {temperature}"
            );
            assert!(
                top_p > 0.0 && top_p <= 1.0,
                "generate: top_p expected in (0, 1], found {top_p}"
            );
        }
        let mut rng = match config.sampling {
            Sampling::Sample { seed, .. } => Some(ChaCha8Rng::seed_from_u64(seed)),
            Sampling::Greedy => None,
        };
        let to_tensor = |ids: &[u32]| {
            let ids: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
            let n = ids.len();
            Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device)
        };
        let mut kv = self.new_kv_cache();
        let mut sequence = prompt.to_vec();
        let mut generated = Vec::new();
        let mut step_input = prompt.to_vec();
        for _ in 0..config.max_new_tokens {
            let logits = if config.use_kv_cache {
                self.run_cached(to_tensor(&step_input), None, &mut kv, &mut Hooks::new())?
            } else {
                self.run(to_tensor(&sequence), &mut Hooks::new())?
            }
            .logits
            .expect("full run");
            let [_, p, v] = logits.dims();
            let last: Vec<f32> = logits
                .slice(burn::tensor::s![.., p - 1..p, ..])
                .reshape([v])
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .expect("f32 logits");
            let next = match (&config.sampling, rng.as_mut()) {
                (
                    Sampling::Sample {
                        temperature, top_p, ..
                    },
                    Some(rng),
                ) => sample_top_p(&last, *temperature, *top_p, rng.random::<f32>()),
                _ => argmax(&last),
            };
            generated.push(next);
            sequence.push(next);
            step_input = vec![next];
            if config.stop_tokens.contains(&next) {
                return Ok(Generation {
                    tokens: generated,
                    stop: StopReason::StopToken,
                });
            }
        }
        Ok(Generation {
            tokens: generated,
            stop: StopReason::MaxTokens,
        })
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Nucleus sampling with a uniform draw `u ∈ [0, 1)`: tokens sorted by probability (ties by
/// id), the shortest prefix reaching mass `top_p` kept and renormalised, then the token where
/// the cumulative mass passes `u`.
pub fn sample_top_p(logits: &[f32], temperature: f32, top_p: f32, u: f32) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&x| (((x - max) / temperature) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    let mut kept = 0;
    let mut mass = 0.0;
    for &i in &order {
        mass += weights[i] / total;
        kept += 1;
        if mass >= f64::from(top_p) {
            break;
        }
    }
    let nucleus = &order[..kept];
    let nucleus_total: f64 = nucleus.iter().map(|&i| weights[i]).sum();
    let target = f64::from(u) * nucleus_total;
    let mut acc = 0.0;
    for &i in nucleus {
        acc += weights[i];
        if acc > target {
            return i as u32;
        }
    }
    *nucleus.last().expect("nucleus holds at least one token") as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sampling_stays_in_the_nucleus(
            logits in proptest::collection::vec(-5f32..5.0, 2..40),
            temperature in 0.1f32..3.0,
            top_p in 0.05f32..1.0,
            u in 0f32..1.0,
        ) {
            let t = sample_top_p(&logits, temperature, top_p, u) as usize;
            prop_assert!(t < logits.len());
            // The sampled token's probability is at least that of the nucleus' least likely
            // member: no token outside the nucleus is ever drawn.
            let mut sorted = logits.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let max = sorted[0];
            let w: Vec<f64> = sorted.iter().map(|&x| (((x - max) / temperature) as f64).exp()).collect();
            let total: f64 = w.iter().sum();
            let mut mass = 0.0;
            let mut kept = 0;
            for wi in &w { mass += wi / total; kept += 1; if mass >= f64::from(top_p) { break; } }
            prop_assert!(logits[t] >= sorted[kept - 1]);
        }

        #[test]
        fn tiny_top_p_is_greedy(logits in proptest::collection::vec(-5f32..5.0, 1..40), u in 0f32..1.0) {
            prop_assert_eq!(sample_top_p(&logits, 1.0, 1e-9, u), argmax(&logits));
        }
    }
}
