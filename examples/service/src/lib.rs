//! The example service of the README: `GET /profile` (routine), `POST /email` (change_email),
//! `POST /payouts` (payout, amount from the body), `DELETE /apps/{id}` (delete_application,
//! admin), protected by the stepup layer for one tenant and application (`acme`/`dashboard` by
//! default; `finance` has `every time` policies). `GET /_stepup` says which policy set is live,
//! to loopback callers or to those with the status token.
//!
//! The example's users `alice` (password, SMS, TOTP, WebAuthn) and `bob` (password, SMS) have
//! signed in before from device `laptop-1` in France (their history is seeded once).
//!
//! There is no default key: the service verifies tokens with the key it is given (HS256 secret,
//! RS256/ES256 public key or JWKS) and refuses to start without one, unless it runs the
//! development issuer. **Development only:** `POST /dev/token` mints access tokens with chosen
//! `acr`, `amr` and `auth_time` so the step-up round trip can be tried with `curl`; it signs
//! with the HS256 secret given, or with a random one drawn at start. Never enable it in
//! production (`--dev-issuer` turns it on).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::{Engine, Store, UserHistory};
use stepup_http::{
    AccessClaims, Audience, AuditSink, ClaimMapping, GeoIp, Operation, ReloadStatus, StepUp,
    TokenVerifier, TrustedProxies,
};

/// The issuer the example expects by default.
pub const ISSUER: &str = "https://idp.example.invalid";
/// The example's default audience.
pub const AUDIENCE: &str = "stepup-example";

/// The key access tokens are verified with.
#[derive(Debug, Clone)]
pub enum Key {
    /// None given: the service refuses to start, unless it runs the development issuer (which
    /// then signs with a random secret drawn at start).
    None,
    /// An HS256 secret shared with the identity provider (at least 32 bytes).
    Hs256(Vec<u8>),
    /// An RS256 public key (PEM file).
    Rs256Pem(PathBuf),
    /// An ES256 public key (PEM file).
    Es256Pem(PathBuf),
    /// A JWKS file (RS256 and ES256 keys).
    Jwks(PathBuf),
}

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The rules directory (watched for changes).
    pub rules: PathBuf,
    /// The history store.
    pub store: StoreChoice,
    /// The verification key.
    pub key: Key,
    /// The tokens' issuer.
    pub issuer: String,
    /// The tokens' audience (this service).
    pub audience: String,
    /// Clock leeway for `exp`, `nbf`, `iat` and `auth_time`, in seconds.
    pub leeway_s: u64,
    /// Serve `POST /dev/token` (development only).
    pub dev_issuer: bool,
    /// The tenant whose rules apply.
    pub tenant: String,
    /// The application whose rules apply (`""`: the tenant's own).
    pub application: String,
    /// How often the rules directory is checked for changes.
    pub reload_every: Duration,
    /// Where audit records go (JSON lines); `None`: `tracing`.
    pub audit_file: Option<PathBuf>,
    /// A MaxMind GeoIP2/GeoLite2 City or Country database.
    pub geoip: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
    pub trusted_proxies: Vec<String>,
    /// The header carrying a device fingerprint.
    pub device_header: Option<String>,
    /// The longest a request's body may take to arrive.
    pub body_timeout: Duration,
    /// The token `GET /_stepup` requires; `None`: loopback callers only.
    pub status_token: Option<String>,
    /// How `amr` and `acr` are read.
    pub claims: ClaimMapping,
    /// Where every decision is logged (JSON lines, docs/decision-log.md); `None`: nowhere.
    pub decision_log: Option<PathBuf>,
    /// The largest size of one decision-log file before it is rotated.
    pub decision_log_max_bytes: u64,
    /// The key (a file) that pseudonymises user, session and device ids in the decision log.
    pub pseudonymize_key_file: Option<PathBuf>,
}

