//! One type for "an SAE of any architecture".

use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::{
    AbsTopKSae, ArchetypalSae, Architecture, BatchTopKSae, DecoderConstraint, GatedSae,
    JumpReluSae, MatchingPursuitSae, MatryoshkaSae, ReluSae, SparseAutoencoder, SparseCodes,
    StepContext, TopAfaSae, TopKSae, TrainingOutput,
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
    /// BatchTopK (training form).
    BatchTopK(BatchTopKSae),
    /// JumpReLU.
    JumpRelu(JumpReluSae),
    /// Gated.
    Gated(GatedSae),
    /// Matryoshka BatchTopK (training form).
    Matryoshka(MatryoshkaSae),
    /// AbsTopK.
    AbsTopK(AbsTopKSae),
    /// Matching pursuit.
    MatchingPursuit(MatchingPursuitSae),
    /// top-AFA.
    TopAfa(TopAfaSae),
    /// Relaxed archetypal.
    Archetypal(ArchetypalSae),
}

/// `$body` evaluated with `$sae` bound to the architecture an [`AnySae`] holds.
macro_rules! each {
    ($self:expr, $sae:ident => $body:expr) => {
        match $self {
            AnySae::Relu($sae) => $body,
            AnySae::TopK($sae) => $body,
            AnySae::BatchTopK($sae) => $body,
            AnySae::JumpRelu($sae) => $body,
            AnySae::Gated($sae) => $body,
            AnySae::Matryoshka($sae) => $body,
            AnySae::AbsTopK($sae) => $body,
            AnySae::MatchingPursuit($sae) => $body,
            AnySae::TopAfa($sae) => $body,
            AnySae::Archetypal($sae) => $body,
        }
    };
}
pub(crate) use each;

macro_rules! each_owned {
    ($self:expr, $sae:ident => $body:expr) => {
        match $self {
            AnySae::Relu($sae) => AnySae::Relu($body),
            AnySae::TopK($sae) => AnySae::TopK($body),
            AnySae::BatchTopK($sae) => AnySae::BatchTopK($body),
            AnySae::JumpRelu($sae) => AnySae::JumpRelu($body),
            AnySae::Gated($sae) => AnySae::Gated($body),
            AnySae::Matryoshka($sae) => AnySae::Matryoshka($body),
            AnySae::AbsTopK($sae) => AnySae::AbsTopK($body),
            AnySae::MatchingPursuit($sae) => AnySae::MatchingPursuit($body),
            AnySae::TopAfa($sae) => AnySae::TopAfa($body),
            AnySae::Archetypal($sae) => AnySae::Archetypal($body),
        }
    };
}

macro_rules! from_architecture {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for AnySae {
            fn from(sae: $ty) -> Self {
                AnySae::$variant(sae)
            }
        })*
    };
}

