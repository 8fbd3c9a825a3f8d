//! SparseD (Wang, Fang, Ma, Yang, Wang; arXiv 2509.24014): head-specific block masks for the
//! bidirectional attention of diffusion language models, built once from one denoising step's
//! q and k and reused for every later step.
//!
//! The mask, as `INV-WZQ/SparseD` builds it (`modeling_llada.py`, `create_attention_block_mask`
//! in `SparseD_utils.py`), per (batch, query head) and query block `i` of `bs` rows:
//! 1. `A = softmax(q_i · kᵀ · scale)` in f32 over all keys (`[bs, k_len]`);
//! 2. `A` is zero-padded to whole blocks and each `bs × bs` tile's importance is its **mean
//!    including the padded cells** (the sum over the tile divided by `bs²`, so a short last block
//!    scores lower — the reference's `F.pad` + `mean`);
//! 3. the query block keeps its [`Budget::KeepRatio`]`(select)` best key blocks,
//!    `max(1, ⌊n · select⌋ + 1)` of the `n` key blocks.
//!
//! **Isolated selection** (with a prompt length): let `last` be the first block lying inside
//! the generation region — the first block starting at or after the prompt's end, or the final
//! block when none does (the reference's `q_len − idx·bs ≤ gen_length or idx == n − 1`). The
//! prompt part is the selection above with key blocks `≥ last` cleared (so it may keep fewer
//! than its budget); the generation part is a second selection with the same ratio over key
//! blocks `≥ last` only, from a softmax over the keys from `last · bs` on, tiled from there; the
//! two are OR-ed. Generated keys thus get their own budget even when the whole-row softmax gives
//! them tiny scores (masked tokens early in denoising).
//!
//! **Scale.** The reference divides the scores by `√num_heads`, not `√head_dim` — a quirk that
//! only changes the softmax temperature of the selection. [`SparsedScale::InverseSqrtHeads`]
//! (the default) reproduces it, [`SparsedScale::InverseSqrtHeadDim`] uses the attention's usual
//! `1/√d_head`. The attention output itself always uses the problem's own scale.
//!
//! Differences from the reference, on purpose: key padding (which the reference has none of) is
//! masked out of the softmax, and key blocks holding only padding are no candidates (they do not
//! count in `n`); GQA keys are repeated to the query heads (the reference's LLaDA has none); the
//! softmax stays in f32 (the reference casts it back to bf16 before tiling). The mask's blocks
//! are `bs × bs`, the reference's fine mask; its FlexAttention `BlockMask` of 128-tiles is a
//! kernel's concern ([`SparseMask::covering_blocks`]).
//!
//! [`SparsedAttention`] holds one layer's schedule and cached mask.

mod attention;

use super::host::{host_padding, live_key_blocks, softmax_rows};
use crate::budget::{Budget, RowSelector};
use crate::layout::AttentionLayout;
use crate::mask::{BlockEntry, BlockSize, MaskParts, SparseMask};
use crate::problem::{AttentionProblem, repeat_kv};
use crate::schedule::Schedule;

pub use attention::SparsedAttention;

/// The temperature of SparseD's selection softmax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SparsedScale {
    /// `1/√num_query_heads`, the reference code's (`/ math.sqrt(num_heads)`).
    #[default]
    InverseSqrtHeads,
    /// `1/√d_head`, the attention's own temperature.
    InverseSqrtHeadDim,
}

/// The SparseD mask builder and its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sparsed {
    /// Query and key tokens per block (`block_size`: 128 long contexts, 32 short).
    pub block_size: usize,
    /// Keep ratio of key blocks per query block (`select`: 0.3 long, 0.5 short).
    pub select: f64,
    /// Fraction of denoising steps run dense before the mask is built (`skip`, 0.2), see
    /// [`Schedule::sparsed`].
    pub skip: f64,
    /// Selection softmax temperature.
    pub scale: SparsedScale,
}

impl Default for Sparsed {
    /// The reference script's defaults (`llada_generation.py`): blocks of 128, select 0.3,
    /// skip 0.2, the `1/√num_heads` scale.
    fn default() -> Self {
        Self::long()
    }
}

