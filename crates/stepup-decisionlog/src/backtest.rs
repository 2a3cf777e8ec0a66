//! Backtesting: logged traffic decided again with a candidate policy set, and compared with a
//! baseline policy set or with the decisions the log recorded.
//!
//! Records are fed one at a time ([`Backtest::add`]); only counters, a 64-bit keyed hash of
//! each (tenant, user) seen and of each (user, day), up to [`POLICY_SETS_LISTED`] policy-set
//! hashes, up to [`CHANGE_GROUPS`] groups of changes with a few bounded examples each, and
//! per-day counts of the policies the compared sets have are kept, each under the name's id.
//! Against the recorded decisions the log's own names count too: the first [`LOGGED_NAMES`]
//! policies and [`LOGGED_TENANTS`] tenants the sets do not have, in at most [`LOGGED_CELLS`]
//! per-day counts. Any other name a log gives is counted as [`OTHER_NAMES`]. Memory grows with
//! the users and days of a log, not with what its lines say.
//!
//! Tenants are never merged: users are told apart by tenant, and a policy's row, its prompts per
//! day and a group of changes are each of one tenant (and a policy's row is either enforced or
//! report-only: a policy enforced in one scope and report-only in another has two rows).
//!
//! Friction, for the old and the new decisions: events, decisions where an enforced policy
//! fired, prompts (`step_up`), denials, users affected (prompted or refused), and prompts per
//! active user per day (prompts over the distinct (user, day) pairs of the log). Per policy of
//! the candidate set, report-only ones included with what they would have done: events in
//! scopes where it is in force (step-up completions excepted: no policy is evaluated on them),
//! fired, prompts and denials it caused (it was among the fired policies the session did not
//! satisfy), users affected and prompts per active user per day (of its tenant's users).
//!
//! A decision *changes* when its kind, its requirement or its deny reason changes (what the
//! user sees); changes are grouped by (old → new, the policies that decided either), with a
//! few examples each.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;

use serde::Serialize;
use stepup_core::Timestamp;
use stepup_engine::{CompiledSet, DecisionKind, WouldBe};

use crate::reader::LineError;
use crate::record::{LoggedDecision, Record, store_failure};

/// Examples kept per group of changes.
pub const EXAMPLES_PER_GROUP: usize = 3;
/// Unreadable lines listed by number (all are counted).
pub const UNREADABLE_LISTED: usize = 100;
/// Policy-set hashes listed with their counts; the decisions of any further ones are counted
/// under [`OTHER_POLICY_SETS`].
pub const POLICY_SETS_LISTED: usize = 64;
/// The name under which the decisions of policy sets beyond [`POLICY_SETS_LISTED`] are counted.
pub const OTHER_POLICY_SETS: &str = "(other)";
/// The name under which a logged decision's policies that neither set compared has are
/// counted, and the tenant of those that neither set has: a log's names are counted only
/// where the rules give them, so what a line names cannot grow the backtest's tables (a
/// review: one line naming 8,000 policies of a 100 KB tenant took 800 MB).
pub const OTHER_NAMES: &str = "(other)";
/// Most names of policies the sets compared do not have that a backtest against the recorded
/// decisions counts under their own names (beyond, under [`OTHER_NAMES`]).
pub const LOGGED_NAMES: usize = 1_000;
/// Most tenants the sets compared do not have that a backtest against the recorded decisions
/// keeps apart (beyond, their changes and prompts count under [`OTHER_NAMES`]).
pub const LOGGED_TENANTS: usize = 1_000;
/// Most per-day counts of the log's own names (against the recorded decisions) a backtest
/// keeps; beyond, their prompts count under [`OTHER_NAMES`].
pub const LOGGED_CELLS: usize = 1_000_000;
/// Most policies an example lists of each side, and a group of changes names.
pub const EXAMPLE_NAMES: usize = 16;
/// Most characters of a text an example quotes from the log (more are cut, with `…`).
pub const EXAMPLE_CHARS: usize = 256;
/// Most groups of changed decisions kept apart; changes beyond are counted in one group
/// of [`OTHER_NAMES`].
pub const CHANGE_GROUPS: usize = 1_000;

/// `s`, cut to [`EXAMPLE_CHARS`] characters.
fn short(s: &str) -> String {
    match s.char_indices().nth(EXAMPLE_CHARS) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_string(),
    }
}

/// Totals of one side (old or new decisions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Decisions.
    pub events: u64,
    /// Decisions where an enforced policy fired.
    pub fired: u64,
    /// `step_up` decisions.
    pub prompts: u64,
    /// `deny` decisions.
    pub denials: u64,
    /// Users prompted or refused at least once.
    pub users_affected: u64,
    /// Prompts over active user-days.
    pub prompts_per_active_user_day: f64,
}

