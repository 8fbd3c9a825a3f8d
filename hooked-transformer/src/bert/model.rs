//! The BERT encoder and BERT with its masked-language-model head, with TransformerLens
//! `HookedEncoder` hook points.

use burn::prelude::*;

use super::block::BertBlock;
use super::config::BertConfig;
use super::embeddings::BertEmbeddings;
use super::input::BertInput;
use super::mlm_head::MlmHead;
use crate::{ActivationCache, Error, Hooks, Result, names};

/// A BERT encoder (Hugging Face `BertModel` without the pooler): embeddings, then post-LN
/// blocks.
///
/// ```
/// use burn::prelude::*;
/// use hooked_transformer::bert::{BertConfig, BertInput};
/// use hooked_transformer::{Hooks, names};
///
/// let device = Device::flex();
/// device.seed(0);
/// let bert = BertConfig::new(50, 16, 2, 4, 32, 10).init(&device);
/// let input = BertInput::from_sequences(&[vec![1, 5, 7], vec![2, 9]], None, 0, &device);
/// let mut hooks = Hooks::new().cache([names::attn(1, "pattern"), names::resid_post(0)]);
/// let (hidden, cache) = bert.run(&input, &mut hooks)?;
/// assert_eq!(hidden.dims(), [2, 3, 16]);
/// assert_eq!(cache.get4(&names::attn(1, "pattern")).unwrap().dims(), [2, 4, 3, 3]);
/// # Ok::<(), hooked_transformer::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Bert {
    /// The embeddings.
    pub embed: BertEmbeddings,
    /// The encoder blocks.
    pub blocks: Vec<BertBlock>,
    #[module(skip)]
    config: BertConfig,
}

impl BertConfig {
    /// A BERT encoder with random weights.
    ///
    /// # Panics
    /// If the config fails [`BertConfig::check`].
    pub fn init(&self, device: &Device) -> Bert {
        if let Err(e) = self.check("BertConfig::init") {
            panic!("{e}");
        }
        Bert {
            embed: BertEmbeddings::new(self, device),
            blocks: (0..self.num_hidden_layers)
                .map(|l| BertBlock::new(self, l, device))
                .collect(),
            config: self.clone(),
        }
    }

    /// BERT with a masked-language-model head, random weights.
    ///
    /// # Panics
    /// If the config fails [`BertConfig::check`].
    pub fn init_masked_lm(&self, device: &Device) -> BertForMaskedLm {
        BertForMaskedLm {
            bert: self.init(device),
            head: MlmHead::new(self, device),
        }
    }
}

impl Bert {
    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Every hook point, in execution order (TransformerLens `HookedEncoder` names).
    pub fn hook_points(&self) -> Vec<String> {
        let mut v = BertEmbeddings::hook_points();
        for l in 0..self.blocks.len() {
            v.extend(BertBlock::hook_points(l));
        }
        v
    }

    /// Checks the input against the model: ids and type ids inside their tables, the length
    /// within the position table.
    ///
    /// # Errors
    /// [`Error::TokenOutOfRange`] or [`Error::SequenceTooLong`].
    ///
    /// # Panics
    /// If `type_ids` or `padding` is not shaped like `ids`.
    pub fn check_input(&self, input: &BertInput) -> Result<()> {
        let [b, p] = input.dims();
        let c = &self.config;
        if p > c.max_position_embeddings {
            return Err(Error::SequenceTooLong {
                len: p,
                limit: c.max_position_embeddings,
                what: "BERT position embeddings".into(),
            });
        }
        let check = |t: &Tensor<2, Int>, limit: usize| -> Result<()> {
            let values = t
                .to_data()
                .try_into_vec_as::<i64>()
                .expect("an Int tensor converts to i64");
            match values.iter().position(|&x| x < 0 || x as usize >= limit) {
                Some(position) => Err(Error::TokenOutOfRange {
                    id: values[position],
                    position,
                    vocab_size: limit,
                }),
                None => Ok(()),
            }
        };
        check(&input.ids, c.vocab_size)?;
        if let Some(t) = &input.type_ids {
            assert_eq!(
                t.dims(),
                [b, p],
                "BertInput: type_ids must be shaped like ids"
            );
            check(t, c.type_vocab_size)?;
        }
        if let Some(m) = &input.padding {
            assert_eq!(
                m.dims(),
                [b, p],
                "BertInput: padding must be shaped like ids"
            );
        }
        Ok(())
    }

