//! Shared pieces of the sparseland example programs.
//!
//! The examples are the only code in the workspace that chooses a burn backend; libraries take a
//! `&Device` from their caller.

use std::path::PathBuf;

use burn::prelude::Device;

pub mod attn_methods;
pub mod experiment;
pub mod plot;
pub mod sotu;
pub mod sparse_bridge;

/// The device the examples run on.
///
/// A GPU backend when the crate is built with the `cuda` or `wgpu` feature, burn's `flex` CPU
/// backend (SIMD, multi-threaded) otherwise. The `BURN_DEVICE` environment variable
/// (`flex`, `wgpu`, `cuda`, ...) overrides the choice, as in burn.
///
/// ```
/// let device = examples::device();
/// let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
/// assert_eq!(x.dims(), [2]);
/// ```
pub fn device() -> Device {
    Device::default()
}

/// The shared data folder: `$SPARSELAND_SHARED` when set, else `shared/` beside the repository.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("SPARSELAND_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// The 1, 5 and 15-minute load averages from `/proc/loadavg` (`"unavailable"` where it cannot
/// be read): benchmarks print them because this machine is shared.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unavailable".into())
}

/// The median of timings: the element at index `len / 2` after sorting (the upper middle for
/// an even count).
///
/// # Panics
///
/// If `values` is empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs an example's `run`, printing an error in its Display form (the message that names
/// what is wrong) and exiting with status 1, instead of `main`'s Debug dump.
pub fn exit_on_error(result: Result<(), Box<dyn std::error::Error>>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// SmolLM2-135M-Instruct's folder in the shared data (GGUF file, `tokenizer.json`).
pub fn smollm2_dir() -> PathBuf {
    shared_dir().join("data/models/smollm2-135m-instruct")
}

/// The SmolLM2 GGUF file in the shared data.
pub fn smollm2_gguf() -> PathBuf {
    smollm2_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_upper_middle_after_sorting() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(vec![7.5]), 7.5);
    }

    #[test]
    #[should_panic]
    fn median_of_nothing_panics() {
        median(Vec::new());
    }

    #[test]
    fn load_average_is_three_fields_or_unavailable() {
        let load = load_average();
        assert!(
            load == "unavailable" || load.split_whitespace().count() == 3,
            "{load}"
        );
    }
}
