//! The Llama decoder: embeddings, blocks, final norm and unembedding, run with hooks, padding
//! and a KV cache.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::block::{
    BlockContext, LlamaAttention, LlamaBlock, LlamaMlp, block_hook_points, normalize,
};
use super::config::LlamaConfig;
use crate::hooks::{ActivationCache, Hooks, names};
use crate::kv_cache::KvCache;
use crate::norm::LlamaRmsNorm;
use crate::rope::RotaryTables;
use crate::{Error, Result};

/// A Llama-family decoder with TransformerLens hook points.
///
/// Weights are in Hugging Face layout (HF q/k channel order, `rotate_half` RoPE) whatever file
/// they came from, so hook values match TransformerLens' `from_pretrained_no_processing` and an
/// SAE trained on them in Python applies unchanged.
///
/// ```
/// use burn::prelude::*;
/// use hooked_transformer::{Hooks, names};
/// use hooked_transformer::llama::{Llama, LlamaConfig};
///
/// let device = Device::flex();
/// let config = LlamaConfig { d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, d_head: 8,
///     d_mlp: 64, vocab_size: 50, ..LlamaConfig::smollm2_135m() };
/// let model = Llama::random(&config, 7, &device);
/// let tokens = Tensor::<2, Int>::from_data([[1, 5, 9, 3]], &device);
/// let mut hooks = Hooks::new().cache([names::resid_post(0)]).stop_at_layer(1);
/// let out = model.run(tokens, &mut hooks).unwrap();
/// assert!(out.logits.is_none());                       // stopped after block 0
/// assert_eq!(out.cache.get3(&names::resid_post(0)).unwrap().dims(), [1, 4, 32]);
/// ```
#[derive(Module, Debug)]
pub struct Llama {
    /// Token embedding `W_E`, `[vocab, d_model]`.
    pub embed: Embedding,
    /// The decoder blocks.
    pub blocks: Vec<LlamaBlock>,
    /// Final RMSNorm.
    pub ln_final: LlamaRmsNorm,
    /// Separate unembedding `[d_model, vocab]`; `None` when tied to `embed`.
    pub unembed: Option<Linear>,
    #[module(skip)]
    config: LlamaConfig,
    #[module(skip)]
    rope: RotaryTables,
}

/// What a run returns.
#[derive(Clone, Debug)]
pub struct LmOutput {
    /// Logits `[batch, pos, vocab]`; `None` when the run stopped early.
    pub logits: Option<Tensor<3>>,
    /// The residual stream after the last block that ran (`resid_post`; the embeddings when
    /// `stop_at_layer(0)`), before the final norm.
    pub residual: Tensor<3>,
    /// The cached hook points.
    pub cache: ActivationCache,
}

impl Llama {
    /// A model with random weights (normal, σ 0.02; norms 1), for tests and examples.
    ///
    /// # Panics
    /// If `config` fails [`LlamaConfig::check`].
    pub fn random(config: &LlamaConfig, seed: u64, device: &Device) -> Self {
        device.seed(seed);
        Self::with_weights(config, device, |shape| {
            Tensor::<2>::random(shape, Distribution::Normal(0.0, 0.02), device)
        })
    }

    /// A model whose matrices are zero (norms 1): the target a file is loaded into.
    pub(crate) fn zeros(config: &LlamaConfig, device: &Device) -> Self {
        Self::with_weights(config, device, |shape| Tensor::<2>::zeros(shape, device))
    }

    fn with_weights(
        config: &LlamaConfig,
        device: &Device,
        matrix: impl Fn([usize; 2]) -> Tensor<2>,
    ) -> Self {
        config.check("Llama config").expect("Llama: invalid config");
        let normal = |shape: [usize; 2]| Param::from_tensor(matrix(shape));
        let linear = |d_in: usize, d_out: usize| Linear {
            weight: normal([d_in, d_out]),
            bias: None,
        };
        let c = config;
        let blocks = (0..c.n_layers)
            .map(|_| LlamaBlock {
                ln1: LlamaRmsNorm::new(c.d_model, c.rms_norm_eps, device),
                attn: LlamaAttention {
                    q: linear(c.d_model, c.n_heads * c.d_head),
                    k: linear(c.d_model, c.n_kv_heads * c.d_head),
                    v: linear(c.d_model, c.n_kv_heads * c.d_head),
                    o: linear(c.n_heads * c.d_head, c.d_model),
                    n_heads: c.n_heads,
                    n_kv_heads: c.n_kv_heads,
                    d_head: c.d_head,
                },
                ln2: LlamaRmsNorm::new(c.d_model, c.rms_norm_eps, device),
                mlp: LlamaMlp {
                    gate: linear(c.d_model, c.d_mlp),
                    up: linear(c.d_model, c.d_mlp),
                    down: linear(c.d_mlp, c.d_model),
                },
            })
            .collect();
        let unembed = (!c.tie_word_embeddings).then(|| linear(c.d_model, c.vocab_size));
        Self::from_parts(
            c.clone(),
            Embedding {
                weight: normal([c.vocab_size, c.d_model]),
            },
            blocks,
            LlamaRmsNorm::new(c.d_model, c.rms_norm_eps, device),
            unembed,
            device,
        )
    }

