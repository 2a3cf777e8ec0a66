//! Access-token verification (JWT): signature (HS256, RS256 or ES256 keys, or a JWKS file),
//! issuer, audience (a string or an array), and the times — `exp`, `nbf`, `iat` and
//! `auth_time` — against the service's clock with a small leeway (SPEC §11). There is no
//! default key: a verifier is always built from one the service was given.

use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer, Serialize};
use stepup_core::Timestamp;
use stepup_engine::contract::Claims;

/// Default clock leeway, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest token read.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash's size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// `aud`: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `audience`.
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// A NumericDate (RFC 7519 §2): whole or fractional seconds, read as whole seconds.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v.abs() < 1e15 {
        Ok(v.floor() as i64)
    } else {
        Err(serde::de::Error::custom("not a NumericDate"))
    }
}

fn opt_numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d).map(Some)
}

/// The claims stepup reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: String,
    /// The session (`sid`); the layer keys the session by the user id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Authentication context class (`aal1|aal2|aal3`, or a mapped URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// When the user last authenticated.
    #[serde(
        default,
        deserialize_with = "opt_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_time: Option<i64>,
    /// Authentication methods (RFC 8176).
    #[serde(default)]
    pub amr: Vec<String>,
    /// Expiry.
    #[serde(deserialize_with = "numeric_date")]
    pub exp: i64,
    /// Not before.
    #[serde(
        default,
        deserialize_with = "opt_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(
        default,
        deserialize_with = "opt_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub iat: Option<i64>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: Audience,
}

#[derive(Clone)]
enum Keys {
    One(DecodingKey, Algorithm),
    Set(Vec<(Option<String>, DecodingKey, Algorithm)>),
}

