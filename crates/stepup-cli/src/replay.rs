//! `stepup replay`: scenario files through the engine, on the embedded store by default.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use stepup_engine::{Engine, MemoryStore, Store};
use stepup_replay::output::AuditDetail;
use stepup_replay::{FileReport, output, stats};

use crate::{Format, color};

/// Where replay keeps history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// In memory: nothing is kept after the run.
    Memory,
    /// The embedded on-disk store (redb), the default.
    Disk,
}

/// How much of each audit record `--format json` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditArg {
    /// `audit`: the records' names, in order.
    Names,
    /// `audit` and `audit_records`: the complete records (at, tenant, application, user, session,
    /// event, challenge id, policies, required AAL, factor, risk, message, errors, policy-set
    /// hash), in order.
    Full,
}

/// Options of `stepup replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Scenario files (`.ron`) or directories of them.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// The rules directory.
    #[arg(long, default_value = "rules")]
    pub rules: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Audit records in `--format json` output: `names` keeps the `audit` array of record names;
    /// `full` adds `audit_records`, the complete records, beside it. Other formats show names only.
    #[arg(long, value_enum, default_value = "names", value_name = "DETAIL")]
    pub audit: AuditArg,
    /// Show the engine's explanation under each event.
    #[arg(long)]
    pub explain: bool,
    /// Check the expectations written in the scenarios; exit 1 on any mismatch.
    #[arg(long)]
    pub expect: bool,
    /// Print friction statistics: prompts per user per day, by policy, completion rate, refusals.
    #[arg(long)]
    pub stats: bool,
    /// Where history is kept during the replay.
    #[arg(long, value_enum, default_value = "disk")]
    pub store: StoreKind,
    /// The disk store's file. Without it, the replay's own file in a new temporary directory,
    /// removed when the replay ends: replays run at once neither share nor wait on one file,
    /// and a directory that cannot be written is no obstacle.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Append every decision to this decision log (JSON lines: each decision with what is
    /// needed to make it again; see docs/decision-log.md), for `stepup backtest`.
    #[arg(long, value_name = "PATH")]
    pub decision_log: Option<PathBuf>,
    /// Pseudonymise user, session, device and challenge ids in the decision log with a keyed hash
    /// (HMAC-SHA256) whose key is read from this file (at least 16 bytes).
    #[arg(long, value_name = "FILE", requires = "decision_log")]
    pub pseudonymize_key_file: Option<PathBuf>,
    /// A MaxMind GeoIP2/GeoLite2 City or Country database (`.mmdb`): events that give an `ip`
    /// but no `country` or `location` get them from it. An address it does not hold stays
    /// unknown, and the signals that need it fail closed.
    #[arg(long, value_name = "FILE")]
    pub geoip: Option<PathBuf>,
}

/// The decision-log writer `--decision-log` asks for.
fn log_writer(a: &ReplayArgs) -> Result<Option<stepup_decisionlog::Writer>, String> {
    let Some(path) = &a.decision_log else {
        return Ok(None);
    };
    let pseudo = match &a.pseudonymize_key_file {
        Some(f) => {
            let key = stepup_core::read_bounded(f, 64 * 1024)
                .map_err(|e| format!("cannot read the key file `{}`: {e}", f.display()))?;
            let key = key.trim_ascii();
            Some(stepup_decisionlog::Pseudonymizer::new(key)?)
        }
        None => None,
    };
    stepup_decisionlog::Writer::open(path, stepup_decisionlog::Rotation::never(), pseudo)
        .map(Some)
        .map_err(|e| format!("cannot open the decision log `{}`: {e}", path.display()))
}

fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            // Searched recursively, as `check` searches rules: a scenario in a subdirectory is
            // never skipped.
            let v = stepup_dsl::files_under(p, "ron")
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
            out.extend(v);
            // A scenario skipped for a typo in its name is a test that never runs: named.
            for f in stepup_dsl::near_misses(p, "ron")
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?
            {
                eprintln!(
                    "warning: `{}` is not replayed: its name does not end in `.ron`",
                    f.display()
                );
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("`{}` does not exist", p.display()));
        }
    }
    Ok(out)
}

/// Most bytes read from one scenario file.
const MAX_SCENARIO_BYTES: u64 = 4 * 1024 * 1024;

/// Why a scenario file was not read: it could not be (an I/O error, exit 2, as `check` exits
/// for one), or what it holds is no scenario's text (too large, not UTF-8: the file is wrong,
/// exit 1, as for a scenario that does not parse).
enum Unreadable {
    Io(String),
    Content(String),
}

