//! BERT encoders (Hugging Face `BertModel` / `BertForMaskedLM`) with TransformerLens
//! `HookedEncoder` hook points, loaded from Hugging Face folders through burn-store.

mod block;
mod config;
mod embeddings;
mod input;
mod load;
mod mlm_head;
mod model;
mod norm;
mod save;

pub use block::{BertAttention, BertBlock, BertMlp};
pub use config::BertConfig;
pub use embeddings::BertEmbeddings;
pub use input::BertInput;
pub use mlm_head::MlmHead;
pub use model::{Bert, BertForMaskedLm};

#[cfg(test)]
mod tests;
