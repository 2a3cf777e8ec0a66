//! The studio's window: panels read the [`Studio`] and return [`Command`]s, applied once per
//! frame. Nothing here decides anything: the explanation shown is the engine's own trace.

use std::path::PathBuf;

use egui::{Color32, RichText, Ui};
use serde::{Deserialize, Serialize};
use stepup_engine::DecisionKind;

use crate::studio::{AuditFilter, Command, CompareWith, Studio, WhatIf, describe};

/// What the studio remembers between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Persisted {
    /// Recent workspaces (rules, scenarios), most recent first.
    pub recent: Vec<(PathBuf, PathBuf)>,
}

const STORAGE_KEY: &str = "stepup-studio";

/// Which view the bottom panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BottomView {
    /// Audit records.
    Audit,
    /// A/B comparison.
    Compare,
    /// A decision log backtested with the current rules: friction chart and changes.
    DecisionLog,
}

/// The application: the studio, the persisted state, and UI-only buffers.
pub struct StudioApp {
    /// The studio.
    pub studio: Studio,
    /// Remembered between runs.
    pub persisted: Persisted,
    /// Open-workspace fields.
    pub open_rules: String,
    /// Open-workspace fields.
    pub open_scenarios: String,
    /// The directory to compare with.
    pub compare_dir: String,
    /// The bottom panel's view.
    pub bottom: BottomView,
    /// The decision log to open.
    pub log_path: String,
    /// The rules directory to compare the log with (empty: its recorded decisions).
    pub log_compare: String,
    what_if_edit: WhatIf,
    filter_edit: AuditFilter,
}

fn decision_color(k: DecisionKind) -> Color32 {
    match k {
        DecisionKind::Allow | DecisionKind::Completed => Color32::from_rgb(80, 180, 100),
        DecisionKind::StepUp => Color32::from_rgb(230, 170, 40),
        DecisionKind::Deny | DecisionKind::Failed => Color32::from_rgb(220, 80, 80),
    }
}

fn labelled_text(ui: &mut Ui, label: &str, value: &mut String) -> bool {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(egui::TextEdit::singleline(value).desired_width(140.0))
            .labelled_by(l.id)
            .changed()
    })
    .inner
}

impl StudioApp {
    /// The studio on a workspace.
    #[must_use]
    pub fn new(rules: PathBuf, scenarios: PathBuf, persisted: Persisted) -> Self {
        let mut app = StudioApp {
            open_rules: rules.display().to_string(),
            open_scenarios: scenarios.display().to_string(),
            studio: Studio::open(&rules, &scenarios),
            persisted,
            compare_dir: String::new(),
            bottom: BottomView::Audit,
            log_path: String::new(),
            log_compare: String::new(),
            what_if_edit: WhatIf::default(),
            filter_edit: AuditFilter::default(),
        };
        app.remember(rules, scenarios);
        app
    }

    /// Creates the app from eframe's context (restoring what was persisted).
    #[must_use]
    pub fn from_creation(
        cc: &eframe::CreationContext<'_>,
        rules: PathBuf,
        scenarios: PathBuf,
    ) -> Self {
        let persisted: Persisted = cc
            .storage
            .and_then(|s| eframe::get_value(s, STORAGE_KEY))
            .unwrap_or_default();
        Self::new(rules, scenarios, persisted)
    }

    fn remember(&mut self, rules: PathBuf, scenarios: PathBuf) {
        self.persisted
            .recent
            .retain(|w| *w != (rules.clone(), scenarios.clone()));
        self.persisted.recent.insert(0, (rules, scenarios));
        self.persisted.recent.truncate(8);
    }

