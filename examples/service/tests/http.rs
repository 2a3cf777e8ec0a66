//! The example service over real HTTP on loopback: the step-up round trip of the source
//! document, every malformed-token case, hot reload, and a bounded load loop.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stepup_core::Timestamp;
use stepup_example_service::{Config, StoreChoice, TokenRequest, app, mint};
use stepup_http::ReloadStatus;

const SECRET: &[u8] = b"test-secret";

struct Server {
    base: String,
    status: Arc<Mutex<ReloadStatus>>,
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn start(rules: PathBuf) -> Server {
    let cfg = Config {
        rules,
        store: StoreChoice::Memory,
        secret: SECRET.to_vec(),
        dev_issuer: true,
        reload_every: Duration::from_millis(50),
        audit_file: None,
    };
    let (router, status) = app(&cfg).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, router).await.unwrap();
        });
    });
    Server {
        base: format!("http://{addr}"),
        status,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn token(sub: &str, acr: &str, amr: &[&str], auth_age_s: i64) -> String {
    let t = TokenRequest {
        sub: sub.into(),
        acr: acr.into(),
        amr: amr.iter().map(|s| (*s).to_string()).collect(),
        auth_age_s,
        sid: None,
    };
    mint(SECRET, &t, Timestamp::now()).unwrap()
}

struct Reply {
    status: u16,
    body: serde_json::Value,
    www: Option<String>,
}

fn call(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut resp = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" {
                a.get(url)
            } else {
                a.delete(url)
            };
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.call().unwrap()
        }
        _ => {
            let mut r = a.post(url);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.send_json(body.unwrap_or(serde_json::json!({}))).unwrap()
        }
    };
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        www,
    }
}

/// Parses an RFC 9470 challenge: `Bearer k="v", k2=v2`.
fn parse_challenge(h: &str) -> Vec<(String, String)> {
    let rest = h.strip_prefix("Bearer ").expect("Bearer scheme");
    let mut out = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        let (k, v) = s.split_once('=').expect("auth-param");
        let (value, tail) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (v[..end].to_string(), &v[end..])
        };
        out.push((k.trim().to_string(), value));
        s = tail.trim_start_matches(',').trim_start();
    }
    out
}

