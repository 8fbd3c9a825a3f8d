use proptest::prelude::*;

use super::*;

/// A layout, a block size, batch, heads and a dense keep-bitmap of them.
fn masks() -> impl Strategy<Value = (AttentionLayout, BlockSize, usize, usize, Vec<bool>)> {
    (
        1usize..14,
        0usize..6,
        any::<bool>(),
        1usize..6,
        1usize..6,
        1usize..3,
        1usize..3,
        0.0f64..1.0,
    )
        .prop_flat_map(|(q_len, extra, causal, bq, bk, batch, heads, p)| {
            let k_len = q_len + extra;
            let layout = if causal {
                AttentionLayout::causal_suffix(q_len, k_len)
            } else {
                AttentionLayout::full(q_len, k_len)
            };
            let n = batch * heads * q_len * k_len;
            (
                Just(layout),
                Just(BlockSize::new(bq, bk)),
                Just(batch),
                Just(heads),
                proptest::collection::vec(proptest::bool::weighted(p.clamp(0.01, 0.99)), n),
            )
        })
}

/// The bitmap with invalid cells cleared (what a mask can represent).
fn valid_only(layout: &AttentionLayout, keep: &[bool]) -> Vec<bool> {
    keep.iter()
        .enumerate()
        .map(|(idx, &k)| {
            let j = idx % layout.k_len;
            let i = (idx / layout.k_len) % layout.q_len;
            k && layout.is_valid(i, j)
        })
        .collect()
}

proptest! {
    #[test]
    fn dense_round_trips((layout, block, batch, heads, keep) in masks()) {
        let m = SparseMask::from_dense(layout, block, batch, heads, &keep).unwrap();
        prop_assert_eq!(m.to_dense(), valid_only(&layout, &keep));
    }

    #[test]
    fn element_and_reblock_are_exact(
        (layout, block, batch, heads, keep) in masks(),
        bq in 1usize..7,
        bk in 1usize..7,
    ) {
        let m = SparseMask::from_dense(layout, block, batch, heads, &keep).unwrap();
        let e = m.to_element();
        prop_assert!(!e.has_partial_blocks());
        prop_assert_eq!(e.to_dense(), m.to_dense());
        let r = m.reblock(BlockSize::new(bq, bk));
        prop_assert_eq!(r.to_dense(), m.to_dense());
        // Canonical form: the same cells in the same block size give the same mask.
        prop_assert_eq!(r.reblock(block), m.clone());
        prop_assert_eq!(e.reblock(block), m);
    }

    #[test]
    fn covering_blocks_cover_and_count_the_over_selection(
        (layout, block, batch, heads, keep) in masks(),
        bq in 1usize..7,
        bk in 1usize..7,
    ) {
        let m = SparseMask::from_dense(layout, block, batch, heads, &keep).unwrap();
        let c = m.covering_blocks(BlockSize::new(bq, bk));
        prop_assert!(!c.mask.has_partial_blocks());
        prop_assert!(!c.mask.has_columns());
        let (a, b) = (m.to_dense(), c.mask.to_dense());
        prop_assert!(a.iter().zip(&b).all(|(x, y)| !x || *y));
        let extra = a.iter().zip(&b).filter(|(x, y)| !**x && **y).count() as u64;
        prop_assert_eq!(c.over_selected, extra);
        prop_assert_eq!(c.kept_before, a.iter().filter(|x| **x).count() as u64);
    }

    #[test]
    fn density_counts_valid_cells((layout, block, batch, heads, keep) in masks()) {
        let m = SparseMask::from_dense(layout, block, batch, heads, &keep).unwrap();
        let d = m.density();
        let dense = m.to_dense();
        let per = layout.q_len * layout.k_len;
        for bh in 0..batch * heads {
            let kept = dense[bh * per..(bh + 1) * per].iter().filter(|x| **x).count() as u64;
            prop_assert_eq!(d.kept[bh], kept);
        }
        prop_assert_eq!(d.valid, layout.valid_cells());
        prop_assert!(d.overall() <= 1.0 + 1e-12);
        prop_assert_eq!(m.kept_cells(), d.kept.iter().sum::<u64>());
    }

    #[test]
    fn queries_agree_with_the_bitmap((layout, block, batch, heads, keep) in masks()) {
        let m = SparseMask::from_dense(layout, block, batch, heads, &keep).unwrap();
        let dense = m.to_dense();
        let mut keys = Vec::new();
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..layout.q_len {
                    m.row_keys(b, h, i, &mut keys);
                    let base = ((b * heads + h) * layout.q_len + i) * layout.k_len;
                    let expect: Vec<u32> = (0..layout.k_len as u32).filter(|&j| dense[base + j as usize]).collect();
                    prop_assert_eq!(&keys, &expect);
                    prop_assert_eq!(m.row_count(b, h, i), expect.len());
                    for j in 0..layout.k_len {
                        prop_assert_eq!(m.is_kept(b, h, i, j), dense[base + j]);
                    }
                }
            }
        }
    }

    #[test]
    fn columns_inside_blocks_are_merged(
        (layout, block, batch, heads, keep) in masks(),
    ) {
        // The same cells given as full blocks of a covering plus all cells as columns equal the
        // covering itself.
        let m = SparseMask::from_dense(layout, block, batch, heads, &keep).unwrap();
        let cover = m.covering_blocks(block).mask;
        let n_qb = cover.n_query_blocks();
        let mut blocks = Vec::new();
        for b in 0..batch { for h in 0..heads { for qb in 0..n_qb {
            blocks.push(cover.blocks(b, h, qb).map(|k| BlockEntry::full(k.index)).collect());
        }}}
        let mut columns = Vec::new();
        let mut keys = Vec::new();
        for b in 0..batch { for h in 0..heads { for i in 0..layout.q_len {
            m.row_keys(b, h, i, &mut keys);
            columns.push(keys.clone());
        }}}
        let merged = SparseMask::from_parts(MaskParts { layout, block, batch, heads, blocks, columns }).unwrap();
        prop_assert!(!merged.has_columns());
        prop_assert_eq!(merged, cover);
    }
}

