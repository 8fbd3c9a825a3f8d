//! Controls for explanation scores: what a score means depends on what a wrong explanation
//! gets (the sanity-check papers show raw scores barely separate trained from random SAEs).

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::judge::Explanation;
use crate::text::TokenText;

/// A random-explanation control in the token-list form of
/// [`crate::judge::TokenListExplainer`]: `n_keywords` distinct token ids drawn uniformly from
/// `0..vocab_size` (seeded), named by `vocab`.
///
/// # Panics
/// If `n_keywords > vocab_size`.
pub fn random_token_explanation(
    vocab: &dyn TokenText,
    vocab_size: u32,
    n_keywords: usize,
    seed: u64,
) -> Explanation {
    assert!(
        n_keywords <= vocab_size as usize,
        "random_token_explanation: n_keywords {n_keywords} exceeds vocab_size {vocab_size}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ids: Vec<u32> = Vec::with_capacity(n_keywords);
    while ids.len() < n_keywords {
        let id = rng.random_range(0..vocab_size);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let names: Vec<String> = ids
        .iter()
        .map(|&id| format!("\"{}\"", vocab.token_text(id).trim().replace('"', "'")))
        .collect();
    Explanation::new(format!("Fires on the tokens {}.", names.join(", ")))
}

/// The shuffled-latent control: `explanations[i]` of latent `i` replaced by the explanation
/// of another latent, a seeded random derangement (no latent keeps its own). With fewer than
/// two explanations there is nothing to shuffle and they come back as given.
pub fn shuffled_explanations(explanations: &[Explanation], seed: u64) -> Vec<Explanation> {
    let n = explanations.len();
    if n < 2 {
        return explanations.to_vec();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Sattolo's algorithm: a uniformly random cyclic permutation, hence no fixed point.
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..i);
        perm.swap(i, j);
    }
    // A random relabelling keeps the cycle structure (and so the derangement).
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let mut out = vec![Explanation::new(""); n];
    for k in 0..n {
        out[order[k]] = explanations[order[perm[k]]].clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn random_explanations_are_seeded_token_lists() {
        let vocab: Vec<String> = (0..20).map(|i| format!(" w{i}")).collect();
        let a = random_token_explanation(&vocab, 20, 3, 1);
        assert_eq!(a, random_token_explanation(&vocab, 20, 3, 1));
        assert!(a.text.starts_with("Fires on the tokens \"w"));
        assert_eq!(a.text.matches('"').count(), 6);
    }

    proptest! {
        #[test]
        fn shuffling_is_a_derangement(n in 0usize..30, seed in any::<u64>()) {
            let e: Vec<Explanation> = (0..n).map(|i| Explanation::new(i.to_string())).collect();
            let s = shuffled_explanations(&e, seed);
            prop_assert_eq!(s.len(), n);
            if n >= 2 {
                for (i, x) in s.iter().enumerate() {
                    prop_assert_ne!(&x.text, &i.to_string());
                }
            }
            let mut texts: Vec<&str> = s.iter().map(|x| x.text.as_str()).collect();
            texts.sort_unstable();
            let mut orig: Vec<&str> = e.iter().map(|x| x.text.as_str()).collect();
            orig.sort_unstable();
            prop_assert_eq!(texts, orig);
        }
    }
}
