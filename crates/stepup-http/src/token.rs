//! Access-token verification (JWT): issuer, audience, expiry and signature, with HS256, RS256 or
//! ES256 keys or a JWKS file.

use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The claims stepup reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: String,
    /// The session (`sid`); the user id when absent.
    #[serde(default)]
    pub sid: Option<String>,
    /// Authentication context class (`aal1|aal2|aal3`).
    #[serde(default)]
    pub acr: Option<String>,
    /// When the user last authenticated.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// Authentication methods.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Expiry.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

enum Keys {
    One(DecodingKey, Algorithm),
    Set(Vec<(Option<String>, DecodingKey, Algorithm)>),
}

/// Verifies access tokens.
pub struct TokenVerifier {
    keys: Keys,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// HS256 with a shared secret.
    #[must_use]
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        TokenVerifier {
            keys: Keys::One(DecodingKey::from_secret(secret), Algorithm::HS256),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }
    /// RS256 with a PEM public key.
    ///
    /// # Errors
    /// When the PEM cannot be read.
    pub fn rs256_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        let k = DecodingKey::from_rsa_pem(pem).map_err(|e| e.to_string())?;
        Ok(TokenVerifier {
            keys: Keys::One(k, Algorithm::RS256),
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }
    /// ES256 with a PEM public key.
    ///
    /// # Errors
    /// When the PEM cannot be read.
    pub fn es256_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        let k = DecodingKey::from_ec_pem(pem).map_err(|e| e.to_string())?;
        Ok(TokenVerifier {
            keys: Keys::One(k, Algorithm::ES256),
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }
    /// Keys from a JWKS file (RS256 and ES256 keys; chosen by `kid`).
    ///
    /// # Errors
    /// When the file cannot be read or holds no usable key.
    pub fn jwks_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
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
        Ok(TokenVerifier {
            keys: Keys::Set(keys),
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 0;
        v
    }

    /// Verifies a token and returns its claims.
    ///
    /// # Errors
    /// Why the token is not acceptable (shown to the client as `error_description`).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, String> {
        if token.len() > 16 * 1024 {
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
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation(alg))
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => "the token has expired".to_string(),
                    K::InvalidSignature => "the token's signature is invalid".to_string(),
                    K::InvalidAudience => "the token is for another audience".to_string(),
                    K::InvalidIssuer => "the token is from another issuer".to_string(),
                    K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
                    _ => "the token is malformed".to_string(),
                }
            })
    }
}
