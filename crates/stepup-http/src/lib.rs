//! Services honour the step-up contract with this layer: per route it names the operation
//! (and where its attributes come from), verifies the bearer access token (signature, issuer,
//! audience, `exp`/`nbf`/`iat` with a small leeway), reads `acr`, `auth_time` and `amr` through
//! a configurable RFC 8176 mapping, keeps the session's challenges and `every time` grants in
//! the history store, evaluates, and either passes the request on or answers 401
//! `step_up_required` with the RFC 9470 `WWW-Authenticate` header (403
//! `stronger_factor_required` when no enrolled factor is strong enough). Missing, malformed,
//! expired, premature, wrongly signed or misaddressed tokens get 401 `invalid_token` — never a
//! prompt, never a pass. A session's sign-in is decided with the client's address (from the
//! connection, or `X-Forwarded-For` through trusted proxies), an optional device header, and
//! the country and place a MaxMind GeoIP database gives the address.

pub mod audit;
pub mod client;
pub mod decision_log;
/// GeoIP lookups (the `stepup-geoip` crate, shared with `stepup replay`).
pub use stepup_geoip as geoip;
pub mod layer;
pub mod reload;
pub mod session;
pub mod token;

pub use audit::{AuditSink, JsonLinesFile, MemorySink, TracingSink};
pub use client::TrustedProxies;
pub use decision_log::DecisionLog;
pub use geoip::{GeoIp, Place};
pub use layer::{Operation, StepUp, StepUpLayer};
pub use reload::{ReloadStatus, watch};
pub use stepup_engine::contract::ClaimMapping;
pub use token::{AccessClaims, Audience, TokenVerifier};