/// One policy of the candidate set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyRow {
    /// Its tenant.
    pub tenant: String,
    /// Name.
    pub policy: String,
    /// Whether it is report-only (its figures are what it would have done).
    pub report_only: bool,
    /// Events in scopes where it is in force.
    pub events: u64,
    /// Times it fired.
    pub fired: u64,
    /// Prompts it caused (or would have).
    pub prompts: u64,
    /// Denials it caused (or would have).
    pub denials: u64,
    /// Users it prompted or refused.
    pub users_affected: u64,
    /// Its prompts over active user-days.
    pub prompts_per_active_user_day: f64,
}

impl PolicyRow {
    /// The row's name as outputs show it: the policy, after its tenant when the log has
    /// `many_tenants`, with `(report-only)` after a report-only one.
    #[must_use]
    pub fn label(&self, many_tenants: bool) -> String {
        let name = qualified(many_tenants, &self.tenant, &self.policy);
        if self.report_only {
            format!("{name} (report-only)")
        } else {
            name
        }
    }
}

/// One example of a changed decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// Log file.
    pub file: String,
    /// Line in it.
    pub line: u64,
    /// When.
    pub at: String,
    /// Tenant and application (`acme/dashboard`).
    pub scope: String,
    /// User (as logged: possibly a pseudonym).
    pub user: String,
    /// Event (`operation:payout`).
    pub event: String,
    /// The old decision's deciding policies.
    pub old_policies: Vec<String>,
    /// The new decision's deciding policies.
    pub new_policies: Vec<String>,
}

/// Changed decisions with the same (old → new, policies).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeGroup {
    /// The tenant of its decisions.
    pub tenant: String,
    /// The old outcome (`step_up aal2`).
    pub from: String,
    /// The new outcome (`allow`).
    pub to: String,
    /// The policies that decided either, sorted.
    pub policies: Vec<String>,
    /// How many decisions.
    pub count: u64,
    /// The first few.
    pub examples: Vec<Example>,
}

impl ChangeGroup {
    /// `tenant: ` when the log has `many_tenants`, else nothing: what outputs put before a
    /// group.
    #[must_use]
    pub fn tenant_prefix(&self, many_tenants: bool) -> String {
        if many_tenants {
            format!("{}: ", self.tenant)
        } else {
            String::new()
        }
    }
}

/// An unreadable line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// Log file.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Why it could not be read.
    pub error: String,
}

/// What a backtest found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BacktestReport {
    /// The candidate policy set's hash.
    pub candidate: String,
    /// What the candidate is compared with: `baseline` or `recorded`.
    pub compared_with: String,
    /// The baseline policy set's hash, when there is one.
    pub baseline: Option<String>,
    /// Policy-set hashes that made the logged decisions, with their counts (the first
    /// [`POLICY_SETS_LISTED`]; any others under [`OTHER_POLICY_SETS`]).
    pub logged_policy_sets: BTreeMap<String, u64>,
    /// Decisions read.
    pub decisions: u64,
    /// Refusals made by a store failure (`deny` for `store_unavailable`: the store could not
    /// be read, or not saved to): kept as recorded on both sides.
    pub not_redecided: u64,
    /// Lines that could not be read.
    pub unreadable: u64,
    /// The first [`UNREADABLE_LISTED`] of them.
    pub unreadable_lines: Vec<BadLine>,
    /// Distinct users (a user of each tenant is one).
    pub active_users: u64,
    /// Whether the log holds decisions of more than one tenant (outputs then name each
    /// policy with its tenant).
    pub many_tenants: bool,
    /// Distinct (user, day) pairs.
    pub active_user_days: u64,
    /// First and last day (RFC 3339 dates).
    pub days: Option<(String, String)>,
    /// Totals of the old decisions (baseline or recorded).
    pub old: Totals,
    /// Totals of the new decisions (candidate).
    pub new: Totals,
    /// Per policy of the candidate set, by name.
    pub policies: Vec<PolicyRow>,
    /// Decisions whose outcome changed.
    pub changed: u64,
    /// Grouped, largest group first.
    pub changes: Vec<ChangeGroup>,
    /// Prompts per day (`2026-11-27`) per policy, old decisions. A policy is named
    /// `tenant/policy` when the log has more than one tenant.
    pub daily_old: BTreeMap<String, BTreeMap<String, u64>>,
    /// Prompts per day per policy, new decisions (report-only policies' would-be prompts too,
    /// under the policy's name: the chart sets them beside the prompts it enforces elsewhere).
    pub daily_new: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Default)]