from_architecture!(
    Relu(ReluSae),
    TopK(TopKSae),
    BatchTopK(BatchTopKSae),
    JumpRelu(JumpReluSae),
    Gated(GatedSae),
    Matryoshka(MatryoshkaSae),
    AbsTopK(AbsTopKSae),
    MatchingPursuit(MatchingPursuitSae),
    TopAfa(TopAfaSae),
    Archetypal(ArchetypalSae),
);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use crate::{
        AbsTopKSaeConfig, ArchetypalSaeConfig, BatchTopKSaeConfig, GatedSaeConfig,
        JumpReluSaeConfig, MatchingPursuitSaeConfig, MatryoshkaSaeConfig, ReluSaeConfig,
        TopAfaSaeConfig, TopKSaeConfig,
    };
    use burn::module::Module;
    use burn::tensor::Distribution;
    use proptest::prelude::*;

    /// Every float parameter's values, in visiting order.
    struct Values(Vec<Vec<f32>>);

    impl burn::module::ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }

    fn values(sae: &AnySae) -> Vec<Vec<f32>> {
        let mut v = Values(Vec::new());
        sae.visit(&mut v);
        v.0
    }

    const D_IN: usize = 6;
    const D_SAE: usize = 16;

    /// One SAE of every architecture, seeded, with non-trivial biases where they exist.
    fn every_architecture(seed: u64, device: &Device) -> Vec<AnySae> {
        device.seed(seed);
        let candidates = Tensor::<2>::random([20, D_IN], Distribution::Normal(0.0, 1.0), device);
        let batch_topk = BatchTopKSaeConfig::new(D_IN, D_SAE, 3.0);
        vec![
            ReluSaeConfig::new(D_IN, D_SAE).init(device).into(),
            TopKSaeConfig::new(D_IN, D_SAE, 4).init(device).into(),
            batch_topk.init(device).into(),
            JumpReluSaeConfig::new(D_IN, D_SAE).init(device).into(),
            GatedSaeConfig::new(D_IN, D_SAE).init(device).into(),
            MatryoshkaSaeConfig::new(batch_topk, vec![4, 8])
                .init(device)
                .into(),
            AbsTopKSaeConfig::new(D_IN, D_SAE, 4).init(device).into(),
            MatchingPursuitSaeConfig::new(D_IN, D_SAE)
                .with_max_iterations(Some(5))
                .init(device)
                .into(),
            TopAfaSaeConfig::new(D_IN, D_SAE)
                .with_input_unit_norm(false)
                .init(device)
                .into(),
            ArchetypalSaeConfig::new(D_IN, D_SAE, 4)
                .init(candidates, device)
                .unwrap()
                .into(),
        ]
    }

    #[test]
    fn one_of_each_architecture() {
        let device = test_device();
        let saes = every_architecture(0, &device);
        let found: Vec<Architecture> = saes.iter().map(|s| s.architecture()).collect();
        assert_eq!(found, Architecture::ALL.to_vec());
        for sae in &saes {
            assert_eq!(
                (sae.d_in(), sae.d_sae()),
                (D_IN, D_SAE),
                "{:?}",
                sae.architecture()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(6))]

        /// For every architecture: folding an input scale, exporting to the inference form, and
        /// decoding the k-sparse codes all leave `forward` unchanged; a saved record loads back
        /// bit-exactly.
        #[test]
        fn folding_export_sparse_decode_and_records_keep_forward(seed in 0u64..1000, scale in 0.2f64..5.0) {
            let device = test_device();
            for sae in every_architecture(seed, &device) {
                let name = sae.architecture().name();
                let x = Tensor::<2>::random([5, D_IN], Distribution::Normal(0.0, 1.0), &device);
                let expected = sae.forward(x.clone()).into_data();
                let tol = burn::tensor::Tolerance::<f32>::rel_abs(1e-3, 1e-4);

                let folded = sae.clone().fold_input_scale(scale);
                (folded.forward(x.clone().div_scalar(scale)) * scale)
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, tol);

                sae.clone().into_inference().forward(x.clone()).into_data().assert_approx_eq::<f32>(&expected, tol);

                if let Some(codes) = sae.encode_sparse(x.clone()) {
                    sae.decode_sparse(&codes).into_data().assert_approx_eq::<f32>(&expected, tol);
                    codes.to_dense(D_SAE).into_data().assert_approx_eq::<f32>(&sae.encode(x.clone()).into_data(), tol);
                }

                let record = sae.clone().into_record();
                let fresh = every_architecture(seed + 1, &device)
                    .into_iter()
                    .find(|s| s.architecture() == sae.architecture())
                    .unwrap();
                let loaded = fresh.load_record(record);
                prop_assert_eq!(values(&loaded), values(&sae), "{} record round trip", name);
                loaded.forward(x).into_data().assert_approx_eq::<f32>(&expected, tol);
            }
        }
    }

    /// The architecture-agnostic training step sae-train runs works for every architecture and
    /// keeps unit-norm decoders on the sphere.
    #[test]
    fn generic_training_step_for_every_architecture() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = test_device().autodiff();
        let x = Tensor::<2>::random([12, D_IN], Distribution::Normal(0.0, 1.0), &device);
        for mut sae in every_architecture(7, &device) {
            let name = sae.architecture().name();
            let mut optim = AdamConfig::new().init();
            let dead =
                Tensor::<1, Bool>::from_data(TensorData::new(vec![true; D_SAE], [D_SAE]), &device);
            for step in 0..3 {
                let ctx = StepContext::new(step).with_dead_latents(dead.clone());
                let out = sae.training_forward(x.clone(), &ctx);
                let loss = out.total_loss();
                assert!(
                    loss.clone().into_scalar::<f32>().is_finite(),
                    "{name}: loss not finite"
                );
                assert_eq!(out.reconstruction.dims(), [12, D_IN], "{name}");
                assert_eq!(out.codes.dims(), [12, D_SAE], "{name}");
                let mut grads = GradientsParams::from_grads(loss.backward(), &sae);
                assert!(!grads.is_empty(), "{name}: no gradients");
                sae.project_gradients(&mut grads);
                sae = optim.step(1e-2, sae, grads);
                sae = sae.apply_constraints().update_running_state(&out);
            }
            if sae.decoder_constraint() == DecoderConstraint::UnitNorm {
                crate::decoder::row_norms(sae.dictionary().inner())
                    .into_data()
                    .assert_approx_eq::<f32>(
                        &TensorData::from([1.0f32; D_SAE]),
                        Default::default(),
                    );
            }
        }
    }
}