impl Config {
    /// Defaults around a rules directory: no key, `acme`/`dashboard`, the embedded store at
    /// `.stepup/service.redb`.
    #[must_use]
    pub fn new(rules: PathBuf) -> Self {
        Config {
            rules,
            store: StoreChoice::Disk(PathBuf::from(".stepup/service.redb")),
            key: Key::None,
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            leeway_s: stepup_http::token::DEFAULT_LEEWAY_SECS,
            dev_issuer: false,
            tenant: "acme".into(),
            application: "dashboard".into(),
            reload_every: Duration::from_millis(500),
            audit_file: None,
            geoip: None,
            trusted_proxies: Vec::new(),
            device_header: None,
            body_timeout: stepup_http::layer::DEFAULT_BODY_TIMEOUT,
            status_token: None,
            claims: ClaimMapping::default(),
            decision_log: None,
            decision_log_max_bytes: stepup_http::decision_log::DEFAULT_MAX_BYTES,
            pseudonymize_key_file: None,
        }
    }
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

/// The example's users have signed in before, from `laptop-1` in France: their history is
/// written once, when the store has none for them.
fn seed_history(store: &dyn Store, tenant: &str) -> Result<(), String> {
    for user in ["alice", "bob"] {
        let (h, _) = store.load(tenant, user, "").map_err(|e| e.to_string())?;
        if h == UserHistory::default() {
            let seed = UserHistory {
                devices: ["laptop-1".to_string()].into_iter().collect(),
                countries: [("FR".to_string(), Timestamp::now())].into_iter().collect(),
                ..UserHistory::default()
            };
            store
                .put_history(tenant, user, &seed)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The development issuer's signing setup.
#[derive(Clone)]
struct DevIssuer {
    secret: Vec<u8>,
    issuer: String,
    audience: String,
}

#[derive(Clone)]
struct AppState {
    status: Arc<Mutex<ReloadStatus>>,
    status_token: Option<Arc<str>>,
    /// Shared: axum clones the state for every request.
    dev: Option<Arc<DevIssuer>>,
}

fn random_secret() -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| format!("cannot draw a random secret: {e}"))?;
    Ok(buf)
}

/// A key file (PEM, JWKS): at most 1 MiB (a pipe or a device is read no further).
fn read(p: &std::path::Path) -> Result<Vec<u8>, String> {
    stepup_core::read_bounded(p, 1024 * 1024).map_err(|e| format!("{}: {e}", p.display()))
}

/// The verifier, and the development issuer's secret when it runs.
fn verifier(cfg: &Config) -> Result<(TokenVerifier, Option<Vec<u8>>), String> {
    let (iss, aud) = (cfg.issuer.as_str(), cfg.audience.as_str());
    let (v, dev) = match (&cfg.key, cfg.dev_issuer) {
        (Key::None, false) => {
            return Err(
                "no key to verify access tokens with: give --hs256-secret-file (or \
                 STEPUP_HS256_SECRET), --rs256-pem, --es256-pem or --jwks; or run the \
                 development issuer with --dev-issuer"
                    .into(),
            );
        }
        (Key::None, true) => {
            let secret = random_secret()?;
            (TokenVerifier::hs256(&secret, iss, aud)?, Some(secret))
        }
        (Key::Hs256(secret), dev) => (
            TokenVerifier::hs256(secret, iss, aud)?,
            dev.then(|| secret.clone()),
        ),
        (_, true) => {
            return Err("--dev-issuer signs with HS256: give no key, or an HS256 secret".into());
        }
        (Key::Rs256Pem(p), false) => (TokenVerifier::rs256_pem(&read(p)?, iss, aud)?, None),
        (Key::Es256Pem(p), false) => (TokenVerifier::es256_pem(&read(p)?, iss, aud)?, None),
        (Key::Jwks(p), false) => (TokenVerifier::jwks_file(p, iss, aud)?, None),
    };
    Ok((v.with_leeway(cfg.leeway_s), dev))
}

/// The service, and the reload status it reports. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the layer reads the client's address
/// from the connection.
///
/// # Errors
/// When there is no verification key (and no development issuer), the rules do not load or do
/// not define the tenant and application, or the store or GeoIP database cannot be opened.
pub fn app(cfg: &Config) -> Result<(Router, Arc<Mutex<ReloadStatus>>), String> {
    let (verifier, dev_secret) = verifier(cfg)?;
    let engine =
        Arc::new(Engine::load(std::slice::from_ref(&cfg.rules)).map_err(|e| e.to_string())?);
    engine
        .current()
        .model
        .resolve(&cfg.tenant, &cfg.application)
        .map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = match &cfg.store {
        StoreChoice::Memory => Arc::new(stepup_store::MemoryStore::new()),
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
    seed_history(store.as_ref(), &cfg.tenant)?;
    let audit: Arc<dyn AuditSink> = match &cfg.audit_file {
        Some(p) => Arc::new(
            stepup_http::JsonLinesFile::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => Arc::new(stepup_http::TracingSink),
    };
    let mut stepup = StepUp::new(
        Arc::clone(&engine),
        store,
        verifier,
        &cfg.tenant,
        &cfg.application,
        enrolled,
        audit,
    )
    .with_claims(cfg.claims.clone())
    .with_trusted_proxies(TrustedProxies::parse(&cfg.trusted_proxies)?)
    .with_body_timeout(cfg.body_timeout);
    if matches!(cfg.store, StoreChoice::Memory) {
        // No I/O: decisions need no hop to the blocking pool.
        stepup = stepup.with_store_in_memory();
    }
    if let Some(h) = &cfg.device_header {
        stepup = stepup.with_device_header(h);
    }
    if let Some(p) = &cfg.decision_log {
        let log = stepup_http::DecisionLog::open_with_key_file(
            p,
            cfg.decision_log_max_bytes,
            cfg.pseudonymize_key_file.as_deref(),
        )?;
        tracing::info!("decision log: {}", p.display());
        stepup = stepup.with_decision_log(Arc::new(log));
    }
    if let Some(p) = &cfg.geoip {
        let db = GeoIp::open(p)?;
        tracing::info!("GeoIP: {} ({})", p.display(), db.database_type());
        stepup = stepup.with_geoip(Arc::new(db));
    }
    let status = stepup_http::watch(engine, cfg.rules.clone(), cfg.reload_every);
    let state = AppState {
        status: Arc::clone(&status),
        status_token: cfg.status_token.as_deref().map(Arc::from),
        dev: dev_secret.map(|s| {
            Arc::new(DevIssuer {
                secret: s,
                issuer: cfg.issuer.clone(),
                audience: cfg.audience.clone(),
            })
        }),
    };
    let mut router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/profile",
            get(profile).route_layer(stepup.layer(Operation::new("view_profile"))),
        )
        .route(
            "/email",
            post(change_email).route_layer(stepup.layer(Operation::new("change_email"))),
        )
        .route(
            "/payouts",
            // `route_layer`: a method the route does not serve is answered 405 before the layer
            // decides (with `layer`, a `GET /payouts` was decided as the payout, and an
            // `every time` grant could be spent by a request the route then refused).
            post(payout)
                .route_layer(stepup.layer(Operation::new("payout").json_attr("amount", "/amount"))),
        )
        .route(
            "/apps/{id}",
            delete(delete_app).route_layer(
                stepup.layer(Operation::new("delete_application").path_attr("app_id", "id")),
            ),
        )
        .route("/_stepup", get(status_handler));
    if cfg.dev_issuer {
        router = router.route("/dev/token", post(dev_token));
    }
    Ok((router.with_state(state), status))
}

/// The profile, a constant: the route's own work stays small next to the layer's, which is
/// what `GET /profile` measures (BENCHMARKS.md).
async fn profile() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"name":"Alice","email":"alice@example.com"}"#,
    )
}

