//! File I/O integration tests: fixtures written independently by Python, save → load round
//! trips of every architecture, and a bad-input test for every error variant. One test binary
//! (several modules) keeps link time down.

mod errors;
mod fixtures;
mod round_trip;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use sae_core::AnySae;

/// The CPU device the tests run on.
pub fn device() -> Device {
    Device::flex()
}

/// Every float parameter of a module, in visiting order, as raw bits.
pub fn param_bits<M: burn::module::Module>(module: &M) -> Vec<(Vec<usize>, Vec<u32>)> {
    struct Collect(Vec<(Vec<usize>, Vec<u32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            let bits = t.into_data().iter::<f32>().map(f32::to_bits).collect();
            self.0.push((shape, bits));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// A tensor's values as raw bits.
pub fn bits<const D: usize>(t: Tensor<D>) -> Vec<u32> {
    t.into_data().iter::<f32>().map(f32::to_bits).collect()
}

/// The module's own configuration as JSON (every hyperparameter).
pub fn config_json(sae: &AnySae) -> serde_json::Value {
    let v = match sae {
        AnySae::Relu(s) => serde_json::to_value(s.config()),
        AnySae::TopK(s) => serde_json::to_value(s.config()),
        AnySae::BatchTopK(s) => serde_json::to_value(s.config()),
        AnySae::JumpRelu(s) => serde_json::to_value(s.config()),
        AnySae::Gated(s) => serde_json::to_value(s.config()),
        AnySae::Matryoshka(s) => serde_json::to_value(s.config()),
        AnySae::AbsTopK(s) => serde_json::to_value(s.config()),
        AnySae::MatchingPursuit(s) => serde_json::to_value(s.config()),
        AnySae::TopAfa(s) => serde_json::to_value(s.config()),
        AnySae::Archetypal(s) => serde_json::to_value(s.config()),
    };
    v.unwrap()
}
