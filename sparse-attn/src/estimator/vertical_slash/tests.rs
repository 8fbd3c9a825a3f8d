use proptest::prelude::*;

use super::*;
use crate::estimator::test_util::{host_probs, problem};
use crate::layout::AttentionLayout;

fn small(vertical: usize, slash: usize, raster: SlashRaster) -> VerticalSlash {
    VerticalSlash {
        last_q: 4,
        vertical: Budget::TopK(vertical),
        slash: Budget::TopK(slash),
        sinks: 1,
        local: 2,
        block: 4,
        raster,
    }
}

#[test]
fn scores_are_column_and_diagonal_sums_of_the_last_queries() {
    let layout = AttentionLayout::causal(12);
    let p = problem(2, [1, 2, 1, 4, 4], layout);
    let est = small(3, 3, SlashRaster::Blocks).estimate(&p);
    let probs = host_probs(&p, None);
    for h in 0..2 {
        let mut v = [0f64; 12];
        let mut s = [0f64; 12];
        for i in 8..12 {
            for j in 0..=i {
                let a = probs[(h * 12 + i) * 12 + j];
                v[j] += a;
                s[i - j] += a;
            }
        }
        for j in 0..12 {
            approx::assert_relative_eq!(
                est.vertical_scores[h * 12 + j] as f64,
                v[j],
                epsilon = 1e-5
            );
            approx::assert_relative_eq!(est.slash_scores[h * 12 + j] as f64, s[j], epsilon = 1e-5);
        }
        // Forced: column 0 and offsets 0, 1; budgets hold.
        assert_eq!(est.verticals[h].len(), 3);
        assert!(est.verticals[h].contains(&0));
        assert_eq!(est.slashes[h].len(), 3);
        assert!(est.slashes[h].contains(&0) && est.slashes[h].contains(&1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn blocks_cover_exactly_the_exact_raster(
        t in 1usize..30,
        nv in 0usize..6,
        ns in 0usize..6,
        seed in 0u64..1000,
    ) {
        let layout = AttentionLayout::causal(t);
        let p = problem(seed, [1, 2, 1, 4, 4], layout);
        let exact = small(nv, ns, SlashRaster::Exact);
        let est = exact.estimate(&p);
        let e = exact.lower(&p, &est);
        let blk = small(nv, ns, SlashRaster::Blocks).lower(&p, &est);
        let (de, db) = (e.to_dense(), blk.to_dense());
        // The block raster keeps every exact cell, and exactly the cells of the exact slashes'
        // covering blocks plus the columns.
        prop_assert!(de.iter().zip(&db).all(|(x, y)| !x || *y));
        for h in 0..2 {
            for i in 0..t {
                for j in 0..=i {
                    let exact_cell = est.verticals[h].contains(&(j as u32)) || est.slashes[h].contains(&((i - j) as u32));
                    prop_assert_eq!(de[(h * t + i) * t + j], exact_cell);
                }
            }
        }
    }
}
