//! Gather-based sparse attention on burn tensors: only the kept cells are computed.
//!
//! The work unit is one query block of one mask head: its kept **key blocks** are gathered
//! (`select` over the key/value tensors viewed as `[blocks, block_k · d]` rows) and multiplied
//! as one matrix product — the block-gather + matmul kernel — and its rows' extra **columns**
//! are gathered key by key (the element-gather kernel). Both parts share one softmax, so a mask
//! with blocks and columns (vertical-slash) is one exact attention. Every op is a burn tensor op,
//! so every backend runs it and autodiff flows through it (`select`'s backward scatters).
//!
//! When the mask is shared by a GQA group (mask heads 1 or the KV-head count), the group's query
//! heads are stacked into one unit of `group · block_q` rows that reads each gathered block once:
//! SmolLM2's 3 query heads per KV head cost one gather, not three.
//!
//! What is gathered is the padded lists: a unit computes `max blocks in its chunk · block_k`
//! keys. [`GatherPlan::gathered_cells`] counts that work, which is what the
//! [dispatcher](super::dispatch) compares with dense attention.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::mask::SparseMask;
use crate::problem::AttentionProblem;

/// Scores of masked slots: finite so a row with nothing kept stays NaN-free through softmax
/// (such rows are zeroed afterwards).
const MASKED: f32 = -1.0e30;

/// Score slots (rows × gathered keys) one chunk may hold: bounds the temporary memory at
/// about 64 MiB of f32 per tensor, whatever the sequence length.
const CHUNK_SLOTS: usize = 1 << 24;

/// How a mask's work is laid out for the gather kernel: units, their block and column counts
/// and how they are grouped into chunks. Built on the host from the mask alone.
#[derive(Clone, Debug)]
pub struct GatherPlan {
    /// Query heads stacked per unit (the GQA group when the mask is shared by it, else 1).
    pub stacked_heads: usize,
    /// Rows per unit: `stacked_heads · block_q`.
    pub rows: usize,
    /// Per unit, the number of kept key blocks.
    unit_blocks: Vec<usize>,
    /// Per unit, the largest number of extra columns of any of its rows.
    unit_columns: Vec<usize>,
    /// Chunks as unit ranges with their padded block and column counts.
    chunks: Vec<Chunk>,
}

#[derive(Clone, Copy, Debug)]
struct Chunk {
    start: usize,
    end: usize,
    blocks: usize,
    columns: usize,
}

/// The shape facts a plan needs.
#[derive(Clone, Copy, Debug)]
struct Dims {
    heads: usize,
    kv_heads: usize,
    n_qb: usize,
}

