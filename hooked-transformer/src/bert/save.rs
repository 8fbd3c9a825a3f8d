//! Writing BERT as a Hugging Face folder (`config.json`, `model.safetensors` in
//! `BertForMaskedLM` naming and PyTorch shapes, `tokenizer.json`) that
//! [`BertForMaskedLm::from_hf_folder`] and Hugging Face `transformers` read back.

use std::path::Path;

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::model::{Bert, BertForMaskedLm};
use crate::{Error, Result, Tokenizer};

/// One tensor in Hugging Face naming: name, PyTorch shape, row-major f32 values.
pub(crate) type HfTensor = (String, Vec<usize>, Vec<f32>);

impl BertForMaskedLm {
    /// Writes `config.json`, `model.safetensors` (F32, names prefixed `bert.`, MLM head as
    /// `cls.predictions.*`, no decoder weight since it is tied) and `tokenizer.json` into
    /// `dir` (created if needed). Each file is written to a temporary sibling, then renamed.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written, [`Error::Tokenizer`] if the tokenizer
    /// cannot be serialised.
    pub fn save_hf_folder(&self, dir: impl AsRef<Path>, tokenizer: &Tokenizer) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_config(self.bert.config(), dir)?;
        write_safetensors(&self.hf_tensors(), &dir.join("model.safetensors"))?;
        tokenizer.save(dir.join("tokenizer.json"))
    }

    /// Every parameter in Hugging Face `BertForMaskedLM` naming and shape.
    pub(crate) fn hf_tensors(&self) -> Vec<HfTensor> {
        let mut v: Vec<HfTensor> = self
            .bert
            .hf_tensors()
            .into_iter()
            .map(|(n, s, d)| (format!("bert.{n}"), s, d))
            .collect();
        linear(&mut v, "cls.predictions.transform.dense", &self.head.dense);
        norm(&mut v, "cls.predictions.transform.LayerNorm", &self.head.ln);
        param(&mut v, "cls.predictions.bias", &self.head.bias);
        v
    }
}

impl Bert {
    /// Every parameter in Hugging Face `BertModel` naming and shape (no pooler).
    pub(crate) fn hf_tensors(&self) -> Vec<HfTensor> {
        let mut v = Vec::new();
        let e = &self.embed;
        param(&mut v, "embeddings.word_embeddings.weight", &e.word.weight);
        param(
            &mut v,
            "embeddings.position_embeddings.weight",
            &e.position.weight,
        );
        param(
            &mut v,
            "embeddings.token_type_embeddings.weight",
            &e.token_type.weight,
        );
        norm(&mut v, "embeddings.LayerNorm", &e.ln);
        for (l, b) in self.blocks.iter().enumerate() {
            let p = format!("encoder.layer.{l}");
            linear(&mut v, &format!("{p}.attention.self.query"), &b.attn.q);
            linear(&mut v, &format!("{p}.attention.self.key"), &b.attn.k);
            linear(&mut v, &format!("{p}.attention.self.value"), &b.attn.v);
            linear(&mut v, &format!("{p}.attention.output.dense"), &b.attn.o);
            norm(&mut v, &format!("{p}.attention.output.LayerNorm"), &b.ln1);
            linear(&mut v, &format!("{p}.intermediate.dense"), &b.mlp.w_in);
            linear(&mut v, &format!("{p}.output.dense"), &b.mlp.w_out);
            norm(&mut v, &format!("{p}.output.LayerNorm"), &b.ln2);
        }
        v
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor converts to f32")
}

fn param<const D: usize>(v: &mut Vec<HfTensor>, name: &str, p: &Param<Tensor<D>>) {
    let t = p.val();
    v.push((name.to_string(), t.dims().to_vec(), values(t)));
}

fn linear(v: &mut Vec<HfTensor>, name: &str, l: &Linear) {
    // burn stores [in, out]; PyTorch [out, in].
    let w = l.weight.val().transpose();
    v.push((format!("{name}.weight"), w.dims().to_vec(), values(w)));
    if let Some(b) = &l.bias {
        param(v, &format!("{name}.bias"), b);
    }
}

fn norm(v: &mut Vec<HfTensor>, name: &str, ln: &LayerNorm) {
    param(v, &format!("{name}.weight"), &ln.gamma);
    if let Some(b) = &ln.beta {
        param(v, &format!("{name}.bias"), b);
    }
}

/// Serialises `tensors` as an F32 safetensors file.
pub(crate) fn write_safetensors(tensors: &[HfTensor], path: &Path) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b)
                .expect("shape and byte length agree by construction");
            (name.clone(), view)
        })
        .collect::<Vec<_>>();
    let data = safetensors::serialize(views, None).map_err(|source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    crate::atomic::write_atomic(path, &data)
}

fn write_config(c: &super::BertConfig, dir: &Path) -> Result<()> {
    let json = serde_json::json!({
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "intermediate_size": c.intermediate_size,
        "max_position_embeddings": c.max_position_embeddings,
        "type_vocab_size": c.type_vocab_size,
        "layer_norm_eps": c.layer_norm_eps,
        "pad_token_id": c.pad_token_id,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "tie_word_embeddings": true,
    });
    let text = serde_json::to_string_pretty(&json).expect("a JSON value serialises");
    crate::atomic::write_atomic(&dir.join("config.json"), text.as_bytes())
}