/// Verifies access tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Keys,
    issuer: String,
    audience: String,
    leeway: u64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    fn with_keys(keys: Keys, issuer: &str, audience: &str) -> Self {
        TokenVerifier {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY_SECS,
        }
    }

    /// HS256 with a shared secret of at least [`MIN_HS256_SECRET_BYTES`] bytes.
    ///
    /// # Errors
    /// When the secret is shorter.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(format!(
                "an HS256 secret needs at least {MIN_HS256_SECRET_BYTES} bytes (this one has {})",
                secret.len()
            ));
        }
        Ok(Self::with_keys(
            Keys::One(DecodingKey::from_secret(secret), Algorithm::HS256),
            issuer,
            audience,
        ))
    }
    /// RS256 with a PEM public key.
    ///
    /// # Errors
    /// When the PEM cannot be read.
    pub fn rs256_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        let k = DecodingKey::from_rsa_pem(pem).map_err(|e| e.to_string())?;
        Ok(Self::with_keys(
            Keys::One(k, Algorithm::RS256),
            issuer,
            audience,
        ))
    }
    /// ES256 with a PEM public key.
    ///
    /// # Errors
    /// When the PEM cannot be read.
    pub fn es256_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        let k = DecodingKey::from_ec_pem(pem).map_err(|e| e.to_string())?;
        Ok(Self::with_keys(
            Keys::One(k, Algorithm::ES256),
            issuer,
            audience,
        ))
    }
    /// Keys from a JWKS file (RS256 and ES256 keys; chosen by `kid`).
    ///
    /// # Errors
    /// When the file cannot be read or holds no usable key.
    pub fn jwks_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, String> {
        let text = stepup_core::read_bounded(path, 1024 * 1024)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| format!("{}: not UTF-8", path.display()))
            })?;
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            if let Ok(k) = DecodingKey::from_jwk(jwk) {
                keys.push((jwk.common.key_id.clone(), k, alg));
            }
        }
        if keys.is_empty() {
            return Err(format!("{}: no RS256 or ES256 key", path.display()));
        }
        Ok(Self::with_keys(Keys::Set(keys), issuer, audience))
    }

    /// The clock leeway for `exp`, `nbf`, `iat` and `auth_time` (default
    /// [`DEFAULT_LEEWAY_SECS`]). Keep it within the engine's
    /// `stepup_engine::state::AUTH_CLOCK_SKEW_SECS` (60 s): an authentication dated further
    /// ahead of the clock proves nothing, so its step-up would be asked again.
    #[must_use]
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }

    /// The leeway in force, in seconds.
    #[must_use]
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// The signature and algorithm only: every claim is checked by [`TokenVerifier::verify_at`]
    /// on the service's clock.
    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v.leeway = 0;
        v
    }

    /// Verifies a token now.
    ///
    /// # Errors
    /// As [`TokenVerifier::verify_at`].
    pub fn verify(&self, token: &str) -> Result<AccessClaims, String> {
        self.verify_at(token, Timestamp::now())
    }

    /// Verifies a token at `now` and returns its claims.
    ///
    /// # Errors
    /// Why the token is not acceptable (shown to the client as `error_description`).
    pub fn verify_at(&self, token: &str, now: Timestamp) -> Result<AccessClaims, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err("the token is too large".into());
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "the token is malformed".to_string())?;
        let (key, alg) = match &self.keys {
            Keys::One(k, a) => (k, *a),
            Keys::Set(list) => {
                let found = list.iter().find(|(kid, _, a)| {
                    *a == header.alg && (header.kid.is_none() || *kid == header.kid)
                });
                let (_, k, a) = found.ok_or_else(|| "no key matches the token".to_string())?;
                (k, *a)
            }
        };
        if header.alg != alg {
            return Err("the token is signed with an unexpected algorithm".into());
        }
        // Extensions the token says must be understood (RFC 7515 §4.1.11): this service
        // understands none, so such a token is not accepted (nor is an empty list, which the
        // RFC forbids).
        if header.crit.is_some() {
            return Err("the token names extensions this service does not understand".into());
        }
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &Self::validation(alg))
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidSignature => "the token's signature is invalid".to_string(),
                    K::Json(_) => "the token's claims are missing or malformed".to_string(),
                    _ => "the token is malformed".to_string(),
                }
            })?;
        self.check(&claims, now)?;
        Ok(claims)
    }

    /// The checks that depend on the clock (and the claims' values), after the signature.
    fn check(&self, c: &AccessClaims, now: Timestamp) -> Result<(), String> {
        let lee = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        let now = now.0;
        if c.iss != self.issuer {
            return Err("the token is from another issuer".into());
        }
        if !c.aud.contains(&self.audience) {
            return Err("the token is for another audience".into());
        }
        if c.sub.is_empty() {
            return Err("the token has an empty `sub` claim".into());
        }
        // Valid while now < exp (RFC 7519 §4.1.4), give or take the leeway.
        if now >= c.exp.saturating_add(lee) {
            return Err("the token has expired".into());
        }
        if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(lee)) {
            return Err("the token is not valid yet (`nbf` is in the future)".into());
        }
        if c.iat.is_some_and(|iat| iat > now.saturating_add(lee)) {
            return Err("the token was issued in the future (`iat`)".into());
        }
        if c.auth_time.is_some_and(|t| t > now.saturating_add(lee)) {
            return Err("the token's `auth_time` is in the future".into());
        }
        Ok(())
    }
}

/// Most tokens a [`VerifiedTokens`] cache keeps.
pub const CACHED_TOKENS: usize = 1024;
/// Longest token a [`VerifiedTokens`] cache keeps (a longer one is verified every time).
pub const MAX_CACHED_TOKEN_BYTES: usize = 4 * 1024;

/// A verified token: its claims, and the part of them step-up reads (`acr`, `auth_time`,
/// `amr`), made once per token rather than once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The token's claims.
    pub claims: AccessClaims,
    /// Its `acr`, `auth_time` and `amr`, as the claim mapping reads them.
    pub auth: Claims,
}

impl VerifiedToken {
    pub(crate) fn new(claims: AccessClaims) -> Self {
        let auth = Claims {
            acr: claims.acr.clone(),
            auth_time: claims.auth_time,
            amr: claims.amr.clone(),
        };
        VerifiedToken { claims, auth }
    }
}

/// Hashes a token by its length and its last [`HASHED_TAIL_BYTES`] bytes (part of its
/// signature), with the standard library's keyed hasher: a cache lookup then hashes 32 bytes
/// rather than the whole token (about 900 instructions for 400 bytes). Equal texts hash equally;
/// texts that share a tail only share a bucket (the lookup compares whole texts), and only
/// verified tokens are kept, whose signatures nobody can choose.
#[derive(Debug, Clone, Default)]
struct TailHash(RandomState);

/// How much of a token's end [`TailHash`] hashes.
const HASHED_TAIL_BYTES: usize = 32;

