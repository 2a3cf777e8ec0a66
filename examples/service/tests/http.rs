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

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stepup_core::Timestamp;
use stepup_example_service::{Config, Key, StoreChoice, TokenRequest, app, mint};
use stepup_http::ReloadStatus;

const SECRET: &[u8] = b"example-tests-secret-0123456789abcdef";

struct Server {
    base: String,
    addr: SocketAddr,
    status: Arc<Mutex<ReloadStatus>>,
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// A small GeoLite2-City-shaped database that places loopback in Paris (written by the test,
/// nothing downloaded), once per test process: the tests run at once, and one rewriting the
/// file while another's service read it made that read fail ("not a MaxMind database", seen in
/// CI).
fn geoip_file() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let db = stepup_geoip::test_db::city(&[("127.0.0.0/8", "FR", 48.8566, 2.3522)]).unwrap();
        let path = std::env::temp_dir().join(format!("stepup-example-{}.mmdb", std::process::id()));
        std::fs::write(&path, db).unwrap();
        path
    })
    .clone()
}

/// The test configuration: a memory store, a known HS256 key, GeoIP placing loopback in Paris,
/// the device header: the example's users sign in from where they always do.
fn config(rules: PathBuf) -> Config {
    let mut cfg = Config::new(rules);
    cfg.store = StoreChoice::Memory;
    cfg.key = Key::Hs256(SECRET.to_vec());
    cfg.dev_issuer = true;
    cfg.reload_every = Duration::from_millis(50);
    cfg.geoip = Some(geoip_file());
    cfg.device_header = Some("x-device".into());
    cfg
}

fn start(rules: PathBuf) -> Server {
    start_with(config(rules))
}

fn start_with(cfg: Config) -> Server {
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
            axum::serve(
                l,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    });
    Server {
        base: format!("http://{addr}"),
        addr,
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
    token_sid(sub, None, acr, amr, auth_age_s)
}

fn token_sid(sub: &str, sid: Option<&str>, acr: &str, amr: &[&str], auth_age_s: i64) -> String {
    let t = TokenRequest {
        sub: sub.into(),
        acr: Some(acr.into()),
        amr: amr.iter().map(|s| (*s).to_string()).collect(),
        auth_age_s,
        sid: sid.map(str::to_string),
    };
    mint(SECRET, &t, Timestamp::now()).unwrap()
}

fn sign(c: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        c,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
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
            r.header("x-device", "laptop-1").call().unwrap()
        }
        _ => {
            let mut r = a.post(url);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.header("x-device", "laptop-1")
                .send_json(body.unwrap_or(serde_json::json!({})))
                .unwrap()
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
    // A payout without an amount is not waved through: refused with 400 when the body has
    // none the decision can read (an `every time` grant binds the amount: decided as absent,
    // its retry could never be satisfied); an amount of the wrong type is unknown, and the
    // payouts policy fires (SPEC §10).
    for (body, status) in [
        (serde_json::json!({"note": "no amount"}), 400),
        (serde_json::json!({"amount": null}), 400),
        (serde_json::json!({"amount": [5000]}), 400),
        (serde_json::json!({"amount": "5000"}), 401),
    ] {
        let r = call(
            &a,
            "POST",
            &u("/payouts"),
            Some(&token("alice", "aal1", &["pwd"], 5)),
            Some(body.clone()),
        );
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        if status == 401 {
            assert_eq!(r.body["error"], "step_up_required", "{body}");
            assert_eq!(r.body["required_acr"], "aal3", "{body}");
        }
    }

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
                    now - 60,
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
        // A request with no token at all gets a challenge without an error code (RFC 6750
        // §3.1: there was no authentication to be wrong; a review).
        let expected = |w: &str| match tok {
            None => w == "Bearer",
            Some(_) => w.starts_with("Bearer error=\"invalid_token\""),
        };
        assert!(
            r.www.as_deref().is_some_and(expected),
            "{what}: {:?}",
            r.www
        );
    }
    assert_eq!(
        call(&a, "GET", &url, Some(&good), None).status,
        200,
        "the same token untampered passes"
    );
    // The scheme's name in any case (RFC 7235 §2.1; a review: `BEARER` was refused), and
    // another scheme is no token.
    let raw = |authorization: &str| {
        let resp = a
            .get(&url)
            .header("Authorization", authorization)
            .header("x-device", "laptop-1")
            .call()
            .unwrap();
        let www = resp
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        (resp.status().as_u16(), www)
    };
    assert_eq!(raw(&format!("BEARER {good}")).0, 200);
    assert_eq!(raw(&format!("bearer {good}")).0, 200);
    assert_eq!(raw("Basic YWxpY2U6cHc="), (401, Some("Bearer".to_string())));
    assert_eq!(raw("Bearer "), (401, Some("Bearer".to_string())));
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

