//! The layer over real HTTP on loopback, with a clock the tests move: GeoIP and impossible
//! travel, trusted proxies, `every time` through tokens (once, bound, across instances), and
//! the `amr`/`acr` mapping.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::routing::{get, post};
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::{CompiledSet, DecisionKind, Engine, MemoryStore, Store};
use stepup_http::{
    ClaimMapping, GeoIp, MemorySink, Operation, StepUp, TokenVerifier, TrustedProxies,
};

const SECRET: &[u8] = b"layer-tests-secret-0123456789abcdef";
const T0: i64 = 1_900_000_000;

const RULES: &str = r#"tenant t {
  operation view routine
  operation change_email sensitive
  operation pay sensitive
  operation close_account sensitive
  attribute amount: number
  policy email "Confirm your identity before changing your email." {
    when operation == change_email
    require aal2 factor any for 15m
  }
  policy close "Confirm closing your account." {
    when operation == close_account
    require aal2 factor any every time
  }
  policy pay "Confirm this payout with your security key or app." {
    when operation == pay and amount > 1000
    require aal3 factor webauthn|totp every time
  }
}
application app of t {
}
"#;

/// A sign-in policy on impossible travel: for servers that place their clients (`geo_srv`);
/// without a place, every sign-in's travel is unknown (SPEC §10, §11) and steps up.
const TRAVEL: &str = r#"  policy travel "That was fast travel: confirm it's you." {
    when impossible_travel
    require aal3 factor webauthn|totp for 5m
  }
"#;

/// `RULES` with the `TRAVEL` policy.
fn travel_rules() -> String {
    RULES.replacen("  policy email", &format!("{TRAVEL}  policy email"), 1)
}

/// A GeoLite2-City-shaped database: Paris at 192.0.2.0/24, New York at 198.51.100.0/24.
fn city_db() -> Vec<u8> {
    stepup_geoip::test_db::paris_new_york().unwrap()
}

#[test]
fn the_test_database_reads_back() {
    let geo = GeoIp::from_bytes(city_db()).unwrap();
    let paris = geo.lookup("192.0.2.7".parse().unwrap());
    assert_eq!(paris.country.as_deref(), Some("FR"));
    let l = paris.location.unwrap();
    assert_eq!((l.lat, l.lon), (48.8566, 2.3522));
    assert_eq!(
        geo.lookup("::ffff:198.51.100.9".parse().unwrap())
            .country
            .as_deref(),
        Some("US"),
        "a v4-mapped address is looked up as IPv4"
    );
    assert_eq!(
        geo.lookup("203.0.113.9".parse().unwrap()),
        stepup_http::Place::default()
    );
    assert_eq!(
        geo.lookup("2001:db8::1".parse().unwrap()),
        stepup_http::Place::default(),
        "an IPv6 address in an IPv4 database: unknown"
    );
    let mut asn = maxminddb_writer::Database::default();
    asn.metadata.database_type = "GeoLite2-ASN".into();
    asn.metadata.binary_format_major_version = 2;
    let r = asn.insert_value(64_512u32).unwrap();
    asn.insert_node(
        "192.0.2.0/24"
            .parse::<maxminddb_writer::paths::IpAddrWithMask>()
            .unwrap(),
        r,
    );
    assert!(
        GeoIp::from_bytes(asn.write_to(Vec::new()).unwrap())
            .unwrap_err()
            .contains("holds no country")
    );
    assert!(GeoIp::from_bytes(b"not a database".to_vec()).is_err());
}

// ---------------------------------------------------------------- servers

struct Srv {
    base: String,
    audit: Arc<MemorySink>,
}

struct Setup {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    clock: Arc<AtomicI64>,
}

impl Setup {
    fn new() -> Self {
        Setup::with_rules(RULES)
    }
    fn with_rules(rules: &str) -> Self {
        Setup {
            engine: Arc::new(Engine::new(
                CompiledSet::from_text("t.policy", rules).unwrap(),
            )),
            store: Arc::new(MemoryStore::new()),
            clock: Arc::new(AtomicI64::new(T0)),
        }
    }
    /// The test rules on `store`.
    fn on(store: Arc<dyn Store>) -> Self {
        Setup {
            store,
            ..Setup::new()
        }
    }
    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }
    fn stepup(&self) -> (StepUp, Arc<MemorySink>) {
        self.stepup_for("app")
    }
    /// The layer of application `app` of tenant `t`, on this setup's engine, store and clock.
    fn stepup_for(&self, app: &str) -> (StepUp, Arc<MemorySink>) {
        let audit = Arc::new(MemorySink::default());
        let clock = Arc::clone(&self.clock);
        let s = StepUp::new(
            Arc::clone(&self.engine),
            Arc::clone(&self.store),
            TokenVerifier::hs256(SECRET, "iss", "api").unwrap(),
            "t",
            app,
            |_| {
                [
                    Factor::Password,
                    Factor::Sms,
                    Factor::Totp,
                    Factor::Webauthn,
                ]
                .into_iter()
                .collect::<FactorSet>()
            },
            Arc::clone(&audit) as Arc<dyn stepup_http::AuditSink>,
        )
        .with_clock(move || Timestamp(clock.load(Ordering::SeqCst)));
        (s, audit)
    }
}

fn serve(stepup: &StepUp, audit: Arc<MemorySink>) -> Srv {
    let router = Router::new()
        .route(
            "/view",
            get(|| async { "viewed" }).route_layer(stepup.layer(Operation::new("view"))),
        )
        .route(
            "/email",
            post(|| async { "email changed" })
                .route_layer(stepup.layer(Operation::new("change_email"))),
        )
        .route(
            "/close",
            post(|| async { "closed" }).route_layer(stepup.layer(Operation::new("close_account"))),
        )
        .route(
            "/pay",
            post(|| async { "paid" })
                .route_layer(stepup.layer(Operation::new("pay").json_attr("amount", "/amount"))),
        );
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
    Srv {
        base: format!("http://{addr}"),
        audit,
    }
}

