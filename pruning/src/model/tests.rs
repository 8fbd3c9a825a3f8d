//! End-to-end tests of model pruning on small burn modules.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;

use crate::{
    Amount, Error, HostTensor, Mask, NmPattern, ParamFilter, Pruner, PruningMethod, apply_masks,
    is_pruned, load_pruned, masks, remove, satisfies_nm, sparsity_report,
};

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    head: Linear,
}

fn mlp(device: &Device) -> Mlp {
    device.seed(3);
    Mlp {
        fc1: LinearConfig::new(8, 16).init(device),
        fc2: LinearConfig::new(16, 16).init(device),
        head: LinearConfig::new(16, 4).init(device),
    }
}

fn host<const D: usize>(t: Tensor<D>) -> HostTensor {
    HostTensor::from_tensor(&t, "t").unwrap()
}

#[test]
fn forward_uses_masked_weights_and_dense_ones_are_kept() {
    let device = crate::test_device();
    let model = mlp(&device);
    let dense = host(model.fc1.weight.val());
    let model = Pruner::new(PruningMethod::nm(2, 4).unwrap())
        .filter(ParamFilter::linear_weights().exclude("head.*"))
        .apply(model)
        .unwrap();
    assert!(is_pruned(&model));
    let m = masks(&model).unwrap();
    assert_eq!(m.len(), 2);
    let mask = &m["fc1.weight"];
    assert!(satisfies_nm(mask, NmPattern::new(2, 4).unwrap(), 0));
    assert_eq!(mask.kept(), 64);
    // base() is dense, val() is masked.
    assert_eq!(host(model.fc1.weight.base()), dense);
    let mut expected = dense.values().to_vec();
    mask.apply(&mut expected);
    assert_eq!(host(model.fc1.weight.val()).values(), &expected[..]);
    // The forward pass computes with the masked weight.
    let x = Tensor::<2>::ones([1, 8], &device);
    let y = model.fc1.forward(x.clone());
    let manual =
        x.matmul(model.fc1.weight.val()) + model.fc1.bias.as_ref().unwrap().val().unsqueeze();
    y.into_data()
        .assert_approx_eq::<f32>(&manual.into_data(), burn::tensor::Tolerance::default());
    // remove() makes the mask permanent.
    let plain = remove(model);
    assert!(!is_pruned(&plain));
    assert_eq!(host(plain.fc1.weight.val()).values(), &expected[..]);
}

#[test]
fn gradients_reach_the_dense_weight_masked_and_training_keeps_zeros() {
    let device = crate::test_device().autodiff();
    let model = Pruner::new(PruningMethod::Magnitude(Amount::Fraction(0.5)))
        .apply(mlp(&device))
        .unwrap();
    let mask = masks(&model).unwrap()["fc2.weight"].clone();
    let x = Tensor::<2>::ones([2, 8], &device);
    let loss = model
        .head
        .forward(model.fc2.forward(model.fc1.forward(x)))
        .sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let g = grads
        .get::<2>(model.fc2.weight.id)
        .expect("dense weight has a gradient");
    let g = HostTensor::from_tensor(&g, "g").unwrap();
    for (v, k) in g.values().iter().zip(mask.as_slice()) {
        if !k {
            assert_eq!(*v, 0.0);
        }
    }
    let mut optim = SgdConfig::new().init();
    let model = optim.step(0.1, model, grads);
    // The mask survives the optimiser step and still zeroes the forward weight.
    assert_eq!(masks(&model).unwrap()["fc2.weight"], mask);
    let eff = host(model.fc2.weight.val().inner());
    for (v, k) in eff.values().iter().zip(mask.as_slice()) {
        if !k {
            assert_eq!(*v, 0.0);
        }
    }
}

#[test]
fn compounding_and_global_pruning_on_a_model() {
    let device = crate::test_device();
    let model = Pruner::new(PruningMethod::Magnitude(Amount::Fraction(0.2)))
        .apply(mlp(&device))
        .unwrap();
    let model = Pruner::new(PruningMethod::Magnitude(Amount::Fraction(0.2)))
        .apply(model)
        .unwrap();
    let r = sparsity_report(&model, &ParamFilter::linear_weights(), &[]).unwrap();
    // fc1: 128 → 26 then round(0.2·102)=20 → 46 pruned.
    assert_eq!(r.tensors[0].masked, 46);
    let model = Pruner::new(PruningMethod::GlobalMagnitude(Amount::Count(10)))
        .apply(model)
        .unwrap();
    let r2 = sparsity_report(&model, &ParamFilter::linear_weights(), &[]).unwrap();
    assert_eq!(r2.masked(), r.masked() + 10);
    let text = r2.to_string();
    assert!(
        text.contains("fc1.weight") && text.contains("total"),
        "{text}"
    );
}