struct Side {
    events: u64,
    fired: u64,
    prompts: u64,
    denials: u64,
    affected: HashSet<u32>,
    /// Per day, per (tenant, policy) (its id in [`Names`]).
    daily: BTreeMap<i64, BTreeMap<u32, u64>>,
}

#[derive(Default)]
struct PolicyCounts {
    report_only: bool,
    events: u64,
    fired: u64,
    prompts: u64,
    denials: u64,
    users: HashSet<u32>,
}

/// (tenant, old outcome, new outcome, deciding policies).
type ChangeKey = (String, String, String, Vec<String>);

/// A policy's row: (tenant, name, report-only).
type PolicyKey = (String, String, bool);

/// A backtest in progress.
pub struct Backtest {
    candidate: Arc<CompiledSet>,
    baseline: Option<Arc<CompiledSet>>,
    /// Users by a keyed hash of (tenant, user): no user id is kept.
    users: HashMap<u64, u32>,
    user_keys: RandomState,
    /// The first tenant seen, and whether another was.
    first_tenant: Option<String>,
    many_tenants: bool,
    user_days: HashSet<(u32, i64)>,
    /// Active user-days per tenant (a user is one tenant's): a policy's prompts per day are
    /// over its tenant's.
    tenant_user_days: HashMap<String, u64>,
    old: Side,
    new: Side,
    policies: Vec<(PolicyKey, PolicyCounts)>,
    policy_ids: HashMap<PolicyKey, usize>,
    scopes: HashMap<(String, String), Vec<usize>>,
    changes: HashMap<ChangeKey, (u64, Vec<Example>)>,
    changed: u64,
    report: BacktestReport,
    /// The names counted.
    names: Names,
}

/// Policy names by tenant.
type Known = HashMap<String, HashSet<String>>;

/// The policies of every scope of `set`, by tenant (the admin default included).
fn known_policies(set: &CompiledSet, into: &mut Known) {
    let m = &set.model;
    let scopes = m
        .tenants
        .keys()
        .map(|t| (t.as_str(), ""))
        .chain(m.applications.keys().map(|(t, a)| (t.as_str(), a.as_str())));
    for (t, a) in scopes {
        if let Ok(r) = m.resolve(t, a) {
            let names = into.entry(t.to_string()).or_default();
            names.extend(r.policies.iter().map(|p| p.name.clone()));
        }
    }
}

/// The names a backtest counts: the policies (by tenant) either set compared has, in any
/// scope; and, compared with the recorded decisions, the first [`LOGGED_NAMES`] others the log
/// gives (a policy the candidate removed or renamed keeps its recorded prompts under its own
/// name: a review), each of at most [`EXAMPLE_CHARS`] bytes.
#[derive(Default)]
struct Names {
    known: Known,
    /// Whether the old decisions are the recorded ones.
    recorded: bool,
    /// The log's own tenants and names kept (recorded decisions), and how many of each.
    logged: Known,
    logged_count: usize,
    logged_tenants: usize,
    /// Each (tenant, policy) counted, by id (the per-day counts hold ids, not copies).
    ids: HashMap<String, HashMap<String, u32>>,
    table: Vec<(String, String)>,
    /// Per-day counts of the log's own names (not the sets'), on both sides.
    logged_cells: usize,
}

/// How a (tenant, policy) is counted.
#[derive(Clone, Copy)]
enum As {
    /// As the log names it.
    Is,
    /// Under its tenant's `(other)`.
    TenantsOther,
    /// Under `(other)` of `(other)`.
    Other,
}

impl As {
    fn names<'a>(self, tenant: &'a str, policy: &'a str) -> (&'a str, &'a str) {
        match self {
            As::Is => (tenant, policy),
            As::TenantsOther => (tenant, OTHER_NAMES),
            As::Other => (OTHER_NAMES, OTHER_NAMES),
        }
    }
}

impl Names {
    /// Whether the sets compared, or the log (recorded decisions), name tenant `tenant`.
    fn has_tenant(&self, tenant: &str) -> bool {
        self.known.contains_key(tenant) || self.logged.contains_key(tenant)
    }

    /// Notes a tenant the log gives (recorded decisions): kept, within the budget of the log's
    /// own names, whether or not its lines name a policy (its changes are then grouped under
    /// its name from its first line on).
    fn note_tenant(&mut self, tenant: &str) {
        if self.recorded
            && tenant.len() <= EXAMPLE_CHARS
            && !self.has_tenant(tenant)
            && self.logged_tenants < LOGGED_TENANTS
        {
            self.logged_tenants += 1;
            self.logged.entry(tenant.to_string()).or_default();
        }
    }

