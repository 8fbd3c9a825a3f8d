//! Hook points: read (cache) and write (replace, add, ablate) activations by TransformerLens name.
//!
//! A model calls [`Hooks::point3`] / [`Hooks::point4`] at every hook point of its forward pass,
//! in execution order. Write hooks registered for that name run first, in registration order,
//! each receiving the previous one's output; the cache then records the final value, which is
//! what the rest of the model consumes (TransformerLens' `run_with_hooks` + `run_with_cache`
//! with the cache hooks registered last).
//!
//! Names are TransformerLens' exactly (`blocks.12.hook_resid_post`, `blocks.3.attn.hook_z`,
//! `hook_embed`, `ln_final.hook_normalized`, ...); [`names`] builds them, and each model lists its
//! own with `hook_points()`. Shapes follow TransformerLens: `[batch, pos, d_model]` for the
//! residual stream, `[batch, pos, heads, d_head]` for q/k/v/z, `[batch, heads, query, key]` for
//! scores and pattern, `[batch, pos, 1]` for norm scales.

use std::collections::{BTreeMap, BTreeSet};

use burn::prelude::*;

use crate::{Error, Result};

/// The value at a hook point: every TransformerLens hook is rank 3 or rank 4.
#[derive(Clone, Debug)]
pub enum Activation {
    /// `[batch, pos, d]` (residual stream, MLP activations, logits, norm scales `[batch, pos, 1]`).
    Rank3(Tensor<3>),
    /// `[batch, pos, heads, d_head]` (q, k, v, z, rot_q, rot_k) or `[batch, heads, query, key]`
    /// (attention scores and pattern).
    Rank4(Tensor<4>),
}

impl Activation {
    /// The shape.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Activation::Rank3(t) => t.dims().to_vec(),
            Activation::Rank4(t) => t.dims().to_vec(),
        }
    }

    /// The rank-3 tensor, if this is one.
    pub fn into_rank3(self) -> Option<Tensor<3>> {
        match self {
            Activation::Rank3(t) => Some(t),
            Activation::Rank4(_) => None,
        }
    }

    /// The rank-4 tensor, if this is one.
    pub fn into_rank4(self) -> Option<Tensor<4>> {
        match self {
            Activation::Rank4(t) => Some(t),
            Activation::Rank3(_) => None,
        }
    }

    /// The activation with its heads flattened into the last dimension: `[batch, pos, heads,
    /// d_head]` becomes `[batch, pos, heads · d_head]` (what SAELens `hook_z` SAEs read); rank-3
    /// values come back unchanged.
    pub fn flatten_heads(self) -> Tensor<3> {
        match self {
            Activation::Rank3(t) => t,
            Activation::Rank4(t) => {
                let [b, p, h, d] = t.dims();
                t.reshape([b, p, h * d])
            }
        }
    }
}

/// A write hook: gets the hook point's name and value, returns the value the model continues with.
pub type HookFn = Box<dyn FnMut(&str, Activation) -> Activation + Send>;

/// Which hook points a write hook applies to.
enum Matcher {
    Name(String),
    Predicate(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Matcher {
    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Name(n) => n == name,
            Matcher::Predicate(p) => p(name),
        }
    }
}

/// Which hook points to cache (TransformerLens' `names_filter`).
enum CacheFilter {
    Nothing,
    All,
    Names(BTreeSet<String>),
    Predicate(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

/// What a run reads and writes: cached hook points, write hooks, attention overrides and an
/// optional early stop.
///
/// ```
/// use burn::prelude::*;
/// use hooked_transformer::{Activation, Hooks, names};
///
/// let device = Device::flex();
/// let steer = Tensor::<1>::from_floats([0.5, -0.5, 0.0, 1.0], &device);
/// let mut hooks = Hooks::new()
///     .cache([names::resid_post(0)])
///     .add_vector(names::resid_post(0), steer)
///     .stop_at_layer(1);
/// // A model's `run(tokens, &mut hooks)` now adds the vector to block 0's output, caches the
/// // steered value and returns the residual after block 0 without running later blocks.
/// let x = Tensor::<3>::zeros([1, 2, 4], &device);
/// let mut cache = hooked_transformer::ActivationCache::default();
/// let y = hooks.point3(&names::resid_post(0), x, &mut cache);
/// assert_eq!(y.clone().sum().into_scalar::<f32>(), 2.0);
/// assert!(cache.get3(&names::resid_post(0)).is_some());
/// ```
pub struct Hooks {
    cache: CacheFilter,
    writes: Vec<(Matcher, HookFn)>,
    attention: BTreeMap<usize, Box<dyn crate::AttentionOverride>>,
    stop_at_layer: Option<usize>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("write_hooks", &self.writes.len())
            .field(
                "attention_overrides",
                &self.attention.keys().collect::<Vec<_>>(),
            )
            .field("stop_at_layer", &self.stop_at_layer)
            .finish()
    }
}

impl Hooks {
    /// No hooks: a plain forward pass.
    pub fn new() -> Self {
        Self {
            cache: CacheFilter::Nothing,
            writes: Vec::new(),
            attention: BTreeMap::new(),
            stop_at_layer: None,
        }
    }