/// What `POST /email` reads of its body: the new address (the layer reads nothing of it).
#[derive(Deserialize)]
struct EmailChange {
    #[serde(default)]
    email: Option<serde_json::Value>,
}

/// What `POST /email` answers (fields in the order the README shows them).
#[derive(Serialize)]
struct EmailChanged {
    email: Option<serde_json::Value>,
    status: &'static str,
}

/// Typed, so the answer builds no JSON tree (as `GET /profile`, the route's own work stays
/// small next to the layer's).
async fn change_email(Json(body): Json<EmailChange>) -> Json<EmailChanged> {
    Json(EmailChanged {
        status: "email changed",
        email: body.email,
    })
}

async fn payout(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "payout sent", "amount": body.get("amount")}))
}

async fn delete_app(
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "application deleted", "id": id}))
}

async fn status_handler(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !stepup_http::reload::status_allowed(req.headers(), peer, s.status_token.as_deref()) {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"error": "forbidden"})),
        )
            .into_response();
    }
    let st = s.status.lock().map(|g| g.clone()).unwrap_or_default();
    Json(stepup_http::reload::status_json(&st)).into_response()
}

/// What `POST /dev/token` takes.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenRequest {
    /// The user.
    pub sub: String,
    /// `aal1|aal2|aal3` (or a mapped URI); absent: no `acr` claim.
    #[serde(default)]
    pub acr: Option<String>,
    /// RFC 8176 methods, e.g. `["pwd", "otp"]`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// How long ago the user authenticated, in seconds.
    #[serde(default)]
    pub auth_age_s: i64,
    /// Session id.
    #[serde(default)]
    pub sid: Option<String>,
}

/// Mints a token for the default issuer and audience (development and tests).
///
/// # Errors
/// When signing fails.
pub fn mint(secret: &[u8], t: &TokenRequest, now: Timestamp) -> Result<String, String> {
    mint_for(secret, ISSUER, AUDIENCE, t, now)
}

/// Mints a token valid for an hour, issued `now`, authenticated `auth_age_s` before.
///
/// # Errors
/// When signing fails.
pub fn mint_for(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    t: &TokenRequest,
    now: Timestamp,
) -> Result<String, String> {
    let claims = AccessClaims {
        sub: t.sub.clone(),
        sid: t.sid.clone(),
        acr: t.acr.clone(),
        auth_time: Some(now.0 - t.auth_age_s),
        amr: t.amr.clone(),
        exp: now.0 + 3_600,
        nbf: None,
        iat: Some(now.0),
        iss: issuer.into(),
        aud: Audience::One(audience.into()),
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
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let Some(dev) = s.dev else {
        return Err((StatusCode::NOT_FOUND, "no development issuer".into()));
    };
    let token = mint_for(
        &dev.secret,
        &dev.issuer,
        &dev.audience,
        &t,
        Timestamp::now(),
    )
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(
        serde_json::json!({"access_token": token, "warning": "DEVELOPMENT TOKEN ISSUER — never enable in production"}),
    ))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a failed assertion is the report"
)]
mod answer_tests {
    use super::EmailChanged;

    #[test]
    fn the_email_answer_is_what_the_readme_shows() {
        let answer = EmailChanged {
            email: Some(serde_json::json!("alice@new.example")),
            status: "email changed",
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"email":"alice@new.example","status":"email changed"}"#
        );
    }
}
