//! Llama-family decoders (SmolLM2, TinyLlama, Llama 2/3 without rope scaling): the model, its
//! loaders (GGUF, Hugging Face folders), generation, perplexity and activation extraction.

pub use block::{LlamaAttention, LlamaBlock, LlamaMlp};
pub use config::LlamaConfig;
pub use extract::{
    ExtractConfig, ExtractManifest, HookEntry, ShardDtype, ShardEntry, extract_activations,
};
pub use generate::{GenerateConfig, Generation, Sampling, StopReason, argmax, sample_top_p};
pub use model::{Llama, LmOutput};
pub use perplexity::{Perplexity, next_token_nll};

mod block;
mod config;
mod extract;
mod generate;
mod load_gguf;
mod load_hf;
mod model;
mod perplexity;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