fn read(path: &Path) -> Result<String, Unreadable> {
    let len = std::fs::metadata(path)
        .map_err(|e| Unreadable::Io(format!("{}: {e}", path.display())))?
        .len();
    if len > MAX_SCENARIO_BYTES {
        return Err(Unreadable::Content(format!(
            "{}: the file is too large ({len} bytes; the limit is 4 MiB)",
            path.display()
        )));
    }
    // Read through the limit too, and only a regular file: a pipe nothing writes to was
    // waited on forever, a device (`/dev/zero`) never ends (reviews).
    let bytes = stepup_core::read_regular_bounded(path, MAX_SCENARIO_BYTES).map_err(|e| {
        let text = format!("{}: {e}", path.display());
        if e.kind() == std::io::ErrorKind::Other && e.to_string().contains("too large") {
            Unreadable::Content(text)
        } else {
            Unreadable::Io(text)
        }
    })?;
    String::from_utf8(bytes).map_err(|e| {
        Unreadable::Content(format!(
            "{}: not valid UTF-8 (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Runs `stepup replay`.
pub fn replay(a: &ReplayArgs, out: &mut dyn Write) -> u8 {
    let engine = match Engine::load(std::slice::from_ref(&a.rules)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "error: cannot load the rules in `{}`: {e}",
                a.rules.display()
            );
            return 2;
        }
    };
    let warnings = &engine.current().feed_warnings;
    for w in warnings.kept() {
        eprintln!("warning: {w}");
    }
    if warnings.unlisted() > 0 {
        eprintln!(
            "warning: and {} more malformed threat-feed line(s), skipped",
            warnings.unlisted()
        );
    }
    // A rules file skipped for a typo in its name (S011) guards nothing in this replay either.
    for f in stepup_dsl::near_misses(&a.rules, "policy").unwrap_or_default() {
        eprintln!(
            "warning: `{}` is not read: its name does not end in `.policy`",
            f.display()
        );
    }
    let files = match scenario_files(&a.scenarios) {
        Ok(f) if f.is_empty() => {
            eprintln!(
                "error: no `.ron` scenario files in {}",
                a.scenarios
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return 2;
        }
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    // Declared before the store, so it is removed after the store is closed.
    let mut scratch: Option<tempfile::TempDir> = None;
    let store: Box<dyn Store> = match a.store {
        StoreKind::Memory => Box::new(MemoryStore::new()),
        StoreKind::Disk => {
            let path = match &a.db {
                Some(path) => path.clone(),
                None => match tempfile::Builder::new().prefix("stepup-replay-").tempdir() {
                    Ok(dir) => scratch.insert(dir).path().join("replay.redb"),
                    Err(e) => {
                        eprintln!(
                            "error: cannot make a temporary directory for the replay's history store: {e}\n  = help: name its file with `--db PATH`, or keep history in memory with `--store memory`"
                        );
                        return 2;
                    }
                },
            };
            match stepup_store::DiskStore::open(&path) {
                Ok(s) => Box::new(s),
                Err(e) => {
                    eprintln!("error: {e}");
                    if a.db.is_some() {
                        eprintln!(
                            "  = help: `{}` may be in use by another replay or service: give each its own file, or leave out `--db` (a replay then keeps its own)",
                            path.display()
                        );
                    }
                    return 2;
                }
            }
        }
    };
    let progress = (files.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(files.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    if a.audit == AuditArg::Full && a.format != Format::Json {
        eprintln!("warning: `--audit full` applies to `--format json`; the table shows no records");
    }
    let detail = match a.audit {
        AuditArg::Names => AuditDetail::Names,
        AuditArg::Full => AuditDetail::Full,
    };
    let mut log = match log_writer(a) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let geoip = match a
        .geoip
        .as_deref()
        .map(stepup_geoip::GeoIp::open)
        .transpose()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: --geoip: {e}");
            return 2;
        }
    };
    let mut log_error: Option<String> = None;
    let c = color(a.format);
    let set = engine.current();
    let (mut reports, mut bad, mut mismatched) = (Vec::<FileReport>::new(), 0usize, 0usize);
    let mut untested = 0usize;
    // Files that could not be read (not files that were read and are no scenario).
    let mut io_errors = 0usize;
    for f in &files {
        let name = f.display().to_string();
        if let Some(pb) = &progress {
            pb.set_message(name.clone());
        }
        let result = match read(f) {
            Ok(text) => Ok(text),
            Err(Unreadable::Io(e)) => {
                io_errors += 1;
                Err(e)
            }
            Err(Unreadable::Content(e)) => Err(e),
        }
        .and_then(|text| {
            let loaded = stepup_replay::load(&name, &text, &set).map_err(|e| e.to_string())?;
            for w in &loaded.warnings {
                eprintln!("{}", w.as_warning());
            }
            let logging = log.is_some();
            let mut write = |req: &stepup_engine::Request,
                             state: Option<&stepup_engine::State>,
                             d: &stepup_engine::Decision| {
                if let Some(w) = log.as_mut()
                    && let Err(e) = w.write(req, state, d)
                    && log_error.is_none()
                {
                    log_error = Some(e.to_string());
                }
            };
            let options = stepup_replay::Options {
                observe: if logging { Some(&mut write) } else { None },
                geoip: geoip.as_ref(),
            };
            stepup_replay::replay_in(&loaded, &engine, store.as_ref(), options)
                .map_err(|e| e.to_string())
        });
        // A file's output is printed whole, or not at all.
        let text = match result {
            Ok(r) => {
                let n = r.events.iter().filter(|e| !e.mismatches.is_empty()).count();
                // A regression test that checks nothing passes whatever the rules do: under
                // `--expect`, a file without events, or whose events expect nothing, is named in
                // a warning (it has no mismatch: SPEC §7's scenario, written without
                // expectations, is accepted as written).
                let checks: usize = r
                    .events
                    .iter()
                    .filter_map(|e| e.expect.as_ref())
                    .map(stepup_replay::scenario::Expect::checks)
                    .sum();
                let vacuous = a.expect && checks == 0;
                if a.expect && n > 0 {
                    mismatched += 1;
                }
                if vacuous {
                    untested += 1;
                    let warning = format!(
                        "warning: `{name}` tests nothing: {} event(s), none with an `expect` that checks something\n  = help: write what each event should decide, e.g. `expect: (decision: step_up, required_aal: aal2)`",
                        r.events.len()
                    );
                    match &progress {
                        Some(pb) => pb.suspend(|| eprintln!("{warning}")),
                        None => eprintln!("{warning}"),
                    }
                }
                let t = match a.format {
                    Format::Json => r
                        .events
                        .iter()
                        .map(|e| {
                            let mut v = output::event_json_with(&r, e, detail);
                            // `--explain`: each policy (fired or not, why, its predicates'
                            // values), the merge and the notes, as the table shows them.
                            if a.explain
                                && let Some(o) = v.as_object_mut()
                            {
                                o.insert(
                                    "explanation".into(),
                                    serde_json::to_value(&e.decision.trace)
                                        .unwrap_or(serde_json::Value::Null),
                                );
                            }
                            format!("{v}\n")
                        })
                        .collect(),
                    _ => {
                        let mut t = output::table(&r, c, a.explain, a.expect);
                        if a.expect {
                            t.push_str(&if vacuous {
                                format!(
                                    "  expectations: none checked ({} event(s), none with an \
                                     `expect` that checks something): this file tests nothing\n",
                                    r.events.len()
                                )
                            } else if n == 0 {
                                format!("  expectations: all met ({checks} checked)\n")
                            } else {
                                format!("  expectations: {n} event(s) differ\n")
                            });
                        }
                        t.push('\n');
                        t
                    }
                };
                reports.push(r);
                t
            }
            Err(e) => {
                bad += 1;
                eprintln!("error: {e}");
                String::new()
            }
        };
        match &progress {
            Some(pb) => pb.suspend(|| {
                let _ = out.write_all(text.as_bytes());
            }),
            None => {
                let _ = out.write_all(text.as_bytes());
            }
        }
        if let Some(pb) = &progress {
            pb.inc(1);
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if let Some(w) = log.as_mut()
        && let Err(e) = w.flush()
        && log_error.is_none()
    {
        log_error = Some(e.to_string());
    }
    if let (Some(e), Some(w)) = (&log_error, &log) {
        eprintln!(
            "error: cannot write the decision log `{}`: {e}",
            w.path().display()
        );
        return 2;
    }
    if a.stats {
        let s = stats::compute(&reports);
        let _ = match a.format {
            Format::Json => writeln!(out, "{}", serde_json::json!({ "stats": s })),
            _ => write!(out, "{}", stats::render(&s)),
        };
    }
    if a.format != Format::Json {
        let mut summary = format!(
            "replayed {} of {} scenario file(s)",
            reports.len(),
            files.len()
        );
        if a.expect {
            summary.push_str(&format!("; {mismatched} with mismatched expectations"));
            if untested > 0 {
                summary.push_str(&format!("; {untested} checking nothing"));
            }
        }
        if bad > 0 {
            summary.push_str(&format!("; {bad} could not be replayed"));
        }
        let _ = writeln!(out, "{summary}");
    }
    if let Some(w) = &log {
        // After the output, so that a terminal shows it last.
        let _ = out.flush();
        eprintln!("wrote {} decision(s) to {}", w.lines(), w.path().display());
    }
    if io_errors > 0 {
        2
    } else {
        u8::from(bad > 0 || mismatched > 0)
    }
}