impl GatherPlan {
    /// Plans `mask` for a problem of `batch` × `query_heads` over `kv_heads` KV heads.
    ///
    /// # Panics
    /// If the mask does not broadcast to that batch and those heads.
    pub fn new(mask: &SparseMask, batch: usize, query_heads: usize, kv_heads: usize) -> Self {
        assert!(
            mask.batch() == 1 || mask.batch() == batch,
            "GatherPlan: mask batch must be 1 or {batch}, found {}",
            mask.batch()
        );
        assert!(
            query_heads.is_multiple_of(mask.heads()) && query_heads.is_multiple_of(kv_heads),
            "GatherPlan: query heads ({query_heads}) must be a multiple of the mask's heads ({}) and of the KV heads ({kv_heads})",
            mask.heads()
        );
        let group = query_heads / kv_heads;
        let stacked_heads = if kv_heads.is_multiple_of(mask.heads()) {
            group
        } else {
            1
        };
        let d = Dims {
            heads: query_heads,
            kv_heads,
            n_qb: mask.n_query_blocks(),
        };
        let bq = mask.block_size().q;
        let q_len = mask.layout().q_len;
        let n_units = batch * (query_heads / stacked_heads) * d.n_qb;
        let mut unit_blocks = Vec::with_capacity(n_units);
        let mut unit_columns = Vec::with_capacity(n_units);
        for u in 0..n_units {
            let (b, h0, qb) = unit_position(u, stacked_heads, &d);
            let (mb, mh) = mask.resolve(b, h0, query_heads);
            unit_blocks.push(mask.block_count(mb, mh, qb));
            let rows = qb * bq..((qb + 1) * bq).min(q_len);
            let cols = if mask.has_columns() {
                rows.map(|i| mask.columns(mb, mh, i).len())
                    .max()
                    .unwrap_or(0)
            } else {
                0
            };
            unit_columns.push(cols);
        }
        let rows = stacked_heads * bq;
        let bk = mask.block_size().k;
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < n_units {
            let (mut blocks, mut columns, mut end) = (0, 0, start);
            while end < n_units {
                let nb = blocks.max(unit_blocks[end]);
                let nc = columns.max(unit_columns[end]);
                let slots = (end + 1 - start) * rows * (nb * bk + nc).max(1);
                if end > start && slots > CHUNK_SLOTS {
                    break;
                }
                (blocks, columns, end) = (nb, nc, end + 1);
            }
            chunks.push(Chunk {
                start,
                end,
                blocks,
                columns,
            });
            start = end;
        }
        Self {
            stacked_heads,
            rows,
            unit_blocks,
            unit_columns,
            chunks,
        }
    }

    /// Query-key cells the kernel computes, padding of the per-chunk lists included.
    pub fn gathered_cells(&self, block_k: usize) -> u64 {
        self.chunks
            .iter()
            .map(|c| ((c.end - c.start) * self.rows * (c.blocks * block_k + c.columns)) as u64)
            .sum()
    }

    /// Number of work units (query blocks × stacked head groups × batch).
    pub fn units(&self) -> usize {
        self.unit_blocks.len()
    }

    /// The largest per-row column count of any unit.
    pub fn max_columns(&self) -> usize {
        self.unit_columns.iter().copied().max().unwrap_or(0)
    }
}

/// `(batch, first query head, query block)` of unit `u`.
fn unit_position(u: usize, stacked: usize, d: &Dims) -> (usize, usize, usize) {
    let per_batch = (d.heads / stacked) * d.n_qb;
    let b = u / per_batch;
    let rest = u % per_batch;
    (b, (rest / d.n_qb) * stacked, rest % d.n_qb)
}

/// Attention over the mask's kept cells only, by gathering them (see [the kernel module](crate::kernel)).
/// Equals [`masked_dense_attention`](super::masked_dense_attention) for every mask, layout, key
/// padding, GQA broadcast and batch; rows with nothing kept give zeros. Differentiable in q, k
/// and v.
///
/// # Panics
/// If the problem's shapes are inconsistent or the mask does not match its layout, batch or
/// heads.
pub fn gather_attention(p: &AttentionProblem, mask: &SparseMask) -> Tensor<4> {
    p.check();
    assert!(
        mask.layout() == p.layout,
        "gather_attention: mask layout {:?} differs from the problem's {:?}",
        mask.layout(),
        p.layout
    );
    let [b, h, _, _] = p.q.dims();
    let hk = p.k.dims()[1];
    let plan = GatherPlan::new(mask, b, h, hk);
    gather_attention_planned(p, mask, &plan)
}

