//! Hot reload: a watcher polls the rules directory; on a change it checks and compiles the new
//! policy set off the request path and swaps it in atomically. A set with errors is refused and
//! logged with its diagnostics; the last good set keeps serving. Threat-feed warnings (lines
//! skipped) are logged for every set that goes live.
//!
//! The status a service shows ([`status_json`]) holds the live hash and counters, never rule
//! text or diagnostics (they hold thresholds); serve it only to callers [`status_allowed`]
//! admits: those with the status token, or, without one, loopback peers.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, header};
use stepup_engine::{CompiledSet, Engine};

/// What the watcher has seen.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Hash of the policy set serving requests.
    pub live: String,
    /// The diagnostics of the last refused set, if the last attempt failed (logged; never shown
    /// by the status endpoint).
    pub last_error: Option<String>,
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads.
    pub refused: u64,
    /// Threat-feed lines skipped in the live set.
    pub feed_warnings: usize,
}

/// The status endpoint's body: the live policy set's hash and the reload counters, without
/// rule text or diagnostics.
#[must_use]
pub fn status_json(s: &ReloadStatus) -> serde_json::Value {
    serde_json::json!({
        "policy_set": s.live,
        "reloads": s.reloads,
        "refused": s.refused,
        "last_reload": if s.last_error.is_some() { "refused (see the service's log)" } else { "ok" },
        "feed_warnings": s.feed_warnings,
    })
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a caller may read the status: with `token` configured, only a request bearing it;
/// without, only a loopback peer (the connection's own address, never a forwarded one) whose
/// request was not forwarded: a request that names a client (`Forwarded`, `X-Forwarded-For`,
/// `X-Real-IP`) came through a proxy on this host, for anyone (a review: behind a local
/// reverse proxy every client looked local).
#[must_use]
pub fn status_allowed(headers: &HeaderMap, peer: Option<IpAddr>, token: Option<&str>) -> bool {
    match token {
        Some(t) => headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, given)| same(given.trim().as_bytes(), t.as_bytes())),
        None => {
            let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
                .iter()
                .any(|h| headers.contains_key(*h));
            !forwarded && peer.is_some_and(|p| p.to_canonical().is_loopback())
        }
    }
}

/// Logs a set's threat-feed warnings (`file:line`).
pub fn log_feed_warnings(set: &CompiledSet) {
    let warnings = &set.feed_warnings;
    for w in warnings.kept() {
        tracing::warn!(target: "stepup::feeds", "{w}");
    }
    if warnings.unlisted() > 0 {
        tracing::warn!(
            target: "stepup::feeds",
            "and {} more malformed threat-feed line(s), skipped",
            warnings.unlisted()
        );
    }
}

fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut v: Vec<_> = stepup_dsl_files(dir)
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).ok();
            let len = m.as_ref().map_or(0, std::fs::Metadata::len);
            let t = m.and_then(|m| m.modified().ok());
            (p, len, t)
        })
        .collect();
    v.sort();
    v
}

fn stepup_dsl_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Watches `dir` every `interval` on a thread of its own and returns the shared status.
pub fn watch(engine: Arc<Engine>, dir: PathBuf, interval: Duration) -> Arc<Mutex<ReloadStatus>> {
    let status = Arc::new(Mutex::new(ReloadStatus {
        live: engine.current().hash().to_string(),
        feed_warnings: engine.current().feed_warnings.len(),
        ..ReloadStatus::default()
    }));
    log_feed_warnings(&engine.current());
    let st = Arc::clone(&status);
    tracing::info!(target: "stepup::reload", "policy set {} live", engine.current().hash());
    // Taken before the thread starts: a change made from now on is seen.
    let mut seen = fingerprint(&dir);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(interval);
            let now = fingerprint(&dir);
            if now == seen {
                continue;
            }
            seen = now;
            match CompiledSet::load(std::slice::from_ref(&dir)) {
                Ok(set) => {
                    let hash = set.hash().to_string();
                    let warnings = set.feed_warnings.len();
                    log_feed_warnings(&set);
                    engine.swap(set);
                    tracing::info!(target: "stepup::reload", "policy set {hash} live");
                    if let Ok(mut s) = st.lock() {
                        s.live = hash;
                        s.last_error = None;
                        s.reloads += 1;
                        s.feed_warnings = warnings;
                    }
                }
                Err(e) => {
                    tracing::error!(target: "stepup::reload", "new rules refused; policy set {} keeps serving:\n{e}", engine.current().hash());
                    if let Ok(mut s) = st.lock() {
                        s.last_error = Some(e.to_string());
                        s.refused += 1;
                    }
                }
            }
        }
    });
    status
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_status_is_for_loopback_or_the_token_bearer() {
        let mut h = HeaderMap::new();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let far: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(status_allowed(&h, Some(lo), None));
        assert!(status_allowed(
            &h,
            Some("::ffff:127.0.0.1".parse().unwrap()),
            None
        ));
        assert!(!status_allowed(&h, Some(far), None));
        // Forwarded by a proxy on this host: not a local caller.
        for name in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            let mut fwd = HeaderMap::new();
            fwd.insert(name, "198.51.100.9".parse().unwrap());
            assert!(!status_allowed(&fwd, Some(lo), None), "{name}");
        }
        assert!(!status_allowed(&h, None, None));
        assert!(
            !status_allowed(&h, Some(lo), Some("tok")),
            "loopback is not enough"
        );
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert!(status_allowed(&h, Some(far), Some("tok")));
        h.insert(header::AUTHORIZATION, "Bearer to".parse().unwrap());
        assert!(!status_allowed(&h, Some(far), Some("tok")));
        let s = ReloadStatus {
            live: "abc".into(),
            last_error: Some("acme.policy:3: unknown factor `totpp`".into()),
            refused: 1,
            ..ReloadStatus::default()
        };
        let text = status_json(&s).to_string();
        assert!(
            !text.contains("totpp") && !text.contains("acme.policy"),
            "{text}"
        );
    }
}
