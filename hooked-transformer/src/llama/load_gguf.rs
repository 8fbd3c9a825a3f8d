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
                    Error::config(
                        &src,
                        format!("`{key}` must be a non-negative integer, found {v:?}"),
                    )
                }),
            }
        };
        let need = |key: &str| -> Result<usize> {
            int(key)?.ok_or_else(|| Error::config(&src, format!("missing key `{key}`")))
        };
        let float = |key: &str| -> Result<Option<f64>> {
            match file.get(key) {
                None => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                    Error::config(&src, format!("`{key}` must be a number, found {v:?}"))
                }),
            }
        };
        if let Some(kind) = file
            .get("llama.rope.scaling.type")
            .and_then(MetadataValue::as_str)
            && kind != "none"
        {
            return Err(Error::config(
                &src,
                format!("rope scaling \"{kind}\" is not supported"),
            ));
        }
        let d_model = need("llama.embedding_length")?;
        let n_heads = need("llama.attention.head_count")?;
        let n_kv_heads = int("llama.attention.head_count_kv")?.unwrap_or(n_heads);
        let d_head = match int("llama.rope.dimension_count")?.or(int("llama.attention.key_length")?)
        {
            Some(d) => d,
            None if n_heads > 0 => d_model / n_heads,
            None => 0,
        };
        let vocab_size = match int("llama.vocab_size")? {
            Some(v) => v,
            None => file
                .tensor("token_embd.weight")
                .map(|t| t.shape()[0])
                .ok_or_else(|| {
                    Error::config(&src, "missing `llama.vocab_size` and `token_embd.weight`")
                })?,
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
        Ok(Tensor::from_data(
            TensorData::new(values, *shape),
            self.device,
        ))
    }

    fn norm(&self, name: &str, d: usize, eps: f64) -> Result<LlamaRmsNorm> {
        Ok(LlamaRmsNorm {
            weight: Param::from_tensor(self.tensor(name, &[d])?),
            eps,
        })
    }

    /// A PyTorch `[out, in]` matrix as a burn `Linear` (`[in, out]`); with `heads`, rows are
    /// un-permuted from llama.cpp's adjacent-pair order to Hugging Face's `rotate_half` order.
    fn linear(
        &self,
        name: &str,
        out: usize,
        inp: usize,
        heads: Option<(usize, usize)>,
    ) -> Result<Linear> {
        let rows = self.values(name, &[out, inp])?;
        let weight = transpose_to_burn(&rows, out, inp, heads);
        drop(rows);
        Ok(Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [inp, out]),
                self.device,
            )),
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
fn transpose_to_burn(
    rows: &[f32],
    out: usize,
    inp: usize,
    heads: Option<(usize, usize)>,
) -> Vec<f32> {
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
    use crate::gguf::{GgmlType, GgufWriter};
    use crate::llama::test_support::hf_tensors;
    use burn::tensor::Tolerance;

    /// Writes `model` as llama.cpp's converter would: GGUF names, q/k rows permuted for
    /// adjacent-pair RoPE, llama metadata.
    fn to_gguf(model: &Llama, ty: GgmlType) -> Vec<u8> {
        let c = model.config();
        let mut w = GgufWriter::new();
        let u32v = |n: usize| MetadataValue::U32(n as u32);
        w.add_metadata(
            "general.architecture",
            MetadataValue::String("llama".into()),
        )
        .unwrap();
        for (k, v) in [
            ("llama.block_count", c.n_layers),
            ("llama.embedding_length", c.d_model),
            ("llama.feed_forward_length", c.d_mlp),
            ("llama.attention.head_count", c.n_heads),
            ("llama.attention.head_count_kv", c.n_kv_heads),
            ("llama.rope.dimension_count", c.d_head),
            ("llama.context_length", c.max_positions),
            ("llama.vocab_size", c.vocab_size),
        ] {
            w.add_metadata(k, u32v(v)).unwrap();
        }
        w.add_metadata(
            "llama.rope.freq_base",
            MetadataValue::F32(c.rope_theta as f32),
        )
        .unwrap();
        w.add_metadata(
            "llama.attention.layer_norm_rms_epsilon",
            MetadataValue::F32(c.rms_norm_eps as f32),
        )
        .unwrap();
        for (name, shape, values) in hf_tensors(model) {
            let gguf_name = match name.as_str() {
                "model.embed_tokens.weight" => "token_embd.weight".to_string(),
                "model.norm.weight" => "output_norm.weight".to_string(),
                "lm_head.weight" => "output.weight".to_string(),
                n => {
                    let rest = n.strip_prefix("model.layers.").unwrap();
                    let (layer, part) = rest.split_once('.').unwrap();
                    let part = match part {
                        "input_layernorm.weight" => "attn_norm",
                        "post_attention_layernorm.weight" => "ffn_norm",
                        "self_attn.q_proj.weight" => "attn_q",
                        "self_attn.k_proj.weight" => "attn_k",
                        "self_attn.v_proj.weight" => "attn_v",
                        "self_attn.o_proj.weight" => "attn_output",
                        "mlp.gate_proj.weight" => "ffn_gate",
                        "mlp.up_proj.weight" => "ffn_up",
                        "mlp.down_proj.weight" => "ffn_down",
                        other => panic!("{other}"),
                    };
                    format!("blk.{layer}.{part}.weight")
                }
            };
            let permuted =
                if gguf_name.ends_with("attn_q.weight") || gguf_name.ends_with("attn_k.weight") {
                    let cols = shape[1];
                    let mut out = vec![0f32; values.len()];
                    for r in 0..shape[0] {
                        let g = gguf_row_of_hf_row(r, c.d_head);
                        out[g * cols..(g + 1) * cols]
                            .copy_from_slice(&values[r * cols..(r + 1) * cols]);
                    }
                    out
                } else {
                    values
                };
            let tensor_ty = if shape.len() == 2 { ty } else { GgmlType::F32 };
            w.add_tensor(gguf_name, &shape, tensor_ty, &permuted)
                .unwrap();
        }
        w.to_bytes()
    }

    fn tiny(tied: bool) -> LlamaConfig {
        LlamaConfig {
            d_model: 64,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            d_head: 16,
            d_mlp: 96,
            vocab_size: 40,
            max_positions: 32,
            tie_word_embeddings: tied,
            ..LlamaConfig::smollm2_135m()
        }
    }

    #[test]
    fn gguf_with_permuted_qk_loads_to_the_hf_layout_model() {
        let device = Device::flex();
        for tied in [true, false] {
            let model = Llama::random(&tiny(tied), 11, &device);
            let file = GgufFile::from_bytes(to_gguf(&model, GgmlType::F32)).unwrap();
            let loaded = Llama::from_gguf_file(&file, "<memory>", &device).unwrap();
            assert_eq!(loaded.config().tie_word_embeddings, tied);
            let t = Tensor::<2, Int>::from_data([[1, 7, 3, 39, 0, 12]], &device);
            loaded
                .forward(t.clone())
                .unwrap()
                .into_data()
                .assert_approx_eq::<f32>(
                    &model.forward(t).unwrap().into_data(),
                    Tolerance::rel_abs(1e-5, 1e-6),
                );
        }
    }

    #[test]
    fn quantised_gguf_stays_close() {
        let device = Device::flex();
        let model = Llama::random(&tiny(true), 12, &device);
        let t = Tensor::<2, Int>::from_data([[5, 6, 7, 8]], &device);
        let want = model.forward(t.clone()).unwrap();
        for ty in [GgmlType::Q8_0, GgmlType::F16, GgmlType::BF16] {
            let file = GgufFile::from_bytes(to_gguf(&model, ty)).unwrap();
            let got = Llama::from_gguf_file(&file, "<memory>", &device)
                .unwrap()
                .forward(t.clone())
                .unwrap();
            let err: f32 = (got - want.clone()).abs().max().into_scalar();
            assert!(err < 2e-2, "{ty:?}: {err}");
        }
    }

    #[test]
    fn metadata_and_tensor_problems_are_named() {
        let device = Device::flex();
        let model = Llama::random(&tiny(true), 13, &device);
        let bytes = to_gguf(&model, GgmlType::F32);
        // Drop one tensor by renaming it (same length keeps the file valid).
        let needle = b"blk.1.ffn_up.weight";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut renamed = bytes.clone();
        renamed[at..at + needle.len()].copy_from_slice(b"blk.1.ffn_uq.weight");
        let err = Llama::from_gguf_file(&GgufFile::from_bytes(renamed).unwrap(), "m.gguf", &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing tensor `blk.1.ffn_up.weight`"),
            "{err}"
        );
        // A head count that disagrees with the tensors.
        let needle = b"llama.attention.head_count_kv";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut wrong = bytes.clone();
        let value_at = at + needle.len() + 4; // after the u32 type tag
        wrong[value_at..value_at + 4].copy_from_slice(&1u32.to_le_bytes());
        let err = Llama::from_gguf_file(&GgufFile::from_bytes(wrong).unwrap(), "m.gguf", &device)
            .unwrap_err();
        assert!(matches!(err, Error::TensorShape { .. }), "{err}");
        // Another architecture.
        let needle = b"llama";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut other = bytes;
        other[at..at + 5].copy_from_slice(b"gemma");
        let err = Llama::from_gguf_file(&GgufFile::from_bytes(other).unwrap(), "m.gguf", &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only \"llama\""), "{err}");
    }
}
