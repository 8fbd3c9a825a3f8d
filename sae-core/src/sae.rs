//! The interface every architecture implements.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::{AnySae, SparseCodes, StepContext, TrainingOutput};

/// The architectures of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// ReLU + L1 ([`crate::ReluSae`]).
    Relu,
    /// TopK ([`crate::TopKSae`]).
    TopK,
    /// BatchTopK (training form; exported as JumpReLU).
    BatchTopK,
    /// JumpReLU.
    JumpRelu,
    /// Gated.
    Gated,
    /// Matryoshka BatchTopK (training form; exported as JumpReLU).
    Matryoshka,
    /// AbsTopK (signed TopK).
    AbsTopK,
    /// Matching pursuit.
    MatchingPursuit,
    /// top-AFA (adaptive per-token k).
    TopAfa,
    /// Relaxed archetypal (RA-SAE) dictionary.
    Archetypal,
}

impl Architecture {
    /// Every architecture, in declaration order.
    pub const ALL: [Architecture; 10] = [
        Architecture::Relu,
        Architecture::TopK,
        Architecture::BatchTopK,
        Architecture::JumpRelu,
        Architecture::Gated,
        Architecture::Matryoshka,
        Architecture::AbsTopK,
        Architecture::MatchingPursuit,
        Architecture::TopAfa,
        Architecture::Archetypal,
    ];

    /// The canonical name: SAELens' `architecture` string where SAELens has the architecture
    /// (`standard`, `topk`, `batchtopk`, `jumprelu`, `gated`, `matryoshka_batchtopk`,
    /// `matching_pursuit`, `abstopk` — SAELens ≥ 6.54 spells AbsTopK so), our own otherwise
    /// (`top_afa`, `archetypal`).
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Relu => "standard",
            Architecture::TopK => "topk",
            Architecture::BatchTopK => "batchtopk",
            Architecture::JumpRelu => "jumprelu",
            Architecture::Gated => "gated",
            Architecture::Matryoshka => "matryoshka_batchtopk",
            Architecture::AbsTopK => "abstopk",
            Architecture::MatchingPursuit => "matching_pursuit",
            Architecture::TopAfa => "top_afa",
            Architecture::Archetypal => "archetypal",
        }
    }

    /// The architecture a file's `architecture` string names: the canonical
    /// [`name`](Self::name) or an older spelling this crate wrote (`abs_topk`, before SAELens
    /// had AbsTopK as `abstopk`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "abs_topk" => Some(Architecture::AbsTopK),
            _ => Self::ALL.into_iter().find(|a| a.name() == name),
        }
    }
}

/// Whether an architecture keeps its decoder rows at unit norm during training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecoderConstraint {
    /// Free decoder (SAELens style: norms enter the penalty or rescale the codes).
    Free,
    /// Unit-norm rows: the trainer calls [`SparseAutoencoder::project_gradients`] before and
    /// [`SparseAutoencoder::apply_constraints`] after each optimiser step.
    UnitNorm,
}

/// A sparse autoencoder: encode to codes, decode codes, and the training-side hooks that let a
/// trainer handle every architecture the same way.
///
/// Conventions shared by every implementation (SAELens orientation):
/// - inputs `x` are `[batch, d_in]`, codes `[batch, d_sae]`;
/// - [`decode`](Self::decode) is `codes · D + b_dec` with `D =`
///   [`dictionary`](Self::dictionary) `[d_sae, d_in]`, so a selection of
///   [`TrainingOutput::pre_activations`] decodes meaningfully (aux-K).
///
/// A training loop, architecture-agnostic:
///
/// ```
/// use burn::optim::{AdamConfig, GradientsParams};
/// use burn::prelude::*;
/// use sae_core::{SparseAutoencoder, StepContext, TopKSaeConfig};
///
/// let device = Device::flex().autodiff();
/// device.seed(0);
/// let mut sae = TopKSaeConfig::new(8, 32, 4).init(&device);
/// let mut optim = AdamConfig::new().init();
/// let x = Tensor::<2>::random([16, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
/// for step in 0..3 {
///     let out = sae.training_forward(x.clone(), &StepContext::new(step));
///     let mut grads = GradientsParams::from_grads(out.total_loss().backward(), &sae);
///     sae.project_gradients(&mut grads);
///     sae = optim.step(1e-3, sae, grads);
///     sae = sae.apply_constraints().update_running_state(&out);
/// }
/// assert_eq!(sae.forward(x).dims(), [16, 8]);
/// ```
pub trait SparseAutoencoder: Module + Sized {
    /// Which architecture this is.
    fn architecture(&self) -> Architecture;