/// A token issued at `now`, authenticated `age` seconds before.
fn token(now: i64, sid: &str, acr: Option<&str>, amr: &[&str], age: i64) -> String {
    let mut c = serde_json::json!({
        "sub": "alice", "sid": sid, "iss": "iss", "aud": "api",
        "exp": now + 3600, "iat": now, "auth_time": now - age, "amr": amr,
    });
    if let Some(a) = acr {
        c["acr"] = a.into();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

struct Reply {
    status: u16,
    body: serde_json::Value,
    www: Option<String>,
}

/// A client that reads every status as an answer.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(
    srv: &Srv,
    method: &str,
    path: &str,
    tok: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> Reply {
    let a = agent();
    let url = format!("{}{path}", srv.base);
    let auth = format!("Bearer {tok}");
    let mut resp = if method == "GET" {
        let mut r = a.get(&url).header("Authorization", &auth);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call().unwrap()
    } else {
        let mut r = a.post(&url).header("Authorization", &auth);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send_json(body.unwrap_or(serde_json::json!({}))).unwrap()
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

fn signal(audit: &MemorySink, session: &str, name: &str) -> Option<String> {
    let records = audit.records();
    let r = records.iter().rev().find(|r| *r.session == *session)?;
    let risk = r.risk.as_ref()?;
    let v = risk.signals.iter().find(|s| s.signal.as_str() == name)?;
    Some(serde_json::to_value(v.value).unwrap().as_str()?.to_string())
}

// ---------------------------------------------------------------- GeoIP

#[test]
fn paris_then_new_york_five_minutes_later_is_impossible_travel() {
    let setup = Setup::with_rules(&travel_rules());
    let srv = geo_srv(&setup);
    let paris = [("x-forwarded-for", "192.0.2.7"), ("x-device", "laptop-1")];
    let ny = [
        ("x-forwarded-for", "198.51.100.9"),
        ("x-device", "laptop-1"),
    ];
    let nowhere = [("x-forwarded-for", "203.0.113.9"), ("x-device", "laptop-1")];
    let aal1 = |sid: &str| token(setup.now(), sid, Some("aal1"), &["pwd"], 60);

    // A sign-in from Paris: no earlier place, nothing to travel from.
    let r = call(&srv, "GET", "/view", &aal1("paris"), &paris, None);
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Five minutes later, a new session from New York: 5,800 km in 5 minutes.
    setup.advance(300);
    let r = call(&srv, "GET", "/view", &aal1("ny"), &ny, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"], "step_up_required");
    assert_eq!(r.body["required_acr"], "aal3");
    assert_eq!(r.body["message"], "That was fast travel: confirm it's you.");
    assert_eq!(
        r.body["allowed_factors"],
        serde_json::json!(["totp", "webauthn"])
    );
    assert_eq!(
        signal(&srv.audit, "ny", "impossible_travel").as_deref(),
        Some("true")
    );
    // Its later requests are refused until the sign-in's step-up is done.
    let r = call(&srv, "GET", "/view", &aal1("ny"), &ny, None);
    assert_eq!(r.status, 401, "the sign-in is still pending");
    // The user authenticates again with a security key: the sign-in completes.
    setup.advance(20);
    let strong = token(setup.now(), "ny", Some("aal3"), &["hwk"], 5);
    let r = call(&srv, "GET", "/view", &strong, &ny, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let names: Vec<&str> = srv
        .audit
        .records()
        .iter()
        .filter(|r| &*r.session == "ny")
        .map(|r| r.name)
        .collect();
    assert_eq!(
        names,
        [
            "auth.step_up_initiated",
            "auth.step_up_initiated",
            "auth.step_up_completed"
        ]
    );

    // An address the database does not hold: no place, unknown, fail closed.
    setup.advance(3_600);
    let r = call(&srv, "GET", "/view", &aal1("nowhere"), &nowhere, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["required_acr"], "aal3");
    assert_eq!(
        signal(&srv.audit, "nowhere", "impossible_travel").as_deref(),
        Some("unknown")
    );

    // New York again, an hour later (the completed sign-in moved the reference there): fine.
    let r = call(&srv, "GET", "/view", &aal1("ny-2"), &ny, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[test]
fn a_second_login_without_sid_is_decided_as_the_sign_in_it_is() {
    // Found by review: tokens without `sid` share one session per user, and a later login
    // (another device, another continent, five minutes later) went through unchecked.
    let (setup, srv, victim) = signed_in_from_paris();
    // The same login again: accepted, no second sign-in.
    let r = call(&srv, "GET", "/view", &victim, &PARIS, None);
    assert_eq!(r.status, 200, "{:?}", r.body);

    setup.advance(300);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(&srv, "GET", "/view", &attacker, &NY, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"], "step_up_required");
    assert_eq!(r.body["required_acr"], "aal3");
    assert_eq!(r.body["message"], "That was fast travel: confirm it's you.");
    assert_eq!(
        signal(&srv.audit, "alice", "impossible_travel").as_deref(),
        Some("true")
    );
    // Every request of that login is its sign-in until it is accepted.
    let r = call(&srv, "GET", "/view", &attacker, &NY, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = call(&srv, "POST", "/email", &attacker, &NY, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(
        r.body["required_acr"], "aal3",
        "the sign-in's, not the email's"
    );
    // The accepted login is not disturbed.
    let r = call(&srv, "GET", "/view", &victim, &PARIS, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A login that proves the sign-in's requirement is allowed by its own sign-in (its factors
    // satisfy the sign-in's policies), and is then accepted.
    setup.advance(20);
    let strong = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "GET", "/view", &strong, &NY, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = call(&srv, "GET", "/view", &strong, &NY, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let names: Vec<&str> = srv.audit.records().iter().map(|r| r.name).collect();
    assert_eq!(names.last(), Some(&"auth.step_up_skipped"), "{names:?}");
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let setup = Setup::with_rules(&travel_rules());
    let geo = Arc::new(GeoIp::from_bytes(city_db()).unwrap());
    let (trusting, audit_t) = setup.stepup();
    let trusting = trusting
        .with_geoip(Arc::clone(&geo))
        .with_trusted_proxies(TrustedProxies::parse(&["127.0.0.0/8"]).unwrap());
    // The same store, behind no trusted proxy.
    let (direct, audit_d) = setup.stepup();
    let direct = direct.with_geoip(geo);
    let (srv_t, srv_d) = (serve(&trusting, audit_t), serve(&direct, audit_d));
    let aal1 = |sid: &str| token(setup.now(), sid, Some("aal1"), &["pwd"], 60);
    let paris = [("x-forwarded-for", "192.0.2.7")];
    assert_eq!(
        call(&srv_t, "GET", "/view", &aal1("a"), &paris, None).status,
        200
    );
    setup.advance(300);
    // Through the trusted proxy, Paris again: no travel.
    assert_eq!(
        call(&srv_t, "GET", "/view", &aal1("b"), &paris, None).status,
        200
    );
    // Straight from the loopback peer, the header is not believed: the client is 127.0.0.1,
    // which the database does not place, so travel from Paris is unknown.
    let r = call(&srv_d, "GET", "/view", &aal1("c"), &paris, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(
        signal(&srv_d.audit, "c", "impossible_travel").as_deref(),
        Some("unknown")
    );
}

// ---------------------------------------------------------------- every time

fn establish(srv: &Srv, setup: &Setup, sid: &str) {
    let t = token(setup.now(), sid, Some("aal1"), &["pwd"], 60);
    let r = call(srv, "GET", "/view", &t, &[], None);
    assert_eq!(r.status, 200, "sign-in of {sid}: {:?}", r.body);
}

#[test]
fn every_time_is_satisfied_once_by_a_token_fresher_than_the_challenge() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let pay = |amount: i64| Some(serde_json::json!({"amount": amount}));
    // A security-key token from a minute ago: every time means every time.
    let old = token(setup.now(), "s1", Some("aal3"), &["hwk"], 60);
    let r = call(&srv, "POST", "/pay", &old, &[], pay(1_500));
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["max_age"], 0);
    assert!(r.www.unwrap().ends_with("max_age=0"));
    let first = r.body["challenge_id"].as_str().unwrap().to_string();
    // Nor does a token authenticated in the very second the challenge was issued.
    let same_second = token(setup.now(), "s1", Some("aal3"), &["hwk"], 0);
    let r = call(&srv, "POST", "/pay", &same_second, &[], pay(1_500));
    assert_eq!(r.status, 401);
    let second = r.body["challenge_id"].as_str().unwrap().to_string();
    assert_ne!(first, second, "every challenge has its own id");

    setup.advance(30);
    let fresh = token(setup.now(), "s1", Some("aal3"), &["hwk"], 10);
    // A different amount: the grant is bound to the request that earned it.
    let r = call(&srv, "POST", "/pay", &fresh, &[], pay(1_000_000));
    assert_eq!(r.status, 401, "{:?}", r.body);
    // The very request: once.
    let r = call(&srv, "POST", "/pay", &fresh, &[], pay(1_500));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = call(&srv, "POST", "/pay", &fresh, &[], pay(1_500));
    assert_eq!(r.status, 401, "{:?}", r.body);
    let names: Vec<(&str, Option<String>)> = srv
        .audit
        .records()
        .iter()
        .map(|r| (r.name, r.challenge_id.as_deref().map(str::to_string)))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(names[0], ("auth.step_up_initiated", Some(first)));
    assert_eq!(names[1], ("auth.step_up_initiated", Some(second.clone())));
    // The fresh token completed the latest challenge (the 1,500 payout's) on the 1,000,000
    // request, which then needed its own.
    assert_eq!(names[2], ("auth.step_up_completed", Some(second)));
    assert_eq!(names[3].0, "auth.step_up_initiated", "the 1,000,000 payout");
    assert_eq!(
        names[4],
        ("auth.step_up_skipped", None),
        "the 1,500 payout, once"
    );
    assert_eq!(names[5].0, "auth.step_up_initiated");
}

#[test]
fn a_grant_is_spent_once_across_two_instances() {
    let setup = Setup::new();
    let (a, audit_a) = setup.stepup();
    let (b, audit_b) = setup.stepup();
    let (srv_a, srv_b) = (serve(&a, audit_a), serve(&b, audit_b));
    establish(&srv_a, &setup, "s1");
    let old = token(setup.now(), "s1", Some("aal3"), &["hwk"], 60);
    let body = Some(serde_json::json!({"amount": 5_000}));
    assert_eq!(
        call(&srv_b, "POST", "/pay", &old, &[], body.clone()).status,
        401
    );
    setup.advance(30);
    let fresh = token(setup.now(), "s1", Some("aal3"), &["hwk"], 10);
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let srvs = Arc::new([srv_a, srv_b]);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (barrier, srvs, fresh, body) = (
                Arc::clone(&barrier),
                Arc::clone(&srvs),
                fresh.clone(),
                body.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                call(&srvs[i % 2], "POST", "/pay", &fresh, &[], body).status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401, 401, 401, 401, 401, 401, 401]);
}

// ---------------------------------------------------------------- amr and acr

#[test]
fn an_ambiguous_otp_counts_as_the_weakest_factor_it_could_be() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let now = setup.now();
    // `otp` may be an SMS code: it proves aal2 for `factor any`…
    let otp = token(now, "s1", Some("aal3"), &["pwd", "otp"], 10);
    assert_eq!(call(&srv, "POST", "/email", &otp, &[], None).status, 200);
    // …and never an aal3 webauthn|totp payout, whatever the acr says.
    let r = call(
        &srv,
        "POST",
        "/pay",
        &otp,
        &[],
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 401);
    setup.advance(30);
    let otp = token(setup.now(), "s1", Some("aal3"), &["pwd", "otp"], 10);
    let r = call(
        &srv,
        "POST",
        "/pay",
        &otp,
        &[],
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(
        r.status, 401,
        "a fresh otp token does not complete the challenge either"
    );

    // A service whose identity provider sends `otp` only for TOTP says so.
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(
        &s.with_claims(ClaimMapping::default().map_amr("otp", &[Factor::Totp])),
        audit,
    );
    establish(&srv, &setup, "s1");
    let old = token(setup.now(), "s1", Some("aal3"), &["otp"], 60);
    assert_eq!(
        call(
            &srv,
            "POST",
            "/pay",
            &old,
            &[],
            Some(serde_json::json!({"amount": 5000}))
        )
        .status,
        401
    );
    setup.advance(30);
    let otp = token(setup.now(), "s1", Some("aal3"), &["otp"], 10);
    let r = call(
        &srv,
        "POST",
        "/pay",
        &otp,
        &[],
        Some(serde_json::json!({"amount": 5000})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[test]
fn acr_values_are_mapped_both_ways() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let m = ClaimMapping::default().acr_values("urn:x:loa:1", "urn:x:loa:2", "urn:x:loa:3");
    let srv = serve(&s.with_claims(m), audit);
    establish(&srv, &setup, "s1");
    let now = setup.now();
    let t = token(now, "s1", Some("urn:x:loa:1"), &["pwd"], 10);
    let r = call(&srv, "POST", "/email", &t, &[], None);
    assert_eq!(r.status, 401);
    assert_eq!(r.body["required_acr"], "urn:x:loa:2");
    assert!(r.www.unwrap().contains("acr_values=\"urn:x:loa:2\""));
    let t = token(now, "s1", Some("urn:x:loa:2"), &["pwd", "sms"], 10);
    assert_eq!(call(&srv, "POST", "/email", &t, &[], None).status, 200);
    let t = token(now, "s1", Some("urn:unknown"), &["pwd", "sms"], 10);
    assert_eq!(
        call(&srv, "POST", "/email", &t, &[], None).status,
        401,
        "an unknown acr proves at most aal1"
    );
}

#[test]
fn a_token_without_a_usable_amr_proves_its_acr_to_factor_any_only() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let now = setup.now();
    for amr in [&[][..], &["mfa"][..], &["mfa", "face"][..]] {
        let t = token(now, "s1", Some("aal2"), amr, 10);
        assert_eq!(
            call(&srv, "POST", "/email", &t, &[], None).status,
            200,
            "aal2, factor any, amr {amr:?}"
        );
        let t = token(now, "s1", Some("aal1"), amr, 10);
        assert_eq!(
            call(&srv, "POST", "/email", &t, &[], None).status,
            401,
            "acr aal1"
        );
        let t = token(now, "s1", None, amr, 10);
        assert_eq!(
            call(&srv, "POST", "/email", &t, &[], None).status,
            401,
            "no acr"
        );
        let t = token(now, "s1", Some("aal2"), amr, 20 * 60);
        assert_eq!(
            call(&srv, "POST", "/email", &t, &[], None).status,
            401,
            "older than max_age"
        );
    }
    // A policy that names its factors needs the token to name one.
    setup.advance(30);
    let t = token(setup.now(), "s1", Some("aal3"), &[], 5);
    assert_eq!(
        call(
            &srv,
            "POST",
            "/pay",
            &t,
            &[],
            Some(serde_json::json!({"amount": 5000}))
        )
        .status,
        401
    );
}

#[test]
fn a_token_without_amr_completes_a_factor_any_every_time_challenge_with_its_acr() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let old = token(setup.now(), "s1", Some("aal2"), &[], 60);
    let r = call(&srv, "POST", "/close", &old, &[], None);
    assert_eq!((r.status, r.body["max_age"].as_i64()), (401, Some(0)));
    setup.advance(30);
    let weak = token(setup.now(), "s1", Some("aal1"), &[], 5);
    assert_eq!(
        call(&srv, "POST", "/close", &weak, &[], None).status,
        401,
        "acr aal1"
    );
    setup.advance(30);
    let fresh = token(setup.now(), "s1", Some("aal2"), &[], 5);
    let r = call(&srv, "POST", "/close", &fresh, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        call(&srv, "POST", "/close", &fresh, &[], None).status,
        401,
        "once"
    );
    let completed: Vec<_> = srv
        .audit
        .records()
        .into_iter()
        .filter(|r| r.name == "auth.step_up_completed")
        .collect();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].factor, None, "the token named no factor");
}

#[test]
fn a_grant_earned_by_a_token_without_amr_proves_no_factor_after_a_reload() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    // Each session: a challenge on `close`, completed by a token without a usable `amr` on
    // another route, so that its grant waits for the retry.
    for sid in ["s1", "s2"] {
        establish(&srv, &setup, sid);
        let pwd = token(setup.now(), sid, Some("aal1"), &["pwd"], 60);
        assert_eq!(call(&srv, "POST", "/close", &pwd, &[], None).status, 401);
    }
    setup.advance(30);
    let acr = |sid| token(setup.now(), sid, Some("aal2"), &[], 5);
    for sid in ["s1", "s2"] {
        let r = call(&srv, "POST", "/email", &acr(sid), &[], None);
        assert_eq!(r.status, 200, "{sid}: {:?}", r.body);
    }
    // The rules in force unchanged, the grant pays out the retry: it proves aal2 to a
    // `factor any` policy.
    let r = call(&srv, "POST", "/close", &acr("s2"), &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A reload names factors: the token proved none of them (the engine completed the
    // challenge with an eligible factor, the weakest, which the new rule still names).
    setup.engine.swap(
        CompiledSet::from_text(
            "t.policy",
            &RULES.replace(
                "require aal2 factor any every time",
                "require aal2 factor sms|totp every time",
            ),
        )
        .unwrap(),
    );
    let r = call(&srv, "POST", "/close", &acr("s1"), &[], None);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("step_up_required")),
        "{:?}",
        r.body
    );
}

// ---------------------------------------------------------------- decision log

/// A served layer that writes its decision log to a file of its own: the directory (kept while
/// it lives), the file, the log, the setup and the server.
fn logged() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Arc<stepup_http::DecisionLog>,
    Setup,
    Srv,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.jsonl");
    let log = Arc::new(stepup_http::DecisionLog::open(&path, 1024 * 1024, None).unwrap());
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s.with_decision_log(Arc::clone(&log)), audit);
    (dir, path, log, setup, srv)
}

#[test]
fn the_decision_log_backtests_to_exactly_the_recorded_decisions() {
    let (_dir, path, log, setup, srv) = logged();
    establish(&srv, &setup, "s1");
    let pwd = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    let r = call(&srv, "POST", "/email", &pwd, &[], None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(20);
    let otp = token(setup.now(), "s1", Some("aal2"), &["pwd", "otp"], 5);
    let r = call(&srv, "POST", "/email", &otp, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let pay = Some(serde_json::json!({"amount": 1_500}));
    let r = call(&srv, "POST", "/pay", &otp, &[], pay);
    assert_ne!(r.status, 200, "{:?}", r.body);
    // A token without a usable amr proves its acr to `factor any`.
    let acr = token(setup.now(), "s2", Some("aal2"), &[], 5);
    let r = call(&srv, "POST", "/email", &acr, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Eight decisions: each first request of a session is its sign-in (allowed) and then its
    // operation, and a token that completes a challenge is that completion and then the
    // operation, each a line of its own (a review found the allowed sign-ins missing).
    assert_eq!(log.lines(), 8);
    assert_eq!(log.errors(), 0);

    let set = setup.engine.current();
    let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let mut backtest = stepup_decisionlog::Backtest::new(Arc::clone(&set), None);
    let mut kinds = Vec::new();
    for item in stepup_decisionlog::Lines::new(file) {
        let (line, rec) = item.unwrap();
        let state = rec.state().expect("the state is logged");
        let again = set.decide(&rec.request(), &state, false);
        assert_eq!(
            stepup_decisionlog::LoggedDecision::of(&again),
            rec.decision,
            "line {line}"
        );
        let sign_in = matches!(rec.request().event, stepup_engine::Event::SignIn { .. });
        kinds.push(format!(
            "{} {}",
            if sign_in { "sign_in" } else { "op" },
            rec.decision.label()
        ));
        backtest.add("decisions.jsonl", line, &rec);
    }
    assert_eq!(
        kinds,
        [
            "sign_in allow",
            "op allow",
            "op step_up aal2",
            "op completed",
            "op allow",
            "op step_up aal3",
            "sign_in allow",
            "op allow"
        ]
    );
    let report = backtest.finish();
    assert_eq!(report.decisions, 8);
    assert_eq!(report.not_redecided, 0);
    assert_eq!(report.unreadable, 0);
    assert_eq!(report.changed, 0, "{:?}", report.changes);
}

#[test]
fn a_logged_token_without_amr_proves_no_factor_to_a_candidate_that_names_one() {
    let (_dir, path, _log, setup, srv) = logged();
    // Its `acr` proves aal2 to the `factor any` email policy: allowed.
    let acr = token(setup.now(), "s1", Some("aal2"), &[], 5);
    let r = call(&srv, "POST", "/email", &acr, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let candidate = CompiledSet::from_text(
        "t.policy",
        &RULES.replace(
            "require aal2 factor any for 15m",
            "require aal2 factor webauthn for 15m",
        ),
    )
    .unwrap();
    let current = setup.engine.current();
    let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let mut kinds = Vec::new();
    for item in stepup_decisionlog::Lines::new(file) {
        let (_, rec) = item.unwrap();
        let state = rec.state().expect("the state is logged");
        let req = rec.request();
        assert_eq!(
            stepup_decisionlog::LoggedDecision::of(&current.decide(&req, &state, false)),
            rec.decision
        );
        kinds.push(candidate.decide(&req, &state, false).kind);
    }
    // The sign-in, then the operation: the token named no factor, so the candidate's
    // webauthn is not proved (the live layer would prompt too).
    assert_eq!(kinds, [DecisionKind::Allow, DecisionKind::StepUp]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_decision_log_that_cannot_be_written_is_counted_and_the_decision_stands() {
    let log = Arc::new(
        stepup_http::DecisionLog::open(std::path::Path::new("/dev/full"), 1 << 20, None).unwrap(),
    );
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s.with_decision_log(Arc::clone(&log)), audit);
    establish(&srv, &setup, "s1");
    let pwd = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    let r = call(&srv, "POST", "/email", &pwd, &[], None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    // The first request's sign-in and operation, and the step-up.
    assert_eq!(log.errors(), 3);
}

// ------------------------------------------- other logins of one session (second review)
//
// Tokens without `sid` share one session per user. Each test below is a finding of the second
// review of the fix that decides each login as a sign-in, reproduced as it was found.

/// A token with no `sid` (many identity providers issue access tokens without one), issued at
/// `now`, authenticated `age` seconds before (no `auth_time` without an age).
/// A token of session `s1` (`sid`), or of the user's shared session (no `sid`), issued now,
/// authenticated `age` seconds ago (negative: the identity provider's clock runs ahead).
fn login_token(setup: &Setup, sid: bool, acr: &str, amr: &[&str], age: i64) -> String {
    if sid {
        token(setup.now(), "s1", Some(acr), amr, age)
    } else {
        tok_nosid(setup.now(), acr, amr, Some(age))
    }
}

fn tok_nosid(now: i64, acr: &str, amr: &[&str], age: Option<i64>) -> String {
    let mut c = serde_json::json!({
        "sub": "alice", "iss": "iss", "aud": "api", "acr": acr,
        "exp": now + 3600, "iat": now, "amr": amr,
    });
    if let Some(a) = age {
        c["auth_time"] = (now - a).into();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn geo_srv(setup: &Setup) -> Srv {
    let (s, audit) = setup.stepup();
    let s = s
        .with_geoip(Arc::new(GeoIp::from_bytes(city_db()).unwrap()))
        .with_trusted_proxies(TrustedProxies::parse(&["127.0.0.1"]).unwrap())
        .with_device_header("x-device");
    serve(&s, audit)
}

const PARIS: [(&str, &str); 2] = [("x-forwarded-for", "192.0.2.7"), ("x-device", "laptop-1")];
const NY: [(&str, &str); 2] = [
    ("x-forwarded-for", "198.51.100.9"),
    ("x-device", "attacker-pc"),
];

/// A user signed in from Paris with a password (a token without `sid`): the server, its
/// clock and the user's token.
fn signed_in_from_paris() -> (Setup, Srv, String) {
    let setup = Setup::with_rules(&travel_rules());
    let srv = geo_srv(&setup);
    let user = tok_nosid(setup.now(), "aal1", &["pwd"], Some(60));
    let r = call(&srv, "GET", "/view", &user, &PARIS, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    (setup, srv, user)
}

/// Five minutes later, an attacker's password login from New York: its sign-in is impossible
/// travel (aal3). Returns the attacker's token.
fn refused_from_new_york(setup: &Setup, srv: &Srv) -> String {
    setup.advance(300);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(srv, "GET", "/view", &attacker, &NY, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["required_acr"], "aal3");
    attacker
}

/// A `GET /view` from New York with `token` is refused (the login's own sign-in, pending).
fn assert_refused_from_new_york(srv: &Srv, token: &str, why: &str) {
    let r = call(srv, "GET", "/view", token, &NY, None);
    assert_eq!(r.status, 401, "{why}: {:?}", r.body);
}

#[test]
fn a_login_without_auth_time_is_decided_as_a_sign_in_every_time() {
    let (setup, srv, _) = signed_in_from_paris();
    setup.advance(300);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], None);
    assert_refused_from_new_york(&srv, &attacker, "a login without auth_time went through");
}

#[test]
fn another_login_does_not_complete_a_challenge_before_its_sign_in_is_allowed() {
    let (setup, srv, victim) = signed_in_from_paris();
    setup.advance(240);
    let r = call(&srv, "POST", "/email", &victim, &PARIS, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["required_acr"], "aal2");
    setup.advance(60);
    // Attacker: password + SMS (aal2), from New York five minutes after Paris.
    let attacker = tok_nosid(setup.now(), "aal2", &["pwd", "sms"], Some(5));
    assert_refused_from_new_york(
        &srv,
        &attacker,
        "the attacker's login was never decided as a sign-in",
    );
}

#[test]
fn a_users_strong_login_does_not_complete_another_logins_sign_in() {
    let (setup, srv, _) = signed_in_from_paris();
    let attacker = refused_from_new_york(&setup, &srv);
    // The victim signs in on their phone with a security key, from Paris.
    setup.advance(30);
    let phone = [("x-forwarded-for", "192.0.2.8"), ("x-device", "phone-1")];
    let strong = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "GET", "/view", &strong, &phone, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The attacker retries with the same aal1 token.
    setup.advance(10);
    assert_refused_from_new_york(
        &srv,
        &attacker,
        "the victim's login completed the attacker's sign-in",
    );
}

#[test]
fn a_users_step_up_does_not_complete_another_logins_sign_in_later() {
    let (setup, srv, victim) = signed_in_from_paris();
    let attacker = refused_from_new_york(&setup, &srv);
    // The victim pays 5,000: an aal3 every-time step-up of its own.
    setup.advance(20);
    let body = serde_json::json!({"amount": 5000});
    let r = call(&srv, "POST", "/pay", &victim, &PARIS, Some(body.clone()));
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(20);
    let strong = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "POST", "/pay", &strong, &PARIS, Some(body));
    assert_eq!(
        r.status, 200,
        "the user's own step-up completes: {:?}",
        r.body
    );
    let r = call(&srv, "GET", "/view", &strong, &PARIS, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    setup.advance(10);
    assert_refused_from_new_york(
        &srv,
        &attacker,
        "the victim's step-up completed the attacker's sign-in",
    );
}

#[test]
fn another_logins_refused_sign_in_leaves_the_users_challenge_open() {
    let (setup, srv, victim) = signed_in_from_paris();
    setup.advance(300);
    let r = call(&srv, "POST", "/close", &victim, &PARIS, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(5);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(&srv, "GET", "/view", &attacker, &NY, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(20);
    let sms = tok_nosid(setup.now(), "aal2", &["pwd", "sms"], Some(5));
    let r = call(&srv, "POST", "/close", &sms, &PARIS, None);
    assert_eq!(
        r.status, 200,
        "the attacker's attempt cancelled the victim's step-up"
    );
}

#[test]
fn a_second_login_in_parallel_and_after_eviction_is_allowed_from_a_known_place() {
    let setup = Setup::with_rules(&travel_rules());
    let srv = geo_srv(&setup);
    let first = tok_nosid(setup.now(), "aal1", &["pwd"], Some(60));
    assert_eq!(call(&srv, "GET", "/view", &first, &PARIS, None).status, 200);
    setup.advance(3600);
    let second = tok_nosid(setup.now(), "aal1", &["pwd"], Some(5));
    let srv = Arc::new(srv);
    let hs: Vec<_> = (0..12)
        .map(|_| {
            let srv = Arc::clone(&srv);
            let t = second.clone();
            std::thread::spawn(move || call(&srv, "GET", "/view", &t, &PARIS, None).status)
        })
        .collect();
    let st: Vec<u16> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(st.iter().all(|s| *s == 200));
    // Nine more logins evict the first; it is decided again, from Paris: allowed.
    for i in 0..9 {
        setup.advance(60);
        let t = tok_nosid(setup.now(), "aal1", &["pwd"], Some(i));
        assert_eq!(call(&srv, "GET", "/view", &t, &PARIS, None).status, 200);
    }
    // A refreshed token of the first login (same auth_time): decided again, from Paris.
    let first_at = T0 - 60;
    let refreshed = tok_nosid(setup.now(), "aal1", &["pwd"], Some(setup.now() - first_at));
    let r = call(&srv, "GET", "/view", &refreshed, &PARIS, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
}

// ------------------------------------------------------------------- third review

/// An attacker's own device, in Paris (its sign-in is not impossible travel).
const PARIS_ATTACKER: [(&str, &str); 2] = [
    ("x-forwarded-for", "192.0.2.99"),
    ("x-device", "attacker-pc"),
];

/// The layer tests' catalog with one sign-in policy.
fn rules_with_sign_in_policy(policy: &str) -> String {
    format!(
        "tenant t {{\n  operation view routine\n  operation change_email sensitive\n  operation pay sensitive\n  operation close_account sensitive\n  attribute amount: number\n  {policy}\n  policy email {{\n    when operation == change_email\n    require aal2 factor any for 15m\n  }}\n}}\napplication app of t {{\n}}\n"
    )
}

#[test]
fn a_completed_every_time_sign_in_leaves_no_grant_for_another_login() {
    // Found by the third review: completing an `every time` sign-in challenge left a grant
    // keyed `sign_in` that nothing spent, and another login's sign-in (no `sid`) used it.
    let setup = Setup::with_rules(&rules_with_sign_in_policy(
        "policy newdev { when new_device require aal2 factor any every time }",
    ));
    let srv = geo_srv(&setup);
    let user = tok_nosid(setup.now(), "aal1", &["pwd"], Some(30));
    let r = call(&srv, "GET", "/view", &user, &PARIS, None);
    assert_eq!(r.status, 401, "a new device: {:?}", r.body);
    setup.advance(20);
    let sms = tok_nosid(setup.now(), "aal2", &["pwd", "sms"], Some(5));
    let r = call(&srv, "GET", "/view", &sms, &PARIS, None);
    assert_eq!(
        r.status, 200,
        "the user's own sign-in step-up: {:?}",
        r.body
    );
    setup.advance(120);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(&srv, "GET", "/view", &attacker, &PARIS_ATTACKER, None);
    assert_eq!(
        r.status, 401,
        "another login rode on the user's grant: {:?}",
        r.body
    );
}

#[test]
fn a_step_up_token_with_a_sid_proves_the_step_up_without_a_second_sign_in() {
    // Found by the third review (a regression of the login fix): with a `sid` per login, a
    // fresh step-up token was decided as another login's sign-in; with no device header the
    // new-device policy (unknown, fail closed) then asked for aal3 instead of accepting the
    // aal2 step-up (SPEC §11).
    let setup = Setup::with_rules(&rules_with_sign_in_policy(
        "policy newdev { when new_device require aal3 factor webauthn|totp for 5m }",
    ));
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    let key = token(setup.now(), "s1", Some("aal3"), &["hwk"], 10);
    let r = call(&srv, "GET", "/view", &key, &[], None);
    assert_eq!(r.status, 200, "signed in with a security key: {:?}", r.body);
    setup.advance(20 * 60);
    let r = call(&srv, "POST", "/email", &key, &[], None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["required_acr"], "aal2");
    setup.advance(30);
    let sms = token(setup.now(), "s1", Some("aal2"), &["pwd", "sms"], 5);
    let r = call(&srv, "POST", "/email", &sms, &[], None);
    assert_eq!(
        r.status, 200,
        "a fresh aal2 token proves the step-up: {:?}",
        r.body
    );
}

#[test]
fn a_token_whose_sid_names_no_login_of_its_own_shares_the_users_session_and_its_checks() {
    // Found by the fourth review: whether another login's sign-in is decided first was read
    // from the presence of `sid`, while the session a token lands in is read from its value. A
    // `sid` equal to the user id, or an empty one, landed in the user's shared session without
    // the check.
    for sid in ["alice", ""] {
        let (setup, srv, _) = signed_in_from_paris();
        setup.advance(300);
        let other = token(setup.now(), sid, Some("aal1"), &["pwd"], 10);
        let r = call(&srv, "GET", "/view", &other, &NY, None);
        assert_eq!(r.status, 401, "sid {sid:?}: {:?}", r.body);
        assert_eq!(r.body["required_acr"], "aal3", "sid {sid:?}");
    }
}

#[test]
fn in_a_session_shared_by_logins_a_grant_is_spent_only_by_the_login_that_earned_it() {
    // Found by the third review (then a documented limit): two accepted logins without `sid`
    // share a session; the user's step-up completed the latest challenge — the other login's
    // payout of 1,000,000 — and the other login's retry was paid.
    let (setup, srv, user) = signed_in_from_paris();
    setup.advance(600);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(&srv, "GET", "/view", &attacker, &PARIS_ATTACKER, None);
    assert_eq!(r.status, 200, "its own sign-in, from Paris: {:?}", r.body);
    let five = Some(serde_json::json!({"amount": 5000}));
    let big = Some(serde_json::json!({"amount": 1_000_000}));
    let r = call(&srv, "POST", "/pay", &user, &PARIS, five.clone());
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(5);
    let r = call(
        &srv,
        "POST",
        "/pay",
        &attacker,
        &PARIS_ATTACKER,
        big.clone(),
    );
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(20);
    // The user confirms with a security key: that completes the latest challenge (the other
    // login's), and the grant is the user's login's.
    let key = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "POST", "/pay", &key, &PARIS, five.clone());
    assert_eq!(
        r.status, 401,
        "the grant is for the 1,000,000 request: {:?}",
        r.body
    );
    setup.advance(5);
    let r = call(
        &srv,
        "POST",
        "/pay",
        &attacker,
        &PARIS_ATTACKER,
        big.clone(),
    );
    assert_eq!(
        r.status, 401,
        "the other login spent the user's grant: {:?}",
        r.body
    );
    // Nor does a token that says no login at all (no `auth_time`), whose sign-in from the
    // other login's device is allowed.
    let nameless = tok_nosid(setup.now(), "aal1", &["pwd"], None);
    let r = call(&srv, "POST", "/pay", &nameless, &PARIS_ATTACKER, big);
    assert_eq!(
        r.status, 401,
        "a token of no login spent the grant: {:?}",
        r.body
    );
    // The user's own flow still works: asked again, a fresh confirmation pays the 5,000 once.
    setup.advance(20);
    let r = call(&srv, "POST", "/pay", &user, &PARIS, five.clone());
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(5);
    let again = tok_nosid(setup.now(), "aal3", &["hwk"], Some(2));
    let r = call(&srv, "POST", "/pay", &again, &PARIS, five.clone());
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = call(&srv, "POST", "/pay", &again, &PARIS, five);
    assert_eq!(r.status, 401, "once: {:?}", r.body);
}

/// The store's key of alice's session (a token without `sid`) in application `app`.
const SESSION_OF_ALICE: &str = "3:app:alice";

#[test]
fn a_completion_gives_its_login_only_to_the_grants_it_earned() {
    // Found by the review of round 13: in a session shared by logins, a completion gave its
    // login to every grant naming the completed challenge's id. Ids are 64-bit hashes: a grant
    // already in the session that names the same id (planted here) keeps the login it had.
    let (setup, srv, user) = signed_in_from_paris();
    setup.advance(600);
    let five = Some(serde_json::json!({"amount": 5000}));
    let r = call(&srv, "POST", "/pay", &user, &PARIS, five.clone());
    assert_eq!(r.status, 401, "{:?}", r.body);
    let (_, mut s) = setup.store.load("t", "alice", SESSION_OF_ALICE).unwrap();
    let open = s
        .challenges
        .iter()
        .rev()
        .find(|c| c.state == stepup_engine::state::ChallengeState::Open)
        .unwrap()
        .id
        .clone();
    let other_login = Some(Timestamp(T0 - 5));
    s.grants.push(stepup_engine::state::Grant {
        challenge_id: open,
        application: "app".into(),
        event_key: "operation:elsewhere".into(),
        binding: Default::default(),
        proof: None,
        policies: vec!["elsewhere".into()],
        expires_at: Timestamp(setup.now() + 3_600),
        login: other_login,
    });
    setup
        .store
        .commit("t", "alice", SESSION_OF_ALICE, Some(&s), None)
        .unwrap();
    setup.advance(20);
    let key = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "POST", "/pay", &key, &PARIS, five);
    assert_eq!(r.status, 200, "the step-up completes: {:?}", r.body);
    let (_, after) = setup.store.load("t", "alice", SESSION_OF_ALICE).unwrap();
    let planted: Vec<_> = after
        .grants
        .iter()
        .filter(|g| &*g.event_key == "operation:elsewhere")
        .map(|g| g.login)
        .collect();
    assert_eq!(planted, [other_login], "the planted grant kept its login");
}

/// A sign-in policy that asks for a key or an authenticator app on a new device or country.
const RISKY_SIGN_IN: &str = "policy risky \"Confirm it's you.\" { when new_device or new_country(30d) require aal3 factor webauthn|totp for 5m }";

#[test]
fn a_users_login_that_completes_another_logins_pending_sign_in_does_not_learn_its_device() {
    // Found by the review of round 13: tokens without `sid` share the user's session. Before
    // it is established, an attacker's password login from New York on an unknown device is
    // stepped up (aal3); the user's security-key login from Paris then completes that pending
    // sign-in. It taught the history the attacker's device and country, and the attacker's
    // password-only logins were allowed from then on.
    let setup = Setup::with_rules(&rules_with_sign_in_policy(RISKY_SIGN_IN));
    let mut h = stepup_engine::state::UserHistory::default();
    h.devices.insert("laptop-1".into());
    h.countries.insert("FR".into(), Timestamp(T0 - 86_400));
    setup.store.put_history("t", "alice", &h).unwrap();
    let srv = geo_srv(&setup);
    let attacker = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(&srv, "GET", "/view", &attacker, &NY, None);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["required_acr"], "aal3");
    setup.advance(60);
    let alice = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "GET", "/view", &alice, &PARIS, None);
    assert_eq!(r.status, 200, "the user is in: {:?}", r.body);
    let (hist, _) = setup.store.load("t", "alice", "alice").unwrap();
    assert!(
        !hist.devices.contains("attacker-pc") && !hist.countries.contains_key("US"),
        "the attacker's device and country were learned: {hist:?}"
    );
    setup.advance(60);
    let r = call(&srv, "GET", "/view", &attacker, &NY, None);
    assert_eq!(r.status, 401, "the attacker's token: {:?}", r.body);
    let fresh = tok_nosid(setup.now(), "aal1", &["pwd"], Some(1));
    let r = call(&srv, "GET", "/view", &fresh, &NY, None);
    assert_eq!(
        r.status, 401,
        "a new password login of the attacker: {:?}",
        r.body
    );
}

#[test]
fn a_pending_sign_in_completed_from_its_own_device_and_place_is_learned() {
    // The same session shared by logins, the sign-in's own login completing it from where it
    // signed in: its device and country are learned, so the next sign-in from there is not
    // asked again.
    let setup = Setup::with_rules(&rules_with_sign_in_policy(RISKY_SIGN_IN));
    let srv = geo_srv(&setup);
    let first = tok_nosid(setup.now(), "aal1", &["pwd"], Some(10));
    let r = call(&srv, "GET", "/view", &first, &PARIS, None);
    assert_eq!(r.status, 401, "a first sign-in is new: {:?}", r.body);
    setup.advance(30);
    let strong = tok_nosid(setup.now(), "aal3", &["hwk"], Some(5));
    let r = call(&srv, "GET", "/view", &strong, &PARIS, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (hist, _) = setup.store.load("t", "alice", "alice").unwrap();
    assert!(
        hist.devices.contains("laptop-1") && hist.countries.contains_key("FR"),
        "{hist:?}"
    );
}

#[test]
fn a_login_whose_auth_time_is_ahead_of_our_clock_does_not_complete_its_own_challenge() {
    // Found by the review of round 13: the identity provider's clock 20 s ahead of ours (within
    // the tokens' leeway), the login's own token said it authenticated after the challenge it
    // caused, so it satisfied `every time` with no new authentication.
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    let t = token(setup.now(), "s1", Some("aal3"), &["hwk"], -20);
    let r = call(&srv, "GET", "/view", &t, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let pay = || Some(serde_json::json!({"amount": 5000}));
    let r = call(&srv, "POST", "/pay", &t, &[], pay());
    assert_eq!(r.status, 401, "{:?}", r.body);
    setup.advance(2);
    let r = call(&srv, "POST", "/pay", &t, &[], pay());
    assert_eq!(r.status, 401, "the same token again: {:?}", r.body);
    // A new authentication, on the same skewed clock, completes it.
    setup.advance(3);
    let fresh = token(setup.now(), "s1", Some("aal3"), &["hwk"], -21);
    let r = call(&srv, "POST", "/pay", &fresh, &[], pay());
    assert_eq!(r.status, 200, "a new authentication: {:?}", r.body);
}

#[test]
fn a_session_established_in_one_application_is_not_established_in_another() {
    // Found by the review of round 13: two applications of one tenant on one store. A stolen
    // password signs in to the portal (no sign-in policy there, and no device header: nothing
    // learned), then opens the admin console from a new device: the console's sign-in policy
    // must still be decided, the session being the application's.
    let rules = "tenant t {\n  operation view routine\n}\napplication portal of t {\n}\n\
                 application admin of t {\n  policy admin_new_device \"Use your key.\" {\n    \
                 when new_device\n    require aal3 factor webauthn|totp for 5m\n  }\n}\n";
    for sid in [None, Some("idp-session-1")] {
        let setup = Setup::with_rules(rules);
        let (portal, audit) = setup.stepup_for("portal");
        let portal = serve(&portal.with_device_header("x-device"), audit);
        let (admin, audit) = setup.stepup_for("admin");
        let admin = serve(&admin.with_device_header("x-device"), audit);
        let t = match sid {
            Some(sid) => token(setup.now(), sid, Some("aal1"), &["pwd"], 60),
            None => tok_nosid(setup.now(), "aal1", &["pwd"], Some(60)),
        };
        let r = call(&portal, "GET", "/view", &t, &[], None);
        assert_eq!(r.status, 200, "{sid:?}: the portal: {:?}", r.body);
        let r = call(
            &admin,
            "GET",
            "/view",
            &t,
            &[("x-device", "attacker-pc")],
            None,
        );
        assert_eq!(
            r.status, 401,
            "{sid:?}: the console's sign-in: {:?}",
            r.body
        );
        let r = call(&portal, "GET", "/view", &t, &[], None);
        assert_eq!(
            r.status, 200,
            "{sid:?}: the portal's session stays: {:?}",
            r.body
        );
    }
}

#[test]
fn a_session_id_spelt_like_an_applications_key_is_a_login_of_its_own() {
    // Found by the review of round 21: the tenant's own service (no application) kept its
    // session under the raw `sid`, an application under `{len}:{app}:{sid}`, so a login whose
    // `sid` was `6:portal:idp-1` rode on the portal's session `idp-1`, its sign-in from a new
    // device never decided. Every key now carries the application.
    let rules = "tenant t {\n  operation view routine\n  policy nd \"Use your key.\" {\n    \
                 when new_device\n    require aal3 factor webauthn|totp for 5m\n  }\n}\n\
                 application portal of t {\n}\n";
    let setup = Setup::with_rules(rules);
    let mut h = stepup_engine::state::UserHistory::default();
    h.devices.insert("laptop-1".into());
    setup.store.put_history("t", "alice", &h).unwrap();
    let (portal, audit) = setup.stepup_for("portal");
    let portal = serve(&portal.with_device_header("x-device"), audit);
    let (own, audit) = setup.stepup_for("");
    let own = serve(&own.with_device_header("x-device"), audit);
    let login = |sid| token(setup.now(), sid, Some("aal1"), &["pwd"], 60);
    let r = call(
        &portal,
        "GET",
        "/view",
        &login("idp-1"),
        &[("x-device", "laptop-1")],
        None,
    );
    assert_eq!(r.status, 200, "the portal's sign-in: {:?}", r.body);
    for sid in ["idp-2", "6:portal:idp-1"] {
        let r = call(
            &own,
            "GET",
            "/view",
            &login(sid),
            &[("x-device", "attacker-pc")],
            None,
        );
        assert_eq!(
            r.status, 401,
            "{sid}: a sign-in from a new device: {:?}",
            r.body
        );
    }
}

/// An audit sink that panics on every record.
struct PanickingSink;

impl stepup_http::AuditSink for PanickingSink {
    fn record(&self, _: &stepup_engine::decision::AuditRecord) {
        panic!("the audit sink failed");
    }
}

#[test]
fn a_panic_in_the_services_callbacks_is_a_500_and_the_server_keeps_serving() {
    // Found by the review of round 13: the service's `enrolled` callback and audit sink ran
    // outside the caught region, so a panic there dropped the connection instead of answering.
    let setup = Setup::new();
    let layer = |enrolled_panics: bool, sink: Arc<dyn stepup_http::AuditSink>| {
        StepUp::new(
            Arc::clone(&setup.engine),
            Arc::clone(&setup.store),
            TokenVerifier::hs256(SECRET, "iss", "api").unwrap(),
            "t",
            "app",
            move |_| {
                assert!(!enrolled_panics, "the enrolment lookup failed");
                FactorSet::one(Factor::Password)
            },
            sink,
        )
        .with_clock({
            let clock = Arc::clone(&setup.clock);
            move || Timestamp(clock.load(Ordering::SeqCst))
        })
    };
    let t = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    let audit = Arc::new(MemorySink::default());
    let srv = serve(
        &layer(true, Arc::new(MemorySink::default())),
        Arc::clone(&audit),
    );
    for (path, body) in [
        ("/view", None),
        ("/pay", Some(serde_json::json!({"amount": 5}))),
    ] {
        let method = if body.is_some() { "POST" } else { "GET" };
        let r = call(&srv, method, path, &t, &[], body);
        assert_eq!(r.status, 500, "{path}, enrolment panics: {:?}", r.body);
        assert_eq!(r.body["error"], "server_error");
    }
    let srv = serve(&layer(false, Arc::new(PanickingSink)), audit);
    let r = call(&srv, "POST", "/email", &t, &[], None);
    assert_eq!(
        r.status, 500,
        "a step-up, the audit sink panics: {:?}",
        r.body
    );
    let ok = serve(&setup.stepup().0, Arc::new(MemorySink::default()));
    let r = call(&ok, "GET", "/view", &t, &[], None);
    assert_eq!(
        r.status, 200,
        "another service on the same store: {:?}",
        r.body
    );
}

/// `POST path` with `raw` as the JSON body, as written; the status and the body read back.
fn post_raw(srv: &Srv, path: &str, tok: &str, raw: &str) -> (u16, String) {
    let a = agent();
    let mut resp = a
        .post(format!("{}{path}", srv.base))
        .header("Authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .send(raw)
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn a_body_that_names_a_field_twice_is_refused() {
    // Found by the review of round 13: `{"amount":5000,"amount":1}` was decided on 1 (the last
    // value) while a route or backend reading the first would pay 5,000 without a step-up.
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    let t = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    assert_eq!(call(&srv, "GET", "/view", &t, &[], None).status, 200);
    for raw in [
        r#"{"amount":5000,"amount":1}"#,
        r#"{"amount":1,"amount":5000}"#,
        r#"{"amount":1,"meta":{"a":1,"a":2}}"#,
        r#"{"amount":1,"items":[{"x":1,"x":1}]}"#,
        // In letters of another case: a backend matching names without regard to case (Go's
        // `encoding/json`) would pay 5,000,000 decided on 1.
        r#"{"amount":1,"AMOUNT":5000000}"#,
    ] {
        let (status, body) = post_raw(&srv, "/pay", &t, raw);
        assert_eq!(status, 400, "{raw}: {body}");
        assert!(body.contains("twice"), "{raw}: {body}");
    }
    let (status, body) = post_raw(&srv, "/pay", &t, r#"{"amount":1,"meta":{"amount":2}}"#);
    assert_eq!(status, 200, "one name in each object: {body}");
}

/// A review found one step-up authentication paying out twice (SPEC §11: an `every time`
/// requirement is met by a fresh token exactly once). The identity provider's clock ran 20 s
/// ahead of ours (within the leeway): the step-up token completed the payout's challenge, and
/// after the session's ordinary token asked again, it completed the new challenge too (its
/// `auth_time` was later than that challenge's issue time). An authentication now completes at
/// most one challenge (`SessionState::completed_by`).
#[test]
fn one_step_up_completes_one_challenge_whatever_the_clocks() {
    // With a `sid` (the session is the login's), and without (the user's logins share one
    // session, and the step-up token arrives as another login: a review of the fix found that
    // path left out).
    for sid in [true, false] {
        let setup = Setup::new();
        let (s, audit) = setup.stepup();
        let srv = serve(&s, audit);
        let tok = |acr: &str, amr: &[&str], age: i64| login_token(&setup, sid, acr, amr, age);
        // The session's ordinary login: aal1, password, signed in a minute ago.
        let a = tok("aal1", &["pwd"], 60);
        assert_eq!(call(&srv, "GET", "/view", &a, &[], None).status, 200);
        let pay = || Some(serde_json::json!({"amount": 5000}));
        let r = call(&srv, "POST", "/pay", &a, &[], pay());
        assert_eq!(r.status, 401, "{:?}", r.body);
        // One step-up at the identity provider, whose clock is 20 s ahead (within the leeway).
        setup.advance(2);
        let b = tok("aal3", &["hwk"], -20);
        let r = call(&srv, "POST", "/pay", &b, &[], pay());
        assert_eq!(r.status, 200, "first payout (sid: {sid}): {:?}", r.body);
        // The same token again: refused (its own challenge).
        let r = call(&srv, "POST", "/pay", &b, &[], pay());
        assert_eq!(r.status, 401, "{:?}", r.body);
        // The session's other token asks again; then the same step-up token pays again.
        setup.advance(2);
        let r = call(&srv, "POST", "/pay", &a, &[], pay());
        assert_eq!(r.status, 401, "{:?}", r.body);
        let r = call(&srv, "POST", "/pay", &b, &[], pay());
        assert_eq!(
            r.status, 401,
            "SECOND PAYOUT with one authentication (sid: {sid}): {:?}",
            r.body
        );
    }
}

/// The same review's second way in: a request of the session's ordinary token sends its
/// headers, holds its body back while the user steps up and pays, then sends it. Its challenge
/// was dated when the headers came (before the step-up), so the step-up token completed it and
/// paid again. Decisions are now dated after the body is read, and an authentication completes
/// one challenge; either stops it.
#[test]
fn a_request_whose_body_comes_late_gives_a_step_up_no_second_payout() {
    use std::io::{Read, Write};
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    let a = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    assert_eq!(call(&srv, "GET", "/view", &a, &[], None).status, 200);
    let pay = || Some(serde_json::json!({"amount": 5000}));
    let r = call(&srv, "POST", "/pay", &a, &[], pay());
    assert_eq!(r.status, 401, "{:?}", r.body);
    // A second payout request of the session's ordinary token: headers now, body later.
    setup.advance(1);
    let addr = srv.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    let body = r#"{"amount":5000}"#;
    write!(
        slow,
        "POST /pay HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {a}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The user steps up once (no clock skew: auth_time is our clock's now) and pays.
    setup.advance(2);
    let b = token(setup.now(), "s1", Some("aal3"), &["hwk"], 0);
    let r = call(&srv, "POST", "/pay", &b, &[], pay());
    assert_eq!(r.status, 200, "first payout: {:?}", r.body);
    // The slow request's body arrives: its challenge is dated when its headers came.
    slow.write_all(body.as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let n = slow.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // The same step-up token, replayed.
    let r = call(&srv, "POST", "/pay", &b, &[], pay());
    assert_eq!(
        r.status, 401,
        "SECOND PAYOUT with one authentication: {:?}",
        r.body
    );
}

/// One authentication completes one challenge across the applications that accept its token
/// too (one audience): a review of the fix found a step-up token that paid in one application
/// (the identity provider's clock 20 s ahead) completing a challenge issued after it in
/// another, and paying there. The login's record across applications keeps it.
#[test]
fn one_step_up_completes_one_challenge_across_applications() {
    for sid in [true, false] {
        let (setup, _srv1, srv2, a, b) = paid_once_in_one_of_two_applications(sid);
        let tok = |acr: &str, amr: &[&str], age: i64| login_token(&setup, sid, acr, amr, age);
        let pay = || Some(serde_json::json!({"amount": 5000}));
        setup.advance(2);
        assert_eq!(call(&srv2, "POST", "/pay", &a, &[], pay()).status, 401);
        let r = call(&srv2, "POST", "/pay", &b, &[], pay());
        assert_eq!(
            r.status, 401,
            "second payout in another application (sid: {sid}): {:?}",
            r.body
        );
        // A new authentication (at the same identity provider, still 20 s ahead) completes it.
        setup.advance(1);
        let c = tok("aal3", &["hwk"], -20);
        let r = call(&srv2, "POST", "/pay", &c, &[], pay());
        assert_eq!(r.status, 200, "a new step-up (sid: {sid}): {:?}", r.body);
    }
}

/// Two applications of one tenant, a login (token `a`) in both, and its payout in the first
/// paid with a step-up (token `b`, from an identity provider 20 s ahead).
fn paid_once_in_one_of_two_applications(sid: bool) -> (Setup, Srv, Srv, String, String) {
    let rules = format!("{RULES}application app2 of t {{\n}}\n");
    let setup = Setup::with_rules(&rules);
    let (s1, audit1) = setup.stepup_for("app");
    let (s2, audit2) = setup.stepup_for("app2");
    let (srv1, srv2) = (serve(&s1, audit1), serve(&s2, audit2));
    let tok = |acr: &str, amr: &[&str], age: i64| login_token(&setup, sid, acr, amr, age);
    let a = tok("aal1", &["pwd"], 60);
    assert_eq!(call(&srv1, "GET", "/view", &a, &[], None).status, 200);
    assert_eq!(call(&srv2, "GET", "/view", &a, &[], None).status, 200);
    let pay = || Some(serde_json::json!({"amount": 5000}));
    assert_eq!(call(&srv1, "POST", "/pay", &a, &[], pay()).status, 401);
    setup.advance(2);
    let b = tok("aal3", &["hwk"], -20);
    let r = call(&srv1, "POST", "/pay", &b, &[], pay());
    assert_eq!(r.status, 200, "first payout (sid: {sid}): {:?}", r.body);
    (setup, srv1, srv2, a, b)
}

/// A store that, once armed for a key, lets "another instance" commit that key just before the
/// layer's own commit (a conflict), or fails the commit.
struct Faulty {
    inner: Arc<dyn Store>,
    /// (key, action): 1 = another instance commits the key first; 2 = the store is unavailable.
    arm: std::sync::Mutex<Vec<(String, u8)>>,
    /// Keys whose next load fails.
    unreadable: std::sync::Mutex<Vec<String>>,
}

impl Store for Faulty {
    fn load(
        &self,
        t: &str,
        u: &str,
        s: &str,
    ) -> Result<(stepup_engine::UserHistory, stepup_engine::SessionState), stepup_engine::StoreError>
    {
        let fail = {
            let mut k = self.unreadable.lock().unwrap();
            k.iter().position(|k| k == s).map(|i| k.remove(i))
        };
        if fail.is_some() {
            return Err(stepup_engine::StoreError::Unavailable("injected".into()));
        }
        self.inner.load(t, u, s)
    }
    fn commit(
        &self,
        t: &str,
        u: &str,
        s: &str,
        state: Option<&stepup_engine::SessionState>,
        update: Option<&stepup_engine::state::HistoryUpdate>,
    ) -> Result<(), stepup_engine::StoreError> {
        let act = {
            let mut a = self.arm.lock().unwrap();
            a.iter().position(|(k, _)| k == s).map(|i| a.remove(i).1)
        };
        match act {
            Some(1) => {
                let (_, st) = self.inner.load(t, u, s)?;
                self.inner.commit(t, u, s, Some(&st), None)?;
            }
            Some(_) => {
                return Err(stepup_engine::StoreError::Unavailable("injected".into()));
            }
            None => {}
        }
        self.inner.commit(t, u, s, state, update)
    }
    fn put_history(
        &self,
        t: &str,
        u: &str,
        h: &stepup_engine::UserHistory,
    ) -> Result<(), stepup_engine::StoreError> {
        self.inner.put_history(t, u, h)
    }
    fn reset_session(&self, t: &str, u: &str, s: &str) -> Result<(), stepup_engine::StoreError> {
        self.inner.reset_session(t, u, s)
    }
}

/// A setup on a store whose faults a test injects.
fn faulty_setup() -> (Setup, Arc<Faulty>) {
    let faulty = Arc::new(Faulty {
        inner: Arc::new(MemoryStore::new()),
        arm: std::sync::Mutex::default(),
        unreadable: std::sync::Mutex::default(),
    });
    let setup = Setup::on(Arc::clone(&faulty) as Arc<dyn Store>);
    (setup, faulty)
}

/// Session `s1` over a store whose faults a test arms: its payout asked for a step-up (401),
/// and, 30 s later, the aal3 token that answers it (not yet sent).
fn a_payout_awaiting_its_step_up() -> (Setup, Arc<Faulty>, Srv, String) {
    let (setup, faulty) = faulty_setup();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let a = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    let pay = Some(serde_json::json!({"amount": 5000}));
    assert_eq!(call(&srv, "POST", "/pay", &a, &[], pay).status, 401);
    setup.advance(30);
    let b = token(setup.now(), "s1", Some("aal3"), &["hwk"], 10);
    (setup, faulty, srv, b)
}

/// The login's record across applications cannot be read when a step-up is about to complete:
/// the authentication may have completed a challenge elsewhere, so it completes nothing (the
/// payout is asked for again, never paid); the store readable again, a new step-up completes the
/// new challenge.
#[test]
fn a_record_that_cannot_be_read_completes_nothing() {
    let (setup, faulty, srv, b) = a_payout_awaiting_its_step_up();
    let pay = || Some(serde_json::json!({"amount": 5000}));
    faulty.unreadable.lock().unwrap().push("s1".into());
    let r = call(&srv, "POST", "/pay", &b, &[], pay());
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert!(
        faulty.unreadable.lock().unwrap().is_empty(),
        "the record was read"
    );
    // The payout above issued a new challenge, issued after `b`: a new step-up completes it.
    setup.advance(5);
    let c = token(setup.now(), "s1", Some("aal3"), &["hwk"], 0);
    assert_eq!(call(&srv, "POST", "/pay", &c, &[], pay()).status, 200);
}

/// A review of the record across applications found a step-up lost to an ordinary conflict:
/// the record was written, the session's commit conflicted (another instance changed the
/// session), and deciding again found the authentication recorded as used, so the payout was
/// refused and the token spent for nothing. The request that wrote the record may complete on
/// the fresh state. A store failure between the two commits still refuses (the token is spent:
/// the user steps up again).
#[test]
fn a_step_up_survives_a_conflict_after_its_record_was_written() {
    for (action, expected) in [(1u8, 200u16), (2, 503)] {
        let (_setup, faulty, srv, b) = a_payout_awaiting_its_step_up();
        let pay = || Some(serde_json::json!({"amount": 5000}));
        faulty.arm.lock().unwrap().push(("3:app:s1".into(), action));
        let before = srv.audit.records().len();
        let r = call(&srv, "POST", "/pay", &b, &[], pay());
        assert_eq!(r.status, expected, "action {action}: {:?}", r.body);
        let names: Vec<_> = srv.audit.records()[before..]
            .iter()
            .map(|r| (r.name, r.risk.is_some()))
            .collect();
        if action == 2 {
            // Nothing was saved: the audit stream says the step-up failed, not completed, and
            // the store's refusal carries the event's risk (a review).
            assert_eq!(
                names,
                [
                    ("auth.step_up_failed", true),
                    ("auth.step_up_skipped", true),
                    ("auth.step_up_denied", true)
                ],
                "{names:?}"
            );
        }
        // Either way the token completes nothing more.
        let r = call(&srv, "POST", "/pay", &b, &[], pay());
        assert_eq!(r.status, 401, "action {action}: {:?}", r.body);
    }
}

/// A review: a step-up token sent on a payout of another amount completes the open challenge
/// (bound to 5000), and this payout (6000) needs its own step-up; the session's commit fails.
/// Nothing was saved: the audit stream said `auth.step_up_completed`, and the 401 named a
/// challenge never stored (no answer could complete it). It is refused as the store's failure
/// (503), its completion audited as failed, as an allow whose commit fails is.
#[test]
fn an_unsaved_step_up_that_took_in_a_completion_is_refused() {
    let (_setup, faulty, srv, b) = a_payout_awaiting_its_step_up();
    faulty.arm.lock().unwrap().push(("3:app:s1".into(), 2));
    let before = srv.audit.records().len();
    let r = call(
        &srv,
        "POST",
        "/pay",
        &b,
        &[],
        Some(serde_json::json!({"amount": 6000})),
    );
    assert_eq!(r.status, 503, "{:?}", r.body);
    let names: Vec<_> = srv.audit.records()[before..]
        .iter()
        .map(|r| r.name)
        .collect();
    assert!(!names.contains(&"auth.step_up_completed"), "{names:?}");
    assert!(names.contains(&"auth.step_up_failed"), "{names:?}");
    assert_eq!(names.last(), Some(&"auth.step_up_denied"), "{names:?}");
}

/// The same review: two separate step-ups, each made for its own application's challenge, used
/// in the other order than they were made (two tabs) — the later one first. Each is its own
/// authentication and completes its own challenge (the record kept only the latest, and refused
/// the earlier one).
#[test]
fn two_step_ups_complete_one_challenge_each_in_any_order() {
    let setup = Setup::with_rules(&format!("{RULES}application app2 of t {{\n}}\n"));
    let (s1, a1) = setup.stepup_for("app");
    let (s2, a2) = setup.stepup_for("app2");
    let (srv1, srv2) = (serve(&s1, a1), serve(&s2, a2));
    let a = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    let pay = || Some(serde_json::json!({"amount": 5000}));
    assert_eq!(call(&srv1, "GET", "/view", &a, &[], None).status, 200);
    assert_eq!(call(&srv2, "GET", "/view", &a, &[], None).status, 200);
    assert_eq!(call(&srv1, "POST", "/pay", &a, &[], pay()).status, 401);
    assert_eq!(call(&srv2, "POST", "/pay", &a, &[], pay()).status, 401);
    setup.advance(5);
    let first = token(setup.now(), "s1", Some("aal3"), &["hwk"], 0);
    setup.advance(5);
    let second = token(setup.now(), "s1", Some("aal3"), &["hwk"], 0);
    assert_eq!(call(&srv2, "POST", "/pay", &second, &[], pay()).status, 200);
    assert_eq!(call(&srv1, "POST", "/pay", &first, &[], pay()).status, 200);
    // And neither pays again.
    for (srv, t) in [
        (&srv1, &first),
        (&srv2, &second),
        (&srv1, &second),
        (&srv2, &first),
    ] {
        assert_eq!(call(srv, "POST", "/pay", t, &[], pay()).status, 401);
    }
}

/// A review: the login's record across applications is a session of the store, and the store
/// keeps a user's latest 64 sessions: 64 sign-ins of the user's other logins forgot it, and the
/// step-up it had recorded as spent paid a second time in another application. A forgotten
/// session leaves what single use needs: its spent authentications stay spent.
#[test]
fn a_forgotten_record_across_applications_still_spends_its_step_up() {
    let (setup, srv1, srv2, a, b) = paid_once_in_one_of_two_applications(true);
    let pay = || Some(serde_json::json!({"amount": 5000}));
    // Alice's other logins (other sids) sign in: 64 session writes.
    for i in 0..64 {
        let o = token(
            setup.now(),
            &format!("other{i}"),
            Some("aal1"),
            &["pwd"],
            60,
        );
        assert_eq!(call(&srv1, "GET", "/view", &o, &[], None).status, 200);
    }
    setup.advance(2);
    let r = call(&srv2, "POST", "/pay", &a, &[], pay());
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = call(&srv2, "POST", "/pay", &b, &[], pay());
    assert_eq!(
        r.status, 401,
        "second payout in another application with the same step-up: {:?}",
        r.body
    );
}

/// A store that lines up a double submit: the first two loads of the session wait for each
/// other (both requests decide on the same state); the request that reads the record across
/// applications second waits until the first has recorded the authentication there ("A"); A's
/// commit of the session is held until the other ("B") either loads the session again (it
/// waits for A) or commits it (it does not).
struct DoubleSubmit {
    inner: Arc<dyn Store>,
    state: std::sync::Mutex<Lineup>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct Lineup {
    armed: bool,
    first_loads: usize,
    first_record_reader: Option<std::thread::ThreadId>,
    holder: Option<std::thread::ThreadId>,
    released: bool,
    /// Released by B looking at the session again (it waited), not by its commit.
    released_by_look: bool,
}

impl DoubleSubmit {
    /// The across-applications record is the raw session id; every other key is the session.
    fn is_session(key: &str) -> bool {
        key != "s1"
    }
    fn wait_until(&self, done: impl Fn(&Lineup) -> bool) {
        let g = self.state.lock().unwrap();
        // Bounded: a request that never comes fails the test's assertions, not its run.
        drop(
            self.changed
                .wait_timeout_while(g, std::time::Duration::from_secs(5), |s| !done(s))
                .unwrap(),
        );
    }
}

impl Store for DoubleSubmit {
    fn load(
        &self,
        t: &str,
        u: &str,
        s: &str,
    ) -> Result<(stepup_engine::UserHistory, stepup_engine::SessionState), stepup_engine::StoreError>
    {
        let me = std::thread::current().id();
        let second_reader = {
            let mut st = self.state.lock().unwrap();
            if st.armed && !DoubleSubmit::is_session(s) {
                *st.first_record_reader.get_or_insert(me) != me
            } else {
                false
            }
        };
        if second_reader {
            self.wait_until(|s| s.holder.is_some());
        }
        let lineup = {
            let mut st = self.state.lock().unwrap();
            if st.armed && DoubleSubmit::is_session(s) {
                if st.holder.is_some_and(|h| h != me) && !st.released {
                    st.released = true;
                    st.released_by_look = true;
                    self.changed.notify_all();
                }
                let first = st.first_loads < 2;
                st.first_loads += 1;
                self.changed.notify_all();
                first
            } else {
                false
            }
        };
        if lineup {
            self.wait_until(|s| s.first_loads >= 2);
        }
        self.inner.load(t, u, s)
    }
    fn commit(
        &self,
        t: &str,
        u: &str,
        s: &str,
        state: Option<&stepup_engine::SessionState>,
        update: Option<&stepup_engine::state::HistoryUpdate>,
    ) -> Result<(), stepup_engine::StoreError> {
        let me = std::thread::current().id();
        let (armed, holder) = {
            let st = self.state.lock().unwrap();
            (st.armed, st.holder)
        };
        if !armed {
            return self.inner.commit(t, u, s, state, update);
        }
        if !DoubleSubmit::is_session(s) {
            let r = self.inner.commit(t, u, s, state, update);
            let mut st = self.state.lock().unwrap();
            if r.is_ok() && st.holder.is_none() {
                st.holder = Some(me);
                self.changed.notify_all();
            }
            return r;
        }
        if holder == Some(me) {
            self.wait_until(|s| s.released);
            return self.inner.commit(t, u, s, state, update);
        }
        let r = self.inner.commit(t, u, s, state, update);
        self.state.lock().unwrap().released = true;
        self.changed.notify_all();
        r
    }
    fn put_history(
        &self,
        t: &str,
        u: &str,
        h: &stepup_engine::UserHistory,
    ) -> Result<(), stepup_engine::StoreError> {
        self.inner.put_history(t, u, h)
    }
    fn reset_session(&self, t: &str, u: &str, s: &str) -> Result<(), stepup_engine::StoreError> {
        self.inner.reset_session(t, u, s)
    }
}

/// A client's double submit of an `every time` retry (a fleet review: in 5 of 40 such pairs
/// neither was allowed, and the fresh authentication was spent): one request records the
/// authentication and is about to save its completion when the other, deciding on the same
/// state, finds the authentication used. That one waits for the first's commit and decides
/// again on it, rather than superseding the challenge the first completes: exactly one is
/// allowed.
#[test]
fn a_double_submitted_retry_is_allowed_exactly_once() {
    let lineup = Arc::new(DoubleSubmit {
        inner: Arc::new(MemoryStore::new()),
        state: std::sync::Mutex::default(),
        changed: std::sync::Condvar::new(),
    });
    let setup = Setup::on(Arc::clone(&lineup) as Arc<dyn Store>);
    let (s, audit) = setup.stepup();
    let srv = Arc::new(serve(&s, audit));
    establish(&srv, &setup, "s1");
    let body = Some(serde_json::json!({"amount": 1_500}));
    let old = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    assert_eq!(
        call(&srv, "POST", "/pay", &old, &[], body.clone()).status,
        401
    );
    setup.advance(30);
    let fresh = token(setup.now(), "s1", Some("aal3"), &["hwk"], 10);
    lineup.state.lock().unwrap().armed = true;
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (srv, fresh, body) = (Arc::clone(&srv), fresh.clone(), body.clone());
            std::thread::spawn(move || call(&srv, "POST", "/pay", &fresh, &[], body).status)
        })
        .collect();
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort_unstable();
    let st = lineup.state.lock().unwrap();
    assert!(
        st.holder.is_some(),
        "one request recorded the authentication"
    );
    assert!(
        st.released_by_look,
        "the other looked at the session again before saving (it waited)"
    );
    assert_eq!(statuses, [200, 401]);
}

/// Session `s1`, established, asked for a step-up by `POST path` with a password token; the
/// clock then 10 s later.
fn asked_a_step_up_on(path: &str) -> (Setup, Srv) {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let old = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    assert_eq!(call(&srv, "POST", path, &old, &[], None).status, 401);
    setup.advance(10);
    (setup, srv)
}

/// A token whose `auth_time` is a few seconds ahead of our clock (an identity provider's clock
/// ahead, within the leeway) proves its authentication now (an outside check: it completed its
/// challenge and the retry was asked again, until our clock caught up).
#[test]
fn an_authentication_dated_a_little_ahead_counts_as_made_now() {
    let (setup, srv) = asked_a_step_up_on("/email");
    // Authenticated "5 s from now" by the identity provider's clock.
    let ahead = token(setup.now(), "s1", Some("aal2"), &["pwd", "sms"], -5);
    let r = call(&srv, "POST", "/email", &ahead, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // And a sign-in of its own, on a new session.
    let r = call(
        &srv,
        "GET",
        "/view",
        &token(setup.now(), "s2", Some("aal2"), &["pwd", "sms"], -5),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A method the route does not serve is answered 405 before the layer decides, so it spends
/// no `every time` grant and issues no challenge (an outside check: a `GET` of a `POST` route
/// was decided as the operation: it completed the challenge and spent the grant, then the
/// router answered 405, and the real retry was asked again). The layer is applied with
/// `route_layer`, as its documentation says.
#[test]
fn a_method_the_route_does_not_serve_spends_nothing() {
    let (setup, srv) = asked_a_step_up_on("/close");
    let before = srv.audit.records().len();
    let fresh = token(setup.now(), "s1", Some("aal2"), &["pwd", "sms"], 2);
    for _ in 0..2 {
        assert_eq!(call(&srv, "GET", "/close", &fresh, &[], None).status, 405);
    }
    assert_eq!(srv.audit.records().len(), before, "nothing decided");
    assert_eq!(call(&srv, "POST", "/close", &fresh, &[], None).status, 200);
}

/// A token that answers the challenge (authenticated after it was issued) but does not meet
/// it is audited `auth.step_up_failed`, naming the challenge, before the new challenge (SPEC
/// §4.7: anything but a completion is a failure; the stream showed only a new challenge). A
/// token that authenticated before the challenge answers nothing and is not a failure.
#[test]
fn a_token_that_answers_a_challenge_without_meeting_it_is_a_failed_step_up() {
    let setup = Setup::new();
    let (s, audit) = setup.stepup();
    let srv = serve(&s, audit);
    establish(&srv, &setup, "s1");
    let pay = || Some(serde_json::json!({"amount": 5000}));
    let old = token(setup.now(), "s1", Some("aal1"), &["pwd"], 60);
    let r = call(&srv, "POST", "/pay", &old, &[], pay());
    assert_eq!(r.status, 401);
    let first = r.body["challenge_id"].as_str().unwrap().to_string();
    // The same old token again: it answers nothing.
    assert_eq!(call(&srv, "POST", "/pay", &old, &[], pay()).status, 401);
    let names =
        |srv: &Srv| -> Vec<&'static str> { srv.audit.records().iter().map(|r| r.name).collect() };
    assert!(
        !names(&srv).contains(&"auth.step_up_failed"),
        "{:?}",
        names(&srv)
    );
    let latest = srv
        .audit
        .records()
        .last()
        .unwrap()
        .challenge_id
        .clone()
        .unwrap();
    assert_ne!(latest.to_string(), first);
    // A fresh `otp` token (it may be an SMS code: aal2 at best) answers the aal3 challenge.
    setup.advance(10);
    let otp = token(setup.now(), "s1", Some("aal3"), &["pwd", "otp"], 2);
    assert_eq!(call(&srv, "POST", "/pay", &otp, &[], pay()).status, 401);
    let records = srv.audit.records();
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r.name == "auth.step_up_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", names(&srv));
    assert_eq!(failed[0].challenge_id.as_ref(), Some(&latest));
    assert_eq!(failed[0].required_aal, Some(stepup_core::Aal::Aal3));
    assert_eq!(failed[0].policies.to_vec(), ["pay"]);
    assert_eq!(records.last().unwrap().name, "auth.step_up_initiated");
    // Sent again, it answers the new challenge no more (issued after it): no second failure.
    assert_eq!(call(&srv, "POST", "/pay", &otp, &[], pay()).status, 401);
    let failures = srv
        .audit
        .records()
        .iter()
        .filter(|r| r.name == "auth.step_up_failed")
        .count();
    assert_eq!(failures, 1);
}

/// A token that names no usable `amr` completes a `factor any` challenge by its `acr` alone,
/// and is no failure: the audit says `completed`, never `failed` beside it (a review of the
/// failed-attempt record: it judged the token without that rule).
#[test]
fn an_acr_only_completion_is_not_also_a_failed_step_up() {
    let (setup, srv) = asked_a_step_up_on("/email");
    let acr_only = token(setup.now(), "s1", Some("aal2"), &[], 2);
    let r = call(&srv, "POST", "/email", &acr_only, &[], None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let names: Vec<&str> = srv.audit.records().iter().map(|r| r.name).collect();
    assert!(names.contains(&"auth.step_up_completed"), "{names:?}");
    assert!(!names.contains(&"auth.step_up_failed"), "{names:?}");
}
