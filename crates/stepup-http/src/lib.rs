//! Services honour the step-up contract with this layer: per route it names the operation
//! (and where its attributes come from), verifies the bearer access token, turns `acr`,
//! `auth_time` and `amr` into the engine's session, evaluates, and either passes the request on
//! or answers 401 `step_up_required` with the RFC 9470 `WWW-Authenticate` header (403
//! `stronger_factor_required` when no enrolled factor is strong enough). Missing, malformed,
//! expired, wrongly signed or misaddressed tokens get 401 `invalid_token` — never a prompt,
//! never a pass.

pub mod audit;
pub mod layer;
pub mod reload;
pub mod token;

pub use audit::{AuditSink, JsonLinesFile, MemorySink, TracingSink};
pub use layer::{Operation, StepUp, StepUpLayer};
pub use reload::{ReloadStatus, watch};
pub use token::{AccessClaims, TokenVerifier};