    /// Cache these hook points (TransformerLens `names_filter` as a list).
    pub fn cache<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = match std::mem::replace(&mut self.cache, CacheFilter::Nothing) {
            CacheFilter::Names(set) => set,
            _ => BTreeSet::new(),
        };
        set.extend(names.into_iter().map(Into::into));
        self.cache = CacheFilter::Names(set);
        self
    }

    /// Cache every hook point (attention scores and pattern included: they are `T × T`).
    pub fn cache_all(mut self) -> Self {
        self.cache = CacheFilter::All;
        self
    }

    /// Cache the hook points whose name satisfies `filter`.
    pub fn cache_where(mut self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.cache = CacheFilter::Predicate(Box::new(filter));
        self
    }

    /// Run `hook` at the point `name`; its return value replaces the activation.
    pub fn hook(
        mut self,
        name: impl Into<String>,
        hook: impl FnMut(&str, Activation) -> Activation + Send + 'static,
    ) -> Self {
        self.writes
            .push((Matcher::Name(name.into()), Box::new(hook)));
        self
    }

    /// Run `hook` at every point whose name satisfies `filter`.
    pub fn hook_where(
        mut self,
        filter: impl Fn(&str) -> bool + Send + Sync + 'static,
        hook: impl FnMut(&str, Activation) -> Activation + Send + 'static,
    ) -> Self {
        self.writes
            .push((Matcher::Predicate(Box::new(filter)), Box::new(hook)));
        self
    }

    /// Replace a rank-3 activation (`[batch, pos, d]`) by `f(x)`: an SAE reconstruction, a
    /// patched value.
    ///
    /// # Panics
    /// At run time, if the hook point is rank 4 (use [`Hooks::hook`] for q/k/v/z and patterns).
    pub fn replace3(
        self,
        name: impl Into<String>,
        mut f: impl FnMut(Tensor<3>) -> Tensor<3> + Send + 'static,
    ) -> Self {
        self.hook(name, move |n, a| match a {
            Activation::Rank3(t) => Activation::Rank3(f(t)),
            Activation::Rank4(_) => panic!("replace3 on rank-4 hook point `{n}`: expected rank 3"),
        })
    }

    /// Add `vector` (`[d]`) at every position of a rank-3 hook point: a steering vector.
    ///
    /// # Panics
    /// At run time, if the hook point is not rank 3 or its last dimension is not `vector`'s length.
    pub fn add_vector(self, name: impl Into<String>, vector: Tensor<1>) -> Self {
        self.replace3(name, move |x| {
            let d = x.dims()[2];
            assert_eq!(
                vector.dims()[0],
                d,
                "add_vector: vector length expected {d} (the hook's last dimension), found {}",
                vector.dims()[0]
            );
            x + vector.clone().reshape([1, 1, d])
        })
    }

    /// Zero-ablate a hook point (every position, as SAELens' zero-ablation eval does).
    pub fn zero_ablate(self, name: impl Into<String>) -> Self {
        self.hook(name, |_, a| match a {
            Activation::Rank3(t) => Activation::Rank3(t.zeros_like()),
            Activation::Rank4(t) => Activation::Rank4(t.zeros_like()),
        })
    }

