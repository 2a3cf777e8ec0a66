//! The tower layer. One [`StepUp`] per service holds the engine, the store, the token verifier,
//! the audit sink and where request context comes from (trusted proxies, device header, GeoIP);
//! [`StepUp::layer`] makes a layer for one route's operation. Sessions: see [`crate::session`].
//!
//! Every refusal is answered within the body timeout, whatever the request's body does: the
//! layer reads what is left of it only until then, and closes the connection if it did not
//! arrive. Serve the router with `into_make_service_with_connect_info::<SocketAddr>()` so the
//! layer knows the client's address; without it the address is unknown (fail closed).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stepup_core::{FactorSet, Timestamp};
use stepup_engine::contract::{ClaimMapping, http_answer_with};
use stepup_engine::decision::DenyReason;
use stepup_engine::{Context, Engine, Event, Store, Value};
use tokio::time::Instant;

use crate::audit::AuditSink;
use crate::client::{TrustedProxies, client_ip, device};
use crate::decision_log::DecisionLog;
use crate::session;
use crate::token::{AccessClaims, TokenVerifier, VerifiedTokens};
use stepup_geoip::{GeoIp, Place};

/// Largest request body read to find attributes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
enum AttrSource {
    Json { attr: String, pointer: String },
    Path { attr: String, param: String },
}

/// A route's operation and where its attributes come from.
#[derive(Debug, Clone)]
pub struct Operation {
    name: String,
    attrs: Vec<AttrSource>,
}

impl Operation {
    /// The operation `name` (from the tenant's catalog).
    #[must_use]
    pub fn new(name: &str) -> Self {
        Operation {
            name: name.into(),
            attrs: Vec::new(),
        }
    }
    /// Reads attribute `attr` from the JSON body at `pointer` (RFC 6901, e.g. `/amount`).
    /// A request without it is refused with 400: a payout without an amount must not slip by.
    #[must_use]
    pub fn json_attr(mut self, attr: &str, pointer: &str) -> Self {
        self.attrs.push(AttrSource::Json {
            attr: attr.into(),
            pointer: pointer.into(),
        });
        self
    }
    /// Reads attribute `attr` from the path parameter `param` (e.g. `{id}`).
    #[must_use]
    pub fn path_attr(mut self, attr: &str, param: &str) -> Self {
        self.attrs.push(AttrSource::Path {
            attr: attr.into(),
            param: param.into(),
        });
        self
    }
}

type Enrolled = dyn Fn(&str) -> FactorSet + Send + Sync;
type Clock = dyn Fn() -> Timestamp + Send + Sync;

/// Default time a request's body may take to arrive (see [`StepUp::with_body_timeout`]).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// What every protected route shares.
#[derive(Clone)]
pub struct Shared {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    verifier: TokenVerifier,
    tenant: String,
    application: String,
    enrolled: Arc<Enrolled>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<Clock>,
    claims: ClaimMapping,
    proxies: TrustedProxies,
    device_header: Option<String>,
    geoip: Option<Arc<GeoIp>>,
    body_timeout: Duration,
    decision_log: Option<Arc<DecisionLog>>,
    /// Tokens already verified by `verifier` (the clock is checked on every request).
    verified: Arc<VerifiedTokens>,
    /// The store answers from memory, without I/O: decide on the async worker.
    inline_store: bool,
}

/// The step-up enforcer of one service.
#[derive(Clone)]
pub struct StepUp(Arc<Shared>);