#[test]
fn the_step_up_round_trip_of_the_source_document() {
    let srv = start(rules_dir());
    let a = agent();
    let u = |p: &str| format!("{}{p}", srv.base);

    let r = call(
        &a,
        "GET",
        &u("/profile"),
        Some(&token("alice", "aal1", &["pwd"], 3_600)),
        None,
    );
    assert_eq!(r.status, 200, "a routine read passes");

    let r = call(
        &a,
        "POST",
        &u("/email"),
        Some(&token("alice", "aal1", &["pwd"], 60)),
        Some(serde_json::json!({"email": "a@b.c"})),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "step_up_required");
    assert_eq!(r.body["required_acr"], "aal2");
    assert_eq!(r.body["max_age"], 900);
    assert!(r.body["challenge_id"].is_string());
    let params = parse_challenge(r.www.as_deref().expect("WWW-Authenticate"));
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("error").as_deref(),
        Some("insufficient_user_authentication")
    );
    assert_eq!(get("acr_values").as_deref(), Some("aal2"));
    assert_eq!(get("max_age").as_deref(), Some("900"));
    assert_eq!(
        get("error_description").as_deref(),
        r.body["message"].as_str()
    );

    let r = call(
        &a,
        "POST",
        &u("/email"),
        Some(&token("alice", "aal2", &["pwd", "otp"], 10)),
        Some(serde_json::json!({"email": "a@b.c"})),
    );
    assert_eq!(
        r.status, 200,
        "retry with an aal2 token minted 10 s ago passes: {:?}",
        r.body
    );

    let r = call(
        &a,
        "POST",
        &u("/email"),
        Some(&token("alice", "aal2", &["pwd", "otp"], 20 * 60)),
        Some(serde_json::json!({"email": "a@b.c"})),
    );
    assert_eq!(r.status, 401, "20 minutes ago is older than max_age");
    assert_eq!(r.body["max_age"], 900);

    let r = call(
        &a,
        "POST",
        &u("/payouts"),
        Some(&token("bob", "aal2", &["pwd", "sms"], 5)),
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 403, "bob has only SMS: {:?}", r.body);
    assert_eq!(r.body["error"], "stronger_factor_required");
    let r = call(
        &a,
        "POST",
        &u("/payouts"),
        Some(&token("alice", "aal2", &["pwd", "sms"], 5)),
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 401, "an sms token does not reach aal3");
    assert_eq!(r.body["required_acr"], "aal3");
    assert_eq!(
        r.body["allowed_factors"],
        serde_json::json!(["totp", "webauthn"])
    );
    let r = call(
        &a,
        "POST",
        &u("/payouts"),
        Some(&token("alice", "aal3", &["pwd", "hwk"], 5)),
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 200);
    let r = call(
        &a,
        "POST",
        &u("/payouts"),
        Some(&token("alice", "aal1", &["pwd"], 5)),
        Some(serde_json::json!({"note": "no amount"})),
    );
    assert_eq!(
        r.status, 400,
        "a payout without an amount is refused, not waved through"
    );

    let r = call(
        &a,
        "DELETE",
        &u("/apps/42"),
        Some(&token("alice", "aal1", &["pwd"], 5)),
        None,
    );
    assert_eq!(
        (r.status, r.body["required_acr"].as_str()),
        (401, Some("aal2")),
        "admin default"
    );
    let r = call(
        &a,
        "DELETE",
        &u("/apps/42"),
        Some(&token("alice", "aal2", &["pwd", "otp"], 5)),
        None,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn every_malformed_token_gets_invalid_token() {
    let srv = start(rules_dir());
    let a = agent();
    let url = format!("{}/profile", srv.base);
    let now = Timestamp::now().0;
    let claims = |iss: &str, aud: &str, exp: i64| serde_json::json!({"sub": "alice", "acr": "aal2", "auth_time": now, "amr": ["otp"], "exp": exp, "iss": iss, "aud": aud});
    let sign = |c: &serde_json::Value, secret: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            c,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let good = sign(
        &claims(
            stepup_example_service::ISSUER,
            stepup_example_service::AUDIENCE,
            now + 600,
        ),
        SECRET,
    );
    let (h, p, s) = {
        let mut it = good.split('.');
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        )
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("not a jwt", Some("not-a-token".into())),
        ("garbage segments", Some("a.b.c".into())),
        (
            "expired",
            Some(sign(
                &claims(
                    stepup_example_service::ISSUER,
                    stepup_example_service::AUDIENCE,
                    now - 10,
                ),
                SECRET,
            )),
        ),
        (
            "wrong signature",
            Some(sign(
                &claims(
                    stepup_example_service::ISSUER,
                    stepup_example_service::AUDIENCE,
                    now + 600,
                ),
                b"another-secret",
            )),
        ),
        (
            "other audience",
            Some(sign(
                &claims(stepup_example_service::ISSUER, "someone-else", now + 600),
                SECRET,
            )),
        ),
        (
            "other issuer",
            Some(sign(
                &claims(
                    "https://evil.invalid",
                    stepup_example_service::AUDIENCE,
                    now + 600,
                ),
                SECRET,
            )),
        ),
        (
            "tampered payload",
            Some(format!("{h}.{}.{s}", p.replace('A', "B"))),
        ),
        (
            "alg none",
            Some(format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{p}.")),
        ),
    ];
    for (what, tok) in cases {
        let r = call(&a, "GET", &url, tok.as_deref(), None);
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(
            r.body["error"], "invalid_token",
            "{what}: never a step-up prompt"
        );
        assert!(
            r.www
                .as_deref()
                .is_some_and(|w| w.starts_with("Bearer error=\"invalid_token\"")),
            "{what}"
        );
    }
    assert_eq!(
        call(&a, "GET", &url, Some(&good), None).status,
        200,
        "the same token untampered passes"
    );
}

fn copy_rules(to: &Path) {
    for f in ["acme.policy", "finance.policy"] {
        std::fs::copy(rules_dir().join(f), to.join(f)).unwrap();
    }
    std::fs::create_dir_all(to.join("feeds")).unwrap();
    std::fs::copy(
        rules_dir().join("feeds/blocklist.netset"),
        to.join("feeds/blocklist.netset"),
    )
    .unwrap();
}

fn wait_for(srv: &Server, what: &str, f: impl Fn(&ReloadStatus) -> bool) -> ReloadStatus {
    for _ in 0..200 {
        let s = srv.status.lock().unwrap().clone();
        if f(&s) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the reloader never reached: {what}");
}

#[test]
fn a_broken_rules_file_is_refused_and_the_last_good_set_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path());
    let srv = start(dir.path().to_path_buf());
    let a = agent();
    let email = format!("{}/email", srv.base);
    let aal1 = token("alice", "aal1", &["pwd"], 5);
    let first = srv.status.lock().unwrap().live.clone();
    assert_eq!(call(&a, "POST", &email, Some(&aal1), None).status, 401);

    let acme = dir.path().join("acme.policy");
    let good = std::fs::read_to_string(&acme).unwrap();
    std::fs::write(
        &acme,
        good.replace(
            "require aal2 factor any for 15m\n  }\n\n  policy payouts",
            "require aal2 factor totpp for 15m\n  }\n\n  policy payouts",
        ),
    )
    .unwrap();
    let s = wait_for(&srv, "refusal", |s| s.refused >= 1);
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("unknown factor `totpp`")),
        "{:?}",
        s.last_error
    );
    for _ in 0..50 {
        assert_eq!(
            call(&a, "POST", &email, Some(&aal1), None).status,
            401,
            "the last good set answers"
        );
    }
    assert_eq!(srv.status.lock().unwrap().live, first);

    // Fix it, with the sensitive-ops policy removed: the new set goes live and email no longer prompts.
    let start_pol = good.find("  policy sensitive_ops").unwrap();
    let end_pol = good[start_pol..].find("  }\n").unwrap() + start_pol + 4;
    std::fs::write(&acme, format!("{}{}", &good[..start_pol], &good[end_pol..])).unwrap();
    std::fs::write(
        dir.path().join("finance.policy"),
        "application finance of acme {\n}\n",
    )
    .unwrap();
    let s = wait_for(&srv, "new set live", |s| {
        s.reloads >= 1 && s.last_error.is_none()
    });
    assert_ne!(s.live, first);
    assert_eq!(call(&a, "POST", &email, Some(&aal1), None).status, 200);
}

