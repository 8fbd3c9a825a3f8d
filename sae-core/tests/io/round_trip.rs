//! Save → load is bit-exact for every architecture: every parameter, every hyperparameter, and
//! so every output. Checkpoint mode gives back the same module; inference mode gives back the
//! module's `into_inference` export (BatchTopK and Matryoshka as JumpReLU, archetypal as TopK).

use burn::prelude::*;
use burn::tensor::Distribution;
use sae_core::io::{SaeLensFolder, SaeLensSaveOptions, SaveMode, load_saelens, save_saelens};
use sae_core::metrics::SparsityMetrics;
use sae_core::*;

use super::{bits, config_json, device, param_bits};

const D_IN: usize = 5;
const D_SAE: usize = 12;

fn rand<const D: usize>(shape: [usize; D], lo: f64, hi: f64) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(lo, hi), &device())
}

/// One SAE of every architecture, every parameter random and every hyperparameter away from
/// its default, so that a dropped or defaulted value would show.
fn every_architecture() -> Vec<AnySae> {
    device().seed(7);
    let w_enc = || rand([D_IN, D_SAE], -1.0, 1.0);
    let w_dec = || rand([D_SAE, D_IN], -1.0, 1.0);
    let v_sae = || rand([D_SAE], -0.5, 0.5);
    let v_in = || rand([D_IN], -0.5, 0.5);
    let batch_topk_config = || {
        BatchTopKSaeConfig::new(D_IN, D_SAE, 2.5)
            .with_topk_threshold_lr(0.05)
            .with_rescale_acts_by_decoder_norm(false)
            .with_unit_norm_decoder(true)
            .with_apply_b_dec_to_input(false)
    };
    let batch_topk = |theta: f64| {
        BatchTopKSae::from_tensors(
            &batch_topk_config(),
            w_enc(),
            v_sae(),
            w_dec(),
            v_in(),
            theta,
        )
        .unwrap()
    };
    let matryoshka_config = MatryoshkaSaeConfig::new(batch_topk_config(), vec![3, 7])
        .with_inner_level_weights(Some(vec![0.5, 2.0]))
        .with_level_codes(MatryoshkaLevelCodes::Reselected);
    let mixing = {
        let m = rand([D_SAE, 7], 0.0, 1.0);
        m.clone() / m.sum_dim(1)
    };
    vec![
        ReluSae::from_tensors(
            &ReluSaeConfig::new(D_IN, D_SAE)
                .with_l1_coefficient(0.3)
                .with_lp_norm(0.7)
                .with_penalty(ReluPenalty::ConstrainedDecoder)
                .with_apply_b_dec_to_input(false),
            w_enc(),
            v_sae(),
            w_dec(),
            v_in(),
        )
        .unwrap()
        .into(),
        TopKSae::from_tensors(
            &TopKSaeConfig::new(D_IN, D_SAE, 3).with_unit_norm_decoder(true),
            w_enc(),
            v_sae(),
            w_dec(),
            v_in(),
        )
        .unwrap()
        .into(),
        batch_topk(0.137).into(),
        JumpReluSae::from_tensors(
            &JumpReluSaeConfig::new(D_IN, D_SAE)
                .with_bandwidth(0.2)
                .with_l0_coefficient(4.0)
                .with_sparsity_loss(JumpReluSparsityLoss::Tanh { tanh_scale: 3.0 })
                .with_pre_act_loss_coefficient(Some(3e-6))
                .with_apply_b_dec_to_input(false),
            w_enc(),
            v_sae(),
            w_dec(),
            v_in(),
            rand([D_SAE], 0.001, 0.3),
        )
        .unwrap()
        .into(),
        GatedSae::from_tensors(
            &GatedSaeConfig::new(D_IN, D_SAE)
                .with_l1_coefficient(0.4)
                .with_penalty(ReluPenalty::DecoderNormWeighted)
                .with_detach_aux_decoder(false),
            w_enc(),
            v_sae(),
            v_sae(),
            v_sae(),
            w_dec(),
            v_in(),
        )
        .unwrap()
        .into(),
        MatryoshkaSae::from_base(&matryoshka_config, batch_topk(0.25)).into(),
        AbsTopKSae::from_tensors(
            &AbsTopKSaeConfig::new(D_IN, D_SAE, 4).with_rescale_acts_by_decoder_norm(false),
            w_enc(),
            v_sae(),
            w_dec(),
            v_in(),
        )
        .unwrap()
        .into(),
        MatchingPursuitSae::from_tensors(
            &MatchingPursuitSaeConfig::new(D_IN, D_SAE)
                .with_residual_threshold(0.05)
                .with_max_iterations(Some(4))
                .with_stop_on_duplicate_support(false),
            w_dec(),
            v_in(),
        )
        .unwrap()
        .into(),
        TopAfaSae::from_tensors(
            &TopAfaSaeConfig::new(D_IN, D_SAE)
                .with_afa_coefficient(0.1)
                .with_l1_coefficient(0.01)
                .with_input_unit_norm(false),
            w_enc(),
            w_dec(),
            v_in(),
        )
        .unwrap()
        .into(),
        ArchetypalSae::from_tensors(
            &ArchetypalSaeConfig::new(D_IN, D_SAE, 3)
                .with_delta(0.5)
                .with_use_multiplier(false)
                .with_apply_b_dec_to_input(true),
            w_enc(),
            v_sae(),
            rand([7, D_IN], -1.0, 1.0),
            mixing,
            rand([D_SAE, D_IN], -0.1, 0.1),
            0.3,
            v_in(),
        )
        .unwrap()
        .into(),
    ]
}