    /// Shows the whole window and applies what the panels asked for.
    pub fn show(&mut self, ui: &mut Ui) {
        let compiles_before = self.studio.compiles();
        let mut cmds: Vec<Command> = Vec::new();
        self.dropped_files(ui, &mut cmds);
        egui::Panel::top("menu").show(ui, |ui| cmds.extend(self.menu(ui)));
        // Room for the friction chart when the studio starts on a decision log.
        let bottom_size: f32 = if self.bottom == BottomView::DecisionLog {
            420.0
        } else {
            220.0
        };
        // Sizes in proportion to the window, bounded, so that the timeline keeps a third of
        // its width and half of its height whatever the window (a review: at 1024x700 the side
        // panels kept their widths and left the timeline 35 px, one letter per line; dragging
        // the bottom panel up collapsed the others).
        let room = ui.available_size();
        egui::Panel::bottom("bottom")
            .resizable(true)
            .default_size(bottom_size.min(room.y * 0.4))
            .size_range(80.0..=(room.y * 0.5).max(80.0))
            .show(ui, |ui| cmds.extend(self.bottom_panel(ui)));
        egui::Panel::left("rules")
            .resizable(true)
            .default_size(560.0f32.min(room.x * 0.35))
            .size_range(160.0..=(room.x * 0.4).max(160.0))
            .show(ui, |ui| cmds.extend(self.rules_panel(ui)));
        egui::Panel::right("explain")
            .resizable(true)
            .default_size(420.0f32.min(room.x * 0.27))
            .size_range(160.0..=(room.x * 0.3).max(160.0))
            .show(ui, |ui| cmds.extend(self.explain_panel(ui)));
        egui::CentralPanel::default().show(ui, |ui| cmds.extend(self.timeline_panel(ui)));
        for c in cmds {
            if let Command::OpenWorkspace(r, s) = &c {
                self.remember(r.clone(), s.clone());
            }
            if matches!(
                c,
                Command::SelectEvent(_) | Command::SelectScenario(_) | Command::Step(_)
            ) {
                self.what_if_edit = WhatIf::default();
            }
            self.studio.apply(c);
        }
        self.studio.tick(std::time::Instant::now());
        if self.studio.compiles() != compiles_before {
            // Compiled after the panels were drawn: show the new diagnostics now.
            ui.ctx().request_repaint();
        }
        if self.studio.pending() || self.studio.playing {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn dropped_files(&self, ui: &Ui, cmds: &mut Vec<Command>) {
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for p in dropped {
            let dir = if p.is_dir() {
                p.clone()
            } else {
                p.parent().map(PathBuf::from).unwrap_or_default()
            };
            let has = |ext: &str| {
                std::fs::read_dir(&dir)
                    .map(|rd| {
                        rd.flatten()
                            .any(|e| e.path().extension().is_some_and(|x| x == ext))
                    })
                    .unwrap_or(false)
            };
            if has("policy") {
                cmds.push(Command::OpenWorkspace(
                    dir,
                    self.studio.scenarios_dir.clone(),
                ));
            } else if has("ron") {
                cmds.push(Command::OpenWorkspace(self.studio.rules_dir.clone(), dir));
            }
        }
    }

    fn menu(&mut self, ui: &mut Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        ui.horizontal(|ui| {
            ui.menu_button("File", |ui| {
                labelled_text(ui, "rules directory", &mut self.open_rules);
                labelled_text(ui, "scenarios directory", &mut self.open_scenarios);
                if ui.button("Open workspace").clicked() {
                    cmds.push(Command::OpenWorkspace(
                        PathBuf::from(self.open_rules.trim()),
                        PathBuf::from(self.open_scenarios.trim()),
                    ));
                    ui.close();
                }
                ui.separator();
                ui.label("Recent workspaces");
                for (r, s) in self.persisted.recent.clone() {
                    if ui
                        .button(format!("{} + {}", r.display(), s.display()))
                        .clicked()
                    {
                        cmds.push(Command::OpenWorkspace(r, s));
                        ui.close();
                    }
                }
            });
            if ui.button("Format").clicked() {
                cmds.push(Command::Format);
            }
            if ui.button("Save").clicked() {
                cmds.push(Command::Save);
            }
            ui.separator();
            let hash = self
                .studio
                .engine
                .as_ref()
                .map(|e| e.current().hash().to_string())
                .unwrap_or_default();
            ui.label(format!("policy set {}", hash.get(..12).unwrap_or("none")));
            if self.studio.broken {
                // With no good compile yet (the rules were broken on disk), there is none to
                // show (a review read "showing the last good compile" beside "none").
                let what = if self.studio.engine.is_some() {
                    "editor has errors - showing the last good compile"
                } else {
                    "the rules have errors - nothing compiled yet: see the diagnostics"
                };
                ui.label(RichText::new(what).color(Color32::from_rgb(220, 80, 80)));
            }
            ui.label(RichText::new(&self.studio.status).weak());
        });
        cmds
    }

    fn rules_panel(&mut self, ui: &mut Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        ui.heading("Rules");
        ui.horizontal_wrapped(|ui| {
            for (i, f) in self.studio.files.iter().enumerate() {
                let name = f.path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
                let mark = if f.text == f.saved { "" } else { " *" };
                if ui
                    .selectable_label(i == self.studio.selected_file, format!("{name}{mark}"))
                    .clicked()
                {
                    cmds.push(Command::SelectFile(i));
                }
            }
        });
        let file_name = self
            .studio
            .files
            .get(self.studio.selected_file)
            .map(|f| f.path.display().to_string())
            .unwrap_or_default();
        let underlines: Vec<(usize, usize, Color32)> = self
            .studio
            .diagnostics
            .iter()
            .filter(|d| d.file == file_name)
            .map(|d| {
                (
                    d.span.0,
                    d.span.1,
                    if d.severity == "error" {
                        Color32::RED
                    } else {
                        Color32::YELLOW
                    },
                )
            })
            .collect();
        let diag_height = 160.0;
        let mut text = self
            .studio
            .files
            .get(self.studio.selected_file)
            .map(|f| f.text.clone())
            .unwrap_or_default();
        egui::ScrollArea::vertical()
            .id_salt("editor")
            .max_height((ui.available_height() - diag_height).max(120.0))
            .show(ui, |ui| {
                let mut layouter = |ui: &Ui, buf: &dyn egui::TextBuffer, wrap: f32| {
                    let mut job = crate::highlight::layout(buf.as_str(), &underlines);
                    job.wrap.max_width = wrap;
                    ui.fonts_mut(|f| f.layout_job(job))
                };
                let l = ui.label("rules editor");
                let resp = ui
                    .add(
                        egui::TextEdit::multiline(&mut text)
                            .code_editor()
                            .desired_width(f32::INFINITY)
                            .desired_rows(30)
                            .layouter(&mut layouter),
                    )
                    .labelled_by(l.id);
                if resp.changed() {
                    cmds.push(Command::Edit(text.clone()));
                }
            });
        ui.separator();
        let errors = self
            .studio
            .diagnostics
            .iter()
            .filter(|d| d.severity == "error")
            .count();
        ui.label(format!(
            "diagnostics: {errors} error(s), {} warning(s)",
            self.studio.diagnostics.len() - errors
        ));
        egui::ScrollArea::vertical()
            .id_salt("diags")
            .show(ui, |ui| {
                for d in &self.studio.diagnostics {
                    let color = if d.severity == "error" {
                        Color32::from_rgb(220, 80, 80)
                    } else {
                        Color32::from_rgb(230, 170, 40)
                    };
                    ui.label(RichText::new(&d.summary).color(color))
                        .on_hover_text(RichText::new(&d.rendered).monospace());
                    // The help says what the headline alone can mislead about (a review: an
                    // override's S005 read "weaker" where its help says why).
                    if let Some(help) = &d.help {
                        ui.label(RichText::new(format!("  help: {help}")).weak());
                    }
                }
            });
        cmds
    }

    fn timeline_panel(&mut self, ui: &mut Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        ui.heading("Scenarios");
        ui.horizontal_wrapped(|ui| {
            for (i, s) in self.studio.scenarios.iter().enumerate() {
                let name = s.path.file_stem().and_then(|n| n.to_str()).unwrap_or("?");
                // A scenario that cannot be replayed is marked where it is listed (a review:
                // the tabs looked alike until one was opened).
                let failed = matches!(self.studio.reports.get(i), Some(Err(_)));
                let label = if failed {
                    RichText::new(format!("{name} (cannot be replayed)"))
                        .color(Color32::from_rgb(220, 80, 80))
                } else {
                    RichText::new(name)
                };
                if ui
                    .selectable_label(i == self.studio.selected_scenario, label)
                    .clicked()
                {
                    cmds.push(Command::SelectScenario(i));
                }
            }
        });
        ui.separator();
        ui.horizontal(|ui| {
            if ui.button("step back").clicked() {
                cmds.push(Command::Step(-1));
            }
            if ui
                .button(if self.studio.playing { "pause" } else { "play" })
                .clicked()
            {
                cmds.push(Command::TogglePlay);
            }
            if ui.button("step forward").clicked() {
                cmds.push(Command::Step(1));
            }
        });
        match self.studio.report() {
            None => {
                ui.label("no scenario");
            }
            Some(Err(e)) => {
                ui.label(
                    RichText::new(format!("this scenario cannot be replayed: {e}"))
                        .color(Color32::from_rgb(220, 80, 80)),
                );
            }
            Some(Ok(r)) => {
                ui.label(RichText::new(&r.name).strong());
                for w in &r.warnings {
                    ui.label(RichText::new(w).color(Color32::from_rgb(230, 160, 40)));
                }
                // Only the rows in view are laid out: a scenario of 20,000 events laid out
                // every row on every frame, and the studio stopped answering (a review).
                let row_height = ui
                    .spacing()
                    .interact_size
                    .y
                    .max(ui.text_style_height(&egui::TextStyle::Body))
                    + ui.spacing().item_spacing.y;
                egui::ScrollArea::vertical().id_salt("timeline").show_rows(
                    ui,
                    row_height,
                    r.events.len(),
                    |ui, rows| {
                        for e in r.events.get(rows).unwrap_or_default() {
                            ui.horizontal(|ui| {
                                let d = &e.decision;
                                ui.label(
                                    RichText::new(d.kind.as_str())
                                        .background_color(decision_color(d.kind))
                                        .color(Color32::BLACK),
                                );
                                let aal = d
                                    .required
                                    .map(|q| format!(" -> {}", q.aal))
                                    .unwrap_or_default();
                                // The row names its decision too: a reader of the row
                                // (a screen reader, a test) has it without the badge.
                                let row = format!(
                                    "#{} {} {} {}{aal}: {}",
                                    e.index,
                                    e.at.to_rfc3339(),
                                    e.user,
                                    e.event,
                                    d.kind.as_str()
                                );
                                if ui
                                    .selectable_label(e.index == self.studio.selected_event, row)
                                    .clicked()
                                {
                                    cmds.push(Command::SelectEvent(e.index));
                                }
                                if !e.mismatches.is_empty() {
                                    let what: Vec<String> = e
                                        .mismatches
                                        .iter()
                                        .map(|m| {
                                            format!(
                                                "{}: expected {}, got {}",
                                                m.field, m.expected, m.actual
                                            )
                                        })
                                        .collect();
                                    ui.label(
                                        RichText::new("expectation mismatch")
                                            .color(Color32::from_rgb(220, 80, 80)),
                                    )
                                    .on_hover_text(what.join("\n"));
                                }
                            });
                        }
                    },
                );
            }
        }
        cmds
    }

    fn explain_panel(&mut self, ui: &mut Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        ui.heading("Explanation");
        egui::ScrollArea::vertical()
            .id_salt("explain")
            .show(ui, |ui| {
                if let Some(e) = self.studio.event() {
                    event_details(ui, e, self.studio.aal_after(e));
                } else {
                    ui.label("select an event");
                }
                ui.separator();
                ui.heading("What-if");
                let mut w = self.what_if_edit.clone();
                let mut changed = false;
                changed |= labelled_text(ui, "what-if risk score", &mut w.risk);
                changed |= labelled_text(ui, "what-if country", &mut w.country);
                changed |= labelled_text(ui, "what-if device", &mut w.device);
                changed |= labelled_text(ui, "what-if time offset (s)", &mut w.time_offset_s);
                changed |= labelled_text(ui, "what-if amount", &mut w.amount);
                changed |= labelled_text(ui, "what-if factor", &mut w.factor);
                if ui.button("Reset what-if").clicked() {
                    w = WhatIf::default();
                    changed = true;
                }
                if changed {
                    self.what_if_edit = w.clone();
                    cmds.push(Command::SetWhatIf(w));
                }
                match &self.studio.what_if_result {
                    None => {}
                    Some(Err(e)) => {
                        ui.label(
                            RichText::new(format!("what-if error: {e}"))
                                .color(Color32::from_rgb(220, 80, 80)),
                        );
                    }
                    Some(Ok(r)) => {
                        ui.label(
                            RichText::new(format!("what-if decision: {}", describe(r)))
                                .color(decision_color(r.decision.kind))
                                .strong(),
                        );
                        if let Some(m) = &r.decision.message {
                            ui.label(format!("what-if message: {m}"));
                        }
                        ui.label(format!("what-if fired: {}", r.decision.fired.join(", ")));
                    }
                }
            });
        cmds
    }

    fn bottom_panel(&mut self, ui: &mut Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.bottom, BottomView::Audit, "Audit log");
            ui.selectable_value(&mut self.bottom, BottomView::Compare, "Compare versions");
            ui.selectable_value(&mut self.bottom, BottomView::DecisionLog, "Decision log");
        });
        ui.separator();
        match self.bottom {
            BottomView::DecisionLog => cmds.extend(self.decision_log_view(ui)),
            BottomView::Audit => {
                let mut f = self.filter_edit.clone();
                let changed = ui
                    .horizontal(|ui| {
                        labelled_text(ui, "audit name filter", &mut f.name)
                            | labelled_text(ui, "audit policy filter", &mut f.policy)
                            | labelled_text(ui, "audit user filter", &mut f.user)
                    })
                    .inner;
                if changed {
                    self.filter_edit = f.clone();
                    cmds.push(Command::SetAuditFilter(f));
                }
                let records = self.studio.audit();
                ui.label(format!("{} audit record(s)", records.len()));
                let row_height =
                    ui.text_style_height(&egui::TextStyle::Body) + ui.spacing().item_spacing.y;
                // Not shrunk to its rows: the panel keeps its height as a filter narrows the
                // list (a review's click, aimed at a filter, landed on a record).
                egui::ScrollArea::vertical()
                    .id_salt("audit")
                    .auto_shrink([false, false])
                    .show_rows(ui, row_height, records.len(), |ui, rows| {
                        for (file, a) in records.get(rows).unwrap_or_default() {
                            ui.label(format!(
                                "{} {} {} user={} policies=[{}] {}",
                                a.at,
                                a.name,
                                file,
                                a.user,
                                a.policies.join(", "),
                                a.required_aal.map(|x| x.to_string()).unwrap_or_default()
                            ));
                        }
                    });
            }
            BottomView::Compare => {
                ui.horizontal(|ui| {
                    if ui.button("Compare disk with editor").clicked() {
                        cmds.push(Command::Compare(CompareWith::DiskVsEditor));
                    }
                    labelled_text(ui, "other rules directory", &mut self.compare_dir);
                    if ui.button("Compare with directory").clicked() {
                        cmds.push(Command::Compare(CompareWith::Directory(PathBuf::from(
                            self.compare_dir.trim(),
                        ))));
                    }
                });
                if let Some(c) = &self.studio.comparison {
                    if let Some(e) = &c.error {
                        ui.label(RichText::new(e).color(Color32::from_rgb(220, 80, 80)));
                    } else {
                        ui.label(format!(
                            "friction: A ({}) {:.2} prompts per user per day, {} prompts, {} refusals | B ({}) {:.2} prompts per user per day, {} prompts, {} refusals",
                            c.label_a, c.stats_a.prompts_per_user_day, c.stats_a.prompts, c.stats_a.refusals, c.label_b, c.stats_b.prompts_per_user_day, c.stats_b.prompts, c.stats_b.refusals
                        ));
                        ui.label(format!("{} changed decision(s)", c.changes.len()));
                        egui::ScrollArea::vertical()
                            .id_salt("changes")
                            .show(ui, |ui| {
                                for ch in &c.changes {
                                    ui.label(format!(
                                        "changed: {} #{} {}: {} -> {}",
                                        ch.scenario, ch.index, ch.event, ch.before, ch.after
                                    ));
                                }
                            });
                    }
                }
            }
        }
        cmds
    }
}

