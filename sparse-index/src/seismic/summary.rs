//! Block summaries: the coordinate-wise maximum of a block's documents, cut to a fraction of its
//! L1 mass (Seismic's `EnergyPreserving`), optionally capped, and quantised to `u8`.

use crate::collection::SparseCollection;

/// Reusable per-thread buffers of the summary builder (one array of `dim` entries).
pub(crate) struct SummaryScratch {
    max: Vec<f32>,
    touched: Vec<u32>,
    entries: Vec<(u32, f32)>,
}

impl SummaryScratch {
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            max: vec![f32::NEG_INFINITY; dim],
            touched: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// One quantised summary: component ids (increasing), `u8` codes and the scale that maps a code
/// back to a value (`value ≈ code × scale`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) comps: Vec<u32>,
    pub(crate) codes: Vec<u8>,
    pub(crate) scale: f32,
}

/// Summarises the documents `block` of `docs`.
///
/// Entries are the coordinate-wise maximum over the documents' full vectors. Sorted by value,
/// the largest are kept until their sum reaches `energy ×` the sum of all positive entries
/// (the entry that crosses is kept), then at most `max_components` of them (0 = no cap).
///
/// Quantisation: `scale = max / 255` and `code = ⌈v / scale⌉`, so a code never understates its
/// value (Seismic rounds to nearest and stores a per-summary minimum; rounding up keeps the
/// summary an upper bound of the entries it keeps and needs one multiplication per block
/// instead of two accumulators). Non-positive maxima get code 0: they cannot raise a bound for
/// queries with non-negative weights, the case summaries are designed for.
pub(crate) fn summarize(
    block: &[u32],
    docs: &SparseCollection,
    energy: f32,
    max_components: usize,
    scratch: &mut SummaryScratch,
) -> Summary {
    for &d in block {
        for (c, v) in docs.get(d as usize).iter() {
            let slot = &mut scratch.max[c as usize];
            if *slot == f32::NEG_INFINITY {
                scratch.touched.push(c);
            }
            if v > *slot {
                *slot = v;
            }
        }
    }
    scratch.entries.clear();
    for &c in &scratch.touched {
        scratch.entries.push((c, scratch.max[c as usize]));
        scratch.max[c as usize] = f32::NEG_INFINITY;
    }
    scratch.touched.clear();

    let entries = &mut scratch.entries;
    let by_value = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mass: f64 = entries.iter().map(|e| f64::from(e.1.max(0.0))).sum();
    let target = mass * f64::from(energy);
    // Only the first `limit` entries by value can be kept: select them before sorting.
    let limit = if max_components > 0 {
        max_components.min(entries.len())
    } else {
        entries.len()
    };
    if limit < entries.len() {
        entries.select_nth_unstable_by(limit, by_value);
        entries.truncate(limit);
    }
    entries.sort_unstable_by(by_value);
    let mut kept = entries.len();
    if energy < 1.0 {
        let mut acc = 0.0f64;
        kept = 0;
        while kept < entries.len() && (acc < target || kept == 0) {
            acc += f64::from(entries[kept].1.max(0.0));
            kept += 1;
        }
    }
    entries.truncate(kept);
    let top = entries.first().map_or(0.0, |e| e.1);
    entries.sort_unstable_by_key(|e| e.0);

    let scale = if top > 0.0 { top / 255.0 } else { 0.0 };
    let codes = entries
        .iter()
        .map(|&(_, v)| {
            if scale > 0.0 && v > 0.0 {
                (v / scale).ceil().clamp(1.0, 255.0) as u8
            } else {
                0
            }
        })
        .collect();
    Summary {
        comps: entries.iter().map(|e| e.0).collect(),
        codes,
        scale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::SparseVector;

    fn docs() -> SparseCollection {
        [
            SparseVector::new(vec![0, 1, 2], vec![4.0, 1.0, 0.5]).unwrap(),
            SparseVector::new(vec![1, 3], vec![3.0, 2.0]).unwrap(),
            SparseVector::new(vec![5], vec![9.0]).unwrap(),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn coordinate_max_then_energy_cut() {
        let docs = docs();
        let mut scratch = SummaryScratch::new(6);
        // max over docs 0 and 1: {0: 4, 1: 3, 2: 0.5, 3: 2}; mass 9.5.
        let full = summarize(&[0, 1], &docs, 1.0, 0, &mut scratch);
        assert_eq!(full.comps, vec![0, 1, 2, 3]);
        assert_eq!(full.scale, 4.0 / 255.0);
        for (&c, &code) in full.comps.iter().zip(&full.codes) {
            let v = [4.0, 3.0, 0.5, 2.0][c as usize];
            let q = f32::from(code) * full.scale;
            assert!(
                q >= v * (1.0 - 1e-6) && q <= v + full.scale,
                "{c}: {q} vs {v}"
            );
        }
        // α = 0.5: 4 (42%) then 3 (74%) crosses the target.
        let half = summarize(&[0, 1], &docs, 0.5, 0, &mut scratch);
        assert_eq!(half.comps, vec![0, 1]);
        let capped = summarize(&[0, 1], &docs, 1.0, 1, &mut scratch);
        assert_eq!(capped.comps, vec![0]);
        assert_eq!(capped.codes, vec![255]);
        // Scratch is clean: another block sees only its own entries.
        let other = summarize(&[2], &docs, 1.0, 0, &mut scratch);
        assert_eq!(other.comps, vec![5]);
    }
}
