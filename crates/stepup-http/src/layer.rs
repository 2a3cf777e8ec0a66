//! The tower layer. One [`StepUp`] per service holds the engine, the store, the token verifier
//! and the audit sink; [`StepUp::layer`] makes a layer for one route's operation.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stepup_core::{FactorSet, Timestamp};
use stepup_engine::contract::{Claims, http_answer, session_from_claims};
use stepup_engine::{Engine, Event, Store, Value};

use crate::audit::AuditSink;
use crate::token::TokenVerifier;

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

/// What every protected route shares.
pub struct Shared {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    verifier: TokenVerifier,
    tenant: String,
    application: String,
    enrolled: Arc<Enrolled>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<Clock>,
}

/// The step-up enforcer of one service.
#[derive(Clone)]
pub struct StepUp(Arc<Shared>);

impl StepUp {
    /// An enforcer for `tenant`/`application`. `enrolled` says which factors a user has.
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
        }))
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

fn bad_request(why: &str) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "invalid_request", "error_description": why}),
        None,
    )
}

fn json_value(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
        serde_json::Value::Number(n) => n.as_f64().map(Value::Number),
        serde_json::Value::String(s) => Some(Value::Str(s.clone())),
        _ => None,
    }
}

/// Reads what is left of a refused request's body (up to the limit) before answering, so a
/// keep-alive connection stays usable for the client's retry.
async fn drained(resp: Response, body: Body) -> Response {
    let _ = axum::body::to_bytes(body, MAX_BODY_BYTES).await;
    resp
}

async fn enforce(
    shared: &StepUp,
    op: &Operation,
    req: Request<Body>,
) -> Result<Request<Body>, Response> {
    let s = &shared.0;
    let (mut parts, body) = req.into_parts();
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
        return Err(drained(invalid_token("a bearer access token is required"), body).await);
    };
    let claims = match s.verifier.verify(token) {
        Ok(c) => c,
        Err(e) => return Err(drained(invalid_token(&e), body).await),
    };
    let mut attrs = Vec::new();
    let needs_body = op
        .attrs
        .iter()
        .any(|a| matches!(a, AttrSource::Json { .. }));
    let body = if needs_body {
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| bad_request("the body is too large or unreadable"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| bad_request("the body is not JSON"))?;
        for a in &op.attrs {
            if let AttrSource::Json { attr, pointer } = a {
                let v = json
                    .pointer(pointer)
                    .and_then(json_value)
                    .ok_or_else(|| bad_request(&format!("`{pointer}` is missing from the body")))?;
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
        let params = RawPathParams::from_request_parts(&mut parts, &())
            .await
            .map_err(|_| bad_request("path parameters are missing"))?;
        for a in &op.attrs {
            if let AttrSource::Path { attr, param } = a {
                let v = params
                    .iter()
                    .find(|(k, _)| k == param)
                    .map(|(_, v)| v.to_string())
                    .ok_or_else(|| bad_request(&format!("path parameter `{param}` is missing")))?;
                attrs.push((attr.clone(), Value::Str(v)));
            }
        }
    }

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
        now: (s.clock)(),
    };
    let session = session_from_claims(&Claims {
        acr: claims.acr.clone(),
        auth_time: claims.auth_time,
        amr: claims.amr.clone(),
    });
    let (engine, store) = (Arc::clone(&s.engine), Arc::clone(&s.store));
    // The store may block (disk, Redis): keep it off the async workers.
    let decision = tokio::task::spawn_blocking(move || {
        engine.process_with_session(store.as_ref(), &engine_req, session)
    })
    .await
    .map_err(|_| {
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "server_error"}),
            None,
        )
    })?;
    for r in &decision.audit {
        s.audit.record(r);
    }
    match http_answer(&decision) {
        None => Ok(Request::from_parts(parts, body)),
        Some(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::FORBIDDEN);
            Err(drained(json_error(status, a.body, a.www_authenticate), body).await)
        }
    }
}
