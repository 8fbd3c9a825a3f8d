//! Density: kept cells over valid cells (the causal triangle or the full rectangle), per
//! (batch, head) and overall — the Sparse Frontier's way of stating a budget.

use super::SparseMask;

/// Kept and valid cells of a mask.
#[derive(Clone, Debug, PartialEq)]
pub struct Density {
    /// Kept cells per mask (batch, head), row-major `[batch, heads]`.
    pub kept: Vec<u64>,
    /// Valid cells of one (batch, head).
    pub valid: u64,
}

impl Density {
    /// Kept / valid for mask (batch `b`, head `h`); 0 when nothing is valid.
    pub fn of(&self, b: usize, h: usize, heads: usize) -> f64 {
        ratio(self.kept[b * heads + h], self.valid)
    }

    /// Kept / valid over the whole mask.
    pub fn overall(&self) -> f64 {
        ratio(self.kept.iter().sum(), self.valid * self.kept.len() as u64)
    }

    /// Per (batch, head) densities, row-major.
    pub fn per_head(&self) -> Vec<f64> {
        self.kept.iter().map(|&k| ratio(k, self.valid)).collect()
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl SparseMask {
    /// Kept cells per (batch, head) against the layout's valid cells.
    pub fn density(&self) -> Density {
        let mut kept = Vec::with_capacity(self.batch * self.heads);
        for b in 0..self.batch {
            for h in 0..self.heads {
                kept.push(self.kept_cells_of(b, h));
            }
        }
        Density {
            kept,
            valid: self.layout.valid_cells(),
        }
    }

    /// Kept (valid) cells of the whole mask.
    pub fn kept_cells(&self) -> u64 {
        (0..self.batch)
            .flat_map(|b| (0..self.heads).map(move |h| (b, h)))
            .map(|(b, h)| self.kept_cells_of(b, h))
            .sum()
    }

    fn kept_cells_of(&self, b: usize, h: usize) -> u64 {
        let mut n = 0u64;
        for qb in 0..self.n_query_blocks() {
            let r0 = qb * self.block.q;
            let r1 = (r0 + self.block.q).min(self.layout.q_len);
            for blk in self.blocks(b, h, qb) {
                match blk.cells {
                    // Partial bitmaps hold valid cells only (canonical form).
                    Some(bits) => n += bits.iter().map(|w| w.count_ones() as u64).sum::<u64>(),
                    None => {
                        let c0 = blk.index as usize * self.block.k;
                        let c1 = (c0 + self.block.k).min(self.layout.k_len);
                        for i in r0..r1 {
                            n += self.layout.valid_keys(i).clamp(c0, c1) as u64 - c0 as u64;
                        }
                    }
                }
            }
            for i in r0..r1 {
                n += self.columns(b, h, i).len() as u64;
            }
        }
        n
    }
}
