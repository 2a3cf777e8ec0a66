//! Two applications of one tenant behind one store: a session established in one is not
//! established in the other (found by the review of round 13).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assertion is the report"
)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::{CompiledSet, Engine, MemoryStore, Store};
use stepup_http::{MemorySink, Operation, StepUp, TokenVerifier};

const SECRET: &[u8] = b"applications-tests-secret-0123456789abcdef";

const RULES: &str = r#"tenant t {
  operation view routine
}
application portal of t {
}
application admin of t {
  policy admin_new_device "New device on the admin console: use your key." {
    when new_device
    require aal3 factor webauthn|totp for 5m
  }
}
"#;

/// Serves `GET /view` for application `app` on `store`; returns the address.
fn serve(app: &str, store: Arc<dyn Store>, engine: Arc<Engine>) -> String {
    let s = StepUp::new(
        engine,
        store,
        TokenVerifier::hs256(SECRET, "iss", "api").unwrap(),
        "t",
        app,
        |_| {
            [Factor::Password, Factor::Totp, Factor::Webauthn]
                .into_iter()
                .collect::<FactorSet>()
        },
        Arc::new(MemorySink::default()) as Arc<dyn stepup_http::AuditSink>,
    )
    .with_device_header("x-device");
    let router = Router::new().route(
        "/view",
        get(|| async { "viewed" }).layer(s.layer(Operation::new("view"))),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(
                l,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    });
    addr
}

/// The status code of `GET /view` with `token` (and a device header when given).
fn status(addr: &str, token: &str, device: Option<&str>) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let dev = device
        .map(|d| format!("x-device: {d}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!(
            "GET /view HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{dev}Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_session_established_in_one_application_is_not_established_in_another() {
    // A stolen password signs in to the portal (no sign-in policy there, and no device header:
    // nothing learned), then opens the admin console from a new device. The admin console's
    // sign-in policy must still be decided: the session is the application's.
    let now = Timestamp::now().0;
    let engine = Arc::new(Engine::new(
        CompiledSet::from_text("t.policy", RULES).unwrap(),
    ));
    for sid in [None, Some("idp-session-1")] {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let portal = serve("portal", Arc::clone(&store), Arc::clone(&engine));
        let admin = serve("admin", Arc::clone(&store), Arc::clone(&engine));
        let mut claims = serde_json::json!({
            "sub": "alice", "iss": "iss", "aud": "api", "exp": now + 3600, "iat": now,
            "auth_time": now - 60, "amr": ["pwd"], "acr": "aal1",
        });
        if let Some(s) = sid {
            claims["sid"] = s.into();
        }
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(status(&portal, &token, None), 200, "{sid:?}: the portal");
        assert_eq!(
            status(&admin, &token, Some("attacker-pc")),
            401,
            "{sid:?}: the admin console's sign-in from a new device"
        );
        assert_eq!(
            status(&portal, &token, None),
            200,
            "{sid:?}: the portal's session is still established"
        );
    }
}