#[test]
fn bounded_load_on_loopback_has_no_errors() {
    let srv = Arc::new(start(rules_dir()));
    let tok = token("alice", "aal2", &["pwd", "otp"], 5);
    let per_client = 5_000;
    let mut handles = Vec::new();
    for path in ["/health", "/profile", "/email"] {
        let (base, tok) = (srv.base.clone(), tok.clone());
        let started = Instant::now();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (base, tok) = (base.clone(), tok.clone());
                std::thread::spawn(move || {
                    let a = agent();
                    let url = format!("{base}{path}");
                    let mut errors = 0;
                    for _ in 0..per_client {
                        let r = if path == "/email" {
                            call(
                                &a,
                                "POST",
                                &url,
                                Some(&tok),
                                Some(serde_json::json!({"email": "a@b.c"})),
                            )
                        } else {
                            call(&a, "GET", &url, Some(&tok), None)
                        };
                        errors += usize::from(r.status != 200);
                    }
                    errors
                })
            })
            .collect();
        let errors: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
        let elapsed = started.elapsed();
        handles.push((path, errors, elapsed));
    }
    for (path, errors, elapsed) in &handles {
        let n = 4 * per_client;
        println!(
            "load {path}: {n} requests, 4 clients, {errors} errors, {:.0} req/s, {:.1} µs per request per client",
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 * 4.0 / n as f64
        );
        assert_eq!(*errors, 0, "{path}");
    }
}

#[test]
fn a_refused_request_leaves_the_keep_alive_connection_usable() {
    // A client retries on the same connection after a 401: the layer reads the refused request's
    // body before answering, so the connection is not torn down under the client.
    let srv = start(rules_dir());
    let a = agent();
    let url = format!("{}/email", srv.base);
    let aal1 = token("alice", "aal1", &["pwd"], 5);
    for i in 0..300 {
        let body = serde_json::json!({"email": "a@b.c", "padding": "x".repeat(i * 97 % 20_000)});
        let r = call(&a, "POST", &url, Some(&aal1), Some(body.clone()));
        assert_eq!(r.status, 401, "request {i}");
        let r = call(&a, "POST", &url, Some("not-a-token"), Some(body.clone()));
        assert_eq!(r.status, 401, "request {i}");
    }
}
