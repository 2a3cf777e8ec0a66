//! Pseudonymous identifiers: a keyed hash (HMAC-SHA256) of each user, session and device
//! identifier, so that a log can be shared without them. The same key always gives the same
//! pseudonym, so a pseudonymised log backtests to exactly the same decisions: the engine only
//! compares these identifiers for equality (a device is new when it is not among the user's
//! devices). Countries, IP addresses and places are kept: the risk signals compute with them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// Replaces identifiers by keyed hashes.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key>)")
    }
}

/// What an identifier names (each kind hashes apart: a user and a session of the same text get
/// different pseudonyms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user id.
    User,
    /// A session id.
    Session,
    /// A device fingerprint.
    Device,
    /// A challenge id. (An id is a hash of what issued the challenge, the user and session
    /// among them, with no secret: left in clear, it would confirm a guessed user.)
    Challenge,
}

impl Pseudonymizer {
    /// A pseudonymizer with this secret key.
    ///
    /// # Errors
    /// When the key is shorter than [`MIN_KEY_BYTES`].
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the pseudonymisation key has {} bytes; use at least {MIN_KEY_BYTES} random bytes",
                key.len()
            ));
        }
        Hmac::<Sha256>::new_from_slice(key)
            .map(|mac| Pseudonymizer { mac })
            .map_err(|e| e.to_string())
    }

    /// The pseudonym of `id`: `u_`, `s_`, `d_` or `ch_` and 32 hex digits (128 bits of the
    /// HMAC).
    #[must_use]
    pub fn pseudonym(&self, kind: Kind, id: &str) -> String {
        let (tag, prefix): (&[u8], &str) = match kind {
            Kind::User => (b"user\0", "u_"),
            Kind::Session => (b"session\0", "s_"),
            Kind::Device => (b"device\0", "d_"),
            Kind::Challenge => (b"challenge\0", "ch_"),
        };
        let mut mac = self.mac.clone();
        mac.update(tag);
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(35);
        out.push_str(prefix);
        for b in digest.iter().take(16) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}
