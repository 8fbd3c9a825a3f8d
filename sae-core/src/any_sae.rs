//! One type for "an SAE of any architecture".

use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::{
    Architecture, DecoderConstraint, ReluSae, SparseAutoencoder, SparseCodes, StepContext, TopKSae,
    TrainingOutput,
};

/// An SAE of any architecture: what file readers return and what code that handles every
/// architecture takes. It is a burn [`Module`] (save, load, optimise it like any module) and a
/// [`SparseAutoencoder`] that forwards to the architecture it holds.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::{AnySae, Architecture, SparseAutoencoder, TopKSaeConfig};
///
/// let device = Device::flex();
/// let sae: AnySae = TopKSaeConfig::new(4, 8, 2).init(&device).into();
/// assert_eq!(sae.architecture(), Architecture::TopK);
/// assert_eq!(sae.d_sae(), 8);
/// ```
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnySae {
    /// ReLU + L1.
    Relu(ReluSae),
    /// TopK.
    TopK(TopKSae),
}

macro_rules! each {
    ($self:expr, $sae:ident => $body:expr) => {
        match $self {
            AnySae::Relu($sae) => $body,
            AnySae::TopK($sae) => $body,
        }
    };
}

macro_rules! each_owned {
    ($self:expr, $sae:ident => $body:expr) => {
        match $self {
            AnySae::Relu($sae) => AnySae::Relu($body),
            AnySae::TopK($sae) => AnySae::TopK($body),
        }
    };
}

impl From<ReluSae> for AnySae {
    fn from(sae: ReluSae) -> Self {
        AnySae::Relu(sae)
    }
}

impl From<TopKSae> for AnySae {
    fn from(sae: TopKSae) -> Self {
        AnySae::TopK(sae)
    }
}

impl SparseAutoencoder for AnySae {
    fn architecture(&self) -> Architecture {
        each!(self, s => s.architecture())
    }
    fn d_in(&self) -> usize {
        each!(self, s => s.d_in())
    }
    fn d_sae(&self) -> usize {
        each!(self, s => s.d_sae())
    }
    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        each!(self, s => s.encode(x))
    }
    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        each!(self, s => s.encode_sparse(x))
    }
    fn decode(&self, codes: Tensor<2>) -> Tensor<2> {
        each!(self, s => s.decode(codes))
    }
    fn decode_sparse(&self, codes: &SparseCodes) -> Tensor<2> {
        each!(self, s => s.decode_sparse(codes))
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        each!(self, s => s.forward(x))
    }
    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput {
        each!(self, s => s.training_forward(x, ctx))
    }
    fn dictionary(&self) -> Tensor<2> {
        each!(self, s => s.dictionary())
    }
    fn decoder_bias(&self) -> Tensor<1> {
        each!(self, s => s.decoder_bias())
    }
    fn decoder_constraint(&self) -> DecoderConstraint {
        each!(self, s => s.decoder_constraint())
    }
    fn project_gradients(&self, grads: &mut GradientsParams) {
        each!(self, s => s.project_gradients(grads))
    }
    fn apply_constraints(self) -> Self {
        each_owned!(self, s => s.apply_constraints())
    }
    fn update_running_state(self, output: &TrainingOutput) -> Self {
        each_owned!(self, s => s.update_running_state(output))
    }
    fn fold_input_scale(self, scale: f64) -> Self {
        each_owned!(self, s => s.fold_input_scale(scale))
    }
    fn into_inference(self) -> AnySae {
        each!(self, s => s.into_inference())
    }
}