// ---------------------------------------------------------------- issue 13 findings

#[test]
fn finance_every_time_round_trip_401_fresh_token_200_once_then_401() {
    let mut cfg = config(rules_dir());
    cfg.application = "finance".into();
    let srv = start_with(cfg);
    let a = agent();
    let email = format!("{}/email", srv.base);
    let body = || Some(serde_json::json!({"email": "a@b.c"}));
    // A security-key token from a second ago: in finance, every time means every time.
    let recent = token("alice", "aal3", &["pwd", "hwk"], 1);
    let r = call(&a, "POST", &email, Some(&recent), body());
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"], "step_up_required");
    assert_eq!(r.body["max_age"], 0);
    assert_eq!(r.body["required_acr"], "aal2");
    let params = parse_challenge(r.www.as_deref().unwrap());
    assert!(params.contains(&("max_age".to_string(), "0".to_string())));
    let first = r.body["challenge_id"].as_str().unwrap().to_string();
    // The user authenticates again after the challenge was issued (a later second).
    let issued = Timestamp::now().0;
    while Timestamp::now().0 <= issued {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fresh = token("alice", "aal2", &["pwd", "otp"], 0);
    let r = call(&a, "POST", &email, Some(&fresh), body());
    assert_eq!(
        r.status, 200,
        "the retry with the fresh token: {:?}",
        r.body
    );
    let r = call(&a, "POST", &email, Some(&fresh), body());
    assert_eq!(r.status, 401, "once: {:?}", r.body);
    assert_eq!(r.body["max_age"], 0);
    assert_ne!(r.body["challenge_id"].as_str().unwrap(), first);
}

#[test]
fn concurrent_retries_spend_an_every_time_grant_once() {
    // The memory store decides on the async workers, without the blocking pool: two workers
    // and eight clients let at most one retry through per challenge (compare-and-set). One
    // goes through unless a race lets none: the retry that completes the challenge writes the
    // login's record of spent step-ups, and before it writes the session another retry, which
    // found the step-up spent, steps up and issues a new challenge; the first, deciding again,
    // finds its challenge superseded by one issued after its token, which its token cannot
    // complete, and steps up too (fail closed: nothing is allowed, the user is asked again).
    // Seen once, in a CI run under load; so every round lets at most one through, and the
    // rounds together at least one.
    let mut through = 0;
    let mut cfg = config(rules_dir());
    cfg.application = "finance".into();
    let srv = start_with(cfg);
    let email = format!("{}/email", srv.base);
    let body = || Some(serde_json::json!({"email": "a@b.c"}));
    for round in 0..3 {
        let recent = token("alice", "aal3", &["pwd", "hwk"], 1);
        let r = call(&agent(), "POST", &email, Some(&recent), body());
        assert_eq!(r.status, 401, "round {round}: {:?}", r.body);
        assert_eq!(r.body["max_age"], 0);
        let issued = Timestamp::now().0;
        while Timestamp::now().0 <= issued {
            std::thread::sleep(Duration::from_millis(50));
        }
        let fresh = token("alice", "aal2", &["pwd", "otp"], 0);
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let retries: Vec<_> = (0..8)
            .map(|_| {
                let (email, fresh, barrier) = (email.clone(), fresh.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let a = agent();
                    barrier.wait();
                    let r = call(&a, "POST", &email, Some(&fresh), body());
                    (r.status, r.body)
                })
            })
            .collect();
        let replies: Vec<(u16, serde_json::Value)> =
            retries.into_iter().map(|h| h.join().unwrap()).collect();
        let statuses: Vec<u16> = replies.iter().map(|(s, _)| *s).collect();
        let spent = statuses.iter().filter(|s| **s == 200).count();
        assert!(
            spent <= 1,
            "round {round}: one retry at most spends the grant, the others step up: {replies:?}"
        );
        through += spent;
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );
    }
    assert!(through >= 1, "no retry went through in three rounds");
}