impl StudioApp {
    fn decision_log_view(&mut self, ui: &mut Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        ui.horizontal(|ui| {
            labelled_text(ui, "decision log path", &mut self.log_path);
            labelled_text(ui, "compare with rules directory", &mut self.log_compare);
            if ui.button("Open decision log").clicked() {
                let compare = self.log_compare.trim();
                cmds.push(Command::OpenDecisionLog {
                    log: PathBuf::from(self.log_path.trim()),
                    compare: (!compare.is_empty()).then(|| PathBuf::from(compare)),
                });
            }
        });
        let Some(c) = &self.studio.corpus else {
            ui.label("open a decision log (`stepup replay --decision-log PATH`, or a service's) to see its friction under the current rules");
            return cmds;
        };
        let r = match &c.report {
            Ok(r) => r,
            Err(e) => {
                ui.label(RichText::new(e).color(Color32::from_rgb(220, 80, 80)));
                return cmds;
            }
        };
        ui.label(format!(
            "{} decisions, {} users, {} user-days; prompts per active user per day: {:.3} ({}) -> {:.3} (current rules); {} changed decision(s)",
            r.decisions,
            r.active_users,
            r.active_user_days,
            r.old.prompts_per_active_user_day,
            c.compared_label(),
            r.new.prompts_per_active_user_day,
            r.changed
        ));
        if r.unreadable > 0 {
            ui.label(
                RichText::new(format!("{} unreadable line(s)", r.unreadable))
                    .color(Color32::from_rgb(220, 80, 80)),
            );
            // Where and why, for the first few (as `stepup backtest` lists them).
            for b in r.unreadable_lines.iter().take(5) {
                ui.label(
                    RichText::new(format!("  {}:{}: {}", b.file, b.line, b.error))
                        .color(Color32::from_rgb(220, 80, 80)),
                );
            }
        }
        ui.columns(2, |cols| {
            if let [left, right] = cols {
                friction_chart(left, r, &c.compared_label());
                egui::ScrollArea::vertical()
                    .id_salt("log_changes")
                    .show(right, |ui| {
                        for p in &r.policies {
                            ui.label(format!(
                                "policy {}: {} prompts, {} denials, {} users, {:.3} prompts per user per day",
                                p.label(r.many_tenants),
                                p.prompts,
                                p.denials,
                                p.users_affected,
                                p.prompts_per_active_user_day
                            ));
                        }
                        for g in &r.changes {
                            ui.label(format!(
                                "changed: {}{} -> {} [{}]: {}",
                                g.tenant_prefix(r.many_tenants),
                                g.from,
                                g.to,
                                g.policies.join(", "),
                                g.count
                            ));
                        }
                    });
            }
        });
        cmds
    }
}