impl StepUp {
    /// An enforcer for `tenant`/`application`. `enrolled` says which factors a user has.
    /// Defaults: the default [`ClaimMapping`], no trusted proxy, no device header, no GeoIP
    /// database (country and place unknown), [`DEFAULT_BODY_TIMEOUT`].
    pub fn new(
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        verifier: TokenVerifier,
        tenant: &str,
        application: &str,
        enrolled: impl Fn(&str) -> FactorSet + Send + Sync + 'static,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        StepUp(Arc::new(Shared {
            engine,
            store,
            verifier,
            tenant: tenant.into(),
            application: application.into(),
            enrolled: Arc::new(enrolled),
            audit,
            clock: Arc::new(Timestamp::now),
            claims: ClaimMapping::default(),
            proxies: TrustedProxies::none(),
            device_header: None,
            geoip: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            decision_log: None,
            verified: Arc::new(VerifiedTokens::new()),
            inline_store: false,
        }))
    }

    fn with(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.0));
        self
    }

    /// How `amr` and `acr` values are read, and the acr values sent to clients.
    #[must_use]
    pub fn with_claims(self, mapping: ClaimMapping) -> Self {
        self.with(|s| s.claims = mapping)
    }

    /// The proxies whose `X-Forwarded-For` names the client.
    #[must_use]
    pub fn with_trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.with(|s| s.proxies = proxies)
    }

    /// The header that carries the device fingerprint (e.g. `x-device-fingerprint`).
    #[must_use]
    pub fn with_device_header(self, name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.with(|s| s.device_header = Some(name))
    }

    /// The GeoIP database that gives a client address its country and place.
    #[must_use]
    pub fn with_geoip(self, db: Arc<GeoIp>) -> Self {
        self.with(|s| s.geoip = Some(db))
    }

    /// The longest a request's body may take to arrive: past it, a refused request is answered
    /// anyway and its connection closed, and a body the decision needs is answered with 408.
    #[must_use]
    pub fn with_body_timeout(self, limit: Duration) -> Self {
        self.with(|s| s.body_timeout = limit)
    }

    /// The decision log every decision is written to (SPEC §12); a line that cannot be
    /// written is logged and counted, and the decision stands.
    #[must_use]
    pub fn with_decision_log(self, log: Arc<DecisionLog>) -> Self {
        self.with(|s| s.decision_log = Some(log))
    }

    /// Says the store answers from memory without I/O (the engine's `MemoryStore`): decisions
    /// are then made on the async worker that received the request. By default they are made
    /// on tokio's blocking pool, which keeps a store that reads a disk or the network (redb,
    /// Redis) off the async workers at the cost of a hop between threads (two wake-ups) per
    /// request. With a decision log, decisions stay on the blocking pool (the log writes a file).
    #[must_use]
    pub fn with_store_in_memory(self) -> Self {
        self.with(|s| s.inline_store = true)
    }

    /// The clock decisions and token checks use (tests).
    #[must_use]
    pub fn with_clock(self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.with(|s| s.clock = Arc::new(clock))
    }

    /// The layer for one route.
    #[must_use]
    pub fn layer(&self, op: Operation) -> StepUpLayer {
        StepUpLayer {
            shared: self.clone(),
            op: Arc::new(op),
        }
    }

    /// The engine in use.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.0.engine
    }

    /// The context a request of a session's sign-in is decided with: the client address
    /// (`peer`, or `X-Forwarded-For` through trusted proxies), the device header, and the
    /// country and place the GeoIP database gives the address. What is missing is unknown.
    #[must_use]
    pub fn context(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Context {
        self.sign_in(peer, headers).context()
    }

    fn sign_in(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> SignIn {
        let s = &self.0;
        SignIn {
            ip: client_ip(peer, headers, &s.proxies),
            device: s.device_header.as_deref().and_then(|h| device(headers, h)),
            geoip: s.geoip.clone(),
        }
    }
}

/// What a session's sign-in context is made of, read from the request; the GeoIP lookup and
/// the rest are done only for a sign-in (a session's first request), not for every request.
struct SignIn {
    ip: Option<IpAddr>,
    device: Option<String>,
    geoip: Option<Arc<GeoIp>>,
}

impl SignIn {
    fn context(&self) -> Context {
        let place = match (&self.geoip, self.ip) {
            (Some(db), Some(ip)) => db.lookup(ip),
            _ => Place::default(),
        };
        Context {
            device: self.device.clone(),
            ip: self.ip.map(|ip| ip.to_string()),
            country: place.country,
            location: place.location,
            platform_risk: None,
        }
    }
}

/// Decides a request of the token's session and commits it (see [`crate::session`]), and
/// writes the decision log.
fn decide(
    shared: &StepUp,
    claims: &AccessClaims,
    req: &stepup_engine::Request,
    sign_in: &SignIn,
) -> stepup_engine::Decision {
    let s = &shared.0;
    let set = s.engine.current();
    let (d, logged) = session::decide(
        &set,
        s.store.as_ref(),
        &s.claims,
        claims,
        req,
        &|| sign_in.context(),
        s.decision_log.is_some(),
    );
    if let (Some(log), Some((req, state))) = (&s.decision_log, logged) {
        log.write(&req, state.as_ref(), &d);
    }
    d
}

/// The layer of one route.
#[derive(Clone)]
pub struct StepUpLayer {
    shared: StepUp,
    op: Arc<Operation>,
}

impl<S> tower::Layer<S> for StepUpLayer {
    type Service = StepUpService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        StepUpService {
            inner,
            shared: self.shared.clone(),
            op: Arc::clone(&self.op),
        }
    }
}