impl Sparsed {
    /// Blocks of `block_size`, keep ratio `select`, skip 0.2, the reference's scale.
    ///
    /// # Panics
    /// If `block_size` is 0 or `select` is outside `[0, 1]`.
    pub fn new(block_size: usize, select: f64) -> Self {
        assert!(
            block_size > 0,
            "Sparsed::new: block_size must be at least 1, found 0"
        );
        assert!(
            (0.0..=1.0).contains(&select),
            "Sparsed::new: select must be in [0, 1], found {select}"
        );
        Self {
            block_size,
            select,
            skip: 0.2,
            scale: SparsedScale::InverseSqrtHeads,
        }
    }

    /// The long-context setting: blocks of 128, select 0.3.
    pub fn long() -> Self {
        Self::new(128, 0.3)
    }

    /// The short-context setting: blocks of 32, select 0.5.
    pub fn short() -> Self {
        Self::new(32, 0.5)
    }

    /// Uses another selection temperature.
    pub fn with_scale(mut self, scale: SparsedScale) -> Self {
        self.scale = scale;
        self
    }

    /// Uses another dense fraction.
    pub fn with_skip(mut self, skip: f64) -> Self {
        self.skip = skip;
        self
    }

    /// SparseD's schedule over `total_steps` denoising steps with this `skip`.
    ///
    /// # Panics
    /// If `skip` is outside `[0, 1]`.
    pub fn schedule(&self, total_steps: usize) -> Schedule {
        Schedule::sparsed(total_steps, self.skip)
    }

    /// The selection softmax temperature for a problem.
    pub fn score_scale(&self, p: &AttentionProblem) -> f64 {
        let [_, h, _, d] = p.q.dims();
        match self.scale {
            SparsedScale::InverseSqrtHeads => 1.0 / (h as f64).sqrt(),
            SparsedScale::InverseSqrtHeadDim => 1.0 / (d as f64).sqrt(),
        }
    }

    /// `last`: the first key block inside the generation region of a `k_len`-key sequence whose
    /// first `prompt_len` keys are the prompt — `⌈prompt_len / bs⌉`, or the final block when
    /// that is past the end.
    ///
    /// # Panics
    /// If `prompt_len > k_len` or `k_len` is 0.
    pub fn generation_start_block(&self, k_len: usize, prompt_len: usize) -> usize {
        assert!(
            k_len > 0 && prompt_len <= k_len,
            "Sparsed: prompt_len must be at most k_len {k_len} (and k_len at least 1), found {prompt_len}"
        );
        prompt_len
            .div_ceil(self.block_size)
            .min(k_len.div_ceil(self.block_size) - 1)
    }

    /// Tile importances over the keys from `key_start` on: the softmax of each query row over
    /// keys `key_start..k_len` (padded keys excluded), summed over each `bs × bs` tile (tiles
    /// start at `key_start`) and divided by `bs²`. Row-major
    /// `[batch, heads, ⌈q_len/bs⌉, ⌈(k_len − key_start)/bs⌉]` on the host.
    ///
    /// # Panics
    /// If the problem's shapes are inconsistent, its layout is causal, or `key_start > k_len`.
    pub fn block_importance(&self, p: &AttentionProblem, key_start: usize) -> Vec<f32> {
        p.check();
        assert!(
            !p.layout.causal,
            "Sparsed: SparseD's masks are for bidirectional attention, found a causal layout"
        );
        let [b, h, tq, d] = p.q.dims();
        let tk = p.layout.k_len;
        assert!(
            key_start <= tk,
            "Sparsed::block_importance: key_start must be at most k_len {tk}, found {key_start}"
        );
        let bs = self.block_size;
        let sub = tk - key_start;
        let (n_qb, n_kb) = (tq.div_ceil(bs), sub.div_ceil(bs));
        let mut sums = vec![0f64; b * h * n_qb * n_kb];
        if sub == 0 || tq == 0 {
            return vec![0.0; sums.len()];
        }
        let k = repeat_kv(p.k.clone(), p.group_size()).slice([0..b, 0..h, key_start..tk, 0..d]);
        let pad = host_padding(p).map(|pd| {
            pd.chunks(tk)
                .flat_map(|row| row[key_start..].iter().copied())
                .collect::<Vec<_>>()
        });
        let layout = AttentionLayout::full(tq, sub);
        let scale = self.score_scale(p);
        // Whole query blocks per chunk (any chunk gives the same sums).
        let chunk = (256 / bs).max(1) * bs;
        for c0 in (0..tq).step_by(chunk) {
            let c1 = (c0 + chunk).min(tq);
            let n = c1 - c0;
            let probs = softmax_rows(&p.q, &k, &layout, c0..c1, scale, pad.as_deref());
            for bh in 0..b * h {
                for i in c0..c1 {
                    let row = &probs[(bh * n + i - c0) * sub..][..sub];
                    let acc = &mut sums[(bh * n_qb + i / bs) * n_kb..][..n_kb];
                    for (a, keys) in acc.iter_mut().zip(row.chunks(bs)) {
                        *a += keys.iter().map(|&x| x as f64).sum::<f64>();
                    }
                }
            }
        }
        let tile = (bs * bs) as f64;
        sums.into_iter().map(|s| (s / tile) as f32).collect()
    }

