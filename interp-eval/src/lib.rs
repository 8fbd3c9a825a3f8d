//! # interp-eval — evaluation of sparse-autoencoder latents people can trust
//!
//! Automatic interpretation explains each latent from its top-activating contexts and scores
//! the explanation with a judge. This crate holds the model-free core of that pipeline, built
//! to fix what the reference implementation (EleutherAI's delphi) gets wrong: its test set can
//! contain the examples the explanation was written from, its parse failures vanish from
//! every score, and its centring flag is wired backwards.
//!
//! What exists:
//! - **Latent cache** ([`cache`]): SAE codes of a token stream as posting lists by latent
//!   (CSR, inverted with `sparse_index::SparseCollection::transpose`), token ids stored once,
//!   f16 values, a versioned and checksummed file written atomically and read back
//!   memory-mapped; built batch by batch from entries, `sae_core::SparseCodes` or dense codes;
//!   firing counts, maxima, per-token and per-context frequency, co-occurrence.
//! - **Examples and sampling** ([`examples`], [`sampling`], [`negatives`], [`neighbours`]):
//!   windows sorted by strength, centring that does what it says, quantile-stratified
//!   train/test sampling that is seeded and disjoint by tokens, non-activating windows (random
//!   with or without replacement, or where a neighbour latent fires; neighbours by
//!   co-occurrence Jaccard or decoder cosine).
//! - **Judges** ([`judge`]): one trait per capability a scorer needs (chat completion with
//!   optional token logprobs, prompt logprobs, sequence NLL, embeddings); the LLM explainer's
//!   prompt and reply parsing over any chat model; a token-list explainer, a keyword/regex
//!   judge, a scripted judge with injected failures, a hashing embedder and a word-recall LM.
//! - **Scorers** ([`scorer`]): detection and fuzzing (default and the paper's "active"), every
//!   call recorded, every failure a verdict; the explanation-free intruder test; embedding and surprisal scoring over the
//!   [`judge::Embedder`] and [`judge::SequenceScorer`] traits (AUROC of the per-sample
//!   scores); simulation in logprob mode over [`judge::PromptScorer`] (pooled Pearson, per
//!   quantile); [`pipeline::evaluate_latent`] runs one latent end to end.
//! - **Controls** ([`controls`]): random token-list explanations and shuffled-latent
//!   explanations (a seeded derangement), to score next to the real ones.
//! - **Metrics** ([`metrics`]): balanced accuracy, precision/recall/F1, AUROC (ties ½),
//!   frequency-weighted F1, seeded bootstrap intervals — a parse failure or refusal counts as a
//!   wrong answer in every score.
//!
//! Planned (not built): the OpenAI-compatible HTTP judge, in-process SmolLM2/BERT judges and
//! every evaluation that needs the model through `hooked-transformer` (intervention scoring;
//! CE loss recovered and KL of a spliced SAE), simulation's JSON mode, LLM-free
//! dictionary metrics (probing, absorption), latent cards and the dashboard.
//!
//! ```
//! use interp_eval::judge::{KeywordJudge, TokenListExplainer};
//! use interp_eval::pipeline::{PipelineConfig, evaluate_latent};
//! use interp_eval::examples::ExampleConfig;
//! use interp_eval::sampling::SamplerConfig;
//! use interp_eval::{CacheBuilder, CacheConfig, CodeEntry};
//!
//! // 64 rows of 32 tokens cycling through a vocabulary of 10; latent 0 fires on token 3.
//! let vocab: Vec<String> = (0..10).map(|i| format!(" w{i}")).collect();
//! let tokens: Vec<u32> = (0..64 * 32u32).map(|t| (t * 7 + t / 5) % 10).collect();
//! let entries: Vec<CodeEntry> = tokens
//!     .iter()
//!     .enumerate()
//!     .filter(|(_, id)| **id == 3)
//!     .map(|(t, _)| CodeEntry { row: t as u32 / 32, pos: t as u32 % 32, latent: 0, value: 1.0 + (t % 4) as f32 })
//!     .collect();
//! let mut builder = CacheBuilder::new(CacheConfig::new(32, 2));
//! builder.push_entries(&tokens, &entries)?;
//! let cache = builder.finish();
//!
//! let config = PipelineConfig {
//!     examples: ExampleConfig { window_len: 8, centre: true, min_examples: 50 },
//!     sampler: SamplerConfig { n_train: 10, n_test: 20, n_quantiles: 5, ..Default::default() },
//!     ..PipelineConfig::default()
//! };
//! let eval = evaluate_latent(&cache, 0, &config, &TokenListExplainer::new(1), &KeywordJudge::default(), &vocab)
//!     .expect("latent 0 fires often enough");
//! assert_eq!(eval.explanation.text, r#"Fires on the tokens "w3"."#);
//! let detection = eval.detection.unwrap().report;
//! assert_eq!(detection.accuracy, 1.0);
//! assert_eq!(detection.n_failed(), 0);
//! # Ok::<(), interp_eval::Error>(())
//! ```
//!
//! The guide (`docs/src/interp-eval.md` in the repository) describes the pipeline, the cache
//! file format and every place this crate departs from delphi.

pub use cache::{
    CacheBuilder, CacheConfig, CodeEntry, Cooccurrence, FORMAT_VERSION, LatentCache, MAGIC,
    Posting, Postings,
};
pub use error::{Error, Result};

pub mod cache;
pub mod controls;
mod error;
pub mod examples;
pub mod judge;
pub mod metrics;
pub mod negatives;
pub mod neighbours;
pub mod pipeline;
pub mod sampling;
pub mod scorer;
pub mod text;

#[cfg(test)]
mod tests;
