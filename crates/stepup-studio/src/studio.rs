//! The studio's state and what it does, apart from any UI: load a workspace, edit and recompile
//! rules (the last good compile is kept while an edit is broken), replay scenarios, explain,
//! what-if, compare two policy versions, open a decision log as a corpus (backtested with the
//! current rules), filter audit records. Panels only read this and send
//! [`Command`]s; every decision comes from the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stepup_core::{Factor, Timestamp};
use stepup_decisionlog::{Backtest, BacktestReport};
use stepup_engine::{AuditRecord, CompiledSet, Engine, LoadError, MemoryStore};
use stepup_replay::run::Loaded;
use stepup_replay::scenario::EventSpec;
use stepup_replay::stats::{self, Stats};
use stepup_replay::{EventResult, FileReport};

/// One policy file in the editor.
#[derive(Debug, Clone)]
pub struct RulesFile {
    /// Path on disk.
    pub path: PathBuf,
    /// The editor's buffer.
    pub text: String,
    /// What is on disk.
    pub saved: String,
    /// The file's bytes, when they are not text (the buffer shows them lossily): checked as
    /// they are until the buffer is edited, so the diagnostic is the checker's (E021, not
    /// valid UTF-8), not one of the lossy text's.
    pub raw: Option<Vec<u8>>,
    /// Why the file could not be read, if it could not: until its buffer is edited, the rules
    /// do not compile (as `stepup check` refuses them), rather than compile without it.
    pub unreadable: Option<String>,
}

/// A diagnostic, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagView {
    /// File.
    pub file: String,
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Code.
    pub code: &'static str,
    /// One-line summary (`file:line:col: error[E002]: message`).
    pub summary: String,
    /// The full rendering (underline and help).
    pub rendered: String,
    /// What to do about it, if the diagnostic says.
    pub help: Option<String>,
    /// Byte range in the file.
    pub span: (usize, usize),
}

/// A scenario file.
#[derive(Debug, Clone)]
pub struct ScenarioEntry {
    /// Path.
    pub path: PathBuf,
    /// Text.
    pub text: String,
    /// Why the file could not be read as text, if it could not (its replay is this error).
    pub unreadable: Option<String>,
}

impl ScenarioEntry {
    /// The file's name, as reports show it.
    #[must_use]
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || "scenario".to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Loads it against a policy set.
    ///
    /// # Errors
    /// The scenario's input error, located.
    pub fn load(&self, set: &CompiledSet) -> Result<Loaded, String> {
        if let Some(why) = &self.unreadable {
            return Err(format!("{}: {why}", self.name()));
        }
        stepup_replay::load(&self.name(), &self.text, set).map_err(|e| e.to_string())
    }
}

/// Changes to the selected event, applied on a copy of the scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhatIf {
    /// Platform risk score (sign-ins).
    pub risk: String,
    /// Country (sign-ins).
    pub country: String,
    /// Device (sign-ins).
    pub device: String,
    /// Seconds added to this event and the ones after it.
    pub time_offset_s: String,
    /// The `amount` attribute (operations).
    pub amount: String,
    /// The factor used (step-ups).
    pub factor: String,
}

impl WhatIf {
    /// Whether nothing is changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == WhatIf::default()
    }
}

/// Two policy versions over the scenario corpus.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// What A is.
    pub label_a: String,
    /// What B is.
    pub label_b: String,
    /// Events whose decision changes.
    pub changes: Vec<Change>,
    /// Friction under A.
    pub stats_a: Stats,
    /// Friction under B.
    pub stats_b: Stats,
    /// Why the comparison could not run.
    pub error: Option<String>,
}

/// One changed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Scenario file name.
    pub scenario: String,
    /// Event index.
    pub index: usize,
    /// Event.
    pub event: String,
    /// Decision under A.
    pub before: String,
    /// Decision under B.
    pub after: String,
}

/// A decision log opened as a corpus: its traffic decided again with the current rules (the
/// last good compile) and compared with other rules or with the decisions it recorded.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The log.
    pub path: PathBuf,
    /// The rules it is compared with (`None`: the recorded decisions).
    pub compare: Option<PathBuf>,
    /// The backtest, or why it could not run.
    pub report: Result<BacktestReport, String>,
}