struct TailHasher(DefaultHasher);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;
    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = bytes
            .get(bytes.len().saturating_sub(HASHED_TAIL_BYTES)..)
            .unwrap_or(bytes);
        self.0.write_usize(bytes.len());
        self.0.write(tail);
    }
    fn write_u8(&mut self, b: u8) {
        self.0.write_u8(b);
    }
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

type Cache = HashMap<Box<str>, Arc<VerifiedToken>, TailHash>;

/// Tokens whose signature was verified and whose claims were read, by their exact text. A
/// client sends the same access token for its whole lifetime, and checking the signature and
/// parsing the claims again is most of what the layer does per request (HMAC-SHA256 and two
/// JSON parses: about 60,000 instructions for a 400-byte token). What depends on the clock is
/// not cached: `exp`, `nbf`, `iat` and `auth_time` are checked on every request, as
/// [`TokenVerifier::verify_at`] checks them. A token that fails verification is never kept,
/// the keys of a verifier never change, and equal text verifies equally, so a hit answers
/// exactly what a full verification would. Bounded: [`CACHED_TOKENS`] tokens of at most
/// [`MAX_CACHED_TOKEN_BYTES`]; when it is full, expired tokens are dropped, and everything if
/// that is not enough.
#[derive(Debug, Default)]
pub struct VerifiedTokens(Mutex<Cache>);

impl VerifiedTokens {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `token` at `now` with `verifier`, as [`TokenVerifier::verify_at`] does, from
    /// the cache when this token's signature was verified before. Use one cache per verifier.
    ///
    /// # Errors
    /// As [`TokenVerifier::verify_at`].
    pub fn verify(
        &self,
        verifier: &TokenVerifier,
        token: &str,
        now: Timestamp,
    ) -> Result<Arc<VerifiedToken>, String> {
        // A poisoned lock is a miss: the token is verified in full.
        let hit = self.0.lock().ok().and_then(|m| m.get(token).cloned());
        if let Some(v) = hit {
            verifier.check(&v.claims, now)?;
            return Ok(v);
        }
        let v = Arc::new(VerifiedToken::new(verifier.verify_at(token, now)?));
        if token.len() <= MAX_CACHED_TOKEN_BYTES
            && let Ok(mut m) = self.0.lock()
        {
            if m.len() >= CACHED_TOKENS {
                let lee = i64::try_from(verifier.leeway).unwrap_or(i64::MAX);
                m.retain(|_, c| now.0 < c.claims.exp.saturating_add(lee));
                if m.len() >= CACHED_TOKENS {
                    m.clear();
                }
            }
            m.insert(token.into(), Arc::clone(&v));
        }
        Ok(v)
    }

