//! Signal computation per store: a sign-in (load history, compute every signal, decide, commit)
//! on the memory, disk (redb) and Redis (loopback) stores. Redis is measured when
//! `redis-server` is installed; the bench starts and stops its own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "benchmarks: a setup failure stops the run"
)]

use std::hint::black_box;
use std::process::{Child, Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::{Context, Engine, Event, Location, MemoryStore, Request, Store};

fn sign_in() -> Request {
    Request {
        tenant: "acme".into(),
        application: "dashboard".into(),
        user: "alice".into(),
        enrolled: [Factor::Password, Factor::Totp]
            .into_iter()
            .collect::<FactorSet>(),
        session: "s".into(),
        event: Event::SignIn {
            context: Context {
                device: Some("laptop-1".into()),
                ip: Some("198.51.100.7".into()),
                country: Some("FR".into()),
                location: Some(Location {
                    lat: 48.85,
                    lon: 2.35,
                }),
                platform_risk: None,
            },
            factors: FactorSet::one(Factor::Password),
        },
        now: Timestamp(stepup_benches::NOW),
    }
}

struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<Redis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Redis(child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

fn signals(c: &mut Criterion) {
    let engine = Engine::load(&[stepup_benches::root().join("rules")]).unwrap();
    let req = sign_in();
    let dir = tempfile::tempdir().unwrap();
    let disk = stepup_store::DiskStore::open(&dir.path().join("h.redb")).unwrap();
    let server = redis();
    let mut stores: Vec<(&str, Box<dyn Store>)> = vec![
        ("memory", Box::new(MemoryStore::new())),
        ("disk", Box::new(disk)),
    ];
    match &server {
        Some(r) => stores.push((
            "redis",
            Box::new(
                stepup_store::RedisStore::new(&format!("redis://127.0.0.1:{}/", r.1)).unwrap(),
            ),
        )),
        None => eprintln!("signals: redis-server not found; the Redis row is skipped"),
    }
    let mut g = c.benchmark_group("signals");
    for (name, store) in &stores {
        // A known device and country, so each sign-in is allowed and commits its history.
        let mut h = stepup_engine::UserHistory::default();
        h.devices.insert("laptop-1".into());
        h.countries
            .insert("FR".into(), Timestamp(stepup_benches::NOW));
        store.put_history("acme", "alice", &h).unwrap();
        g.bench_function(*name, |b| {
            b.iter(|| black_box(engine.process(store.as_ref(), black_box(&req), false)))
        });
    }
    g.finish();
}

criterion_group!(benches, signals);
criterion_main!(benches);