/// The service the layer wraps around a route.
#[derive(Clone)]
pub struct StepUpService<S> {
    inner: S,
    shared: StepUp,
    op: Arc<Operation>,
}

impl<S> tower::Service<Request<Body>> for StepUpService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The ready inner service is used; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (shared, op) = (self.shared.clone(), Arc::clone(&self.op));
        Box::pin(async move {
            match enforce(&shared, &op, req).await {
                Ok(req) => inner.call(req).await,
                Err(resp) => Ok(resp),
            }
        })
    }
}

fn json_error(status: StatusCode, body: serde_json::Value, www: Option<String>) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(h) = www.and_then(|w| HeaderValue::from_str(&w).ok()) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, h);
    }
    resp
}

fn invalid_token(why: &str) -> Response {
    json_error(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": "invalid_token", "error_description": why}),
        Some(format!(
            "Bearer error=\"invalid_token\", error_description=\"{why}\""
        )),
    )
}

fn bad_request(status: StatusCode, why: &str) -> Response {
    json_error(
        status,
        serde_json::json!({"error": "invalid_request", "error_description": why}),
        None,
    )
}

fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn json_value(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
        serde_json::Value::Number(n) => n.as_f64().map(Value::Number),
        serde_json::Value::String(s) => Some(Value::Str(s.clone())),
        _ => None,
    }
}

/// Whether the body is announced larger than the layer reads.
fn too_long(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
}

/// Answers a refused request. What is left of its body is read first (up to the limit), so a
/// keep-alive client can retry on the same connection — but never past `deadline`: a body that
/// has not arrived by then is not waited for, and the connection is closed after the answer.
async fn refused(resp: Response, body: Body, readable: bool, deadline: Instant) -> Response {
    if !readable {
        return closing(resp);
    }
    let read = tokio::time::timeout_at(deadline, axum::body::to_bytes(body, MAX_BODY_BYTES)).await;
    match read {
        Ok(Ok(_)) => resp,
        _ => closing(resp),
    }
}