    /// Run attention of `layer` through `attend` instead of dense softmax attention.
    pub fn attention_override(
        mut self,
        layer: usize,
        attend: impl crate::AttentionOverride + 'static,
    ) -> Self {
        self.attention.insert(layer, Box::new(attend));
        self
    }

    /// Stop after block `layer - 1` and return its `resid_post` (TransformerLens
    /// `stop_at_layer`: blocks `0..layer` run; `0` runs only the embeddings).
    pub fn stop_at_layer(mut self, layer: usize) -> Self {
        self.stop_at_layer = Some(layer);
        self
    }

    /// The early stop, if any.
    pub fn stop_layer(&self) -> Option<usize> {
        self.stop_at_layer
    }

    /// Whether anything reads or writes `name`: models skip computing values nobody asked for
    /// (attention scores and pattern are only materialised when this is true).
    pub fn is_active(&self, name: &str) -> bool {
        let cached = match &self.cache {
            CacheFilter::Nothing => false,
            CacheFilter::All => true,
            CacheFilter::Names(set) => set.contains(name),
            CacheFilter::Predicate(p) => p(name),
        };
        cached || self.writes.iter().any(|(m, _)| m.matches(name))
    }

    /// The attention override of `layer`, if one is set.
    pub fn attention_for(
        &mut self,
        layer: usize,
    ) -> Option<&mut (dyn crate::AttentionOverride + 'static)> {
        self.attention.get_mut(&layer).map(|b| b.as_mut())
    }

    /// Checks every hook name given by exact name against the model's hook points, so a typo
    /// (or an SAE config for another model) is an error before anything runs.
    ///
    /// # Errors
    /// [`Error::UnknownHookPoint`] naming the first unknown name.
    pub fn check_names(&self, points: &[String], n_layers: usize) -> Result<()> {
        let known: BTreeSet<&str> = points.iter().map(String::as_str).collect();
        let explicit = self.writes.iter().filter_map(|(m, _)| match m {
            Matcher::Name(n) => Some(n.as_str()),
            Matcher::Predicate(_) => None,
        });
        let cached: Vec<&str> = match &self.cache {
            CacheFilter::Names(set) => set.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        for name in explicit.chain(cached) {
            if !known.contains(name) {
                return Err(Error::UnknownHookPoint {
                    name: name.to_string(),
                    hint: hint_for(name, points),
                });
            }
        }
        if let Some(&layer) = self.attention.keys().find(|&&l| l >= n_layers) {
            return Err(Error::UnknownHookPoint {
                name: format!("attention override for layer {layer}"),
                hint: format!("the model has layers 0..{n_layers}"),
            });
        }
        if let Some(stop) = self.stop_at_layer.filter(|&s| s > n_layers) {
            return Err(Error::UnknownHookPoint {
                name: format!("stop_at_layer({stop})"),
                hint: format!("the model has {n_layers} layers"),
            });
        }
        Ok(())
    }

    /// The hook point `name` of rank 3: runs the write hooks, caches, returns the value the
    /// model continues with.
    ///
    /// # Panics
    /// If a write hook turns the value into a rank-4 one or changes its shape.
    pub fn point3(&mut self, name: &str, x: Tensor<3>, cache: &mut ActivationCache) -> Tensor<3> {
        match self.point(name, Activation::Rank3(x), cache) {
            Activation::Rank3(t) => t,
            Activation::Rank4(_) => {
                panic!("hook at `{name}` returned a rank-4 value: expected rank 3")
            }
        }
    }

    /// The hook point `name` of rank 4; see [`Hooks::point3`].
    ///
    /// # Panics
    /// If a write hook turns the value into a rank-3 one or changes its shape.
    pub fn point4(&mut self, name: &str, x: Tensor<4>, cache: &mut ActivationCache) -> Tensor<4> {
        match self.point(name, Activation::Rank4(x), cache) {
            Activation::Rank4(t) => t,
            Activation::Rank3(_) => {
                panic!("hook at `{name}` returned a rank-3 value: expected rank 4")
            }
        }
    }

    fn point(&mut self, name: &str, x: Activation, cache: &mut ActivationCache) -> Activation {
        let before = x.dims();
        let mut value = x;
        for (matcher, hook) in self.writes.iter_mut() {
            if matcher.matches(name) {
                value = hook(name, value);
                assert_eq!(
                    value.dims(),
                    before,
                    "hook at `{name}` changed the shape: expected {before:?}, found {:?}",
                    value.dims()
                );
            }
        }
        let cached = match &self.cache {
            CacheFilter::Nothing => false,
            CacheFilter::All => true,
            CacheFilter::Names(set) => set.contains(name),
            CacheFilter::Predicate(p) => p(name),
        };
        if cached {
            cache.insert(name.to_string(), value.clone());
        }
        value
    }
}

fn hint_for(name: &str, points: &[String]) -> String {
    // The valid name sharing the longest prefix is the likeliest intended one.
    let best = points.iter().max_by_key(|p| {
        p.bytes()
            .zip(name.bytes())
            .take_while(|(a, b)| a == b)
            .count()
    });
    match best {
        Some(p) => format!("closest valid name: `{p}`"),
        None => "the model has no hook points".to_string(),
    }
}

/// Cached activations by hook name (TransformerLens' `ActivationCache`).
#[derive(Clone, Debug, Default)]
pub struct ActivationCache {
    values: BTreeMap<String, Activation>,
}

impl ActivationCache {
    /// Records `value` under `name` (replacing an earlier value).
    pub fn insert(&mut self, name: String, value: Activation) {
        self.values.insert(name, value);
    }

