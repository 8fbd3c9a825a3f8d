use proptest::prelude::*;

use super::*;

fn sel(budget: Budget) -> RowSelector {
    RowSelector::new(budget)
}

fn kept(s: &RowSelector, scores: &[f32], diag: usize) -> Vec<u32> {
    let mut out = Vec::new();
    s.select(scores, diag, &mut out);
    out
}

/// The forced candidates of a row that exist.
fn forced_set(f: Forced, scores: &[f32], diag: usize) -> Vec<u32> {
    let n = scores.len();
    let mut v: Vec<u32> = (0..n)
        .filter(|&j| j < f.sinks || (j <= diag && j + f.local > diag))
        .filter(|&j| present(scores[j]))
        .map(|j| j as u32)
        .collect();
    v.dedup();
    v
}

#[test]
fn top_k_keeps_the_largest_and_breaks_ties_by_lower_index() {
    let s = [1.0, 5.0, 3.0, 5.0, 3.0, -0.0, 0.0];
    assert_eq!(kept(&sel(Budget::TopK(3)), &s, 6), vec![1, 2, 3]);
    assert_eq!(kept(&sel(Budget::TopK(2)), &s, 6), vec![1, 3]);
    // −0.0 and 0.0 tie, so the lower index wins.
    let z = [-0.0, 0.0];
    assert_eq!(kept(&sel(Budget::TopK(1)), &z, 1), vec![0]);
    let z = [0.0, -0.0];
    assert_eq!(kept(&sel(Budget::TopK(1)), &z, 1), vec![0]);
}

#[test]
fn absent_candidates_are_never_kept() {
    let s = [f32::NEG_INFINITY, 2.0, f32::NAN, 1.0];
    let r = sel(Budget::TopK(4)).with_sinks(1);
    assert_eq!(kept(&r, &s, 3), vec![1, 3]);
}

#[test]
fn keep_ratio_is_sparsed_formula() {
    // max(1, int(n·r) + 1): 10 blocks at 0.3 keep 4, at 0.0 keep 1; never more than n.
    assert_eq!(Budget::KeepRatio(0.3).fixed_size(10), Some(4));
    assert_eq!(Budget::KeepRatio(0.0).fixed_size(10), Some(1));
    assert_eq!(Budget::KeepRatio(0.5).fixed_size(3), Some(2));
    assert_eq!(Budget::KeepRatio(1.0).fixed_size(7), Some(7));
    assert_eq!(Budget::KeepRatio(0.3).fixed_size(0), Some(0));
}

#[test]
#[should_panic(expected = "ratio must be in [0, 1]")]
fn keep_ratio_outside_the_unit_interval_panics() {
    Budget::KeepRatio(1.5).fixed_size(3);
}

#[test]
fn forced_cells_count_inside_the_budget() {
    let s = [0.0, 0.0, 9.0, 8.0, 0.0, 0.0];
    // One sink and a local window of 2 ending at 5 take 3 of the 4 slots; 9.0 takes the last.
    let r = sel(Budget::TopK(4)).with_sinks(1).with_local(2);
    assert_eq!(kept(&r, &s, 5), vec![0, 2, 4, 5]);
    // More forced than the budget: the forced cells are all kept, nothing else.
    let r = sel(Budget::TopK(1)).with_sinks(2).with_local(1);
    assert_eq!(kept(&r, &s, 5), vec![0, 1, 5]);
}

#[test]
fn coverage_matches_a_hand_count() {
    // Masses 5, 3, 1, 1 (exact in f64): α = 0.8 needs two, α = 0.81 three.
    let s = [1.0, 5.0, 1.0, 3.0];
    let c = |alpha, min_budget| sel(Budget::Coverage { alpha, min_budget });
    assert_eq!(kept(&c(0.8, 0), &s, 3), vec![1, 3]);
    assert_eq!(kept(&c(0.81, 0), &s, 3), vec![0, 1, 3]);
    assert_eq!(kept(&c(0.0, 0), &s, 3), Vec::<u32>::new());
    assert_eq!(kept(&c(0.0, 2), &s, 3), vec![1, 3]);
    // The forced mass counts first: a sink of 1 and 5 make 6 of 10.
    assert_eq!(kept(&c(0.6, 0).with_sinks(1), &s, 3), vec![0, 1]);
}

#[test]
fn split_selector_gives_each_range_its_budget() {
    let s = [9.0, 8.0, 7.0, 6.0, 1.0, 2.0, 3.0];
    let split = SplitSelector {
        parts: vec![(0..4, sel(Budget::TopK(1))), (4..7, sel(Budget::TopK(2)))],
    };
    let mut out = Vec::new();
    split.select(&s, 6, &mut out);
    assert_eq!(out, vec![0, 5, 6]);
}