    /// Assembles a model from its modules (the loaders' common end).
    pub(crate) fn from_parts(
        config: LlamaConfig,
        embed: Embedding,
        blocks: Vec<LlamaBlock>,
        ln_final: LlamaRmsNorm,
        unembed: Option<Linear>,
        device: &Device,
    ) -> Self {
        let rope = RotaryTables::new(
            config.d_head,
            config.rope_theta,
            config.max_positions,
            device,
        );
        Self {
            embed,
            blocks,
            ln_final,
            unembed,
            config,
            rope,
        }
    }

    /// The hyperparameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Every hook point in execution order (TransformerLens' `hook_dict` keys).
    pub fn hook_points(&self) -> Vec<String> {
        let mut out = vec![names::EMBED.to_string()];
        for layer in 0..self.config.n_layers {
            out.extend(block_hook_points(layer));
        }
        out.extend(
            [
                names::LN_FINAL_SCALE,
                names::LN_FINAL_NORMALIZED,
                names::UNEMBED_IN,
                names::LOGITS,
            ]
            .map(String::from),
        );
        out
    }

    /// Logits `[batch, pos, vocab]` of `tokens` (`[batch, pos]`), no hooks.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`], [`Error::SequenceTooLong`].
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Result<Tensor<3>> {
        let out = self.run(tokens, &mut Hooks::new())?;
        Ok(out.logits.expect("no early stop was set"))
    }

    /// Runs `tokens` (`[batch, pos]`, every position real) with `hooks`.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`], [`Error::SequenceTooLong`], [`Error::UnknownHookPoint`].
    pub fn run(&self, tokens: Tensor<2, Int>, hooks: &mut Hooks) -> Result<LmOutput> {
        self.run_inner(tokens, None, None, hooks)
    }

    /// Runs a padded batch: `attention_mask` (`[batch, pos]`) is `true` at real tokens. Padding
    /// may sit on either side; RoPE positions count real tokens only (`cumsum(mask) − 1`, as
    /// TransformerLens and Hugging Face do), padded keys are never attended, and outputs at
    /// padded positions are unspecified (exclude them).
    ///
    /// # Errors
    /// As [`Llama::run`].
    pub fn run_masked(
        &self,
        tokens: Tensor<2, Int>,
        attention_mask: Tensor<2, Bool>,
        hooks: &mut Hooks,
    ) -> Result<LmOutput> {
        self.run_inner(tokens, Some(attention_mask), None, hooks)
    }

    /// Runs `tokens` after the positions already in `kv_cache`, appending theirs: incremental
    /// decoding. `attention_mask` as in [`Llama::run_masked`] (for a padded prompt; later steps
    /// usually pass `None`).
    ///
    /// # Errors
    /// As [`Llama::run`], and [`Error::SequenceTooLong`] past `max_positions`.
    ///
    /// # Panics
    /// If the batch size differs from the cache's.
    pub fn run_cached(
        &self,
        tokens: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Bool>>,
        kv_cache: &mut KvCache,
        hooks: &mut Hooks,
    ) -> Result<LmOutput> {
        self.run_inner(tokens, attention_mask, Some(kv_cache), hooks)
    }