/// One colour per policy in the friction chart.
const PALETTE: [Color32; 8] = [
    Color32::from_rgb(230, 170, 40),
    Color32::from_rgb(80, 160, 230),
    Color32::from_rgb(220, 80, 80),
    Color32::from_rgb(80, 180, 100),
    Color32::from_rgb(170, 120, 220),
    Color32::from_rgb(40, 190, 190),
    Color32::from_rgb(230, 120, 180),
    Color32::from_rgb(160, 160, 160),
];

/// Prompts per day per policy: solid for the current rules, dashed for the compared ones, a
/// marker on each day (one day alone is a point, not a line), and a day of the log without
/// prompts at 0 (not bridged by the line).
fn friction_chart(ui: &mut Ui, r: &stepup_decisionlog::BacktestReport, compared: &str) {
    use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints, Points};
    let day = |d: &str| {
        stepup_core::Timestamp::parse_rfc3339(&format!("{d}T00:00:00Z"))
            .ok()
            .map(|t| t.0.div_euclid(86_400))
    };
    // Every day the log covers (at most ten years of them), whether or not it has prompts.
    let mut days: std::collections::BTreeSet<i64> = r
        .daily_new
        .keys()
        .chain(r.daily_old.keys())
        .filter_map(|d| day(d))
        .collect();
    if let Some((Some(first), Some(last))) = r.days.as_ref().map(|(a, b)| (day(a), day(b))) {
        days.extend((first..=last).take(3_660));
    }
    let series =
        |daily: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
         policy: &str| {
            let by_day: std::collections::BTreeMap<i64, u64> = daily
                .iter()
                .filter_map(|(d, m)| Some((day(d)?, m.get(policy).copied().unwrap_or(0))))
                .collect();
            days.iter()
                .map(|d| [*d as f64, by_day.get(d).copied().unwrap_or(0) as f64])
                .collect::<Vec<[f64; 2]>>()
        };
    let mut policies: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for m in r.daily_new.values().chain(r.daily_old.values()) {
        policies.extend(m.keys().map(String::as_str));
    }
    ui.label(format!(
        "prompts per day per policy: current rules (solid) and {compared} (dashed)"
    ));
    // One legend entry per policy (its solid and dashed lines share its name and colour, and
    // the label above says which is which), in the top left corner: with an entry per line,
    // seven policies' fourteen covered the plot's right half and ran off its bottom (a review).
    Plot::new("friction_chart")
        .height(ui.available_height().max(160.0))
        .legend(Legend::default().position(egui_plot::Corner::LeftTop))
        .x_axis_formatter(|mark, _| {
            stepup_core::Timestamp((mark.value * 86_400.0) as i64)
                .to_rfc3339()
                .get(..10)
                .unwrap_or("")
                .to_string()
        })
        .show(ui, |plot| {
            for (i, p) in policies.iter().enumerate() {
                let color = PALETTE
                    .get(i % PALETTE.len())
                    .copied()
                    .unwrap_or(Color32::GRAY);
                let (new, old) = (series(&r.daily_new, p), series(&r.daily_old, p));
                let (current, compared) = (*p, *p);
                plot.line(Line::new(current, PlotPoints::from(new.clone())).color(color));
                plot.points(
                    Points::new(current, PlotPoints::from(new))
                        .color(color)
                        .radius(3.0),
                );
                plot.line(
                    Line::new(compared, PlotPoints::from(old.clone()))
                        .color(color)
                        .style(LineStyle::dashed_loose()),
                );
                plot.points(
                    Points::new(compared, PlotPoints::from(old))
                        .color(color)
                        .radius(2.0)
                        .filled(false),
                );
            }
        });
}