#[test]
fn shared_budget_lets_heads_compete() {
    let a = [9.0f32, 8.0, 7.0];
    let b = [1.0f32, 2.0, 3.0];
    let mut out = vec![Vec::new(), Vec::new()];
    select_shared(&[&a, &b], &[2, 2], &sel(Budget::TopK(4)), &mut out);
    assert_eq!(out, vec![vec![0, 1, 2], vec![2]]);
    // Forced cells are per head and count inside the shared budget.
    select_shared(
        &[&a, &b],
        &[2, 2],
        &sel(Budget::TopK(4)).with_sinks(1),
        &mut out,
    );
    assert_eq!(out, vec![vec![0, 1, 2], vec![0]]);
    // Ties across heads: the lower head wins.
    let c = [5.0f32];
    select_shared(&[&c, &c], &[0, 0], &sel(Budget::TopK(1)), &mut out);
    assert_eq!(out, vec![vec![0], vec![]]);
}

/// Rows of small integer scores (sums are exact in f64), some absent.
fn rows() -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(
        prop_oneof![8 => (0u32..20).prop_map(|v| v as f32), 1 => Just(f32::NEG_INFINITY)],
        0..40,
    )
}

fn budgets() -> impl Strategy<Value = Budget> {
    prop_oneof![
        (0usize..50).prop_map(Budget::TopK),
        (0u32..=20).prop_map(|r| Budget::KeepRatio(r as f64 / 20.0)),
    ]
}

proptest! {
    #[test]
    fn fixed_budgets_hold_exactly(
        scores in rows(),
        budget in budgets(),
        sinks in 0usize..4,
        local in 0usize..4,
        diag_pick in 0usize..64,
    ) {
        let n = scores.len();
        let diag = if n == 0 { 0 } else { diag_pick % n };
        let r = sel(budget).with_sinks(sinks).with_local(local);
        let out = kept(&r, &scores, diag);
        let valid = scores.iter().filter(|&&s| present(s)).count();
        let forced = forced_set(r.forced, &scores, diag);
        let size = budget.fixed_size(valid).unwrap();
        prop_assert_eq!(out.len(), size.max(forced.len()).min(valid));
        prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(forced.iter().all(|j| out.contains(j)));
        prop_assert!(out.iter().all(|&j| present(scores[j as usize])));
        // Every kept unforced candidate ranks at least as high as every dropped one.
        let worst_kept = out
            .iter()
            .filter(|j| !forced.contains(j))
            .map(|&j| (scores[j as usize], j))
            .max_by(rank);
        if let Some(w) = worst_kept {
            for j in 0..n as u32 {
                if present(scores[j as usize]) && !out.contains(&j) {
                    prop_assert_eq!(rank(&w, &(scores[j as usize], j)), Ordering::Less);
                }
            }
        }
    }

    #[test]
    fn coverage_is_minimal_and_sufficient(
        scores in rows(),
        alpha_16 in 0u32..=16,
        min_budget in 0usize..6,
        sinks in 0usize..3,
    ) {
        let alpha = alpha_16 as f64 / 16.0;
        let r = sel(Budget::Coverage { alpha, min_budget }).with_sinks(sinks);
        let diag = scores.len().saturating_sub(1);
        let out = kept(&r, &scores, diag);
        let valid = scores.iter().filter(|&&s| present(s)).count();
        let forced = forced_set(r.forced, &scores, diag);
        let total: f64 = scores.iter().filter(|s| present(**s)).map(|&s| s as f64).sum();
        let kept_mass: f64 = out.iter().map(|&j| scores[j as usize] as f64).sum();
        // Sufficient.
        prop_assert!(kept_mass >= alpha * total);
        prop_assert!(forced.iter().all(|j| out.contains(j)));
        prop_assert!(out.len() >= min_budget.min(valid));
        // Minimal: beyond the forced cells and the minimum budget, dropping the smallest kept
        // unforced candidate loses coverage.
        let mut free: Vec<(f32, u32)> = out
            .iter()
            .filter(|j| !forced.contains(j))
            .map(|&j| (scores[j as usize], j))
            .collect();
        free.sort_by(rank);
        if out.len() > min_budget.min(valid).max(forced.len())
            && let Some(&(smallest, _)) = free.last()
        {
            prop_assert!(kept_mass - (smallest as f64) < alpha * total);
        }
    }

    #[test]
    fn shared_budget_holds_over_the_union(
        a in rows(),
        b in rows(),
        k in 0usize..60,
        sinks in 0usize..3,
    ) {
        let r = sel(Budget::TopK(k)).with_sinks(sinks);
        let diags = [a.len().saturating_sub(1), b.len().saturating_sub(1)];
        let mut out = vec![Vec::new(), Vec::new()];
        select_shared(&[&a, &b], &diags, &r, &mut out);
        let valid = a.iter().chain(&b).filter(|&&s| present(s)).count();
        let fa = forced_set(r.forced, &a, diags[0]);
        let fb = forced_set(r.forced, &b, diags[1]);
        prop_assert_eq!(out[0].len() + out[1].len(), k.max(fa.len() + fb.len()).min(valid));
        prop_assert!(fa.iter().all(|j| out[0].contains(j)));
        prop_assert!(fb.iter().all(|j| out[1].contains(j)));
    }
}