    /// A fresh KV cache for this model.
    pub fn new_kv_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layers)
    }

    fn run_inner(
        &self,
        tokens: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Bool>>,
        mut kv_cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<LmOutput> {
        let device = tokens.device();
        let [batch, pos] = tokens.dims();
        hooks.check_names(&self.hook_points(), self.config.n_layers)?;
        self.check_tokens(&tokens)?;

        // RoPE positions and key padding, on the host: they are a few integers per token.
        let mask: Option<Vec<bool>> = attention_mask.as_ref().map(|m| {
            assert_eq!(
                m.dims(),
                [batch, pos],
                "attention_mask: expected [batch, pos]"
            );
            m.to_data()
                .convert::<bool>()
                .try_to_vec::<bool>()
                .expect("bool mask data")
        });
        let (q_offset, past_real) = match kv_cache.as_deref() {
            Some(c) if !c.is_empty() => {
                assert_eq!(
                    c.batch(),
                    Some(batch),
                    "run_cached: batch size expected {:?} (the cache's), found {batch}",
                    c.batch()
                );
                (c.len(), c.real_counts().to_vec())
            }
            _ => (0, vec![0; batch]),
        };
        let mut positions = Vec::with_capacity(batch * pos);
        let mut real_counts = past_real.clone();
        for (b, count) in real_counts.iter_mut().enumerate() {
            for j in 0..pos {
                let real = mask.as_ref().is_none_or(|m| m[b * pos + j]);
                if real {
                    *count += 1;
                }
                positions.push(count.saturating_sub(1) as i64);
            }
        }
        let longest = real_counts.iter().copied().max().unwrap_or(0);
        if longest > self.rope.max_positions() {
            return Err(Error::SequenceTooLong {
                len: longest,
                limit: self.rope.max_positions(),
                what: "rotary position table (max_position_embeddings)".into(),
            });
        }
        let positions =
            Tensor::<2, Int>::from_data(TensorData::new(positions, [batch, pos]), &device);
        let (cos, sin) = self.rope.gather(positions);
        let new_padding = attention_mask.clone().map(|m| m.bool_not());
        let key_padding = {
            let cached = kv_cache.as_deref().and_then(|c| c.padding().cloned());
            match (cached, new_padding.clone()) {
                (None, None) => None,
                (cached, new) => {
                    let new = new
                        .unwrap_or_else(|| Tensor::<2, Int>::zeros([batch, pos], &device).bool());
                    Some(match cached {
                        Some(c) => Tensor::cat(vec![c, new], 1),
                        None if q_offset > 0 => Tensor::cat(
                            vec![
                                Tensor::<2, Int>::zeros([batch, q_offset], &device).bool(),
                                new,
                            ],
                            1,
                        ),
                        None => new,
                    })
                }
            }
        };

        let mut cache = ActivationCache::default();
        let x = self.embed.forward(tokens);
        let mut x = hooks.point3(names::EMBED, x, &mut cache);
        let stop = hooks.stop_layer().unwrap_or(self.config.n_layers);
        let mut ctx = BlockContext {
            cos,
            sin,
            key_padding,
            q_offset,
            kv_cache: kv_cache.as_deref_mut(),
        };
        for (layer, block) in self.blocks.iter().enumerate().take(stop) {
            x = block.forward(layer, x, &mut ctx, hooks, &mut cache);
        }
        if let Some(c) = kv_cache {
            c.advance(pos, new_padding, real_counts, &device);
        }
        if stop < self.config.n_layers {
            return Ok(LmOutput {
                logits: None,
                residual: x,
                cache,
            });
        }
        let normed = normalize(
            &self.ln_final,
            x.clone(),
            names::LN_FINAL_SCALE,
            names::LN_FINAL_NORMALIZED,
            hooks,
            &mut cache,
        );
        let normed = hooks.point3(names::UNEMBED_IN, normed, &mut cache);
        let logits = self.unembed(normed);
        let logits = hooks.point3(names::LOGITS, logits, &mut cache);
        Ok(LmOutput {
            logits: Some(logits),
            residual: x,
            cache,
        })
    }

    /// `x · W_U` (`W_E` transposed when tied), `[batch, pos, vocab]`.
    pub fn unembed(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, p, d] = x.dims();
        let flat = x.reshape([b * p, d]);
        let logits = match &self.unembed {
            Some(u) => u.forward(flat),
            None => flat.matmul(self.embed.weight.val().transpose()),
        };
        logits.reshape([b, p, self.config.vocab_size])
    }

    fn check_tokens(&self, tokens: &Tensor<2, Int>) -> Result<()> {
        let ids = tokens
            .to_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("int token data");
        let vocab = self.config.vocab_size;
        match ids.iter().position(|&id| id < 0 || id as usize >= vocab) {
            Some(position) => Err(Error::TokenOutOfRange {
                id: ids[position],
                position,
                vocab_size: vocab,
            }),
            None => Ok(()),
        }
    }
}
