//! Activation extraction end to end, no Python: a text corpus (JSONL with a text field, or plain
//! text) tokenized with the model's `tokenizer.json`, packed into fixed-length sequences, run
//! through SmolLM2 from its GGUF in batches, and the chosen hook points written to safetensors
//! shards with a manifest. Rerunning the same command resumes after the last complete shard.
//!
//! ```sh
//! cargo run --release -p examples --example extract_activations -- \
//!     --out /tmp/acts --hook blocks.12.hook_resid_pre --max-sequences 256
//! ```
//!
//! Each shard reads as it is with `sae_train::SafetensorsSource::open(shard, hook)`; the
//! `tokens` tensor holds the token ids of its rows.

use std::path::PathBuf;

use clap::Parser;
use examples::shared_dir;
use hooked_transformer::Tokenizer;
use hooked_transformer::corpus::{CorpusFormat, SequencePacking, pack_sequences, read_documents};
use hooked_transformer::llama::{ExtractConfig, Llama, ShardDtype, extract_activations};

#[derive(Parser, Debug)]
#[command(about = "Stream a corpus through SmolLM2 and write hook points to safetensors shards")]
struct Args {
    /// Output folder (created; resumed if it holds a manifest of the same settings).
    #[arg(long)]
    out: PathBuf,
    /// Hook points to store (repeat the flag for several).
    #[arg(long = "hook", default_values_t = vec!["blocks.12.hook_resid_pre".to_string()])]
    hooks: Vec<String>,
    /// The corpus (default: the shared State of the Union JSONL).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// The JSONL field holding the text (plain-text files are read whole).
    #[arg(long, default_value = "text")]
    text_field: String,
    /// The GGUF model (default: shared SmolLM2-135M-Instruct).
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// The model's tokenizer.json (default: beside the shared GGUF).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 256)]
    seq_len: usize,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Sequences per shard file.
    #[arg(long, default_value_t = 512)]
    shard_sequences: usize,
    /// Stop after this many sequences.
    #[arg(long)]
    max_sequences: Option<usize>,
    /// Store f16 instead of f32.
    #[arg(long)]
    f16: bool,
    /// Put this token id (SmolLM2's `<|endoftext|>` = 0) between documents.
    #[arg(long, default_value_t = 0)]
    separator: u32,
    /// Start every sequence with this token (TransformerLens' `prepend_bos`; SmolLM2's GGUF says
    /// `add_bos_token = false` and the shipped oracle has no BOS, so the default is none).
    #[arg(long)]
    bos: Option<u32>,
}

fn main() {
    examples::exit_on_error(run(&Args::parse()));
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let data = shared_dir().join("data");
    let gguf = args.gguf.clone().unwrap_or_else(examples::smollm2_gguf);
    let tokenizer_path = args
        .tokenizer
        .clone()
        .unwrap_or_else(|| examples::smollm2_dir().join("tokenizer.json"));
    let corpus = args
        .corpus
        .clone()
        .unwrap_or_else(|| data.join("text/sotu.jsonl"));
    let device = examples::device();

    let tokenizer = Tokenizer::from_file(&tokenizer_path)?;
    let format = match CorpusFormat::from_extension(&corpus) {
        CorpusFormat::Jsonl { .. } => CorpusFormat::Jsonl {
            field: args.text_field.clone(),
        },
        plain => plain,
    };
    let documents = read_documents(&corpus, &format)?;
    let t = std::time::Instant::now();
    let mut token_docs = Vec::with_capacity(documents.len());
    for doc in &documents {
        token_docs.push(tokenizer.encode(doc, false)?);
    }
    let packing = SequencePacking {
        seq_len: args.seq_len,
        separator: Some(args.separator),
        bos: args.bos,
    };
    let mut sequences = pack_sequences(&token_docs, &packing);
    if let Some(max) = args.max_sequences {
        sequences.truncate(max);
    }
    eprintln!(
        "{} documents → {} tokens → {} sequences of {} in {:.1} s",
        documents.len(),
        token_docs.iter().map(Vec::len).sum::<usize>(),
        sequences.len(),
        args.seq_len,
        t.elapsed().as_secs_f64()
    );

    let model = Llama::from_gguf(&gguf, &device)?;
    let config = ExtractConfig {
        hooks: args.hooks.clone(),
        batch_size: args.batch,
        sequences_per_shard: args.shard_sequences,
        dtype: if args.f16 {
            ShardDtype::F16
        } else {
            ShardDtype::F32
        },
        model_name: gguf
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        progress: true,
    };
    let t = std::time::Instant::now();
    let manifest = extract_activations(&model, &sequences, &args.out, &config, &device)?;
    let secs = t.elapsed().as_secs_f64();
    let tokens: usize = manifest.shards.iter().map(|s| s.tokens).sum();
    println!(
        "{} shards, {tokens} tokens × {:?} in {secs:.1} s this run → {}",
        manifest.shards.len(),
        manifest
            .hooks
            .iter()
            .map(|h| (&h.name, h.d))
            .collect::<Vec<_>>(),
        args.out.join("manifest.json").display()
    );
    Ok(())
}