impl Corpus {
    /// What the current rules are compared with, in words.
    #[must_use]
    pub fn compared_label(&self) -> String {
        self.compare.as_ref().map_or_else(
            || "recorded decisions".to_string(),
            |d| d.display().to_string(),
        )
    }
}

/// The audit view's filter (empty: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Record name contains.
    pub name: String,
    /// A policy named contains.
    pub policy: String,
    /// User contains.
    pub user: String,
}

/// Which versions to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareWith {
    /// The files on disk (A) against the editor's buffers (B).
    DiskVsEditor,
    /// The workspace's rules directory (A) against another directory (B).
    Directory(PathBuf),
}

/// Everything the UI can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a workspace: rules and scenarios directories.
    OpenWorkspace(PathBuf, PathBuf),
    /// Show a rules file in the editor.
    SelectFile(usize),
    /// The editor's buffer changed.
    Edit(String),
    /// Format the current file's buffer.
    Format,
    /// Save every changed buffer.
    Save,
    /// Select a scenario.
    SelectScenario(usize),
    /// Select an event of the scenario.
    SelectEvent(usize),
    /// Move the selection by this many events.
    Step(isize),
    /// Start or stop playing the timeline.
    TogglePlay,
    /// Change the what-if.
    SetWhatIf(WhatIf),
    /// Run a comparison.
    Compare(CompareWith),
    /// Change the audit filter.
    SetAuditFilter(AuditFilter),
    /// Open a decision log as a corpus, compared with the rules of a directory or (`None`)
    /// with the decisions it recorded.
    OpenDecisionLog {
        /// The log.
        log: PathBuf,
        /// The rules to compare with.
        compare: Option<PathBuf>,
    },
}

/// The studio.
pub struct Studio {
    /// Rules directory.
    pub rules_dir: PathBuf,
    /// Scenarios directory.
    pub scenarios_dir: PathBuf,
    /// Rules files.
    pub files: Vec<RulesFile>,
    /// The file in the editor.
    pub selected_file: usize,
    /// Diagnostics of the buffers.
    pub diagnostics: Vec<DiagView>,
    /// The last good compile.
    pub engine: Option<Arc<Engine>>,
    /// Whether the buffers currently have errors (the last good compile keeps serving).
    pub broken: bool,
    /// Scenarios.
    pub scenarios: Vec<ScenarioEntry>,
    /// Selected scenario.
    pub selected_scenario: usize,
    /// Selected event.
    pub selected_event: usize,
    /// Replay of every scenario with the last good compile.
    pub reports: Vec<Result<FileReport, String>>,
    /// The what-if.
    pub what_if: WhatIf,
    /// The selected event replayed with the what-if.
    pub what_if_result: Option<Result<EventResult, String>>,
    /// The last comparison.
    pub comparison: Option<Comparison>,
    /// The audit filter.
    pub audit_filter: AuditFilter,
    /// The decision log opened as a corpus, backtested again whenever the rules recompile.
    pub corpus: Option<Corpus>,
    /// Playing the timeline.
    pub playing: bool,
    /// Delay between an edit and its recompile.
    pub debounce: Duration,
    /// A line for the status bar.
    pub status: String,
    dirty_since: Option<Instant>,
    last_step: Option<Instant>,
    /// When the last edit was made, how long the last compile took, and how many times the
    /// buffers were compiled.
    last_edit: Option<Instant>,
    last_compile_took: Duration,
    compiles: u64,
}

