//! # hooked-transformer — real language models in burn, with hook points
//!
//! Llama-family decoders and BERT encoders as burn modules, loaded from GGUF files and Hugging
//! Face folders, with TransformerLens' hook points: cache any activation by name, replace or
//! add to it (SAE reconstructions, steering vectors, ablations), stop early for activation
//! extraction, and run attention of any layer through a caller-supplied function.
//!
//! The crate never picks a backend: it takes tensors and a `&Device` from the caller.
//!
//! What this crate holds:
//! - [`Hooks`] and [`ActivationCache`]: read and write hook points by TransformerLens name
//!   ([`names`]), stop after any block, override attention per layer ([`AttentionOverride`]);
//! - [`llama`]: the Llama-family decoder ([`llama::Llama`]) from GGUF
//!   ([`llama::Llama::from_gguf`]) or Hugging Face folders ([`llama::Llama::from_hf_folder`]),
//!   padded batches, the [`KvCache`], generation, perplexity and activation extraction to
//!   safetensors shards ([`llama::extract_activations`]);
//! - [`bert`]: BERT encoders with an MLM head, and [`SpladeEncoder`] for learned sparse vectors;
//! - [`gguf`]: a checked GGUF v3 reader (F32, F16, BF16, Q8_0, Q4_0, Q4_1) and writer;
//! - [`Tokenizer`] over Hugging Face `tokenizer.json`, [`chat`] (SmolLM2's template), [`corpus`]
//!   (JSONL / plain text, sequence packing).
//!
//! ```
//! use burn::prelude::*;
//! use hooked_transformer::llama::{Llama, LlamaConfig};
//! use hooked_transformer::{Hooks, names};
//!
//! let device = Device::flex();
//! let config = LlamaConfig { d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, d_head: 8,
//!     d_mlp: 64, vocab_size: 50, ..LlamaConfig::smollm2_135m() };
//! let model = Llama::random(&config, 0, &device);     // or Llama::from_gguf(path, &device)?
//! let tokens = Tensor::<2, Int>::from_data([[1, 2, 3, 4]], &device);
//!
//! // Cache block 0's output, add a steering vector to it, and read the effect downstream.
//! let steer = Tensor::<1>::ones([32], &device);
//! let mut hooks = Hooks::new()
//!     .add_vector(names::resid_post(0), steer)
//!     .cache([names::resid_post(0), names::attn(1, "pattern")]);
//! let out = model.run(tokens.clone(), &mut hooks).unwrap();
//! assert_eq!(out.cache.get4(&names::attn(1, "pattern")).unwrap().dims(), [1, 4, 4, 4]);
//! let clean = model.forward(tokens).unwrap();
//! assert_ne!(out.logits.unwrap().into_data(), clean.into_data());
//! ```

pub use attention::{
    AttentionInputs, AttentionOverride, apply_pattern, attention_pattern, attention_scores,
    dense_attention, repeat_kv,
};
pub use error::{Error, Result};
pub use hooks::{Activation, ActivationCache, HookFn, Hooks, names};
pub use kv_cache::KvCache;
pub use norm::LlamaRmsNorm;
pub use rope::RotaryTables;
pub use splade::{SPLADE_MAX_LENGTH, SpladeEncoder};
pub use tokenizer::{Encoding, Tokenizer};

pub mod bert;

pub mod chat;
pub mod corpus;
pub mod gguf;
pub mod llama;

mod atomic;
mod attention;
mod error;
mod hf_folder;
mod hooks;
mod kv_cache;
mod norm;
mod rope;
mod splade;
mod tokenizer;

/// The CPU device the crate's tests run on.
#[cfg(test)]
pub(crate) fn test_device() -> burn::prelude::Device {
    burn::prelude::Device::flex()
}