    /// Tokens kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no token is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sign(c: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            c,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::hs256(SECRET, "iss", "api").unwrap()
    }

    fn base(now: i64) -> serde_json::Value {
        serde_json::json!({"sub": "alice", "iss": "iss", "aud": "api", "exp": now + 600})
    }

    /// A token whose header lists critical extensions is refused, signature valid or not.
    #[test]
    fn a_token_with_critical_extensions_is_refused() {
        let now = 1_800_000_000;
        let c = base(now);
        assert!(verifier().verify_at(&sign(&c), Timestamp(now)).is_ok());
        for crit in [vec!["exp-ext".to_string()], Vec::new()] {
            let header = jsonwebtoken::Header {
                crit: Some(crit.clone()),
                ..jsonwebtoken::Header::default()
            };
            let t =
                jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_secret(SECRET))
                    .unwrap();
            let e = verifier().verify_at(&t, Timestamp(now)).unwrap_err();
            assert!(e.contains("extensions"), "{crit:?}: {e}");
        }
    }

    #[test]
    fn times_are_checked_with_the_leeway() {
        let now = 1_800_000_000;
        let v = verifier().with_leeway(30);
        let at = |patch: serde_json::Value| {
            let mut c = base(now);
            for (k, x) in patch.as_object().unwrap() {
                c[k] = x.clone();
            }
            v.verify_at(&sign(&c), Timestamp(now))
        };
        assert!(at(serde_json::json!({})).is_ok());
        assert_eq!(
            at(serde_json::json!({"exp": now - 30})).unwrap_err(),
            "the token has expired"
        );
        assert!(
            at(serde_json::json!({"exp": now - 29})).is_ok(),
            "inside the leeway"
        );
        assert_eq!(
            at(serde_json::json!({"nbf": now + 31})).unwrap_err(),
            "the token is not valid yet (`nbf` is in the future)"
        );
        assert!(at(serde_json::json!({"nbf": now + 30})).is_ok());
        assert_eq!(
            at(serde_json::json!({"iat": now + 31})).unwrap_err(),
            "the token was issued in the future (`iat`)"
        );
        assert_eq!(
            at(serde_json::json!({"auth_time": now + 31})).unwrap_err(),
            "the token's `auth_time` is in the future"
        );
        assert!(at(serde_json::json!({"iat": now - 5, "auth_time": now as f64 - 5.5})).is_ok());
        assert_eq!(
            at(serde_json::json!({"aud": ["other", "api"]}))
                .unwrap()
                .aud,
            Audience::Many(vec!["other".into(), "api".into()])
        );
        assert_eq!(
            at(serde_json::json!({"aud": ["other"]})).unwrap_err(),
            "the token is for another audience"
        );
        assert_eq!(
            at(serde_json::json!({"aud": []})).unwrap_err(),
            "the token is for another audience"
        );
        assert_eq!(
            at(serde_json::json!({"exp": "tomorrow"})).unwrap_err(),
            "the token's claims are missing or malformed"
        );
    }

    #[test]
    fn the_cache_answers_as_a_full_verification_and_checks_the_clock_every_time() {
        let now = 1_800_000_000;
        let v = verifier().with_leeway(30);
        let cache = VerifiedTokens::new();
        let token = sign(
            &serde_json::json!({"sub": "alice", "iss": "iss", "aud": "api",
            "exp": now + 600, "nbf": now - 10}),
        );
        let full = v.verify_at(&token, Timestamp(now)).unwrap();
        assert_eq!(
            cache.verify(&v, &token, Timestamp(now)).unwrap().claims,
            full
        );
        assert_eq!(cache.len(), 1);
        let hit = cache.verify(&v, &token, Timestamp(now)).unwrap();
        assert_eq!(hit.claims, full);
        assert_eq!(
            (hit.auth.acr.as_ref(), hit.auth.auth_time, &hit.auth.amr),
            (full.acr.as_ref(), full.auth_time, &full.amr)
        );
        // A hit is still checked against the clock.
        for at in [now + 630, now - 41] {
            assert_eq!(
                cache.verify(&v, &token, Timestamp(at)).unwrap_err(),
                v.verify_at(&token, Timestamp(at)).unwrap_err()
            );
        }
        // A bad signature, another issuer, a malformed token: refused and never kept.
        let forged = format!("{}x", &token[..token.len() - 1]);
        let other = sign(
            &serde_json::json!({"sub": "alice", "iss": "other", "aud": "api",
            "exp": now + 600}),
        );
        // The cache hashes a token's tail: a token that differs from a kept one before its
        // last bytes (its claims changed, its signature kept) shares the bucket, not the entry.
        let dot = token.find('.').unwrap();
        let mut tampered = token.clone().into_bytes();
        tampered[dot + 2] = if tampered[dot + 2] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            tampered[tampered.len() - 32..],
            token[token.len() - 32..],
            "same tail"
        );
        for bad in [forged.as_str(), other.as_str(), "a.b.c", tampered.as_str()] {
            assert_eq!(
                cache.verify(&v, bad, Timestamp(now)).unwrap_err(),
                v.verify_at(bad, Timestamp(now)).unwrap_err()
            );
        }
        assert_eq!(cache.len(), 1);
        // Bounded: a full cache drops what has expired, then everything.
        for i in 0..CACHED_TOKENS + 5 {
            let t = sign(&serde_json::json!({"sub": format!("u{i}"), "iss": "iss",
                "aud": "api", "exp": now + 600}));
            cache.verify(&v, &t, Timestamp(now)).unwrap();
            assert!(cache.len() <= CACHED_TOKENS);
        }
    }

    #[test]
    fn short_hs256_secrets_are_refused() {
        assert!(TokenVerifier::hs256(b"dev-secret-change-me", "i", "a").is_err());
        assert!(TokenVerifier::hs256(&[7; 32], "i", "a").is_ok());
    }
}