#[test]
fn challenge_ids_are_unique_and_stored() {
    let srv = start(rules_dir());
    let a = agent();
    let t = token("alice", "aal1", &["pwd"], 60);
    let r1 = call(&a, "POST", &format!("{}/email", srv.base), Some(&t), None);
    let r2 = call(
        &a,
        "POST",
        &format!("{}/payouts", srv.base),
        Some(&t),
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!((r1.status, r2.status), (401, 401));
    assert_ne!(r1.body["challenge_id"], r2.body["challenge_id"]);
    let other = token_sid("alice", Some("tab-2"), "aal1", &["pwd"], 60);
    let r3 = call(
        &a,
        "POST",
        &format!("{}/email", srv.base),
        Some(&other),
        None,
    );
    assert_ne!(r1.body["challenge_id"], r3.body["challenge_id"]);
}

#[test]
fn token_times_and_audiences_are_enforced() {
    let srv = start(rules_dir());
    let a = agent();
    let url = format!("{}/profile", srv.base);
    let now = Timestamp::now().0;
    let claims = |extra: serde_json::Value| {
        let mut c = serde_json::json!({"sub": "alice", "acr": "aal1", "auth_time": now - 60, "amr": ["pwd"],
            "exp": now + 600, "iss": stepup_example_service::ISSUER, "aud": stepup_example_service::AUDIENCE});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&c, SECRET)
    };
    let r = call(
        &a,
        "GET",
        &url,
        Some(&claims(serde_json::json!({"nbf": now + 3600}))),
        None,
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        r.body["error_description"],
        "the token is not valid yet (`nbf` is in the future)"
    );
    let r = call(
        &a,
        "GET",
        &url,
        Some(&claims(serde_json::json!({"iat": now + 86_400}))),
        None,
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        r.body["error_description"],
        "the token was issued in the future (`iat`)"
    );
    let r = call(
        &a,
        "GET",
        &url,
        Some(&claims(serde_json::json!({"auth_time": now + 86_400}))),
        None,
    );
    assert_eq!(r.status, 401);
    let r = call(
        &a,
        "GET",
        &url,
        Some(&claims(
            serde_json::json!({"aud": ["https://other.invalid", stepup_example_service::AUDIENCE]}),
        )),
        None,
    );
    assert_eq!(r.status, 200, "an aud array naming us: {:?}", r.body);
    let r = call(
        &a,
        "GET",
        &url,
        Some(&claims(
            serde_json::json!({"aud": ["https://other.invalid"]}),
        )),
        None,
    );
    assert_eq!(r.status, 401);
    let r = call(
        &a,
        "GET",
        &url,
        Some(&claims(
            serde_json::json!({"nbf": now + 10, "iat": now + 10}),
        )),
        None,
    );
    assert_eq!(r.status, 200, "inside the leeway: {:?}", r.body);
}