#[test]
fn all_ten_architectures_are_covered() {
    let archs: Vec<_> = every_architecture()
        .iter()
        .map(|s| s.architecture())
        .collect();
    assert_eq!(archs, Architecture::ALL.to_vec());
}

#[test]
fn checkpoint_save_then_load_is_bit_exact_for_every_architecture() {
    let x = rand([6, D_IN], -2.0, 2.0);
    for sae in every_architecture() {
        let name = sae.architecture().name();
        let dir = tempfile::tempdir().unwrap();
        let options = SaeLensSaveOptions::new().with_mode(SaveMode::Checkpoint);
        save_saelens(&sae, dir.path(), &options).unwrap();
        let loaded = load_saelens(dir.path(), &device()).unwrap().sae;
        assert_eq!(loaded.architecture(), sae.architecture(), "{name}");
        assert_eq!(param_bits(&loaded), param_bits(&sae), "{name}: parameters");
        assert_eq!(
            config_json(&loaded),
            config_json(&sae),
            "{name}: hyperparameters"
        );
        assert_eq!(
            bits(loaded.forward(x.clone())),
            bits(sae.forward(x.clone())),
            "{name}: forward"
        );
    }
}

#[test]
fn inference_save_then_load_is_bit_exact_against_the_export() {
    let x = rand([6, D_IN], -2.0, 2.0);
    for sae in every_architecture() {
        let name = sae.architecture().name();
        let theta = match &sae {
            AnySae::BatchTopK(s) => Some(s.threshold() as f32),
            AnySae::Matryoshka(s) => Some(s.base.threshold() as f32),
            _ => None,
        };
        let dir = tempfile::tempdir().unwrap();
        save_saelens(&sae, dir.path(), &SaeLensSaveOptions::new()).unwrap();
        let export = sae.clone().into_inference();
        let loaded = load_saelens(dir.path(), &device()).unwrap().sae;
        assert_eq!(loaded.architecture(), export.architecture(), "{name}");
        if let Some(theta) = theta {
            // BatchTopK → jumprelu exactly as SAELens writes it: threshold = θ·1, bit for bit.
            assert_eq!(loaded.architecture(), Architecture::JumpRelu);
            let folder = SaeLensFolder::read(dir.path()).unwrap();
            let written = folder.tensors["threshold"].data();
            assert!(
                written.iter().all(|v| v.to_bits() == theta.to_bits()),
                "{name}"
            );
            // The export computes ln θ on the device, the reader on the host in f64: at most one
            // ulp apart; every other parameter is exact.
            let (AnySae::JumpRelu(a), AnySae::JumpRelu(b)) = (&loaded, &export) else {
                unreachable!()
            };
            for (p, q) in bits(a.log_threshold.val())
                .iter()
                .zip(bits(b.log_threshold.val()))
            {
                assert!(p.abs_diff(q) <= 1, "{name}: log_threshold");
            }
            for (p, q) in [(&a.W_enc, &b.W_enc), (&a.W_dec, &b.W_dec)] {
                assert_eq!(bits(p.val()), bits(q.val()), "{name}");
            }
            assert_eq!(bits(a.b_enc.val()), bits(b.b_enc.val()), "{name}");
            assert_eq!(bits(a.b_dec.val()), bits(b.b_dec.val()), "{name}");
        } else {
            assert_eq!(
                param_bits(&loaded),
                param_bits(&export),
                "{name}: parameters"
            );
            assert_eq!(
                config_json(&loaded),
                config_json(&export),
                "{name}: hyperparameters"
            );
            assert_eq!(
                bits(loaded.forward(x.clone())),
                bits(export.forward(x.clone())),
                "{name}: forward"
            );
        }
    }
}