#[test]
fn all_and_empty_have_density_one_and_zero() {
    let l = AttentionLayout::causal(10);
    let all = SparseMask::all(l, BlockSize::square(4), 1, 1);
    assert_eq!(all.density().overall(), 1.0);
    assert!(
        !all.has_partial_blocks(),
        "diagonal blocks are full: causal applies on top"
    );
    assert_eq!(
        SparseMask::empty(l, BlockSize::square(4), 2, 3).kept_cells(),
        0
    );
}

#[test]
fn bad_parts_are_typed_errors() {
    let l = AttentionLayout::full(4, 4);
    let b = BlockSize::square(2);
    let parts = |blocks: Vec<Vec<BlockEntry>>, columns: Vec<Vec<u32>>| MaskParts {
        layout: l,
        block: b,
        batch: 1,
        heads: 1,
        blocks,
        columns,
    };
    assert_eq!(
        SparseMask::from_parts(parts(vec![vec![]], vec![])),
        Err(MaskError::GroupCount {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        SparseMask::from_parts(parts(vec![vec![BlockEntry::full(2)], vec![]], vec![])),
        Err(MaskError::BlockOutOfRange {
            group: 0,
            block: 2,
            n_blocks: 2
        })
    );
    assert_eq!(
        SparseMask::from_parts(parts(
            vec![vec![], vec![]],
            vec![vec![4], vec![], vec![], vec![]]
        )),
        Err(MaskError::ColumnOutOfRange {
            row: 0,
            column: 4,
            k_len: 4
        })
    );
    assert!(matches!(
        SparseMask::from_parts(parts(
            vec![
                vec![BlockEntry {
                    index: 0,
                    cells: Some(vec![0, 0])
                }],
                vec![]
            ],
            vec![]
        )),
        Err(MaskError::BitmapLength { .. })
    ));
    assert!(matches!(
        SparseMask::from_dense(l, b, 1, 1, &[true; 3]),
        Err(MaskError::DenseLength {
            expected: 16,
            found: 3
        })
    ));
}

#[test]
fn resolve_broadcasts_batch_and_gqa_groups() {
    let m = SparseMask::empty(AttentionLayout::causal(4), BlockSize::square(2), 1, 3);
    // 9 query heads over 3 mask heads: groups of 3, repeat-interleave.
    assert_eq!(m.resolve(5, 0, 9), (0, 0));
    assert_eq!(m.resolve(5, 2, 9), (0, 0));
    assert_eq!(m.resolve(5, 3, 9), (0, 1));
    assert_eq!(m.resolve(5, 8, 9), (0, 2));
}