#[test]
fn an_sms_code_reported_as_otp_never_pays_out_and_acr_alone_proves_factor_any() {
    let srv = start(rules_dir());
    let a = agent();
    let payouts = format!("{}/payouts", srv.base);
    let r = call(
        &a,
        "POST",
        &payouts,
        Some(&token("alice", "aal3", &["pwd", "otp"], 5)),
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 401, "otp counts as sms: {:?}", r.body);
    assert_eq!(r.body["required_acr"], "aal3");
    let email = format!("{}/email", srv.base);
    let r = call(
        &a,
        "POST",
        &email,
        Some(&token("alice", "aal2", &[], 5)),
        None,
    );
    assert_eq!(r.status, 200, "no amr, acr aal2, factor any: {:?}", r.body);
    let r = call(
        &a,
        "POST",
        &payouts,
        Some(&token("alice", "aal3", &[], 5)),
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 401, "no amr never names webauthn or totp");
}

#[test]
fn there_is_no_default_key() {
    let mut cfg = config(rules_dir());
    cfg.key = Key::None;
    cfg.dev_issuer = false;
    let e = app(&cfg).err().unwrap();
    assert!(e.starts_with("no key to verify access tokens with"), "{e}");
    cfg.key = Key::Hs256(b"dev-secret-change-me".to_vec());
    assert!(
        app(&cfg).err().unwrap().contains("at least 32 bytes"),
        "a short secret is refused"
    );

    // The binary refuses to start without a key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stepup-example-service"))
        .args([
            "--rules",
            rules_dir().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .env_remove("STEPUP_HS256_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no key to verify access tokens with"),
        "{stderr}"
    );

    // The development issuer without a key signs with a random secret: the old default
    // secret forges nothing.
    let mut cfg = config(rules_dir());
    cfg.key = Key::None;
    let srv = start_with(cfg);
    let a = agent();
    for secret in [&b"dev-secret-change-me"[..], SECRET] {
        let now = Timestamp::now().0;
        let forged = sign(
            &serde_json::json!({"sub": "alice", "acr": "aal3", "auth_time": now, "amr": ["hwk"],
                "exp": now + 600, "iss": stepup_example_service::ISSUER, "aud": stepup_example_service::AUDIENCE}),
            secret,
        );
        let r = call(
            &a,
            "POST",
            &format!("{}/payouts", srv.base),
            Some(&forged),
            Some(serde_json::json!({"amount": 5000})),
        );
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (401, Some("invalid_token"))
        );
        let r = call(
            &a,
            "DELETE",
            &format!("{}/apps/42", srv.base),
            Some(&forged),
            None,
        );
        assert_eq!(r.status, 401);
    }
    // Its own tokens work.
    let r = a
        .post(&format!("{}/dev/token", srv.base))
        .send_json(serde_json::json!({"sub": "alice", "acr": "aal1", "amr": ["pwd"]}))
        .unwrap()
        .body_mut()
        .read_json::<serde_json::Value>()
        .unwrap();
    let t = r["access_token"].as_str().unwrap();
    assert_eq!(
        call(&a, "GET", &format!("{}/profile", srv.base), Some(t), None).status,
        200
    );
}

#[test]
fn the_tenant_and_application_must_exist() {
    let mut cfg = config(rules_dir());
    cfg.application = "nope".into();
    assert_eq!(
        app(&cfg).err().unwrap(),
        "application `nope` of tenant `acme` is not defined by the rules"
    );
}