    /// The head-specific block mask of one step's q and k: full `bs × bs` blocks, the
    /// problem's batch and query heads. `prompt_len` = `Some(n)`: the first `n` keys are the
    /// prompt and the selection is isolated (see the [module docs](self)); `None`: one
    /// selection over all key blocks.
    ///
    /// # Panics
    /// If the problem's shapes are inconsistent, its layout is causal, or `prompt_len > k_len`.
    pub fn mask(&self, p: &AttentionProblem, prompt_len: Option<usize>) -> SparseMask {
        let [b, h, tq, _] = p.q.dims();
        let layout = p.layout;
        let tk = layout.k_len;
        let bs = self.block_size;
        let (n_qb, n_kb) = (tq.div_ceil(bs), tk.div_ceil(bs));
        let importance = self.block_importance(p, 0);
        let last = prompt_len.map(|pl| self.generation_start_block(tk, pl));
        let generation = last.map(|l| self.block_importance(p, l * bs));
        let live = live_key_blocks(host_padding(p).as_deref(), b, tk, bs);
        let selector = RowSelector::new(Budget::KeepRatio(self.select));
        let row_of = |scores: &[f32], bi: usize, first: usize| -> Vec<f32> {
            scores
                .iter()
                .enumerate()
                .map(|(kb, &s)| {
                    if live[bi * n_kb + first + kb] {
                        s
                    } else {
                        f32::NEG_INFINITY
                    }
                })
                .collect()
        };
        let mut kept = Vec::new();
        let mut blocks = Vec::with_capacity(b * h * n_qb);
        for g in 0..b * h * n_qb {
            let bi = g / (h * n_qb);
            let row = row_of(&importance[g * n_kb..][..n_kb], bi, 0);
            selector.select(&row, 0, &mut kept);
            let mut entries: Vec<BlockEntry> = Vec::with_capacity(kept.len());
            match (last, &generation) {
                (Some(l), Some(gen_scores)) => {
                    entries.extend(
                        kept.iter()
                            .filter(|&&kb| (kb as usize) < l)
                            .map(|&kb| BlockEntry::full(kb)),
                    );
                    let n_gen = n_kb - l;
                    let row = row_of(&gen_scores[g * n_gen..][..n_gen], bi, l);
                    selector.select(&row, 0, &mut kept);
                    entries.extend(kept.iter().map(|&kb| BlockEntry::full(kb + l as u32)));
                }
                _ => entries.extend(kept.iter().map(|&kb| BlockEntry::full(kb))),
            }
            blocks.push(entries);
        }
        SparseMask::from_parts(MaskParts {
            layout,
            block: BlockSize::square(bs),
            batch: b,
            heads: h,
            blocks,
            columns: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("Sparsed::mask: {e}"))
    }
}

#[cfg(test)]
mod tests;