/// [`gather_attention`] with a plan made beforehand (the dispatcher plans once to decide).
pub(crate) fn gather_attention_planned(
    p: &AttentionProblem,
    mask: &SparseMask,
    plan: &GatherPlan,
) -> Tensor<4> {
    let [b, h, tq, d] = p.q.dims();
    let [_, hk, tk, dv] = p.v.dims();
    let device = p.q.device();
    let block = mask.block_size();
    let (bq, bk) = (block.q, block.k);
    let dims = Dims {
        heads: h,
        kv_heads: hk,
        n_qb: mask.n_query_blocks(),
    };
    let sh = plan.stacked_heads;
    let rows = plan.rows;
    let n_kb = mask.n_key_blocks();
    let padding = p.key_padding.as_ref().map(|t| {
        t.to_data()
            .convert::<bool>()
            .try_into_vec::<bool>()
            .expect("bool padding")
    });

    // Queries as [units, rows, d]: (b, head group, query block, stacked head, local row).
    let q = pad_seq(p.q.clone(), dims.n_qb * bq)
        .reshape([b, h / sh, sh, dims.n_qb, bq, d])
        .swap_dims(2, 3)
        .reshape([plan.units(), rows, d]);
    // Keys/values as rows of one block each, and as rows of one key each.
    let k_blocks = pad_seq(p.k.clone(), n_kb * bk).reshape([b * hk * n_kb, bk * d]);
    let v_blocks = pad_seq(p.v.clone(), n_kb * bk).reshape([b * hk * n_kb, bk * dv]);
    let k_rows = p.k.clone().reshape([b * hk * tk, d]);
    let v_rows = p.v.clone().reshape([b * hk * tk, dv]);

    let mut outputs = Vec::with_capacity(plan.chunks.len());
    for chunk in &plan.chunks {
        let n = chunk.end - chunk.start;
        let slots = chunk.blocks * bk + chunk.columns;
        if slots == 0 {
            outputs.push(Tensor::zeros([n, rows, dv], &device));
            continue;
        }
        let host = ChunkInputs::build(mask, chunk, plan, &dims, tk, padding.as_deref());
        let qc = q.clone().slice([chunk.start..chunk.end, 0..rows, 0..d]);
        let mut scores = Vec::with_capacity(2);
        let mut block_kv = None;
        if chunk.blocks > 0 {
            let idx = int_tensor(host.block_index, &device);
            let kc = k_blocks
                .clone()
                .select(0, idx.clone())
                .reshape([n, chunk.blocks * bk, d]);
            let vc = v_blocks
                .clone()
                .select(0, idx)
                .reshape([n, chunk.blocks * bk, dv]);
            scores.push(qc.clone().matmul(kc.swap_dims(1, 2)));
            block_kv = Some(vc);
        }
        let mut column_kv = None;
        if chunk.columns > 0 {
            let idx = int_tensor(host.column_index, &device);
            let m = chunk.columns;
            let kc = k_rows
                .clone()
                .select(0, idx.clone())
                .reshape([n * rows, m, d]);
            let vc = v_rows.clone().select(0, idx).reshape([n * rows, m, dv]);
            // Row-wise dot products as one broadcast multiply + sum: a batch of 1 × m
            // matrix products is far slower on the CPU backend.
            let s = (qc.clone().reshape([n * rows, 1, d]) * kc)
                .sum_dim(2)
                .reshape([n, rows, m]);
            scores.push(s);
            column_kv = Some(vc);
        }
        let bias = Tensor::<3>::from_data(TensorData::new(host.bias, [n, rows, slots]), &device);
        let any = Tensor::<3>::from_data(TensorData::new(host.any, [n, rows, 1]), &device);
        let w = softmax(Tensor::cat(scores, 2).mul_scalar(p.scale) + bias, 2);
        let mut out: Option<Tensor<3>> = None;
        if let Some(vc) = block_kv {
            let wb = w.clone().slice([0..n, 0..rows, 0..chunk.blocks * bk]);
            out = Some(wb.matmul(vc));
        }
        if let Some(vc) = column_kv {
            let wc = w.slice([0..n, 0..rows, chunk.blocks * bk..slots]).reshape([
                n * rows,
                chunk.columns,
                1,
            ]);
            let part = (wc * vc).sum_dim(1).reshape([n, rows, dv]);
            out = Some(match out {
                Some(o) => o + part,
                None => part,
            });
        }
        outputs.push(out.expect("a chunk with slots has a part") * any);
    }
    Tensor::cat(outputs, 0)
        .reshape([b, h / sh, dims.n_qb, sh, bq, dv])
        .swap_dims(2, 3)
        .reshape([b, h, dims.n_qb * bq, dv])
        .slice([0..b, 0..h, 0..tq, 0..dv])
}

