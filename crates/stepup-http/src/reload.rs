//! Hot reload: a watcher polls the rules directory; on a change it checks and compiles the new
//! policy set off the request path and swaps it in atomically. A set with errors is refused and
//! logged with its diagnostics; the last good set keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use stepup_engine::{CompiledSet, Engine};

/// What the watcher has seen.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Hash of the policy set serving requests.
    pub live: String,
    /// The diagnostics of the last refused set, if the last attempt failed.
    pub last_error: Option<String>,
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads.
    pub refused: u64,
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
        ..ReloadStatus::default()
    }));
    let st = Arc::clone(&status);
    tracing::info!(target: "stepup::reload", "policy set {} live", engine.current().hash());
    std::thread::spawn(move || {
        let mut seen = fingerprint(&dir);
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
                    engine.swap(set);
                    tracing::info!(target: "stepup::reload", "policy set {hash} live");
                    if let Ok(mut s) = st.lock() {
                        s.live = hash;
                        s.last_error = None;
                        s.reloads += 1;
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
