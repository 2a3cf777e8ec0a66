//! Where audit records go: JSON lines to a file, `tracing`, or memory (tests).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use stepup_engine::AuditRecord;

/// A destination for audit records.
pub trait AuditSink: Send + Sync {
    /// Records one.
    fn record(&self, r: &AuditRecord);
}

/// Appends JSON lines to a file.
pub struct JsonLinesFile(Mutex<std::fs::File>);

impl JsonLinesFile {
    /// Opens (or creates) the file for appending.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(JsonLinesFile(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        )))
    }
}

impl AuditSink for JsonLinesFile {
    fn record(&self, r: &AuditRecord) {
        if let (Ok(line), Ok(mut f)) = (serde_json::to_string(r), self.0.lock())
            && let Err(e) = writeln!(f, "{line}")
        {
            tracing::error!(target: "stepup::audit", "cannot write an audit record: {e}");
        }
    }
}

/// Emits records as `tracing` events (target `stepup::audit`).
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl AuditSink for TracingSink {
    fn record(&self, r: &AuditRecord) {
        tracing::info!(target: "stepup::audit", record = %serde_json::to_string(r).unwrap_or_default());
    }
}

/// Keeps records in memory.
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<AuditRecord>>);

impl MemorySink {
    /// The records so far.
    #[must_use]
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, r: &AuditRecord) {
        if let Ok(mut v) = self.0.lock() {
            v.push(r.clone());
        }
    }
}