    /// The value at `name`.
    pub fn get(&self, name: &str) -> Option<&Activation> {
        self.values.get(name)
    }

    /// The rank-3 value at `name` (a clone: burn tensors share their buffer).
    pub fn get3(&self, name: &str) -> Option<Tensor<3>> {
        self.values
            .get(name)
            .cloned()
            .and_then(Activation::into_rank3)
    }

    /// The rank-4 value at `name`.
    pub fn get4(&self, name: &str) -> Option<Tensor<4>> {
        self.values
            .get(name)
            .cloned()
            .and_then(Activation::into_rank4)
    }

    /// Removes and returns the value at `name`.
    pub fn remove(&mut self, name: &str) -> Option<Activation> {
        self.values.remove(name)
    }

    /// The cached names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The number of cached points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was cached.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// TransformerLens hook names.
pub mod names {
    /// `hook_embed`: token embeddings `[batch, pos, d_model]`.
    pub const EMBED: &str = "hook_embed";
    /// `hook_pos_embed` (absolute-position models only).
    pub const POS_EMBED: &str = "hook_pos_embed";
    /// `ln_final.hook_scale`.
    pub const LN_FINAL_SCALE: &str = "ln_final.hook_scale";
    /// `ln_final.hook_normalized` (before the norm's weight).
    pub const LN_FINAL_NORMALIZED: &str = "ln_final.hook_normalized";
    /// `unembed.hook_in`: the final norm's output (after its weight).
    pub const UNEMBED_IN: &str = "unembed.hook_in";
    /// `unembed.hook_out`: the logits `[batch, pos, vocab]`.
    pub const LOGITS: &str = "unembed.hook_out";

    /// `blocks.{layer}.{point}`, e.g. `block(3, "hook_resid_pre")`.
    pub fn block(layer: usize, point: &str) -> String {
        format!("blocks.{layer}.{point}")
    }
    /// `blocks.L.hook_resid_pre`: the block's input.
    pub fn resid_pre(layer: usize) -> String {
        block(layer, "hook_resid_pre")
    }
    /// `blocks.L.hook_resid_mid`: after attention, before the MLP.
    pub fn resid_mid(layer: usize) -> String {
        block(layer, "hook_resid_mid")
    }
    /// `blocks.L.hook_resid_post`: the block's output.
    pub fn resid_post(layer: usize) -> String {
        block(layer, "hook_resid_post")
    }
    /// `blocks.L.hook_attn_out`.
    pub fn attn_out(layer: usize) -> String {
        block(layer, "hook_attn_out")
    }
    /// `blocks.L.hook_mlp_out`.
    pub fn mlp_out(layer: usize) -> String {
        block(layer, "hook_mlp_out")
    }
    /// `blocks.L.attn.hook_{point}` for `q`, `k`, `v`, `z`, `rot_q`, `rot_k`, `attn_scores`,
    /// `pattern`.
    pub fn attn(layer: usize, point: &str) -> String {
        format!("blocks.{layer}.attn.hook_{point}")
    }
    /// `blocks.L.mlp.hook_{point}` for `pre`, `pre_linear`, `post`.
    pub fn mlp(layer: usize, point: &str) -> String {
        format!("blocks.{layer}.mlp.hook_{point}")
    }
    /// `blocks.L.{ln}.hook_{scale|normalized}` for `ln1`, `ln2`.
    pub fn ln(layer: usize, ln: &str, point: &str) -> String {
        format!("blocks.{layer}.{ln}.hook_{point}")
    }