fn read_dir_sorted(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn compile_sources(sources: &[stepup_dsl::Source]) -> (Result<Arc<Engine>, String>, Vec<DiagView>) {
    let loaded = stepup_dsl::load_sources(sources);
    let diags = loaded
        .diagnostics
        .iter()
        .map(|d| {
            let (line, col) = d.location();
            let sev = if d.is_error() { "error" } else { "warning" };
            DiagView {
                file: d.file.name.clone(),
                severity: sev,
                code: d.code,
                summary: format!(
                    "{}:{line}:{col}: {sev}[{}]: {}",
                    d.file.name, d.code, d.message
                ),
                rendered: d.render(false),
                help: d.help.clone(),
                span: (d.span.start, d.span.end),
            }
        })
        .collect();
    let engine = CompiledSet::from_loaded(loaded)
        .map(|c| Arc::new(Engine::new(c)))
        .map_err(|e| match e {
            LoadError::Rules(l) => format!("{} error(s)", l.error_count()),
            other => other.to_string(),
        });
    (engine, diags)
}

impl Studio {
    /// A studio on a workspace.
    #[must_use]
    pub fn open(rules_dir: &Path, scenarios_dir: &Path) -> Self {
        let mut s = Studio {
            rules_dir: PathBuf::new(),
            scenarios_dir: PathBuf::new(),
            files: Vec::new(),
            selected_file: 0,
            diagnostics: Vec::new(),
            engine: None,
            broken: false,
            scenarios: Vec::new(),
            selected_scenario: 0,
            selected_event: 0,
            reports: Vec::new(),
            what_if: WhatIf::default(),
            what_if_result: None,
            comparison: None,
            audit_filter: AuditFilter::default(),
            corpus: None,
            playing: false,
            debounce: Duration::from_millis(300),
            status: String::new(),
            dirty_since: None,
            last_step: None,
            last_edit: None,
            last_compile_took: Duration::ZERO,
            compiles: 0,
        };
        s.load_workspace(rules_dir, scenarios_dir);
        s
    }

    fn load_workspace(&mut self, rules_dir: &Path, scenarios_dir: &Path) {
        self.rules_dir = rules_dir.to_path_buf();
        self.scenarios_dir = scenarios_dir.to_path_buf();
        self.files = stepup_dsl::policy_files(rules_dir)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                // No more than a rules file may hold, and only a regular file (a pipe would stop
                // the studio; a device never ends).
                let (bytes, unreadable) = match stepup_core::read_regular_bounded(
                    &p,
                    stepup_dsl::syntax::MAX_FILE_BYTES as u64,
                ) {
                    Ok(bytes) => (bytes, None),
                    Err(e) => (
                        Vec::new(),
                        Some(format!("cannot read `{}`: {e}", p.display())),
                    ),
                };
                let (text, raw) = match String::from_utf8(bytes) {
                    Ok(text) => (text, None),
                    Err(e) => (
                        String::from_utf8_lossy(e.as_bytes()).into_owned(),
                        Some(e.into_bytes()),
                    ),
                };
                RulesFile {
                    path: p,
                    saved: text.clone(),
                    text,
                    raw,
                    unreadable,
                }
            })
            .collect();
        self.scenarios = read_dir_sorted(scenarios_dir, "ron")
            .into_iter()
            .map(|p| {
                let (text, unreadable) =
                    match stepup_core::read_regular_bounded(&p, 4 * 1024 * 1024) {
                        Ok(bytes) => match String::from_utf8(bytes) {
                            Ok(text) => (text, None),
                            Err(e) => (
                                String::new(),
                                Some(format!(
                                    "the file is not valid UTF-8 (at byte {})",
                                    e.utf8_error().valid_up_to()
                                )),
                            ),
                        },
                        Err(e) => (String::new(), Some(format!("cannot read the file: {e}"))),
                    };
                ScenarioEntry {
                    text,
                    path: p,
                    unreadable,
                }
            })
            .collect();
        self.selected_file = 0;
        self.selected_scenario = 0;
        self.selected_event = 0;
        self.engine = None;
        self.what_if = WhatIf::default();
        self.comparison = None;
        self.recompile();
        // What the compile found wrong stays in the status, after what was loaded.
        let why = self.broken.then(|| std::mem::take(&mut self.status));
        self.status = format!(
            "{} rules file(s), {} scenario(s)",
            self.files.len(),
            self.scenarios.len()
        );
        if let Some(why) = why {
            self.status = format!("{}: {why}", self.status);
        }
    }

    fn sources(&self) -> Vec<stepup_dsl::Source> {
        self.files
            .iter()
            .map(|f| stepup_dsl::Source {
                name: f.path.display().to_string(),
                bytes: match &f.raw {
                    Some(raw) if f.text == f.saved => raw.clone(),
                    _ => f.text.as_bytes().to_vec(),
                },
                base_dir: stepup_dsl::resolved_dir(&f.path).0,
            })
            .collect()
    }

    /// Recompiles the buffers now. A broken edit keeps the last good compile.
    pub fn recompile(&mut self) {
        let started = Instant::now();
        // A rules file that could not be read (and is not edited since) leaves the rules
        // incomplete: they are not compiled without it.
        if let Some(why) = self
            .files
            .iter()
            .filter(|f| f.text == f.saved)
            .find_map(|f| f.unreadable.clone())
        {
            self.broken = true;
            self.status = format!("{why}; the rules are not compiled without it");
            self.dirty_since = None;
            self.compiles += 1;
            return;
        }
        let (engine, diags) = compile_sources(&self.sources());
        self.diagnostics = diags;
        match engine {
            Ok(e) => {
                self.engine = Some(e);
                self.broken = false;
                self.replay_all();
                if let Some(c) = self.corpus.take() {
                    self.open_corpus(c.path, c.compare);
                }
            }
            Err(why) => {
                self.broken = true;
                self.status =
                    format!("the editor's rules have {why}; showing the last good compile");
            }
        }
        self.dirty_since = None;
        self.last_compile_took = started.elapsed();
        self.compiles += 1;
    }

    /// How many times the buffers were compiled (a view repaints when it moves).
    #[must_use]
    pub fn compiles(&self) -> u64 {
        self.compiles
    }

    fn replay_all(&mut self) {
        let Some(engine) = &self.engine else { return };
        let set = engine.current();
        self.reports = self
            .scenarios
            .iter()
            .map(|s| {
                let loaded = s.load(&set)?;
                stepup_replay::replay(&loaded, engine, &MemoryStore::new())
                    .map_err(|e| e.to_string())
            })
            .collect();
        self.run_what_if();
    }

    /// The selected scenario's replay.
    #[must_use]
    pub fn report(&self) -> Option<&Result<FileReport, String>> {
        self.reports.get(self.selected_scenario)
    }

    /// What the session proves just after event `e` of the selected scenario: the session an
    /// allowed event leaves (a sign-in's, a completed step-up's: its authentication events under
    /// the tenant's strengths), else what it proved before.
    #[must_use]
    pub fn aal_after(&self, e: &EventResult) -> Option<stepup_core::Aal> {
        let d = &e.decision;
        let (Some(session), true) = (&d.effects.session, d.succeeded()) else {
            return d.session_aal;
        };
        let Some(Ok(r)) = self.report() else {
            return d.session_aal;
        };
        let strengths = self
            .engine
            .as_ref()
            .and_then(|en| {
                en.current()
                    .model
                    .tenants
                    .get(&r.scope.0)
                    .map(|t| t.strengths)
            })
            .unwrap_or_default();
        session.aal(&strengths)
    }

    /// The selected event's result.
    #[must_use]
    pub fn event(&self) -> Option<&EventResult> {
        match self.report() {
            Some(Ok(r)) => r.events.get(self.selected_event),
            _ => None,
        }
    }

    fn event_count(&self) -> usize {
        match self.report() {
            Some(Ok(r)) => r.events.len(),
            _ => 0,
        }
    }

    fn run_what_if(&mut self) {
        self.what_if_result = None;
        if self.what_if.is_empty() {
            return;
        }
        let (Some(engine), Some(entry)) =
            (&self.engine, self.scenarios.get(self.selected_scenario))
        else {
            return;
        };
        let set = engine.current();
        let result = (|| -> Result<EventResult, String> {
            let mut l: Loaded = entry.load(&set)?;
            apply_what_if(&mut l, self.selected_event, &self.what_if)?;
            let r = stepup_replay::replay_with(&l, engine, &MemoryStore::new(), false)
                .map_err(|e| e.to_string())?;
            r.events
                .get(self.selected_event)
                .cloned()
                .ok_or_else(|| "no such event".to_string())
        })();
        self.what_if_result = Some(result);
    }

    /// Audit records of every replayed scenario that pass the filter, with their scenario.
    #[must_use]
    pub fn audit(&self) -> Vec<(&str, &AuditRecord)> {
        let f = &self.audit_filter;
        let mut out = Vec::new();
        for r in self.reports.iter().flatten() {
            for e in &r.events {
                for a in &e.decision.audit {
                    let ok = a.name.contains(f.name.trim())
                        && (f.policy.trim().is_empty()
                            || a.policies.iter().any(|p| p.contains(f.policy.trim())))
                        && a.user.contains(f.user.trim());
                    if ok {
                        out.push((r.file.as_str(), a));
                    }
                }
            }
        }
        out
    }

    /// Applies one command.
    pub fn apply(&mut self, c: Command) {
        match c {
            Command::OpenWorkspace(r, s) => self.load_workspace(&r, &s),
            Command::SelectFile(i) => {
                if i < self.files.len() {
                    self.selected_file = i;
                }
            }
            Command::Edit(text) => {
                if let Some(f) = self.files.get_mut(self.selected_file)
                    && f.text != text
                {
                    f.text = text;
                    // The first edit after a pause in typing is checked at once (its
                    // diagnostics show in the next frame) when checking is quick; edits that
                    // follow within the debounce, or any edit of rules slow to check (a large
                    // file: a review counted 18 compiles in 20 keystrokes), wait for typing to
                    // pause.
                    let now = Instant::now();
                    let paused = self.dirty_since.is_none()
                        && self
                            .last_edit
                            .is_none_or(|t| now.duration_since(t) >= self.debounce);
                    let quick = self.checks_at_once();
                    self.last_edit = Some(now);
                    if paused && quick {
                        self.recompile();
                    } else {
                        self.dirty_since = Some(now);
                    }
                }
            }
            Command::Format => {
                if let Some(f) = self.files.get_mut(self.selected_file) {
                    match stepup_dsl::format_text(&f.path.display().to_string(), &f.text) {
                        Ok(t) => {
                            f.text = t;
                            self.status = "formatted".into();
                            self.recompile();
                        }
                        Err(_) => self.status = "cannot format: the file has syntax errors".into(),
                    }
                }
            }
            Command::Save => {
                let mut saved = 0;
                for f in &mut self.files {
                    if f.text != f.saved {
                        match std::fs::write(&f.path, &f.text) {
                            Ok(()) => {
                                f.saved = f.text.clone();
                                f.raw = None;
                                f.unreadable = None;
                                saved += 1;
                            }
                            Err(e) => {
                                self.status = format!("cannot save {}: {e}", f.path.display())
                            }
                        }
                    }
                }
                self.status = format!("saved {saved} file(s)");
            }
            Command::SelectScenario(i) => {
                if i < self.scenarios.len() {
                    self.selected_scenario = i;
                    self.selected_event = 0;
                    self.what_if = WhatIf::default();
                    self.what_if_result = None;
                }
            }
            Command::SelectEvent(i) => {
                if i < self.event_count() {
                    self.selected_event = i;
                    self.what_if = WhatIf::default();
                    self.what_if_result = None;
                }
            }
            Command::Step(d) => {
                let n = self.event_count();
                if n > 0 {
                    let next = (self.selected_event as isize + d).clamp(0, n as isize - 1);
                    self.apply(Command::SelectEvent(usize::try_from(next).unwrap_or(0)));
                }
            }
            Command::TogglePlay => {
                self.playing = !self.playing;
                self.last_step = None;
            }
            Command::SetWhatIf(w) => {
                self.what_if = w;
                self.run_what_if();
            }
            Command::Compare(with) => self.comparison = Some(self.compare(&with)),
            Command::SetAuditFilter(f) => self.audit_filter = f,
            Command::OpenDecisionLog { log, compare } => self.open_corpus(log, compare),
        }
    }

    /// Backtests a decision log with the current rules (streaming it from disk).
    fn open_corpus(&mut self, path: PathBuf, compare: Option<PathBuf>) {
        let report = (|| -> Result<BacktestReport, String> {
            let engine = self
                .engine
                .as_ref()
                .ok_or_else(|| "the rules do not compile".to_string())?;
            let baseline = match &compare {
                Some(dir) => Some(Arc::new(
                    CompiledSet::load(std::slice::from_ref(dir))
                        .map_err(|e| format!("the compared rules do not load: {e}"))?,
                )),
                None => None,
            };
            if path.is_dir() {
                return Err(format!(
                    "`{}` is a directory: open a decision log file (JSON lines)",
                    path.display()
                ));
            }
            let file = std::fs::File::open(&path)
                .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
            let name = path.display().to_string();
            let mut bt = Backtest::new(engine.current(), baseline);
            for item in stepup_decisionlog::Lines::new(std::io::BufReader::new(file)) {
                match item {
                    Ok((line, rec)) => bt.add(&name, line, &rec),
                    Err(e) => bt.unreadable(&name, &e),
                }
            }
            Ok(bt.finish())
        })();
        self.status = match &report {
            Ok(r) => format!(
                "decision log: {} decision(s), {} changed",
                r.decisions, r.changed
            ),
            Err(e) => format!("decision log: {e}"),
        };
        self.corpus = Some(Corpus {
            path,
            compare,
            report,
        });
    }

    /// Work due at `now`: the debounced recompile, and playing the timeline.
    pub fn tick(&mut self, now: Instant) {
        if let Some(t) = self.dirty_since
            && now.duration_since(t) >= self.debounce
        {
            self.recompile();
        }
        if self.playing {
            let due = self
                .last_step
                .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(700));
            if due {
                if self.selected_event + 1 >= self.event_count() {
                    self.playing = false;
                } else {
                    self.apply(Command::Step(1));
                }
                self.last_step = Some(now);
            }
        }
    }

    /// Whether a recompile is waiting for the debounce.
    #[must_use]
    pub fn pending(&self) -> bool {
        self.dirty_since.is_some()
    }

    /// Whether the last check of the rules was quick enough for an edit after a pause to be
    /// checked at once (a quarter of the debounce; a slower one waits for typing to pause).
    #[must_use]
    pub fn checks_at_once(&self) -> bool {
        self.last_compile_took <= self.debounce / 4
    }

    fn compare(&self, with: &CompareWith) -> Comparison {
        let disk: Vec<stepup_dsl::Source> = self
            .files
            .iter()
            .map(|f| stepup_dsl::Source {
                name: f.path.display().to_string(),
                bytes: f.saved.as_bytes().to_vec(),
                base_dir: stepup_dsl::resolved_dir(&f.path).0,
            })
            .collect();
        let (a, b, la, lb) = match with {
            CompareWith::DiskVsEditor => (
                compile_sources(&disk).0,
                compile_sources(&self.sources()).0,
                "on disk".to_string(),
                "editor".to_string(),
            ),
            CompareWith::Directory(dir) => {
                let other = match stepup_dsl::read_sources(std::slice::from_ref(dir)) {
                    Ok(o) if !o.is_empty() => Ok(o),
                    Ok(_) => Err(format!("no `.policy` files in `{}`", dir.display())),
                    Err(e) => Err(e),
                };
                let b = other.and_then(|o| compile_sources(&o).0);
                (
                    compile_sources(&disk).0,
                    b,
                    self.rules_dir.display().to_string(),
                    dir.display().to_string(),
                )
            }
        };
        let mut c = Comparison {
            label_a: la,
            label_b: lb,
            ..Comparison::default()
        };
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => {
                c.error = Some(format!("version A does not compile: {e}"));
                return c;
            }
            (_, Err(e)) => {
                c.error = Some(format!("version B does not compile: {e}"));
                return c;
            }
        };
        // Each scenario replayed under each version, or why it could not be: a scenario one
        // version cannot replay (its application removed, a replay error) is a change, never
        // left out of the comparison.
        let run = |engine: &Engine| -> Vec<Result<FileReport, String>> {
            let set = engine.current();
            self.scenarios
                .iter()
                .map(|s| {
                    let l = s.load(&set)?;
                    stepup_replay::replay_with(&l, engine, &MemoryStore::new(), false)
                        .map_err(|e| e.to_string())
                })
                .collect()
        };
        let (ra, rb) = (run(&a), run(&b));
        let (mut both_a, mut both_b) = (Vec::new(), Vec::new());
        for (s, (x, y)) in self.scenarios.iter().zip(ra.into_iter().zip(rb)) {
            let (x, y) = match (x, y) {
                (Ok(x), Ok(y)) => (x, y),
                // Neither version replays it, for the same reason: nothing changed (the error
                // is the scenario's).
                (Err(a), Err(b)) if a == b => continue,
                (x, y) => {
                    let say = |r: &Result<FileReport, String>| match r {
                        Ok(r) => format!("replayed ({} events)", r.events.len()),
                        Err(e) => format!("cannot be replayed: {e}"),
                    };
                    c.changes.push(Change {
                        scenario: s.name(),
                        index: 0,
                        event: "the whole scenario".to_string(),
                        before: say(&x),
                        after: say(&y),
                    });
                    continue;
                }
            };
            for (ea, eb) in x.events.iter().zip(&y.events) {
                if let Some((before, after)) = differ(ea, eb) {
                    c.changes.push(Change {
                        scenario: x.file.clone(),
                        index: ea.index,
                        event: ea.event.clone(),
                        before,
                        after,
                    });
                }
            }
            if x.events.len() != y.events.len() {
                c.changes.push(Change {
                    scenario: x.file.clone(),
                    index: x.events.len().min(y.events.len()),
                    event: "the events after it".to_string(),
                    before: format!("{} events", x.events.len()),
                    after: format!("{} events", y.events.len()),
                });
            }
            both_a.push(x);
            both_b.push(y);
        }
        // Friction over the scenarios both versions replayed.
        let (ra, rb) = (both_a, both_b);
        c.stats_a = stats::compute(&ra);
        c.stats_b = stats::compute(&rb);
        c
    }
}