    /// `(tenant, policy)` as counted: each as the log names it where the sets have it (or
    /// where it is among the log's own names kept), else [`OTHER_NAMES`]; and whether it is the
    /// log's own.
    fn counted(&mut self, tenant: &str, policy: &str) -> (As, bool) {
        let known = self.known.get(tenant);
        if known.is_some_and(|names| names.contains(policy)) {
            return (As::Is, false);
        }
        if self.recorded
            && (known.is_some() || self.logged.contains_key(tenant))
            && policy.len() <= EXAMPLE_CHARS
        {
            let logged = self.logged.get(tenant).is_some_and(|n| n.contains(policy));
            if logged || self.logged_count < LOGGED_NAMES {
                if !logged {
                    self.logged_count += 1;
                    self.logged
                        .entry(tenant.to_string())
                        .or_default()
                        .insert(policy.to_string());
                }
                return (As::Is, true);
            }
        }
        if known.is_some() || self.logged.contains_key(tenant) {
            (As::TenantsOther, false)
        } else {
            (As::Other, false)
        }
    }

    /// The id of `(tenant, policy)` as counted.
    fn id(&mut self, tenant: &str, policy: &str) -> (u32, bool) {
        let (how, own) = self.counted(tenant, policy);
        let (t, p) = how.names(tenant, policy);
        (self.intern(t, p), own)
    }

    /// The id of the name `(t, p)` exactly.
    fn intern(&mut self, t: &str, p: &str) -> u32 {
        if let Some(i) = self.ids.get(t).and_then(|m| m.get(p)) {
            return *i;
        }
        let i = u32::try_from(self.table.len()).unwrap_or(u32::MAX);
        self.table.push((t.to_string(), p.to_string()));
        self.ids
            .entry(t.to_string())
            .or_default()
            .insert(p.to_string(), i);
        i
    }

    /// The name counted for `policy` of `tenant`.
    fn policy(&mut self, tenant: &str, policy: &str) -> String {
        let (how, _) = self.counted(tenant, policy);
        how.names(tenant, policy).1.to_string()
    }

    /// Counts one prompt of `(tenant, policy)` on day `m`: the log's own names, past
    /// [`LOGGED_CELLS`] per-day counts, under `(other)`.
    fn count_on(&mut self, m: &mut BTreeMap<u32, u64>, tenant: &str, policy: &str) {
        let (mut i, own) = self.id(tenant, policy);
        if own && !m.contains_key(&i) {
            if self.logged_cells >= LOGGED_CELLS {
                // Under its tenant's `(other)` (a log's own name is counted only where its
                // tenant is: tenants are never merged).
                i = self.intern(tenant, OTHER_NAMES);
            } else {
                self.logged_cells += 1;
            }
        }
        *m.entry(i).or_default() += 1;
    }

    /// The (tenant, policy) of id `i`.
    fn name(&self, i: u32) -> (&str, &str) {
        self.table
            .get(i as usize)
            .map_or((OTHER_NAMES, OTHER_NAMES), |(t, p)| {
                (t.as_str(), p.as_str())
            })
    }
}

