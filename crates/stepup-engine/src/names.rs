//! Name lookups on the decision path: FNV-1a over short names. The maps hold only names the
//! policy set defines, so a request's key can cost at most one bucket walk (no flooding risk),
//! and short keys hash several times faster than with SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map from names, hashed with FNV-1a.
pub type NameMap<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;
