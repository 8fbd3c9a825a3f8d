//! BERT's input embeddings: word + absolute position + token type, then LayerNorm.

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use super::config::BertConfig;
use super::input::BertInput;
use super::norm::{layer_norm, layer_norm_points};
use crate::{ActivationCache, Hooks};

/// Word, position and token-type tables and the embedding LayerNorm (Hugging Face
/// `BertEmbeddings`, TransformerLens `BertEmbed`).
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// Word embeddings `[vocab, d_model]` (also the tied MLM decoder).
    pub word: Embedding,
    /// Absolute position embeddings `[max_positions, d_model]`.
    pub position: Embedding,
    /// Token-type embeddings `[type_vocab, d_model]`.
    pub token_type: Embedding,
    /// The LayerNorm applied to the sum.
    pub ln: LayerNorm,
    eps: f64,
}

impl BertEmbeddings {
    /// Random tables (normal, std 0.02 as Hugging Face initialises them) and an identity
    /// LayerNorm.
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let init = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let table = |n: usize| {
            EmbeddingConfig::new(n, config.hidden_size)
                .with_initializer(init.clone())
                .init(device)
        };
        Self {
            word: table(config.vocab_size),
            position: table(config.max_position_embeddings),
            token_type: table(config.type_vocab_size),
            ln: LayerNormConfig::new(config.hidden_size)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            eps: config.layer_norm_eps,
        }
    }

    /// The embedded input, firing `embed.hook_embed`, `embed.hook_pos_embed`,
    /// `embed.hook_token_type_embed`, `embed.ln.hook_scale`, `embed.ln.hook_normalized` and
    /// `hook_full_embed`.
    ///
    /// # Shapes
    /// - ids (and type ids): `[batch, pos]`
    /// - output: `[batch, pos, d_model]`
    pub fn forward(
        &self,
        input: &BertInput,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let [b, p] = input.dims();
        let device = input.ids.device();
        let d = self.word.weight.dims()[1];
        let word = hooks.point3(
            "embed.hook_embed",
            self.word.forward(input.ids.clone()),
            cache,
        );
        let positions = Tensor::<1, Int>::arange(0..p as i64, &device).reshape([1, p]);
        let pos = self.position.forward(positions).expand([b, p, d]);
        let pos = hooks.point3("embed.hook_pos_embed", pos, cache);
        let types = input
            .type_ids
            .clone()
            .unwrap_or_else(|| Tensor::<2, Int>::zeros([b, p], &device));
        let types = hooks.point3(
            "embed.hook_token_type_embed",
            self.token_type.forward(types),
            cache,
        );
        let x = layer_norm(
            &self.ln,
            self.eps,
            word + pos + types,
            "embed.ln",
            hooks,
            cache,
        );
        hooks.point3("hook_full_embed", x, cache)
    }

    /// The hook points of [`BertEmbeddings::forward`], in execution order.
    pub fn hook_points() -> Vec<String> {
        let mut v: Vec<String> = [
            "embed.hook_embed",
            "embed.hook_pos_embed",
            "embed.hook_token_type_embed",
        ]
        .map(String::from)
        .into();
        v.extend(layer_norm_points("embed.ln"));
        v.push("hook_full_embed".into());
        v
    }
}