async fn enforce(
    shared: &StepUp,
    op: &Operation,
    req: Request<Body>,
) -> Result<Request<Body>, Response> {
    let s = &shared.0;
    let deadline = Instant::now() + s.body_timeout;
    let (mut parts, body) = req.into_parts();
    let too_long = too_long(&parts);
    // A refusal drains what is left of the body, unless it is too long or not sent yet
    // (`Expect: 100-continue`: reading would invite the client to send it).
    let readable = !too_long && !parts.headers.contains_key(header::EXPECT);
    let now = (s.clock)();
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        let resp = invalid_token("a bearer access token is required");
        return Err(refused(resp, body, readable, deadline).await);
    };
    let claims = match s.verified.verify(&s.verifier, token, now) {
        Ok(c) => c,
        Err(e) => return Err(refused(invalid_token(&e), body, readable, deadline).await),
    };
    let mut attrs = Vec::new();
    let needs_body = op
        .attrs
        .iter()
        .any(|a| matches!(a, AttrSource::Json { .. }));
    let body = if needs_body {
        if too_long {
            return Err(closing(bad_request(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large",
            )));
        }
        let bytes =
            match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, MAX_BODY_BYTES))
                .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(_)) => {
                    return Err(closing(bad_request(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the body is too large or unreadable",
                    )));
                }
                Err(_) => {
                    return Err(closing(bad_request(
                        StatusCode::REQUEST_TIMEOUT,
                        "the body did not arrive in time",
                    )));
                }
            };
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| bad_request(StatusCode::BAD_REQUEST, "the body is not JSON"))?;
        for a in &op.attrs {
            if let AttrSource::Json { attr, pointer } = a {
                let v = json.pointer(pointer).and_then(json_value).ok_or_else(|| {
                    bad_request(
                        StatusCode::BAD_REQUEST,
                        &format!("`{pointer}` is missing from the body"),
                    )
                })?;
                attrs.push((attr.clone(), v));
            }
        }
        Body::from(bytes)
    } else {
        body
    };
    if op
        .attrs
        .iter()
        .any(|a| matches!(a, AttrSource::Path { .. }))
    {
        let params = match RawPathParams::from_request_parts(&mut parts, &()).await {
            Ok(p) => p,
            Err(_) => {
                let resp = bad_request(StatusCode::BAD_REQUEST, "path parameters are missing");
                return Err(refused(resp, body, readable, deadline).await);
            }
        };
        for a in &op.attrs {
            if let AttrSource::Path { attr, param } = a {
                let Some(v) = params
                    .iter()
                    .find(|(k, _)| k == param)
                    .map(|(_, v)| v.to_string())
                else {
                    let resp = bad_request(
                        StatusCode::BAD_REQUEST,
                        &format!("path parameter `{param}` is missing"),
                    );
                    return Err(refused(resp, body, readable, deadline).await);
                };
                attrs.push((attr.clone(), Value::Str(v)));
            }
        }
    }

    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let sign_in = shared.sign_in(peer, &parts.headers);
    let user = claims.sub.clone();
    let engine_req = stepup_engine::Request {
        tenant: s.tenant.clone(),
        application: s.application.clone(),
        user: user.clone(),
        enrolled: (s.enrolled)(&user),
        session: claims.sid.clone().unwrap_or_else(|| user.clone()),
        event: Event::Operation {
            name: op.name.clone(),
            attrs,
            context: None,
        },
        now,
    };
    let decision = if s.inline_store && s.decision_log.is_none() {
        // Memory only: no I/O to keep off the async workers. A panic is answered with a 500,
        // as it is from the blocking pool.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decide(shared, &claims, &engine_req, &sign_in)
        }))
        .map_err(drop)
    } else {
        // The store or the decision log may block (disk, Redis): keep them off the async
        // workers.
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || decide(&shared, &claims, &engine_req, &sign_in))
            .await
            .map_err(drop)
    };
    let decision = match decision {
        Ok(d) => d,
        Err(_) => {
            let resp = json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "server_error"}),
                None,
            );
            return Err(refused(resp, body, readable, deadline).await);
        }
    };
    for r in &decision.audit {
        s.audit.record(r);
    }
    if decision.deny == Some(DenyReason::StoreUnavailable) {
        let mut resp = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "temporarily_unavailable", "message": decision.message}),
            None,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(refused(resp, body, readable, deadline).await);
    }
    match http_answer_with(&decision, |a| s.claims.acr_for(a).to_string()) {
        None => Ok(Request::from_parts(parts, body)),
        Some(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::FORBIDDEN);
            let resp = json_error(status, a.body, a.www_authenticate);
            Err(refused(resp, body, readable, deadline).await)
        }
    }
}