fn day_name(day: i64) -> String {
    day.checked_mul(86_400)
        .and_then(|t| Timestamp(t).to_rfc3339().get(..10).map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

impl Backtest {
    /// A backtest of `candidate`, compared with `baseline`, or with the recorded decisions.
    #[must_use]
    pub fn new(candidate: Arc<CompiledSet>, baseline: Option<Arc<CompiledSet>>) -> Self {
        let report = BacktestReport {
            candidate: candidate.hash().to_string(),
            compared_with: if baseline.is_some() {
                "baseline"
            } else {
                "recorded"
            }
            .to_string(),
            baseline: baseline.as_ref().map(|b| b.hash().to_string()),
            ..BacktestReport::default()
        };
        Backtest {
            candidate,
            baseline,
            users: HashMap::new(),
            user_keys: RandomState::new(),
            first_tenant: None,
            many_tenants: false,
            user_days: HashSet::new(),
            tenant_user_days: HashMap::new(),
            old: Side::default(),
            new: Side::default(),
            policies: Vec::new(),
            policy_ids: HashMap::new(),
            scopes: HashMap::new(),
            changes: HashMap::new(),
            changed: 0,
            report,
            names: Names::default(),
        }
        .knowing()
    }

    fn knowing(mut self) -> Self {
        let mut known = Known::new();
        known_policies(&self.candidate, &mut known);
        if let Some(b) = &self.baseline {
            known_policies(b, &mut known);
        }
        self.names = Names {
            known,
            recorded: self.baseline.is_none(),
            ..Names::default()
        };
        self
    }

    /// The candidate's policies in force for a scope (ids into `policies`).
    fn scope_policies(&mut self, tenant: &str, app: &str) -> &[usize] {
        let key = (tenant.to_string(), app.to_string());
        if !self.scopes.contains_key(&key) {
            // Only the candidate's scopes are kept (a log's other names would grow the table).
            let Ok(r) = self.candidate.model.resolve(tenant, app) else {
                return &[];
            };
            let names: Vec<(String, bool)> = r
                .policies
                .iter()
                .map(|p| (p.name.clone(), p.report_only))
                .collect();
            let ids = names
                .iter()
                .map(|(name, ro)| self.policy_id(tenant, name, *ro))
                .collect();
            self.scopes.insert(key.clone(), ids);
        }
        self.scopes.get(&key).map_or(&[], Vec::as_slice)
    }

    fn policy_id(&mut self, tenant: &str, name: &str, report_only: bool) -> usize {
        let key = (tenant.to_string(), name.to_string(), report_only);
        if let Some(i) = self.policy_ids.get(&key) {
            return *i;
        }
        let i = self.policies.len();
        let counts = PolicyCounts {
            report_only,
            ..PolicyCounts::default()
        };
        self.policies.push((key.clone(), counts));
        self.policy_ids.insert(key, i);
        i
    }

    /// A line that could not be read.
    pub fn unreadable(&mut self, file: &str, e: &LineError) {
        self.report.unreadable += 1;
        if self.report.unreadable_lines.len() < UNREADABLE_LISTED {
            self.report.unreadable_lines.push(BadLine {
                file: file.to_string(),
                line: e.line,
                error: e.error.clone(),
            });
        }
    }

    /// Decides one logged record again and counts it. `file` and `line` locate examples. A
    /// record that cannot be decided again ([`Record::check`]) is an unreadable line.
    pub fn add(&mut self, file: &str, line: u64, rec: &Record) {
        if let Err(error) = rec.check() {
            self.unreadable(file, &LineError { line, error });
            return;
        }
        self.report.decisions += 1;
        let sets = &mut self.report.logged_policy_sets;
        let set = if sets.contains_key(&rec.policy_set) || sets.len() < POLICY_SETS_LISTED {
            rec.policy_set.clone()
        } else {
            OTHER_POLICY_SETS.to_string()
        };
        *sets.entry(set).or_default() += 1;
        self.names.note_tenant(&rec.tenant);
        match &self.first_tenant {
            None => self.first_tenant = Some(rec.tenant.clone()),
            Some(t) => self.many_tenants |= *t != rec.tenant,
        }
        let n_users = u32::try_from(self.users.len()).unwrap_or(u32::MAX);
        let key = self
            .user_keys
            .hash_one((rec.tenant.as_str(), rec.user.as_str()));
        let user = *self.users.entry(key).or_insert(n_users);
        let day = rec.now.0.div_euclid(86_400);
        if self.user_days.insert((user, day)) {
            *self.tenant_user_days.entry(rec.tenant.clone()).or_default() += 1;
        }
        let recorded = &rec.decision;
        let (old, new) = match rec.state() {
            Some(state) if !store_failure(recorded) => {
                let req = rec.request();
                // What a logged decision keeps is the verdict: no audit record is built.
                let new = LoggedDecision::of(&self.candidate.decide_with(
                    &req,
                    &state,
                    stepup_engine::Record::Verdict,
                ));
                let old = match &self.baseline {
                    Some(b) => LoggedDecision::of(&b.decide_with(
                        &req,
                        &state,
                        stepup_engine::Record::Verdict,
                    )),
                    None if commit_failed(recorded) => LoggedDecision {
                        // The rules completed it; the store did not save it. Compared as the
                        // completion, not as a failure the candidate would "fix".
                        kind: DecisionKind::Completed,
                        ..recorded.clone()
                    },
                    None => recorded.clone(),
                };
                (old, new)
            }
            // A store failure's refusal (a record without a state is one: checked above). No
            // rule made it, so none of the candidate's policies is counted for it.
            _ => {
                self.report.not_redecided += 1;
                count(
                    &mut self.old,
                    recorded,
                    &mut self.names,
                    &rec.tenant,
                    user,
                    day,
                );
                count(
                    &mut self.new,
                    recorded,
                    &mut self.names,
                    &rec.tenant,
                    user,
                    day,
                );
                return;
            }
        };
        count(&mut self.old, &old, &mut self.names, &rec.tenant, user, day);
        count(&mut self.new, &new, &mut self.names, &rec.tenant, user, day);
        self.count_policies(rec, &new, user);
        if !old.same_outcome(&new) {
            self.changed += 1;
            let old_p: Vec<String> = old.deciding().cloned().collect();
            let new_p: Vec<String> = new.deciding().cloned().collect();
            let mut named: BTreeSet<String> = old_p
                .iter()
                .chain(new_p.iter())
                .map(|p| self.names.policy(&rec.tenant, p))
                .collect();
            // A group names at most `EXAMPLE_NAMES` policies, and `(other)` last for the rest.
            let mut other = named.remove(OTHER_NAMES);
            let mut policies: Vec<String> = named.into_iter().collect();
            if policies.len() > EXAMPLE_NAMES {
                policies.truncate(EXAMPLE_NAMES);
                other = true;
            }
            if other {
                policies.push(OTHER_NAMES.to_string());
            }
            // Two outcomes that read the same in short (`step_up aal2` both) differ in the rest
            // of their requirement: the group says which.
            let (from, to) = match (old.label(), new.label()) {
                (a, b) if a == b => (old.full_label(), new.full_label()),
                labels => labels,
            };
            let tenant = if self.names.has_tenant(&rec.tenant) {
                rec.tenant.clone()
            } else {
                OTHER_NAMES.to_string()
            };
            let mut key = (tenant, from, to, policies);
            if self.changes.len() >= CHANGE_GROUPS && !self.changes.contains_key(&key) {
                key = (
                    OTHER_NAMES.to_string(),
                    OTHER_NAMES.to_string(),
                    OTHER_NAMES.to_string(),
                    Vec::new(),
                );
            }
            let g = self.changes.entry(key).or_default();
            g.0 += 1;
            if g.1.len() < EXAMPLES_PER_GROUP {
                // An example quotes the log: each of its texts, and its lists, bounded.
                let names = |v: Vec<String>| -> Vec<String> {
                    v.into_iter()
                        .take(EXAMPLE_NAMES)
                        .map(|p| short(&p))
                        .collect()
                };
                g.1.push(Example {
                    file: short(file),
                    line,
                    at: short(&rec.at),
                    scope: short(&if rec.application.is_empty() {
                        rec.tenant.clone()
                    } else {
                        format!("{}/{}", rec.tenant, rec.application)
                    }),
                    user: short(&rec.user),
                    event: short(&rec.event_key()),
                    old_policies: names(old_p),
                    new_policies: names(new_p),
                });
            }
        }
    }

    fn count_policies(&mut self, rec: &Record, d: &LoggedDecision, user: u32) {
        if !matches!(rec.event, crate::record::LogEvent::StepUp { .. }) {
            let ids: Vec<usize> = self.scope_policies(&rec.tenant, &rec.application).to_vec();
            for i in ids {
                if let Some((_, c)) = self.policies.get_mut(i) {
                    c.events += 1;
                }
            }
        }
        if d.kind == DecisionKind::Completed || d.kind == DecisionKind::Failed {
            return;
        }
        for p in &d.fired {
            let i = self.policy_id(&rec.tenant, p, false);
            let deciding = !d.satisfied.contains(p);
            if let Some((_, c)) = self.policies.get_mut(i) {
                c.fired += 1;
                if deciding && d.kind == DecisionKind::StepUp {
                    c.prompts += 1;
                    c.users.insert(user);
                } else if deciding && d.kind == DecisionKind::Deny {
                    c.denials += 1;
                    c.users.insert(user);
                }
            }
        }
        for r in &d.report_only {
            if r.would_be == WouldBe::NotFired {
                continue;
            }
            let i = self.policy_id(&rec.tenant, &r.policy, true);
            if let Some((_, c)) = self.policies.get_mut(i) {
                c.fired += 1;
                match r.would_be {
                    WouldBe::StepUp => {
                        c.prompts += 1;
                        c.users.insert(user);
                    }
                    WouldBe::Deny => {
                        c.denials += 1;
                        c.users.insert(user);
                    }
                    WouldBe::NotFired | WouldBe::Satisfied => {}
                }
            }
        }
    }

    /// The report.
    #[must_use]
    pub fn finish(mut self) -> BacktestReport {
        let user_days = self.user_days.len() as u64;
        let per_day = |n: u64| {
            if user_days == 0 {
                0.0
            } else {
                n as f64 / user_days as f64
            }
        };
        let totals = |s: &Side| Totals {
            events: s.events,
            fired: s.fired,
            prompts: s.prompts,
            denials: s.denials,
            users_affected: s.affected.len() as u64,
            prompts_per_active_user_day: per_day(s.prompts),
        };
        let many = self.many_tenants;
        let daily = |s: &Side| -> BTreeMap<String, BTreeMap<String, u64>> {
            s.daily
                .iter()
                .map(|(d, m)| {
                    // Two names may read the same qualified (`(other)` of a tenant and of
                    // `(other)` in a log of one tenant): their counts add up.
                    let mut per_policy = BTreeMap::new();
                    for (i, n) in m {
                        let (tenant, policy) = self.names.name(*i);
                        *per_policy
                            .entry(qualified(many, tenant, policy))
                            .or_default() += *n;
                    }
                    (day_name(*d), per_policy)
                })
                .collect()
        };
        let mut r = self.report;
        r.active_users = self.users.len() as u64;
        r.many_tenants = many;
        r.active_user_days = user_days;
        let days: BTreeSet<i64> = self.user_days.iter().map(|(_, d)| *d).collect();
        r.days = days
            .first()
            .zip(days.last())
            .map(|(a, b)| (day_name(*a), day_name(*b)));
        r.old = totals(&self.old);
        r.new = totals(&self.new);
        r.daily_old = daily(&self.old);
        r.daily_new = daily(&self.new);
        self.policies.sort_by(|a, b| a.0.cmp(&b.0));
        r.policies = self
            .policies
            .iter()
            .map(|((tenant, name, _), c)| PolicyRow {
                tenant: tenant.clone(),
                policy: name.clone(),
                report_only: c.report_only,
                events: c.events,
                fired: c.fired,
                prompts: c.prompts,
                denials: c.denials,
                users_affected: c.users.len() as u64,
                // Over its tenant's active user-days (another tenant's traffic is not its).
                prompts_per_active_user_day: match self.tenant_user_days.get(tenant) {
                    Some(&d) if d > 0 => c.prompts as f64 / d as f64,
                    _ => 0.0,
                },
            })
            .collect();
        r.changed = self.changed;
        let mut groups: Vec<ChangeGroup> = self
            .changes
            .into_iter()
            .map(
                |((tenant, from, to, policies), (count, examples))| ChangeGroup {
                    tenant,
                    from,
                    to,
                    policies,
                    count,
                    examples,
                },
            )
            .collect();
        groups.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                (&a.tenant, &a.from, &a.to, &a.policies).cmp(&(
                    &b.tenant,
                    &b.from,
                    &b.to,
                    &b.policies,
                ))
            })
        });
        r.changes = groups;
        r
    }
}