/// A decision in a few words (`step_up aal3`).
#[must_use]
pub fn describe(e: &EventResult) -> String {
    match e.decision.required {
        Some(r) => format!("{} {}", e.decision.kind.as_str(), r.aal),
        None => e.decision.kind.as_str().to_string(),
    }
}

/// A decision with all a user meets of it: its kind, its whole requirement (AAL, factors,
/// validity), the factors that would satisfy it, why it refuses and its message
/// (`step_up aal2 factor webauthn every time, eligible webauthn`).
#[must_use]
pub fn describe_fully(e: &EventResult) -> String {
    let d = &e.decision;
    let mut out = d.kind.as_str().to_string();
    if let Some(r) = d.required {
        out.push_str(&format!(" {} factor {} {}", r.aal, r.factors, r.validity));
    }
    if !d.eligible.is_empty() {
        out.push_str(&format!(", eligible {}", d.eligible));
    }
    if let Some(reason) = d.deny {
        out.push_str(&format!(", {}", reason.as_str()));
    }
    if let Some(m) = &d.message {
        out.push_str(&format!(", \"{m}\""));
    }
    out
}

/// How two decisions of one event differ, when they do: in a few words, or in full when the
/// few words are the same (a requirement that allows another factor, or no longer `every
/// time`, is a change even at the same AAL).
#[must_use]
pub fn differ(a: &EventResult, b: &EventResult) -> Option<(String, String)> {
    let (fa, fb) = (describe_fully(a), describe_fully(b));
    if fa == fb {
        return None;
    }
    let (da, db) = (describe(a), describe(b));
    Some(if da == db { (fa, fb) } else { (da, db) })
}

