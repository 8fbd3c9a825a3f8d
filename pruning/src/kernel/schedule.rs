//! Row-panel scheduling: cutting the rows of a sparse matrix into contiguous tasks of about equal
//! work, so that threads finish together however unevenly the non-zeros are spread.

use std::ops::Range;

/// Fixed cost of a row in units of one stored entry (loading the row pointer, zeroing and writing
/// the accumulators), so that empty rows are not free.
const ROW_COST: usize = 8;

/// Tasks per thread: a few more tasks than threads lets rayon balance the rest by stealing.
const TASKS_PER_THREAD: usize = 4;

/// Splits rows `0 .. indptr.len() - 1` into at most `tasks` contiguous, non-empty ranges of about
/// equal cost `Σ (nnz(row) + ROW_COST)`, in order. `indptr` is a CSR (or BSR) row pointer.
pub(crate) fn balanced_row_ranges(indptr: &[usize], tasks: usize) -> Vec<Range<usize>> {
    let rows = indptr.len() - 1;
    if rows == 0 {
        return Vec::new();
    }
    let tasks = tasks.clamp(1, rows);
    let cost_before = |r: usize| indptr[r] + r * ROW_COST;
    let total = cost_before(rows);
    let mut ranges = Vec::with_capacity(tasks);
    let mut start = 0;
    for t in 1..=tasks {
        // The first row whose prefix cost reaches t/tasks of the total ends task t.
        let target = total * t / tasks;
        let mut end = start + 1;
        while end < rows && cost_before(end) < target {
            end += 1;
        }
        if t == tasks {
            end = rows;
        }
        ranges.push(start..end);
        start = end;
        if start == rows {
            break;
        }
    }
    ranges
}

/// How many tasks to cut for the current rayon pool: one when it has a single thread (no
/// scheduling overhead at all), a few per thread otherwise.
pub(crate) fn task_count() -> usize {
    let threads = rayon::current_num_threads();
    if threads <= 1 {
        1
    } else {
        threads * TASKS_PER_THREAD
    }
}

/// Runs `task` over the row ranges: inline for one range, as rayon tasks otherwise.
pub(crate) fn for_each_task(ranges: &[Range<usize>], task: impl Fn(Range<usize>) + Sync) {
    use rayon::prelude::*;
    if ranges.len() == 1 {
        task(ranges[0].clone());
    } else {
        ranges.par_iter().for_each(|r| task(r.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn skewed_rows_are_balanced() {
        // Row 0 holds 1000 entries, the 99 others none.
        let mut indptr = vec![0, 1000];
        indptr.extend(std::iter::repeat_n(1000, 99));
        let ranges = balanced_row_ranges(&indptr, 2);
        assert_eq!(ranges, vec![0..1, 1..100]);
    }

    proptest! {
        #[test]
        fn ranges_cover_every_row_once(nnz in proptest::collection::vec(0usize..50, 0..40), tasks in 1usize..10) {
            let mut indptr = vec![0];
            for n in &nnz {
                indptr.push(indptr.last().unwrap() + n);
            }
            let ranges = balanced_row_ranges(&indptr, tasks);
            prop_assert!(ranges.len() <= tasks);
            let mut next = 0;
            for r in &ranges {
                prop_assert_eq!(r.start, next);
                prop_assert!(r.end > r.start);
                next = r.end;
            }
            prop_assert_eq!(next, nnz.len());
        }
    }
}