/// `policy`, or `tenant/policy` when the log has `many` tenants.
fn qualified(many: bool, tenant: &str, policy: &str) -> String {
    if many {
        format!("{tenant}/{policy}")
    } else {
        policy.to_string()
    }
}

fn count(s: &mut Side, d: &LoggedDecision, names: &mut Names, tenant: &str, user: u32, day: i64) {
    s.events += 1;
    if !d.fired.is_empty() && !matches!(d.kind, DecisionKind::Completed | DecisionKind::Failed) {
        s.fired += 1;
    }
    match d.kind {
        DecisionKind::StepUp => {
            s.prompts += 1;
            s.affected.insert(user);
            let m = s.daily.entry(day).or_default();
            for p in d.deciding() {
                names.count_on(m, tenant, p);
            }
        }
        DecisionKind::Deny => {
            s.denials += 1;
            s.affected.insert(user);
        }
        DecisionKind::Allow | DecisionKind::Completed | DecisionKind::Failed => {}
    }
    // Report-only policies' would-be prompts, beside the enforced ones.
    for r in &d.report_only {
        if r.would_be == WouldBe::StepUp {
            names.count_on(s.daily.entry(day).or_default(), tenant, &r.policy);
        }
    }
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "0%".to_string()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

/// Policy sets named in the text report.
const SETS_NAMED: usize = 5;

/// The report as text.
#[must_use]
pub fn render(r: &BacktestReport) -> String {
    let mut out = String::new();
    let against = match &r.baseline {
        Some(b) => format!("baseline {}", b.get(..12).unwrap_or(b)),
        None => "the recorded decisions".to_string(),
    };
    let _ = writeln!(
        out,
        "backtest of {} against {against}",
        r.candidate.get(..12).unwrap_or(&r.candidate)
    );
    let period = r
        .days
        .as_ref()
        .map(|(a, b)| format!(", {a} to {b}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} decisions, {} users, {} user-days{period}",
        r.decisions, r.active_users, r.active_user_days
    );
    // The rule versions that made the recorded decisions: against them, a log that mixes
    // versions shows the changes between them too.
    // The most used first; a few are named (all are in `--format json`).
    let mut by_use: Vec<(&String, &u64)> = r.logged_policy_sets.iter().collect();
    by_use.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut sets: Vec<String> = by_use
        .iter()
        .take(SETS_NAMED)
        .map(|(h, n)| format!("{} ({n})", h.get(..12).unwrap_or(h)))
        .collect();
    if by_use.len() > SETS_NAMED {
        sets.push(format!("and {} more", by_use.len() - SETS_NAMED));
    }
    if !sets.is_empty() {
        let _ = writeln!(out, "  logged by policy set {}", sets.join(", "));
    }
    if r.logged_policy_sets.len() > 1 && r.baseline.is_none() {
        // `(other)` stands for at least one more set beyond those listed.
        let sets = if r.logged_policy_sets.contains_key(OTHER_POLICY_SETS) {
            format!("more than {POLICY_SETS_LISTED}")
        } else {
            r.logged_policy_sets.len().to_string()
        };
        let _ = writeln!(
            out,
            "  warning: the log was decided by {sets} policy sets: the changes against the \
             recorded decisions include those between them (compare with --baseline)"
        );
    }
    if r.not_redecided > 0 {
        let _ = writeln!(
            out,
            "  {} refusal(s) made by a store failure, kept as recorded",
            r.not_redecided
        );
    }
    let _ = writeln!(out, "\noverall            old          new");
    let rows: [(&str, String, String); 6] = [
        ("events", r.old.events.to_string(), r.new.events.to_string()),
        ("fired", r.old.fired.to_string(), r.new.fired.to_string()),
        (
            "prompts",
            r.old.prompts.to_string(),
            r.new.prompts.to_string(),
        ),
        (
            "denials",
            r.old.denials.to_string(),
            r.new.denials.to_string(),
        ),
        (
            "users affected",
            r.old.users_affected.to_string(),
            r.new.users_affected.to_string(),
        ),
        (
            "prompts/user/day",
            format!("{:.3}", r.old.prompts_per_active_user_day),
            format!("{:.3}", r.new.prompts_per_active_user_day),
        ),
    ];
    for (what, a, b) in rows {
        let _ = writeln!(out, "  {what:<17}{a:<13}{b}");
    }
    let _ = writeln!(out, "\nper policy (candidate rules)");
    let headers = [
        "policy",
        "events",
        "fired",
        "prompts",
        "denials",
        "users",
        "prompts/user/day",
    ];
    let rows: Vec<[String; 7]> = r
        .policies
        .iter()
        .map(|p| {
            [
                p.label(r.many_tenants),
                p.events.to_string(),
                p.fired.to_string(),
                p.prompts.to_string(),
                p.denials.to_string(),
                p.users_affected.to_string(),
                format!("{:.3}", p.prompts_per_active_user_day),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .zip(widths.iter())
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = " ".repeat(w.saturating_sub(c.chars().count()));
                if i == 0 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        out,
        "  {}",
        line(headers.iter().map(|h| (*h).to_string()).collect())
    );
    for row in rows {
        let _ = writeln!(out, "  {}", line(row.to_vec()));
    }
    let _ = writeln!(
        out,
        "\nchanged decisions: {} of {} ({})",
        r.changed,
        r.decisions,
        pct(r.changed, r.decisions)
    );
    for g in &r.changes {
        let _ = writeln!(
            out,
            "  {}{} → {}  [{}]  {} decision{}",
            g.tenant_prefix(r.many_tenants),
            g.from,
            g.to,
            g.policies.join(", "),
            g.count,
            if g.count == 1 { "" } else { "s" }
        );
        for e in &g.examples {
            let _ = writeln!(
                out,
                "      {}:{}  {}  {}  {}  {}",
                e.file, e.line, e.at, e.scope, e.user, e.event
            );
        }
    }
    if r.unreadable > 0 {
        let _ = writeln!(out, "\nunreadable lines: {}", r.unreadable);
        for b in &r.unreadable_lines {
            let _ = writeln!(out, "  {}:{}: {}", b.file, b.line, b.error);
        }
        if r.unreadable > r.unreadable_lines.len() as u64 {
            let _ = writeln!(
                out,
                "  … and {} more",
                r.unreadable - r.unreadable_lines.len() as u64
            );
        }
    }
    out
}

/// Whether a logged `failed` completion failed only because it could not be saved: the engine
/// completed it, then the store refused the commit (its errors end with
/// [`stepup_engine::engine::NOTHING_SAVED`]). A line can claim it falsely, as it can claim any
/// recorded outcome: compared with the recorded decisions, a log is only as honest as its writer
/// (`--baseline` re-decides both sides).
fn commit_failed(d: &LoggedDecision) -> bool {
    d.kind == DecisionKind::Failed
        && d.errors
            .iter()
            .any(|e| e.ends_with(stepup_engine::engine::NOTHING_SAVED))
}