    /// Input width.
    fn d_in(&self) -> usize;

    /// Number of latents.
    fn d_sae(&self) -> usize;

    /// Inference codes, dense.
    ///
    /// # Shapes
    /// `[batch, d_in]` → `[batch, d_sae]`.
    fn encode(&self, x: Tensor<2>) -> Tensor<2>;

    /// Inference codes in k-sparse form, for architectures whose L0 is bounded per row (TopK,
    /// AbsTopK, top-AFA, matching pursuit); `None` otherwise.
    fn encode_sparse(&self, x: Tensor<2>) -> Option<SparseCodes> {
        let _ = x;
        None
    }

    /// Reconstruction from dense codes: `codes · D + b_dec`.
    ///
    /// # Shapes
    /// `[batch, d_sae]` → `[batch, d_in]`.
    fn decode(&self, codes: Tensor<2>) -> Tensor<2>;

    /// Reconstruction from k-sparse codes (the same values as [`decode`](Self::decode) of
    /// their dense form), touching only the selected dictionary rows.
    fn decode_sparse(&self, codes: &SparseCodes) -> Tensor<2> {
        codes.decode(self.dictionary(), Some(self.decoder_bias()))
    }

    /// `decode(encode(x))`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.decode(self.encode(x))
    }

    /// The training forward pass: reconstruction, codes, pre-activations and the
    /// architecture's weighted loss terms for this step.
    fn training_forward(&self, x: Tensor<2>, ctx: &StepContext) -> TrainingOutput;

    /// The effective dictionary `D`, `[d_sae, d_in]`, with `decode(f) = f · D + b_dec`
    /// (differentiable: computed from the parameters).
    fn dictionary(&self) -> Tensor<2>;

    /// The decoder bias `b_dec`, `[d_in]`.
    fn decoder_bias(&self) -> Tensor<1>;

    /// Whether the decoder rows are kept at unit norm during training.
    fn decoder_constraint(&self) -> DecoderConstraint {
        DecoderConstraint::Free
    }

    /// Gradient surgery before the optimiser step (unit-norm decoders: remove each row's
    /// gradient component parallel to the row). No-op by default.
    fn project_gradients(&self, grads: &mut GradientsParams) {
        let _ = grads;
    }

    /// Re-imposes parameter constraints after the optimiser step (unit-norm decoder rows, the
    /// archetypal simplex). Identity by default.
    fn apply_constraints(self) -> Self {
        self
    }

    /// Updates running state kept in the module (and therefore saved with it), from this
    /// step's output: BatchTopK's EMA threshold. Identity by default.
    fn update_running_state(self, output: &TrainingOutput) -> Self {
        let _ = output;
        self
    }

    /// Folds a scalar input normalisation into the weights: an SAE trained on `x · scale`
    /// becomes one that takes raw `x` and returns `x̂ / scale`, i.e. for every input
    /// `folded.forward(x) == self.forward(x · scale) / scale`.
    ///
    /// # Panics
    /// If `scale` is not finite and positive.
    fn fold_input_scale(self, scale: f64) -> Self;

    /// The inference form, with everything foldable folded (TopK decoder norms) and training
    /// forms exported as what they are at inference (BatchTopK and Matryoshka → JumpReLU).
    fn into_inference(self) -> AnySae;
}

pub(crate) fn check_scale(scale: f64) {
    assert!(
        scale.is_finite() && scale > 0.0,
        "fold_input_scale: `scale` must be finite and positive, found {scale}"
    );
}
