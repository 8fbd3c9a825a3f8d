//! Llama from a GGUF file (llama.cpp's `llama` architecture): hyperparameters from the
//! metadata, weights dequantised to f32, q/k rows un-permuted to Hugging Face order.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;

use super::block::{LlamaAttention, LlamaBlock, LlamaMlp};
use super::config::LlamaConfig;
use super::model::Llama;
use crate::gguf::{GgufFile, MetadataValue};
use crate::norm::LlamaRmsNorm;
use crate::{Error, Result};

impl LlamaConfig {
    /// Reads the hyperparameters from a GGUF file's metadata (`general.architecture` must be
    /// `llama`; integers of any width are accepted, as gguf-py writes u32).
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or out-of-range key.
    pub fn from_gguf(file: &GgufFile, source_name: &str) -> Result<Self> {
        let src = format!("GGUF metadata of {source_name}");
        let arch = file
            .get("general.architecture")
            .and_then(MetadataValue::as_str)
            .ok_or_else(|| Error::config(&src, "missing string key `general.architecture`"))?;
        if arch != "llama" {
            return Err(Error::config(
                &src,
                format!("general.architecture is \"{arch}\": only \"llama\" is supported"),
            ));
        }
        let int = |key: &str| -> Result<Option<usize>> {
            match file.get(key) {
                None => Ok(None),
                Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                    Error::config(&src, format!("`{key}` must be a non-negative integer, found {v:?}"))
                }),
            }
        };
        let need = |key: &str| -> Result<usize> {
            int(key)?.ok_or_else(|| Error::config(&src, format!("missing key `{key}`")))
        };
        let float = |key: &str| -> Result<Option<f64>> {
            match file.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| Error::config(&src, format!("`{key}` must be a number, found {v:?}"))),
            }
        };
        if let Some(kind) = file.get("llama.rope.scaling.type").and_then(MetadataValue::as_str)
            && kind != "none"
        {
            return Err(Error::config(&src, format!("rope scaling \"{kind}\" is not supported")));
        }
        let d_model = need("llama.embedding_length")?;
        let n_heads = need("llama.attention.head_count")?;
        let n_kv_heads = int("llama.attention.head_count_kv")?.unwrap_or(n_heads);
        let d_head = match int("llama.rope.dimension_count")?.or(int("llama.attention.key_length")?) {
            Some(d) => d,
            None if n_heads > 0 => d_model / n_heads,
            None => 0,
        };
        let vocab_size = match int("llama.vocab_size")? {
            Some(v) => v,
            None => file
                .tensor("token_embd.weight")
                .map(|t| t.shape()[0])
                .ok_or_else(|| Error::config(&src, "missing `llama.vocab_size` and `token_embd.weight`"))?,
        };
        let eos = int("tokenizer.ggml.eos_token_id")?;
        let config = Self {
            d_model,
            n_layers: need("llama.block_count")?,
            n_heads,
            n_kv_heads,
            d_head,
            d_mlp: need("llama.feed_forward_length")?,
            vocab_size,
            rms_norm_eps: float("llama.attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
            rope_theta: float("llama.rope.freq_base")?.unwrap_or(10_000.0),
            max_positions: int("llama.context_length")?.unwrap_or(4096),
            tie_word_embeddings: file.tensor("output.weight").is_none(),
            bos_token_id: int("tokenizer.ggml.bos_token_id")?.map(|n| n as u32),
            eos_token_ids: eos.map(|n| vec![n as u32]).unwrap_or_default(),
        };
        config.check(&src)?;
        Ok(config)
    }
}

impl Llama {
    /// Loads a Llama-architecture GGUF file (F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors are
    /// dequantised to f32 on `device`).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Gguf`] (corrupt file, unsupported tensor type), [`Error::Config`],
    /// [`Error::MissingTensor`], [`Error::TensorShape`], [`Error::TensorData`] (non-finite weights).
    pub fn from_gguf(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let file = GgufFile::open(path)?;
        Self::from_gguf_file(&file, &path.display().to_string(), device)
    }