/// Sends a request head and `body` on a raw connection, then reads until the server closes it.
/// Returns the time until the answer was complete and closed, and the answer.
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (Duration, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "the connection stayed open: {e}; read so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[test]
fn refusals_are_answered_within_the_limit_whatever_the_body_does() {
    let limit = Duration::from_millis(400);
    let mut cfg = config(rules_dir());
    cfg.body_timeout = limit;
    let srv = start_with(cfg);
    let aal1 = token("alice", "aal1", &["pwd"], 60);
    let host = srv.addr.to_string();
    let head = |path: &str, bearer: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nx-device: laptop-1\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n"
        )
    };
    let cases = [
        (
            "invalid token, one byte of 65536",
            head("/email", "not-a-token"),
            &b"{"[..],
            "HTTP/1.1 401",
            "invalid_token",
        ),
        (
            "invalid token, no body at all",
            head("/email", "not-a-token"),
            &b""[..],
            "HTTP/1.1 401",
            "invalid_token",
        ),
        (
            "step-up, one byte of 65536",
            head("/email", &aal1),
            &b"{"[..],
            "HTTP/1.1 401",
            "step_up_required",
        ),
        (
            "step-up, no body at all",
            head("/email", &aal1),
            &b""[..],
            "HTTP/1.1 401",
            "step_up_required",
        ),
        (
            "a payout whose amount never arrives",
            head("/payouts", &aal1),
            &b"{\"amount\": 50"[..],
            "HTTP/1.1 408",
            "did not arrive in time",
        ),
    ];
    for (what, head, body, status, needle) in cases {
        let (took, answer) = raw(srv.addr, &head, body);
        assert!(answer.starts_with(status), "{what}: {answer}");
        assert!(answer.contains(needle), "{what}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{what}: {answer}"
        );
        assert!(
            took < limit + Duration::from_millis(1_500),
            "{what}: answered and closed after {took:?}"
        );
    }
    // Announced larger than the layer reads: refused at once.
    let big = format!(
        "POST /email HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer x\r\nContent-Length: 10000000\r\n\r\n"
    );
    let (took, answer) = raw(srv.addr, &big, b"");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(took < limit, "{took:?}");
}