    /// The last hidden state `[batch, pos, d_model]` (Hugging Face `last_hidden_state`).
    ///
    /// # Errors
    /// As [`Bert::check_input`].
    pub fn forward(&self, input: &BertInput) -> Result<Tensor<3>> {
        Ok(self.run(input, &mut Hooks::new())?.0)
    }

    /// A forward pass with hooks: returns the output of the last block run (all of them, or
    /// blocks `0..n` with `stop_at_layer(n)`; the embeddings for `n = 0`) and the cache.
    ///
    /// # Errors
    /// [`Error::UnknownHookPoint`] for a hook name, override layer or stop layer the model
    /// does not have; otherwise as [`Bert::check_input`].
    pub fn run(
        &self,
        input: &BertInput,
        hooks: &mut Hooks,
    ) -> Result<(Tensor<3>, ActivationCache)> {
        hooks.check_names(&self.all_points(), self.blocks.len())?;
        self.check_input(input)?;
        let mut cache = ActivationCache::default();
        let x = self.run_unchecked(input, hooks, &mut cache);
        Ok((x, cache))
    }

    /// Hook points of this model and of the MLM head (names in `check_names` may refer to
    /// either; the encoder alone never fires the head's).
    fn all_points(&self) -> Vec<String> {
        let mut v = self.hook_points();
        v.extend(MlmHead::hook_points());
        v.extend([names::UNEMBED_IN.to_string(), names::LOGITS.to_string()]);
        v
    }

    /// The forward pass without the checks.
    pub(crate) fn run_unchecked(
        &self,
        input: &BertInput,
        hooks: &mut Hooks,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let stop = hooks.stop_layer().unwrap_or(self.blocks.len());
        let mut x = self.embed.forward(input, hooks, cache);
        for block in self.blocks.iter().take(stop) {
            x = block.forward(x, input.padding.as_ref(), hooks, cache);
        }
        x
    }
}

/// BERT with its masked-language-model head (Hugging Face `BertForMaskedLM`).
///
/// ```
/// use burn::prelude::*;
/// use hooked_transformer::bert::{BertConfig, BertInput};
///
/// let device = Device::flex();
/// device.seed(0);
/// let model = BertConfig::new(50, 16, 1, 2, 32, 10).init_masked_lm(&device);
/// let input = BertInput::from_sequences(&[vec![1, 5, 7]], None, 0, &device);
/// let logits = model.forward(&input)?;
/// assert_eq!(logits.dims(), [1, 3, 50]);
/// # Ok::<(), hooked_transformer::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct BertForMaskedLm {
    /// The encoder.
    pub bert: Bert,
    /// The MLM head.
    pub head: MlmHead,
}

impl BertForMaskedLm {
    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        self.bert.config()
    }

    /// Every hook point, in execution order: the encoder's, then `mlm_head.ln.hook_scale`,
    /// `mlm_head.ln.hook_normalized`, `unembed.hook_in` (the head's output) and
    /// `unembed.hook_out` (the logits).
    pub fn hook_points(&self) -> Vec<String> {
        self.bert.all_points()
    }

    /// MLM logits `[batch, pos, vocab]`.
    ///
    /// # Errors
    /// As [`Bert::check_input`].
    pub fn forward(&self, input: &BertInput) -> Result<Tensor<3>> {
        Ok(self.run(input, &mut Hooks::new())?.0)
    }

    /// A forward pass with hooks: the logits, or with `stop_at_layer(n)` the output of block
    /// `n − 1` (no head), and the cache.
    ///
    /// # Errors
    /// As [`Bert::run`].
    pub fn run(
        &self,
        input: &BertInput,
        hooks: &mut Hooks,
    ) -> Result<(Tensor<3>, ActivationCache)> {
        hooks.check_names(&self.hook_points(), self.bert.blocks.len())?;
        self.bert.check_input(input)?;
        let mut cache = ActivationCache::default();
        let h = self.bert.run_unchecked(input, hooks, &mut cache);
        if hooks.stop_layer().is_some() {
            return Ok((h, cache));
        }
        let t = self.head.transform(h, hooks, &mut cache);
        let t = hooks.point3(names::UNEMBED_IN, t, &mut cache);
        let logits = self.head.logits(t, &self.bert.embed.word);
        let logits = hooks.point3(names::LOGITS, logits, &mut cache);
        Ok((logits, cache))
    }
}