fn apply_what_if(l: &mut Loaded, index: usize, w: &WhatIf) -> Result<(), String> {
    let num = |s: &str, what: &str| -> Result<Option<f64>, String> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| format!("{what}: `{s}` is not a number"))
        }
    };
    // A century either way: further is no time a scenario means (and would overflow).
    const MAX_OFFSET_S: f64 = 100.0 * 366.0 * 86_400.0;
    if let Some(off) = num(&w.time_offset_s, "time offset")? {
        if off.abs() > MAX_OFFSET_S {
            return Err(format!(
                "time offset: `{}` seconds is more than a century",
                w.time_offset_s.trim()
            ));
        }
        let off = off.round() as i64;
        for t in l.times.iter_mut().skip(index) {
            *t = Timestamp(t.0.saturating_add(off));
        }
        if l.times.windows(2).any(|p| matches!(p, [a, b] if b < a)) {
            return Err("time offset: the event would move before the previous one".into());
        }
    }
    let risk = num(&w.risk, "risk")?;
    let amount = num(&w.amount, "amount")?;
    let Some(ev) = l.scenario.events.get_mut(index) else {
        return Err("no such event".into());
    };
    match ev {
        EventSpec::SignIn {
            risk: r,
            country,
            device,
            ..
        } => {
            if let Some(v) = risk {
                *r = Some(v.clamp(0.0, 100.0) as u32);
            }
            if !w.country.trim().is_empty() {
                *country = Some(w.country.trim().to_uppercase());
            }
            if !w.device.trim().is_empty() {
                *device = Some(w.device.trim().to_string());
            }
        }
        EventSpec::Operation { attrs, .. } => {
            if let Some(a) = amount {
                attrs.insert("amount".into(), stepup_engine::Value::Number(a));
            }
        }
        EventSpec::StepUp { factor, .. } => {
            if !w.factor.trim().is_empty() {
                *factor = w
                    .factor
                    .trim()
                    .parse::<Factor>()
                    .map_err(|()| format!("factor: `{}` is not a factor", w.factor.trim()))?;
            }
        }
        EventSpec::Access { .. } => {}
    }
    Ok(())
}
