//! BERT's LayerNorm with TransformerLens' two hook points, `<ln>.hook_scale` and
//! `<ln>.hook_normalized`.

use burn::nn::LayerNorm;
use burn::prelude::*;

use crate::{ActivationCache, Hooks};

/// `LayerNorm(x) = (x − mean) / √(var + eps) · γ + β` over the last dimension, with
/// `{prefix}.hook_scale` (`√(var + eps)`, `[batch, pos, 1]`) and `{prefix}.hook_normalized`
/// (before γ and β, `[batch, pos, d]`) as TransformerLens' `LayerNorm` has them.
///
/// burn's [`LayerNorm`] holds γ and β (so burn-store's PyTorch adapter maps `weight`/`bias`
/// and `gamma`/`beta` onto it); the epsilon comes from the model config, since the module's
/// own is private.
pub(crate) fn layer_norm(
    ln: &LayerNorm,
    eps: f64,
    x: Tensor<3>,
    prefix: &str,
    hooks: &mut Hooks,
    cache: &mut ActivationCache,
) -> Tensor<3> {
    let d = x.dims()[2];
    let centred = x.clone() - x.mean_dim(2);
    let var = centred.clone().powi_scalar(2).mean_dim(2);
    let scale = hooks.point3(
        &format!("{prefix}.hook_scale"),
        var.add_scalar(eps).sqrt(),
        cache,
    );
    let normalized = hooks.point3(&format!("{prefix}.hook_normalized"), centred / scale, cache);
    let y = normalized * ln.gamma.val().reshape([1, 1, d]);
    match &ln.beta {
        Some(beta) => y + beta.val().reshape([1, 1, d]),
        None => y,
    }
}

/// The hook names of [`layer_norm`] under `prefix`, in execution order.
pub(crate) fn layer_norm_points(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}.hook_scale"),
        format!("{prefix}.hook_normalized"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn equals_burn_layer_norm_and_fires_both_hooks() {
        let device = crate::test_device();
        device.seed(3);
        let mut ln = LayerNormConfig::new(6).with_epsilon(1e-5).init(&device);
        ln.gamma = ln
            .gamma
            .map(|g| g.random_like(Distribution::Normal(1.0, 0.5)));
        let x = Tensor::<3>::random([2, 3, 6], Distribution::Normal(0.5, 2.0), &device);
        let mut hooks = Hooks::new().cache_all();
        let mut cache = ActivationCache::default();
        let ours = layer_norm(&ln, 1e-5, x.clone(), "ln", &mut hooks, &mut cache);
        ours.into_data()
            .assert_approx_eq::<f32>(&ln.forward(x).into_data(), Tolerance::rel_abs(1e-5, 1e-5));
        assert_eq!(cache.get("ln.hook_scale").unwrap().dims(), vec![2, 3, 1]);
        assert_eq!(
            cache.get("ln.hook_normalized").unwrap().dims(),
            vec![2, 3, 6]
        );
    }
}