#[test]
fn errors_are_named_and_nothing_is_skipped_silently() {
    let device = crate::test_device();
    // fc1 has d_in = 8: fits 2:4 but not 3:5.
    let err = Pruner::new(PruningMethod::nm(3, 5).unwrap())
        .apply(mlp(&device))
        .unwrap_err();
    match err {
        Error::ShapeNotEligible { tensor, .. } => assert_eq!(tensor, "fc1.weight"),
        other => panic!("unexpected {other}"),
    }
    let err = Pruner::new(PruningMethod::nm(2, 4).unwrap())
        .filter(ParamFilter::paths(["nothing.*"]))
        .apply(mlp(&device))
        .unwrap_err();
    assert!(matches!(err, Error::NoMatch { .. }), "{err}");
    // Embedding has no known input dimension until given one.
    #[derive(Module, Debug)]
    struct Emb {
        emb: Embedding,
    }
    let e = Emb {
        emb: EmbeddingConfig::new(10, 8).init(&device),
    };
    let f = ParamFilter::none().layer("Embedding", "weight");
    assert!(
        Pruner::new(PruningMethod::nm(2, 4).unwrap())
            .filter(f.clone())
            .apply(e.clone())
            .is_err()
    );
    let e = Pruner::new(PruningMethod::nm(2, 4).unwrap())
        .filter(f)
        .input_dim("emb.weight", 1)
        .apply(e)
        .unwrap();
    assert!(satisfies_nm(
        &masks(&e).unwrap()["emb.weight"],
        NmPattern::new(2, 4).unwrap(),
        1
    ));
}

#[test]
fn masks_are_saved_and_loaded_with_the_model() {
    let device = crate::test_device();
    let model = Pruner::new(PruningMethod::Magnitude(Amount::Fraction(0.7)))
        .filter(ParamFilter::linear_weights().exclude("head.*"))
        .apply(mlp(&device))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlp.bpk");
    model.clone().save_file(&path).unwrap();
    let loaded = load_pruned(mlp(&Device::flex()), &path).unwrap();
    assert_eq!(masks(&loaded).unwrap(), masks(&model).unwrap());
    assert_eq!(
        host(loaded.fc2.weight.base()),
        host(model.fc2.weight.base())
    );
    // A plain model refuses the pruned file instead of dropping the masks.
    assert!(mlp(&device).try_load_file(&path).is_err());
    // A corrupt file is an error, not a panic.
    std::fs::write(&path, b"not a burnpack").unwrap();
    assert!(matches!(
        load_pruned(mlp(&device), &path),
        Err(Error::Store { .. })
    ));
}

#[test]
fn custom_masks_and_scores() {
    let device = crate::test_device();
    let mut keep = vec![true; 64];
    keep[0] = false;
    let custom = Mask::from_vec(keep, &[16, 4]).unwrap();
    let model = apply_masks(
        mlp(&device),
        &[("head.weight".to_string(), custom.clone())].into(),
    )
    .unwrap();
    assert_eq!(masks(&model).unwrap()["head.weight"], custom);
    // Importance scores replace |w|: prune where the score is small.
    let scores = HostTensor::new((0..64).map(|i| i as f32).collect(), &[16, 4], "s").unwrap();
    let model = Pruner::new(PruningMethod::Magnitude(Amount::Count(3)))
        .filter(ParamFilter::paths(["head.weight"]))
        .scores("head.weight", scores)
        .apply(model)
        .unwrap();
    let m = &masks(&model).unwrap()["head.weight"];
    assert_eq!(&m.as_slice()[..5], &[false, false, false, false, true]);
    let bad = HostTensor::new(vec![0.0; 4], &[2, 2], "s").unwrap();
    assert!(
        Pruner::new(PruningMethod::Magnitude(Amount::Count(1)))
            .scores("head.weight", bad)
            .apply(mlp(&device))
            .is_err()
    );
}