fn event_details(ui: &mut Ui, e: &stepup_replay::EventResult, after: Option<stepup_core::Aal>) {
    let d = &e.decision;
    // A refusal names its reason's code (a review: only its message showed).
    let reason = d
        .deny
        .map(|r| format!(" ({})", r.as_str()))
        .unwrap_or_default();
    ui.label(
        RichText::new(format!("decision: {}{reason}", d.kind.as_str()))
            .color(decision_color(d.kind))
            .strong(),
    );
    ui.label(format!(
        "event: #{} {} {}",
        e.index,
        e.event,
        e.at.to_rfc3339()
    ));
    let before = d.session_aal.map_or("none".to_string(), |a| a.to_string());
    let after = after.map_or("none".to_string(), |a| a.to_string());
    ui.label(format!("session AAL before: {before}, after: {after}"));
    ui.label(format!(
        "required: {}",
        d.required.map_or("nothing".to_string(), |r| format!(
            "{} factor {} {}",
            r.aal, r.factors, r.validity
        ))
    ));
    ui.label(format!(
        "eligible factors: {}",
        if d.eligible.is_empty() {
            "none".to_string()
        } else {
            d.eligible.to_string()
        }
    ));
    if let Some(m) = &d.message {
        ui.label(format!("message: {m}"));
    }
    for err in &d.errors {
        ui.label(
            RichText::new(format!("fail-closed: {err}")).color(Color32::from_rgb(220, 80, 80)),
        );
    }
    if let Some(r) = &d.risk {
        // The weights of the signals present can sum past 100: the score is capped there.
        let present: u32 = r
            .signals
            .iter()
            .filter(|s| s.value == stepup_engine::Tri::True)
            .map(|s| s.weight)
            .sum();
        let capped = if present > 100 {
            format!(" (the weights present sum to {present}, capped at 100)")
        } else {
            String::new()
        };
        ui.label(format!(
            "risk score: {}{capped}",
            r.score.map_or_else(
                || format!("unknown, between {} and {}", r.range.min, r.range.max),
                |s| s.to_string()
            )
        ));
        for s in &r.signals {
            ui.label(format!(
                "  {}: {} (weight {})",
                s.signal.as_str(),
                serde_json::to_value(s.value)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                s.weight
            ));
        }
        if let Some(p) = r.platform {
            ui.label(format!(
                "  platform score: {p} (the score is the higher of it and the signals' sum)"
            ));
        }
    }
    if let Some(t) = &d.trace {
        ui.separator();
        for p in &t.policies {
            let state = match (p.fired, p.report_only) {
                (true, false) => "fired",
                (false, false) => "not fired",
                (true, true) => "fired (report-only, not enforced)",
                (false, true) => "not fired (report-only)",
            };
            let sat = match (p.satisfied, &p.why) {
                (Some(true), Some(w)) => format!(" - satisfied ({w})"),
                (Some(false), Some(w)) => format!(" - not satisfied ({w})"),
                _ => String::new(),
            };
            ui.label(RichText::new(format!("policy {}: {state}{sat}", p.name)).strong());
            for pr in &p.predicates {
                let v = serde_json::to_value(pr.value)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let note = pr
                    .note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                ui.label(format!("    {} = {v}{note}", pr.predicate));
            }
        }
        if let Some(m) = &t.merge {
            ui.label(format!("merge: {m}"));
        }
        for n in &t.notes {
            ui.label(format!("note: {n}"));
        }
    }
    if !d.report_only.is_empty() {
        ui.separator();
        ui.label(RichText::new("Report-only policies (never enforced)").strong());
        for r in &d.report_only {
            ui.label(
                RichText::new(format!(
                    "report-only {}: {}",
                    r.policy,
                    stepup_replay::output::would_text(r)
                ))
                .color(Color32::from_rgb(170, 120, 220)),
            );
            if let Some(n) = &r.note {
                ui.label(format!("    {n}"));
            }
        }
    }
    if !d.audit.is_empty() {
        ui.separator();
        for a in &d.audit {
            ui.label(format!(
                "audit: {} {}",
                a.name,
                a.challenge_id.as_deref().unwrap_or_default()
            ));
        }
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.persisted);
    }
}

/// The studio's window options.
#[must_use]
pub fn native_options() -> eframe::NativeOptions {
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1500.0, 900.0])
            .with_title("stepup studio"),
        ..Default::default()
    }
}