#[test]
fn the_status_endpoint_is_not_public_and_shows_no_rule_text() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path());
    let srv = start(dir.path().to_path_buf());
    let acme = dir.path().join("acme.policy");
    let good = std::fs::read_to_string(&acme).unwrap();
    std::fs::write(
        &acme,
        good.replace("weight new_device 30", "weight new_device 30 totpp"),
    )
    .unwrap();
    wait_for(&srv, "refusal", |s| s.refused >= 1);
    let a = agent();
    let url = format!("{}/_stepup", srv.base);
    let mut resp = a.get(&url).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "loopback may read it");
    let text = resp.body_mut().read_to_string().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["refused"], 1);
    assert_eq!(v["last_reload"], "refused (see the service's log)");
    assert_eq!(v["policy_set"], srv.status.lock().unwrap().live.as_str());
    for leak in ["totpp", "weight", "new_device", "acme.policy", "error"] {
        assert!(!text.contains(leak), "`{leak}` in {text}");
    }

    let mut cfg = config(rules_dir());
    cfg.status_token = Some("s3cret-status".into());
    let srv = start_with(cfg);
    let url = format!("{}/_stepup", srv.base);
    assert_eq!(
        a.get(&url).call().unwrap().status().as_u16(),
        403,
        "loopback is not enough"
    );
    assert_eq!(
        a.get(&url)
            .header("Authorization", "Bearer wrong")
            .call()
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        a.get(&url)
            .header("Authorization", "Bearer s3cret-status")
            .call()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

// ---------------------------------------------------------------- issue 12: two instances

/// A `redis-server` on a free loopback port, stopped when dropped.
struct RedisProc {
    port: u16,
    child: std::process::Child,
}

impl RedisProc {
    fn start() -> RedisProc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server ({e}); scripts/test.sh installs it"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisProc { port, child }
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get_from(a: &ureq::Agent, url: &str, bearer: &str, device: &str) -> u16 {
    a.get(url)
        .header("Authorization", format!("Bearer {bearer}"))
        .header("x-device", device)
        .call()
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until the clock has moved past the current second (a token's `auth_time` must be
/// later than the challenge it answers).
fn next_second() {
    let now = Timestamp::now().0;
    while Timestamp::now().0 <= now {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_instances_on_one_redis_share_what_they_learn_and_spend_a_challenge_once() {
    let redis = RedisProc::start();
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let instance = || {
        let mut cfg = config(rules_dir());
        cfg.store = StoreChoice::Redis(url.clone());
        cfg.application = "finance".into();
        start_with(cfg)
    };
    let (a, b) = (instance(), instance());
    let ag = agent();
    let body = || Some(serde_json::json!({"email": "a@b.c"}));
    // A challenge issued by A completes once, through either instance.
    let t = token_sid("alice", Some("tab-1"), "aal1", &["pwd"], 60);
    let r = call(&ag, "POST", &format!("{}/email", a.base), Some(&t), body());
    assert_eq!((r.status, &r.body["max_age"]), (401, &serde_json::json!(0)));
    next_second();
    let fresh = token_sid("alice", Some("tab-1"), "aal2", &["pwd", "otp"], 0);
    let r = call(
        &ag,
        "POST",
        &format!("{}/email", b.base),
        Some(&fresh),
        body(),
    );
    assert_eq!(r.status, 200, "completed through B: {:?}", r.body);
    let r = call(
        &ag,
        "POST",
        &format!("{}/email", a.base),
        Some(&fresh),
        body(),
    );
    assert_eq!(r.status, 401, "and spent: A does not allow it again");
    // A device learned through A is known to B: a new device signs in through A (its first
    // request is its sign-in), steps up, completes through A...
    let t = token_sid("alice", Some("phone-session"), "aal1", &["pwd"], 60);
    assert_eq!(
        get_from(&ag, &format!("{}/profile", a.base), &t, "phone-9"),
        401
    );
    next_second();
    let fresh = token_sid("alice", Some("phone-session"), "aal2", &["pwd", "otp"], 0);
    assert_eq!(
        get_from(&ag, &format!("{}/profile", a.base), &fresh, "phone-9"),
        200
    );
    // ...and a new session on that device, through B, is not a new device any more.
    let t = token_sid("alice", Some("phone-session-2"), "aal1", &["pwd"], 60);
    assert_eq!(
        get_from(&ag, &format!("{}/profile", b.base), &t, "phone-9"),
        200
    );
    // A device nobody has seen is still new through B.
    let t = token_sid("alice", Some("tablet-session"), "aal1", &["pwd"], 60);
    assert_eq!(
        get_from(&ag, &format!("{}/profile", b.base), &t, "tablet-3"),
        401
    );
}

/// The example's routes answer a method they do not serve 405 before stepup decides (they
/// apply the layer with `route_layer`: an outside check found `GET /payouts` answered 400 "the
/// body is not JSON" and a `GET /email` decided as the email change).
#[test]
fn a_method_a_route_does_not_serve_is_405_before_any_decision() {
    let srv = start(rules_dir());
    let t = token("alice", "aal3", &["pwd", "hwk"], 5);
    for (method, path) in [("GET", "/payouts"), ("GET", "/email"), ("POST", "/profile")] {
        let (_, reply) = raw(
            srv.addr,
            &format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {t}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
            b"",
        );
        assert!(
            reply.starts_with("HTTP/1.1 405"),
            "{method} {path}: {reply}"
        );
    }
}

/// One bearer token, sent one way (RFC 6750 §3.1): two `Authorization` headers, or a token in
/// the query beside one, are `invalid_request` (an outside check: the first header was decided
/// on, and a backend reading the last would act for another user).
#[test]
fn two_tokens_in_one_request_are_refused() {
    let srv = start(rules_dir());
    let (alice, bob) = (
        token("alice", "aal3", &["pwd", "hwk"], 5),
        token("bob", "aal1", &["pwd"], 5),
    );
    for (target, extra) in [
        ("/profile", format!("authorization: Bearer {bob}\r\n")),
        ("/profile?access_token=abc", String::new()),
        // As a handler's `Query` decodes it (a review).
        ("/profile?x=1&access%5Ftoken=abc", String::new()),
    ] {
        let (_, reply) = raw(
            srv.addr,
            &format!(
                "GET {target} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {alice}\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n"
            ),
            b"",
        );
        assert!(reply.starts_with("HTTP/1.1 400"), "{target}: {reply}");
        assert!(reply.contains("\"invalid_request\""), "{reply}");
    }
}
