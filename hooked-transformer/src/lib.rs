//! # hooked-transformer — real language models in burn, with hook points
//!
//! Llama-family decoders and BERT encoders as burn modules, loaded from GGUF files and Hugging
//! Face folders, with TransformerLens' hook points: cache any activation by name, replace or
//! add to it (SAE reconstructions, steering vectors, ablations), stop early for activation
//! extraction, and run attention of any layer through a caller-supplied function.
//!
//! The crate never picks a backend: it takes tensors and a `&Device` from the caller.

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