#[test]
fn inference_names_match_saelens() {
    let expected = [
        "standard",
        "topk",
        "jumprelu",
        "jumprelu",
        "gated",
        "jumprelu",
        "abstopk",
        "matching_pursuit",
        "top_afa",
        "topk",
    ];
    for (sae, want) in every_architecture().iter().zip(expected) {
        let folder = SaeLensFolder::from_sae(sae, &SaeLensSaveOptions::new()).unwrap();
        assert_eq!(folder.config.architecture.name(), want);
        let json = folder.config.to_json();
        assert_eq!(json["architecture"], want);
        assert!(
            json["metadata"]["sae_lens_version"]
                .as_str()
                .unwrap()
                .starts_with('6')
        );
    }
}

#[test]
fn saelens_tensor_names_and_orientations() {
    let saes = every_architecture();
    let folder = SaeLensFolder::from_sae(&saes[4], &SaeLensSaveOptions::new()).unwrap();
    let names: Vec<_> = folder.tensors.keys().cloned().collect();
    assert_eq!(
        names,
        ["W_dec", "W_enc", "b_dec", "b_gate", "b_mag", "r_mag"]
    );
    assert_eq!(folder.tensors["W_enc"].shape(), &[D_IN, D_SAE]);
    assert_eq!(folder.tensors["W_dec"].shape(), &[D_SAE, D_IN]);
    let ckpt = SaeLensSaveOptions::new().with_mode(SaveMode::Checkpoint);
    let folder = SaeLensFolder::from_sae(&saes[2], &ckpt).unwrap();
    assert_eq!(folder.config.architecture.name(), "batchtopk");
    assert_eq!(folder.tensors["topk_threshold"].shape(), &[] as &[usize]);
    assert_eq!(folder.config.k, Some(2.5));
}

#[test]
fn sparsity_and_metadata_are_written_and_read() {
    let sae = &every_architecture()[1];
    let codes = sae.encode(rand([40, D_IN], -2.0, 2.0));
    let mut sparsity = SparsityMetrics::new();
    sparsity.update(&codes);
    let report = sparsity.report().unwrap();
    let options = SaeLensSaveOptions::new()
        .with_sparsity(&report)
        .with_metadata("hook_name", "blocks.6.hook_resid_post")
        .with_metadata("context_size", 1024);
    let dir = tempfile::tempdir().unwrap();
    save_saelens(sae, dir.path(), &options).unwrap();
    let loaded = load_saelens(dir.path(), &device()).unwrap();
    assert_eq!(loaded.log10_sparsity, Some(report.log10_sparsity()));
    assert_eq!(loaded.config.metadata["context_size"], 1024);
    // Saving again without sparsity removes the stale file.
    save_saelens(sae, dir.path(), &SaeLensSaveOptions::new()).unwrap();
    assert!(
        load_saelens(dir.path(), &device())
            .unwrap()
            .log10_sparsity
            .is_none()
    );
}
