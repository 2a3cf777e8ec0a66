//! The tower layer. One [`StepUp`] per service holds the engine, the store, the token verifier,
//! the audit sink and where request context comes from (trusted proxies, device header, GeoIP);
//! [`StepUp::layer`] makes a layer for one route's operation. Sessions: see [`crate::session`].
//!
//! Every refusal is answered within the body timeout, whatever the request's body does: the
//! layer reads what is left of it only until then, and closes the connection if it did not
//! arrive. Serve the router with `into_make_service_with_connect_info::<SocketAddr>()` so the
//! layer knows the client's address; without it the address is unknown (fail closed).

use std::cell::Cell;
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
use crate::token::{TokenVerifier, VerifiedToken, VerifiedTokens};
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
    /// A request without it, or with no value the language reads there (null, an array, an
    /// object), is refused with 400: a payout without an amount must not slip by, and an `every
    /// time` grant binds the value it was earned for. A value of another type than declared is
    /// read: its tests are unknown, and their policies fire (SPEC §10).
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
    tenant: Arc<str>,
    application: Arc<str>,
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

impl Shared {
    /// Decisions are made on the async worker: the store answers from memory and no decision
    /// log is written.
    fn decides_inline(&self) -> bool {
        self.inline_store && self.decision_log.is_none()
    }
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

    /// The layer for one route. Apply it with `MethodRouter::route_layer` (`post(handler)
    /// .route_layer(stepup.layer(op))`), so that a method the route does not serve is answered
    /// 405 before the layer decides: with `layer`, it wraps the 405 too, and a `GET` of a
    /// `POST` route is decided as the operation (an `every time` grant spent by a request
    /// the route then refuses).
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
/// writes the decision log. `sign_in` gives the request's context, asked only on a sign-in.
fn decide(
    shared: &StepUp,
    token: &VerifiedToken,
    req: &stepup_engine::Request,
    sign_in: &dyn Fn() -> Context,
) -> stepup_engine::Decision {
    let s = &shared.0;
    let set = s.engine.current();
    let (d, logged, earlier) = session::decide(
        &set,
        s.store.as_ref(),
        &s.claims,
        &token.auth,
        req,
        // The session is the user's, shared by all of their logins, when the token names no
        // login of its own (no `sid`, an empty one, or one that is the user id).
        req.session == req.user,
        sign_in,
        s.decision_log.is_some(),
        // An async worker never sleeps.
        !s.decides_inline(),
    );
    if let Some(log) = &s.decision_log {
        for (req, state, d) in &earlier {
            log.write(req, Some(state), d);
        }
        if let Some((req, state)) = logged {
            log.write(&req, state.as_ref(), &d);
        }
    }
    d
}

/// Decides on the async worker that received the request (the store answers from memory and
/// no decision log is written). A panic is answered with a 500, as it is from the blocking
/// pool.
fn decide_inline(
    shared: &StepUp,
    token: &VerifiedToken,
    req: &stepup_engine::Request,
    sign_in: &dyn Fn() -> Context,
) -> Result<stepup_engine::Decision, ()> {
    caught(|| decide(shared, token, req, sign_in))
}

/// A JSON body read in one pass, refused when an object names a field twice (exactly, or in
/// letters of another case): the layer would read the last value, and the route (or a backend
/// behind it) may read the first, or the other spelling, so the decision would be on another
/// amount than the one paid.
struct UniqueNames(serde_json::Value);

/// The error [`UniqueNames`] gives for a field named twice.
const NAMED_TWICE: &str = "a field named twice";

impl<'de> serde::Deserialize<'de> for UniqueNames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueNamesVisitor)
    }
}

