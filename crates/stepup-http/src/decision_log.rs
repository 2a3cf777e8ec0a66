//! The layer's decision log (SPEC §12): one JSON line per decision, in the format of
//! `stepup_decisionlog` (docs/decision-log.md), with everything needed to decide it again
//! (`stepup backtest`). The log is an audit aid, not the decision: a line that cannot be written
//! is logged with `tracing` and counted, and the decision stands.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use stepup_decisionlog::{Pseudonymizer, Rotation, Writer};
use stepup_engine::{Decision, Request, State};

/// Default largest size of one decision-log file before it is rotated: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Rotated files kept (`log.1` … `log.8`).
pub const KEEP: usize = 8;

/// A decision log shared by every route of a service.
#[derive(Debug)]
pub struct DecisionLog {
    writer: Mutex<Writer>,
    errors: AtomicU64,
}

impl DecisionLog {
    /// Appends to `path` (created with its directory), rotating it past `max_bytes` and keeping
    /// [`KEEP`] rotated files; user, session and device ids are pseudonymised with `pseudo`.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(
        path: &Path,
        max_bytes: u64,
        pseudo: Option<Pseudonymizer>,
    ) -> std::io::Result<Self> {
        let rotation = Rotation {
            max_bytes: Some(max_bytes),
            keep: KEEP,
        };
        Ok(DecisionLog {
            writer: Mutex::new(Writer::open(path, rotation, pseudo)?),
            errors: AtomicU64::new(0),
        })
    }

    /// Like [`DecisionLog::open`], with the pseudonymisation key (HMAC-SHA256, at least 16
    /// bytes, surrounding whitespace ignored) read from `key_file`, as `stepup replay
    /// --pseudonymize-key-file` reads it.
    ///
    /// # Errors
    /// When the key file cannot be read or the key is too short, or the log cannot be opened.
    pub fn open_with_key_file(
        path: &Path,
        max_bytes: u64,
        key_file: Option<&Path>,
    ) -> Result<Self, String> {
        let pseudo = match key_file {
            Some(f) => {
                let key = stepup_core::read_bounded(f, 64 * 1024)
                    .map_err(|e| format!("cannot read the key file `{}`: {e}", f.display()))?;
                Some(Pseudonymizer::new(key.trim_ascii())?)
            }
            None => None,
        };
        Self::open(path, max_bytes, pseudo)
            .map_err(|e| format!("cannot open the decision log `{}`: {e}", path.display()))
    }

    /// Logs one decision made on `req` against `state` (`None`: the store could not be read)
    /// and flushes it. A failure is logged and counted, never returned.
    pub fn write(&self, req: &Request, state: Option<&State>, d: &Decision) {
        let mut w = match self.writer.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = w.write(req, state, d).and_then(|()| w.flush()) {
            let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                path = %w.path().display(),
                errors = n,
                "cannot write the decision log: {e}; the decision stands"
            );
        }
    }

    /// Lines that could not be written.
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Lines written.
    #[must_use]
    pub fn lines(&self) -> u64 {
        match self.writer.lock() {
            Ok(w) => w.lines(),
            Err(poisoned) => poisoned.into_inner().lines(),
        }
    }
}
