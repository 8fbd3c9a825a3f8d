//! Exact search: the brute-force oracle and the inverted index (term at a time, MaxScore).

mod brute_force;
mod inverted;

pub use brute_force::brute_force_search;
pub use inverted::ExactIndex;
