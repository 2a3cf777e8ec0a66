//! The example service of the README: `GET /profile` (routine), `POST /email` (change_email),
//! `POST /payouts` (payout, amount from the body), `DELETE /apps/{id}` (delete_application,
//! admin), protected by the stepup layer; `GET /_stepup` says which policy set is live.
//!
//! **Development only:** `POST /dev/token` mints access tokens with chosen `acr`, `amr` and
//! `auth_time` so the step-up round trip can be tried with `curl`. Never enable it in production
//! (`--dev-issuer` turns it on).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::{Engine, Store};
use stepup_http::{AccessClaims, AuditSink, Operation, ReloadStatus, StepUp, TokenVerifier};

/// The issuer and audience the example expects.
pub const ISSUER: &str = "https://idp.example.invalid";
/// The example's audience.
pub const AUDIENCE: &str = "stepup-example";

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The rules directory (watched for changes).
    pub rules: PathBuf,
    /// The history store.
    pub store: StoreChoice,
    /// HS256 secret shared with the identity provider (and the dev issuer).
    pub secret: Vec<u8>,
    /// Serve `POST /dev/token` (development only).
    pub dev_issuer: bool,
    /// How often the rules directory is checked for changes.
    pub reload_every: Duration,
    /// Where audit records go (JSON lines); `None`: `tracing`.
    pub audit_file: Option<PathBuf>,
}

/// Which history store to use.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// In memory.
    Memory,
    /// The embedded on-disk store at this path (the default).
    Disk(PathBuf),
    /// Redis at this URL.
    Redis(String),
}

/// The users of the example and their enrolled factors.
#[must_use]
pub fn enrolled(user: &str) -> FactorSet {
    match user {
        "alice" => [
            Factor::Password,
            Factor::Totp,
            Factor::Sms,
            Factor::Webauthn,
        ]
        .into_iter()
        .collect(),
        "bob" => [Factor::Password, Factor::Sms].into_iter().collect(),
        _ => FactorSet::one(Factor::Password),
    }
}

#[derive(Clone)]
struct AppState {
    stepup: StepUp,
    status: Arc<Mutex<ReloadStatus>>,
    secret: Arc<Vec<u8>>,
}

/// The service, and the reload status it reports.
///
/// # Errors
/// When the rules do not load or the store cannot be opened.
pub fn app(cfg: &Config) -> Result<(Router, Arc<Mutex<ReloadStatus>>), String> {
    let engine =
        Arc::new(Engine::load(std::slice::from_ref(&cfg.rules)).map_err(|e| e.to_string())?);
    let store: Arc<dyn Store> = match &cfg.store {
        StoreChoice::Memory => Arc::new(stepup_engine::MemoryStore::new()),
        StoreChoice::Disk(p) => {
            Arc::new(stepup_store::DiskStore::open(p).map_err(|e| e.to_string())?)
        }
        StoreChoice::Redis(url) => {
            let retention = stepup_store::retention_secs(&engine.current());
            Arc::new(
                stepup_store::RedisStore::new(url)
                    .map_err(|e| e.to_string())?
                    .with_retention(retention),
            )
        }
    };
    let audit: Arc<dyn AuditSink> = match &cfg.audit_file {
        Some(p) => Arc::new(
            stepup_http::JsonLinesFile::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => Arc::new(stepup_http::TracingSink),
    };
    let verifier = TokenVerifier::hs256(&cfg.secret, ISSUER, AUDIENCE);
    let stepup = StepUp::new(
        Arc::clone(&engine),
        store,
        verifier,
        "acme",
        "dashboard",
        enrolled,
        audit,
    );
    let status = stepup_http::watch(engine, cfg.rules.clone(), cfg.reload_every);
    let state = AppState {
        stepup: stepup.clone(),
        status: Arc::clone(&status),
        secret: Arc::new(cfg.secret.clone()),
    };
    let mut router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/profile",
            get(profile).layer(stepup.layer(Operation::new("view_profile"))),
        )
        .route(
            "/email",
            post(change_email).layer(stepup.layer(Operation::new("change_email"))),
        )
        .route(
            "/payouts",
            post(payout)
                .layer(stepup.layer(Operation::new("payout").json_attr("amount", "/amount"))),
        )
        .route(
            "/apps/{id}",
            delete(delete_app).layer(
                stepup.layer(Operation::new("delete_application").path_attr("app_id", "id")),
            ),
        )
        .route("/_stepup", get(status_handler));
    if cfg.dev_issuer {
        router = router.route("/dev/token", post(dev_token));
    }
    Ok((router.with_state(state), status))
}

async fn profile() -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": "Alice", "email": "alice@example.com"}))
}

async fn change_email(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "email changed", "email": body.get("email")}))
}

async fn payout(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "payout sent", "amount": body.get("amount")}))
}

async fn delete_app(
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "application deleted", "id": id}))
}

async fn status_handler(State(s): State<AppState>) -> Json<serde_json::Value> {
    let st = s.status.lock().map(|g| g.clone()).unwrap_or_default();
    Json(
        serde_json::json!({"policy_set": s.stepup.engine().current().hash().to_string(), "reload": st}),
    )
}

/// What `POST /dev/token` takes.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    /// The user.
    pub sub: String,
    /// `aal1|aal2|aal3`.
    pub acr: String,
    /// Methods, e.g. `["pwd", "otp"]`.
    pub amr: Vec<String>,
    /// How long ago the user authenticated, in seconds.
    #[serde(default)]
    pub auth_age_s: i64,
    /// Session id.
    #[serde(default)]
    pub sid: Option<String>,
}

/// Mints a token (development only).
///
/// # Errors
/// When signing fails.
pub fn mint(secret: &[u8], t: &TokenRequest, now: Timestamp) -> Result<String, String> {
    let claims = AccessClaims {
        sub: t.sub.clone(),
        sid: t.sid.clone(),
        acr: Some(t.acr.clone()),
        auth_time: Some(now.0 - t.auth_age_s),
        amr: t.amr.clone(),
        exp: now.0 + 3_600,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

async fn dev_token(
    State(s): State<AppState>,
    Json(t): Json<TokenRequest>,
) -> Result<Json<serde_json::Value>, (axum::http::StatusCode, String)> {
    let token = mint(&s.secret, &t, Timestamp::now())
        .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(
        serde_json::json!({"access_token": token, "warning": "DEVELOPMENT TOKEN ISSUER — never enable in production"}),
    ))
}