/// Pads dim 2 of `[b, h, t, d]` with zeros to `len`.
fn pad_seq(x: Tensor<4>, len: usize) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    if len == t {
        return x;
    }
    let zeros = Tensor::zeros([b, h, len - t, d], &x.device());
    Tensor::cat(vec![x, zeros], 2)
}

fn int_tensor(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// The host-made inputs of one chunk: gather indices, the additive score bias (0 kept,
/// [`MASKED`] otherwise) and whether each row keeps anything.
struct ChunkInputs {
    block_index: Vec<i64>,
    column_index: Vec<i64>,
    bias: Vec<f32>,
    any: Vec<f32>,
}

impl ChunkInputs {
    fn build(
        mask: &SparseMask,
        chunk: &Chunk,
        plan: &GatherPlan,
        d: &Dims,
        k_len: usize,
        padding: Option<&[bool]>,
    ) -> Self {
        let block = mask.block_size();
        let (bq, bk) = (block.q, block.k);
        let layout = mask.layout();
        let n_kb = mask.n_key_blocks();
        let group = d.heads / d.kv_heads;
        let rows = plan.rows;
        let slots = chunk.blocks * bk + chunk.columns;
        let n = chunk.end - chunk.start;
        let mut this = Self {
            block_index: Vec::with_capacity(n * chunk.blocks),
            column_index: Vec::with_capacity(n * rows * chunk.columns),
            bias: vec![MASKED; n * rows * slots],
            any: vec![0.0; n * rows],
        };
        for (local, u) in (chunk.start..chunk.end).enumerate() {
            let (b, h0, qb) = unit_position(u, plan.stacked_heads, d);
            let kv = h0 / group;
            let (mb, mh) = mask.resolve(b, h0, d.heads);
            let kv_base = (b * d.kv_heads + kv) * n_kb;
            let kept: Vec<_> = mask.blocks(mb, mh, qb).collect();
            for m in 0..chunk.blocks {
                let kb = kept.get(m).map_or(0, |blk| blk.index as usize);
                this.block_index.push((kv_base + kb) as i64);
            }
            let pad = padding.map(|p| &p[b * k_len..(b + 1) * k_len]);
            for r in 0..rows {
                let local_row = r % bq;
                let i = qb * bq + local_row;
                let row = local * rows + r;
                let bias = &mut this.bias[row * slots..(row + 1) * slots];
                let mut any = false;
                if i < layout.q_len {
                    let valid = layout.valid_keys(i).min(k_len);
                    for (m, blk) in kept.iter().enumerate() {
                        let j0 = blk.index as usize * bk;
                        let cells = &mut bias[m * bk..(m + 1) * bk];
                        for (c, cell) in cells.iter_mut().enumerate() {
                            let j = j0 + c;
                            if j < valid && pad.is_none_or(|p| !p[j]) && blk.keeps(local_row, c, bk)
                            {
                                *cell = 0.0;
                                any = true;
                            }
                        }
                    }
                    let cols = mask.columns(mb, mh, i);
                    let row_base = (b * d.kv_heads + kv) * k_len;
                    for t in 0..chunk.columns {
                        let j = cols.get(t).map_or(0, |&j| j as usize);
                        this.column_index.push((row_base + j) as i64);
                        if t < cols.len() && pad.is_none_or(|p| !p[j]) {
                            bias[chunk.blocks * bk + t] = 0.0;
                            any = true;
                        }
                    }
                } else {
                    let row_base = (b * d.kv_heads + kv) * k_len;
                    this.column_index
                        .extend(std::iter::repeat_n(row_base as i64, chunk.columns));
                }
                this.any[row] = if any { 1.0 } else { 0.0 };
            }
        }
        this
    }
}