    /// TransformerLens' `get_act_name(kind, layer)`: `("resid_pre", 3)` →
    /// `blocks.3.hook_resid_pre`, `("z", 5)` → `blocks.5.attn.hook_z`, `("post", 2)` →
    /// `blocks.2.mlp.hook_post`; aliases `attn` → `pattern`, `attn_logits` → `attn_scores`.
    /// `None` for a kind it does not know.
    pub fn act_name(kind: &str, layer: usize) -> Option<String> {
        Some(match kind {
            "resid_pre" | "resid_mid" | "resid_post" | "attn_out" | "mlp_out" => {
                block(layer, &format!("hook_{kind}"))
            }
            "q" | "k" | "v" | "z" | "rot_q" | "rot_k" | "pattern" | "attn_scores" | "result" => {
                attn(layer, kind)
            }
            "attn" => attn(layer, "pattern"),
            "attn_logits" => attn(layer, "attn_scores"),
            "pre" | "post" | "pre_linear" => mlp(layer, kind),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    #[test]
    fn write_hooks_run_in_order_and_cache_sees_the_result() {
        let d = dev();
        let mut hooks = Hooks::new()
            .cache(["p"])
            .replace3("p", |x| x + 1.0)
            .replace3("p", |x| x * 3.0);
        let mut cache = ActivationCache::default();
        let y = hooks.point3("p", Tensor::<3>::zeros([1, 1, 2], &d), &mut cache);
        let v: Vec<f32> = y.into_data().try_to_vec().unwrap();
        assert_eq!(v, vec![3.0, 3.0]);
        let c: Vec<f32> = cache.get3("p").unwrap().into_data().try_to_vec().unwrap();
        assert_eq!(c, vec![3.0, 3.0]);
        // Other names are untouched and uncached.
        let z = hooks.point3("q", Tensor::<3>::ones([1, 1, 2], &d), &mut cache);
        assert_eq!(z.sum().into_scalar::<f32>(), 2.0);
        assert!(cache.get("q").is_none());
    }

    #[test]
    fn unknown_names_are_typed_errors_with_a_hint() {
        let hooks = Hooks::new().cache(["blocks.0.hook_resid_pots"]);
        let points = vec![names::resid_post(0), names::resid_pre(0)];
        let err = hooks.check_names(&points, 1).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("blocks.0.hook_resid_pots"), "{msg}");
        assert!(msg.contains("blocks.0.hook_resid_post"), "{msg}");
        assert!(
            Hooks::new()
                .stop_at_layer(2)
                .check_names(&points, 1)
                .is_err()
        );
        assert!(
            Hooks::new()
                .stop_at_layer(1)
                .check_names(&points, 1)
                .is_ok()
        );
    }

    #[test]
    #[should_panic(expected = "changed the shape")]
    fn a_hook_that_changes_the_shape_panics() {
        let d = dev();
        let mut hooks = Hooks::new().replace3("p", |x| x.slice(burn::tensor::s![.., 0..1, ..]));
        let mut cache = ActivationCache::default();
        hooks.point3("p", Tensor::<3>::zeros([1, 2, 2], &d), &mut cache);
    }

    #[test]
    fn act_name_matches_transformer_lens() {
        assert_eq!(
            names::act_name("resid_pre", 3).unwrap(),
            "blocks.3.hook_resid_pre"
        );
        assert_eq!(names::act_name("z", 5).unwrap(), "blocks.5.attn.hook_z");
        assert_eq!(
            names::act_name("attn", 1).unwrap(),
            "blocks.1.attn.hook_pattern"
        );
        assert_eq!(
            names::act_name("post", 2).unwrap(),
            "blocks.2.mlp.hook_post"
        );
        assert!(names::act_name("nonsense", 0).is_none());
    }
}