struct UniqueNamesVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueNamesVisitor {
    type Value = UniqueNames;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<UniqueNames, E> {
        Ok(UniqueNames(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<UniqueNames, E> {
        Ok(UniqueNames(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<UniqueNames, E> {
        Ok(UniqueNames(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<UniqueNames, E> {
        // As `serde_json::Value` reads a number (JSON has no infinite or NaN one).
        Ok(UniqueNames(
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<UniqueNames, E> {
        Ok(UniqueNames(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<UniqueNames, E> {
        Ok(UniqueNames(v.into()))
    }
    fn visit_unit<E>(self) -> Result<UniqueNames, E> {
        Ok(UniqueNames(serde_json::Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<UniqueNames, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueNames(v)) = a.next_element()? {
            items.push(v);
        }
        Ok(UniqueNames(items.into()))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<UniqueNames, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut folded = std::collections::HashSet::new();
        while let Some(name) = a.next_key::<String>()? {
            // Named twice: exactly, or in letters of another case (a backend that matches
            // names without regard to case, as Go's `encoding/json` does, reads the other).
            if fields.contains_key(&name) || !folded.insert(case_folded(&name)) {
                return Err(serde::de::Error::custom(NAMED_TWICE));
            }
            let UniqueNames(v) = a.next_value()?;
            fields.insert(name, v);
        }
        Ok(UniqueNames(fields.into()))
    }
}

/// A field name as a case-insensitive match reads it: lowercased, with the letters Unicode
/// folds to ASCII ones (`ſ` to `s`; the Kelvin sign lowercases to `k`).
fn case_folded(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ſ' { 's' } else { c })
        .collect()
}

/// Runs `f`, a panic in it (in the service's callbacks, or a bug) an `Err`.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(drop)
}

/// The answer to a request whose decision panicked: 500 `server_error`.
fn server_error() -> Response {
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        serde_json::json!({"error": "server_error"}),
        None,
    )
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
        match check(&self.shared, &self.op, req) {
            // Decided before anything was awaited: the inner service, ready, takes the request.
            Step::Pass(req) => Box::pin(self.inner.call(req)),
            Step::Refuse(r) => Box::pin(async move { Ok(r.answer().await) }),
            Step::Await(checked) => {
                // The ready inner service goes into the future; a fresh clone takes its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let (shared, op) = (self.shared.clone(), Arc::clone(&self.op));
                Box::pin(async move {
                    match enforce(&shared, &op, *checked).await {
                        Ok(req) => inner.call(req).await,
                        Err(resp) => Ok(resp),
                    }
                })
            }
        }
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

/// A request with no bearer token: the challenge carries no error code (RFC 6750 §3.1: the
/// request had no authentication to be wrong), the body says what is missing.
fn no_token() -> Response {
    json_error(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": "invalid_token", "error_description": "a bearer access token is required"}),
        Some("Bearer".to_string()),
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

/// A refused request, answered once what is left of its body was read (see [`refused`]).
struct Refusal {
    resp: Response,
    body: Body,
    readable: bool,
    deadline: Instant,
}

impl Refusal {
    async fn answer(self) -> Response {
        refused(self.resp, self.body, self.readable, self.deadline).await
    }
}

/// A request whose token is valid, before its attributes are read and it is decided.
struct Checked {
    parts: Parts,
    body: Body,
    /// Its body is announced larger than the layer reads.
    too_long: bool,
    /// A refusal may read what is left of its body.
    readable: bool,
    deadline: Instant,
    now: Timestamp,
    token: Arc<VerifiedToken>,
}

impl Checked {
    fn refuse(self, resp: Response) -> Refusal {
        Refusal {
            resp,
            body: self.body,
            readable: self.readable,
            deadline: self.deadline,
        }
    }
}

/// A decided request.
enum Verdict {
    /// Allowed: on to the route.
    Pass(Request<Body>),
    /// Refused.
    Refuse(Refusal),
}

/// Where a request stands after what can be done without waiting.
enum Step {
    /// Allowed: on to the route.
    Pass(Request<Body>),
    /// Refused.
    Refuse(Refusal),
    /// Its attributes are in its body or path, or its decision goes to the blocking pool.
    Await(Box<Checked>),
}

/// The bearer token of the `Authorization` header (the scheme's name in any case, RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The key of the token's session: its `sid`, or its user when it names no login (no `sid`, or
/// an empty one: then all of the user's logins share the session).
fn session_key(token: &VerifiedToken) -> &str {
    match token.claims.sid.as_deref() {
        Some(sid) if !sid.is_empty() => sid,
        _ => &token.claims.sub,
    }
}

/// The engine's request for operation `op` of the token's session.
fn engine_request(
    s: &Shared,
    op: &Operation,
    token: &VerifiedToken,
    attrs: Vec<(String, Value)>,
    now: Timestamp,
) -> stepup_engine::Request {
    let user = &token.claims.sub;
    stepup_engine::Request {
        tenant: s.tenant.clone(),
        application: s.application.clone(),
        user: user.as_str().into(),
        enrolled: (s.enrolled)(user),
        session: session_key(token).into(),
        event: Event::Operation {
            name: op.name.clone(),
            attrs,
            context: None,
        },
        now,
    }
}

thread_local! {
    /// The engine request last decided on this thread, kept so the next one reuses its
    /// strings' allocations (see [`with_engine_request`]).
    static SCRATCH: Cell<Option<stepup_engine::Request>> = const { Cell::new(None) };
}

/// Calls `f` with the engine's request for operation `op` of the token's session, without
/// attributes, as [`engine_request`] makes it, but in the request this thread decided last:
/// the names are shared, and a name that has not changed is kept. Every field is
/// overwritten (the pattern below names them all, so a new field cannot be left stale).
/// Deciding never awaits, so no other request can use the scratch meanwhile; after a panic
/// it is simply made again.
fn with_engine_request<T>(
    s: &Shared,
    op: &Operation,
    token: &VerifiedToken,
    now: Timestamp,
    f: impl FnOnce(&stepup_engine::Request) -> T,
) -> T {
    let mut req = SCRATCH
        .take()
        .unwrap_or_else(|| engine_request(s, op, token, Vec::new(), now));
    let stepup_engine::Request {
        tenant,
        application,
        user,
        enrolled,
        session,
        event,
        now: at,
    } = &mut req;
    let sub = &token.claims.sub;
    tenant.clone_from(&s.tenant);
    application.clone_from(&s.application);
    // The request's names are shared; the scratch keeps them while they stay the same.
    if **user != **sub {
        *user = sub.as_str().into();
    }
    *enrolled = (s.enrolled)(sub);
    let key = session_key(token);
    if **session != *key {
        *session = key.into();
    }
    *at = now;
    match event {
        Event::Operation {
            name,
            attrs,
            context,
        } => {
            name.clone_from(&op.name);
            attrs.clear();
            *context = None;
        }
        other => {
            *other = Event::Operation {
                name: op.name.clone(),
                attrs: Vec::new(),
                context: None,
            };
        }
    }
    let out = f(&req);
    SCRATCH.set(Some(req));
    out
}

/// What can be done before anything is awaited: the token is checked, and a route whose
/// operation reads no attribute is decided here when the store answers from memory.
fn check(shared: &StepUp, op: &Operation, req: Request<Body>) -> Step {
    let s = &shared.0;
    let deadline = Instant::now() + s.body_timeout;
    let (parts, body) = req.into_parts();
    let too_long = too_long(&parts);
    // A refusal drains what is left of the body, unless it is too long or not sent yet
    // (`Expect: 100-continue`: reading would invite the client to send it).
    let readable = !too_long && !parts.headers.contains_key(header::EXPECT);
    let now = (s.clock)();
    // One token, sent one way (RFC 6750 §3.1 `invalid_request`): with two `Authorization`
    // headers the layer decided on the first, and a route or proxy reading the last acts for
    // another user (an outside check).
    if parts
        .headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
        // The query's names read as a handler's `Query` decodes them (`access%5Ftoken` is
        // `access_token`: a review); a query that does not decode is refused too.
        || parts.uri.query().is_some_and(|_| {
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map_or(true, |q| q.0.iter().any(|(k, _)| k == "access_token"))
        })
    {
        return Step::Refuse(Refusal {
            resp: bad_request(
                StatusCode::BAD_REQUEST,
                "send one bearer token, in one Authorization header",
            ),
            body,
            readable,
            deadline,
        });
    }
    let verified = match bearer(&parts.headers) {
        None => Err(None),
        Some(token) => s.verified.verify(&s.verifier, token, now).map_err(Some),
    };
    let token = match verified {
        Ok(t) => t,
        Err(e) => {
            return Step::Refuse(Refusal {
                resp: e.map_or_else(no_token, |e| invalid_token(&e)),
                body,
                readable,
                deadline,
            });
        }
    };
    let checked = Checked {
        parts,
        body,
        too_long,
        readable,
        deadline,
        now,
        token,
    };
    if !op.attrs.is_empty() || !s.decides_inline() {
        return Step::Await(Box::new(checked));
    }
    let peer = peer(&checked.parts);
    let (token, headers) = (&checked.token, &checked.parts.headers);
    // The service's `enrolled` callback runs as the request is made: a panic there is a 500,
    // as one in deciding is.
    let decision = caught(|| {
        with_engine_request(s, op, token, now, |req| {
            decide(shared, token, req, &|| shared.context(peer, headers))
        })
    });
    match conclude(s, checked, decision) {
        Verdict::Pass(req) => Step::Pass(req),
        Verdict::Refuse(r) => Step::Refuse(r),
    }
}

/// Answers a decision: the request goes on to the route, or is refused.
fn conclude(s: &Shared, c: Checked, decision: Result<stepup_engine::Decision, ()>) -> Verdict {
    let Ok(decision) = decision else {
        return Verdict::Refuse(c.refuse(server_error()));
    };
    // The service's audit sink: a panic there is a 500, the request not passed on (its records
    // may not all be written).
    if caught(|| {
        for r in &decision.audit {
            s.audit.record(r);
        }
    })
    .is_err()
    {
        return Verdict::Refuse(c.refuse(server_error()));
    }
    if decision.deny == Some(DenyReason::StoreUnavailable) {
        let mut resp = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "temporarily_unavailable", "message": decision.message}),
            None,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Verdict::Refuse(c.refuse(resp));
    }
    match http_answer_with(&decision, |a| s.claims.acr_for(a).to_string()) {
        None => Verdict::Pass(Request::from_parts(c.parts, c.body)),
        Some(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::FORBIDDEN);
            Verdict::Refuse(c.refuse(json_error(status, a.body, a.www_authenticate)))
        }
    }
}

/// The rest of a checked request: its attributes from the body and path, and its decision,
/// on the blocking pool unless the store answers from memory.
async fn enforce(
    shared: &StepUp,
    op: &Operation,
    mut c: Checked,
) -> Result<Request<Body>, Response> {
    let s = &shared.0;
    let deadline = c.deadline;
    let mut attrs = Vec::new();
    let needs_body = op
        .attrs
        .iter()
        .any(|a| matches!(a, AttrSource::Json { .. }));
    if needs_body {
        if c.too_long {
            return Err(closing(bad_request(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large",
            )));
        }
        let body = std::mem::take(&mut c.body);
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
        let json = match serde_json::from_slice::<UniqueNames>(&bytes) {
            Ok(UniqueNames(json)) => json,
            Err(e) if e.to_string().starts_with(NAMED_TWICE) => {
                return Err(bad_request(
                    StatusCode::BAD_REQUEST,
                    "the body names a field twice in one object (names are compared without \
                     regard to case)",
                ));
            }
            Err(_) => return Err(bad_request(StatusCode::BAD_REQUEST, "the body is not JSON")),
        };
        for a in &op.attrs {
            // A field the body does not have, or has as no value the language reads (null, an
            // array, an object), is refused with 400: the route could act on a value the
            // decision did not read, and an `every time` policy that reads it could never be
            // satisfied (its grant binds the value; a second review found the user prompted
            // without end when this was decided as an absent attribute instead). A value of
            // the wrong type is read as it is: its tests are unknown, and they fire.
            if let AttrSource::Json { attr, pointer } = a {
                let v = json.pointer(pointer).and_then(json_value).ok_or_else(|| {
                    bad_request(
                        StatusCode::BAD_REQUEST,
                        &format!("`{pointer}` is missing from the body, or is not a number, a string or a boolean"),
                    )
                })?;
                attrs.push((attr.clone(), v));
            }
        }
        c.body = Body::from(bytes);
        // Decided as of now, not as of the headers: a challenge this request issues is dated
        // when it is issued (a body held back must not date it before a step-up made
        // meanwhile).
        c.now = (s.clock)().max(c.now);
    }
    if op
        .attrs
        .iter()
        .any(|a| matches!(a, AttrSource::Path { .. }))
    {
        let params = match RawPathParams::from_request_parts(&mut c.parts, &()).await {
            Ok(p) => p,
            Err(_) => {
                let resp = bad_request(StatusCode::BAD_REQUEST, "path parameters are missing");
                return Err(c.refuse(resp).answer().await);
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
                    return Err(c.refuse(resp).answer().await);
                };
                attrs.push((attr.clone(), Value::Str(v)));
            }
        }
    }

    let Ok(req) = caught(|| engine_request(s, op, &c.token, attrs, c.now)) else {
        return Err(c.refuse(server_error()).answer().await);
    };
    let peer = peer(&c.parts);
    let decision = if s.decides_inline() {
        let headers = &c.parts.headers;
        decide_inline(shared, &c.token, &req, &|| shared.context(peer, headers))
    } else {
        // The store or the decision log may block (disk, Redis): keep them off the async
        // workers. The sign-in context is read from the request here, for the blocking pool.
        let sign_in = shared.sign_in(peer, &c.parts.headers);
        let (shared, token) = (shared.clone(), Arc::clone(&c.token));
        tokio::task::spawn_blocking(move || decide(&shared, &token, &req, &|| sign_in.context()))
            .await
            .map_err(drop)
    };
    match conclude(s, c, decision) {
        Verdict::Pass(req) => Ok(req),
        Verdict::Refuse(r) => Err(r.answer().await),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::token::{AccessClaims, Audience};
    use stepup_core::Factor;
    use stepup_engine::{CompiledSet, MemoryStore};

    const RULES: &str = "tenant t {\n  operation view routine\n  operation pay sensitive\n}\napplication app of t {\n}\n";

    /// A body read with the duplicate check is the value `serde_json` reads (numbers of every
    /// kind, escapes, nesting, the same name in two objects), a field named twice at any depth
    /// is that error, and text that is not JSON is another.
    #[test]
    fn a_body_reads_as_serde_json_reads_it_and_a_repeated_name_is_its_own_error() {
        let read = |b: &str| serde_json::from_slice::<UniqueNames>(b.as_bytes()).map(|u| u.0);
        for body in [
            r#"{"amount":5000,"a":-0,"b":-0.0,"c":1.5e3,"d":18446744073709551615,"e":-9223372036854775808}"#,
            r#"{"s":"\u00e9\n\"","t":true,"f":false,"n":null,"l":[1,[2,{"x":{}}],[]]}"#,
            r#"{"amount":1,"meta":{"amount":2},"items":[{"x":1},{"x":2}]}"#,
            "[]",
            "42",
            "\"text\"",
        ] {
            let want: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(read(body).unwrap(), want, "{body}");
        }
        for body in [
            r#"{"a":1,"a":1}"#,
            r#"{"x":{"a":1,"b":2,"a":3}}"#,
            r#"[{"a":1},{"b":1,"b":2}]"#,
            r#"{"amount":10,"AMOUNT":5000000}"#,
            r#"{"Amount":10,"amount":5000000}"#,
            r#"{"cost":10,"co\u017ft":5000000}"#,
            r#"{"kind":1,"\u212aind":2}"#,
        ] {
            let e = read(body).unwrap_err().to_string();
            assert!(e.starts_with(NAMED_TWICE), "{body}: {e}");
        }
        for body in ["{\"a\":", "{a:1}", "1e999", ""] {
            let e = read(body).unwrap_err().to_string();
            assert!(!e.starts_with(NAMED_TWICE), "{body}: {e}");
        }
    }

    fn token(sub: &str, sid: Option<&str>) -> VerifiedToken {
        VerifiedToken::new(AccessClaims {
            sub: sub.into(),
            sid: sid.map(str::to_string),
            acr: Some("aal2".into()),
            auth_time: Some(10),
            amr: vec!["pwd".into()],
            exp: 1_000,
            nbf: None,
            iat: None,
            iss: "iss".into(),
            aud: Audience::One("api".into()),
        })
    }

    #[test]
    fn a_reused_engine_request_is_the_one_a_fresh_request_would_be() {
        let engine = Engine::new(CompiledSet::from_text("t.policy", RULES).unwrap());
        let stepup = StepUp::new(
            Arc::new(engine),
            Arc::new(MemoryStore::new()),
            TokenVerifier::hs256(&[7; 32], "iss", "api").unwrap(),
            "t",
            "app",
            |user| {
                if user == "alice" {
                    FactorSet::one(Factor::Totp)
                } else {
                    FactorSet::one(Factor::Sms)
                }
            },
            Arc::new(crate::MemorySink::default()),
        );
        let s = &stepup.0;
        let (view, pay) = (Operation::new("view"), Operation::new("pay"));
        let (alice, bob) = (token("alice", Some("s-1")), token("bob", None));
        let mut seen = 0;
        let mut check = |op: &Operation, t: &VerifiedToken, now: i64| {
            let fresh = engine_request(s, op, t, Vec::new(), Timestamp(now));
            with_engine_request(s, op, t, Timestamp(now), |r| assert_eq!(*r, fresh));
            seen += 1;
        };
        // Longer names after shorter ones and back: nothing of the last request remains.
        check(&view, &alice, 1);
        check(&pay, &bob, 2);
        check(&view, &bob, 3);
        check(&pay, &alice, 4);
        // An empty `sid` names no login: the session is the user's.
        let blank = token("carol", Some(""));
        check(&view, &blank, 4);
        assert_eq!(
            engine_request(s, &view, &blank, Vec::new(), Timestamp(4)).session,
            "carol".into()
        );
        // A scratch left holding another kind of event is given an operation again.
        let mut other = engine_request(s, &pay, &alice, Vec::new(), Timestamp(5));
        other.event = Event::StepUp {
            factor: Factor::Totp,
            success: true,
        };
        SCRATCH.set(Some(other));
        check(&view, &bob, 6);
        // And one holding attributes loses them.
        let mut with_attrs = engine_request(s, &pay, &alice, Vec::new(), Timestamp(7));
        with_attrs.event = Event::Operation {
            name: "pay".into(),
            attrs: vec![("amount".into(), Value::Number(5.0))],
            context: Some(Context::default()),
        };
        SCRATCH.set(Some(with_attrs));
        check(&pay, &alice, 8);
        assert_eq!(seen, 7);
    }
}