    /// [`Llama::from_gguf`] on an opened file; `source_name` names it in errors.
    ///
    /// # Errors
    /// As [`Llama::from_gguf`].
    pub fn from_gguf_file(file: &GgufFile, source_name: &str, device: &Device) -> Result<Self> {
        let c = LlamaConfig::from_gguf(file, source_name)?;
        let reader = GgufTensors {
            file,
            source_name,
            device,
        };
        let (d, kvd, qd) = (c.d_model, c.n_kv_heads * c.d_head, c.n_heads * c.d_head);
        let mut blocks = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let name = |t: &str| format!("blk.{l}.{t}.weight");
            blocks.push(LlamaBlock {
                ln1: reader.norm(&name("attn_norm"), d, c.rms_norm_eps)?,
                attn: LlamaAttention {
                    q: reader.linear(&name("attn_q"), qd, d, Some((c.n_heads, c.d_head)))?,
                    k: reader.linear(&name("attn_k"), kvd, d, Some((c.n_kv_heads, c.d_head)))?,
                    v: reader.linear(&name("attn_v"), kvd, d, None)?,
                    o: reader.linear(&name("attn_output"), d, qd, None)?,
                    n_heads: c.n_heads,
                    n_kv_heads: c.n_kv_heads,
                    d_head: c.d_head,
                },
                ln2: reader.norm(&name("ffn_norm"), d, c.rms_norm_eps)?,
                mlp: LlamaMlp {
                    gate: reader.linear(&name("ffn_gate"), c.d_mlp, d, None)?,
                    up: reader.linear(&name("ffn_up"), c.d_mlp, d, None)?,
                    down: reader.linear(&name("ffn_down"), d, c.d_mlp, None)?,
                },
            });
        }
        let embed = reader.tensor("token_embd.weight", &[c.vocab_size, d])?;
        let unembed = if c.tie_word_embeddings {
            None
        } else {
            Some(reader.linear("output.weight", c.vocab_size, d, None)?)
        };
        let ln_final = reader.norm("output_norm.weight", d, c.rms_norm_eps)?;
        Ok(Llama::from_parts(
            c,
            Embedding {
                weight: Param::from_tensor(embed),
            },
            blocks,
            ln_final,
            unembed,
            device,
        ))
    }
}

struct GgufTensors<'a> {
    file: &'a GgufFile,
    source_name: &'a str,
    device: &'a Device,
}

impl GgufTensors<'_> {
    /// Dequantised values of `name` in PyTorch row-major order, checked against `expected`.
    fn values(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let (shape, values) = self
            .file
            .tensor_f32(name)
            .map_err(|source| Error::Gguf {
                path: self.source_name.into(),
                source,
            })?
            .ok_or_else(|| Error::MissingTensor {
                source_name: self.source_name.to_string(),
                name: name.to_string(),
            })?;
        if shape != expected {
            return Err(Error::TensorShape {
                source_name: self.source_name.to_string(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: shape,
            });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::TensorData {
                source_name: self.source_name.to_string(),
                name: name.to_string(),
                reason: format!("non-finite value {} at flat index {i}", values[i]),
            });
        }
        Ok(values)
    }

    fn tensor<const D: usize>(&self, name: &str, shape: &[usize; D]) -> Result<Tensor<D>> {
        let values = self.values(name, shape)?;
        Ok(Tensor::from_data(TensorData::new(values, *shape), self.device))
    }

    fn norm(&self, name: &str, d: usize, eps: f64) -> Result<LlamaRmsNorm> {
        Ok(LlamaRmsNorm {
            weight: Param::from_tensor(self.tensor(name, &[d])?),
            eps,
        })
    }

    /// A PyTorch `[out, in]` matrix as a burn `Linear` (`[in, out]`); with `heads`, rows are
    /// un-permuted from llama.cpp's adjacent-pair order to Hugging Face's `rotate_half` order.
    fn linear(&self, name: &str, out: usize, inp: usize, heads: Option<(usize, usize)>) -> Result<Linear> {
        let rows = self.values(name, &[out, inp])?;
        let weight = transpose_to_burn(&rows, out, inp, heads);
        drop(rows);
        Ok(Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [inp, out]), self.device)),
            bias: None,
        })
    }
}

/// The GGUF row holding Hugging Face row `hf_row` of a q/k projection with heads of `d_head`:
/// llama.cpp's converter stores HF row `j·d/2 + i` of each head at row `2i + j`.
pub(crate) fn gguf_row_of_hf_row(hf_row: usize, d_head: usize) -> usize {
    let (head, r) = (hf_row / d_head, hf_row % d_head);
    let half = d_head / 2;
    let (j, i) = (r / half, r % half);
    head * d_head + 2 * i + j
}

/// `[out, in]` row-major → `[in, out]` row-major, optionally un-permuting the rows first.
fn transpose_to_burn(rows: &[f32], out: usize, inp: usize, heads: Option<(usize, usize)>) -> Vec<f32> {
    let mut t = vec![0f32; out * inp];
    for o in 0..out {
        let src = match heads {
            Some((_, d_head)) => gguf_row_of_hf_row(o, d_head),
            None => o,
        };
        let row = &rows[src * inp..(src + 1) * inp];
        for (i, &v) in row.iter().enumerate() {
            t[i * out + o] = v;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_is_a_bijection_matching_the_converter() {
        // llama.cpp's permute: reshape rows to (n, 2, d/2), swap the last two axes.
        let d_head = 8;
        let n = 3;
        let mut seen = vec![false; n * d_head];
        for hf in 0..n * d_head {
            let g = gguf_row_of_hf_row(hf, d_head);
            assert!(!seen[g]);
            seen[g] = true;
            // The converter's forward map: GGUF row (h, i, j) ← HF row (h, j, i).
            let (h, r) = (hf / d_head, hf % d_head);
            let (j, i) = (r / (d_head / 2), r % (d_head / 2));
            assert_eq!(g, h * d_head + i * 2 + j);
        }
    }
}
