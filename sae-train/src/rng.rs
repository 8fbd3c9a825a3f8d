//! Counter-based seeding: every random draw of a run comes from an RNG seeded by
//! `(seed, purpose, counter)`, so a run's random state is its counters — nothing opaque to save.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// SplitMix64 finaliser: a bijective mix of 64 bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An RNG for draw number `counter` of stream `purpose` of a run seeded with `seed`.
/// (Xoshiro256++ is portable and its output is fixed across `rand` releases.)
pub(crate) fn rng_for(seed: u64, purpose: u64, counter: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(mix(mix(seed ^ mix(purpose)) ^ counter))
}

/// Stream identifiers, one per use, so different uses never share draws.
pub(crate) mod purpose {
    pub const SHUFFLE: u64 = 1;
    pub const SYNTHETIC_BATCH: u64 = 2;
    pub const SYNTHETIC_SETUP: u64 = 3;
}
