//! The policy vocabulary: the words a condition is made of and a tenant's risk settings —
//! comparison operators, risk signals, `first_access`, the risk configuration. Shared by the
//! syntax tree ([`crate::ast`] re-exports [`CmpOp`]), the checked model ([`crate::model`]
//! re-exports all of it) and the engine; it knows nothing of syntax.
//!
//! [`SignalKind::ALL`] is the only list of signals: the names a condition accepts, the help texts
//! that list them and the risk weights are derived from it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::feed::{FeedWarnings, ThreatFeed};

/// Default `max_speed` of the impossible-travel signal, km/h (a jet's cruising speed).
pub const DEFAULT_MAX_SPEED_KMH: u32 = 900;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CmpOp {
    /// The operator as written.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
    /// Applies the operator to two ordered values.
    #[must_use]
    pub fn apply<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

/// A risk signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Device fingerprint not seen in the user's successful sign-ins.
    NewDevice,
    /// No successful sign-in from this country in the window.
    NewCountry,
    /// Faster than `max_speed` since the last successful sign-in.
    ImpossibleTravel,
    /// IP address in a threat feed.
    ThreatIntel,
}

impl SignalKind {
    /// Every signal, in weight-table order.
    pub const ALL: [SignalKind; 4] = [
        SignalKind::NewDevice,
        SignalKind::NewCountry,
        SignalKind::ImpossibleTravel,
        SignalKind::ThreatIntel,
    ];
    /// The signal's name in policies.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SignalKind::NewDevice => "new_device",
            SignalKind::NewCountry => "new_country",
            SignalKind::ImpossibleTravel => "impossible_travel",
            SignalKind::ThreatIntel => "threat_intel",
        }
    }
    /// Parses a signal name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        SignalKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Whether a condition gives the signal a window in days (`new_country(30d)`).
    #[must_use]
    pub const fn takes_window(self) -> bool {
        matches!(self, SignalKind::NewCountry)
    }
    /// How a condition writes the signal: `new_device`, `new_country(Nd)`.
    #[must_use]
    pub fn usage(self) -> String {
        if self.takes_window() {
            format!("{}(Nd)", self.as_str())
        } else {
            self.as_str().to_string()
        }
    }
    /// Every name a condition can use as a signal: [`SignalKind::ALL`]'s, then
    /// [`FIRST_ACCESS`].
    #[must_use]
    pub fn condition_names() -> Vec<&'static str> {
        let mut v: Vec<&str> = SignalKind::ALL.map(SignalKind::as_str).to_vec();
        v.push(FIRST_ACCESS);
        v
    }
    /// The help listing the signals a condition can use: "signals are `new_device`, …".
    #[must_use]
    pub fn condition_help() -> String {
        let mut v: Vec<String> = SignalKind::ALL.map(SignalKind::usage).to_vec();
        v.push(format!("{FIRST_ACCESS}(resource)"));
        format!("signals are {}", and_list(&v))
    }
    /// The help listing the signals a script reads as `ctx.signals.NAME`.
    #[must_use]
    pub fn script_help() -> String {
        format!(
            "signals are {}",
            and_list(&SignalKind::ALL.map(SignalKind::as_str))
        )
    }
}

/// "`a`, `b` and `c`".
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, init)) => format!("{} and {last}", init.join(", ")),
    }
}

/// `first_access(resource[, window])`: the first access to a resource class. A condition, like a
/// signal, but read from the access history rather than weighted into the risk score, so not a
/// [`SignalKind`].
pub const FIRST_ACCESS: &str = "first_access";

/// The default window of `new_country` when the risk score needs it (30 days).
pub const DEFAULT_COUNTRY_WINDOW_DAYS: u32 = 30;

/// A tenant's risk configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskConfig {
    /// Weight of each signal in the score, in [`SignalKind::ALL`] order.
    pub weights: [u32; 4],
    /// Speed above which travel is impossible.
    pub max_speed_kmh: u32,
    /// Threat feed files, resolved relative to the policy file that names them.
    pub threat_feeds: Vec<PathBuf>,
    /// The ranges of every feed in `threat_feeds`, merged (loaded when the rules are checked).
    pub feed: Arc<ThreatFeed>,
    /// The feeds' malformed lines, skipped (`stepup check` warns about them, S009).
    pub feed_warnings: FeedWarnings,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            weights: [30, 40, 70, 80],
            max_speed_kmh: DEFAULT_MAX_SPEED_KMH,
            threat_feeds: Vec::new(),
            feed: Arc::default(),
            feed_warnings: FeedWarnings::default(),
        }
    }
}

impl RiskConfig {
    /// The weight of one signal.
    #[must_use]
    pub fn weight(&self, s: SignalKind) -> u32 {
        self.weights.get(s as usize).copied().unwrap_or(0)
    }
}

/// How an operation or resource name reads: its ASCII letters and digits, lowercased, with the
/// ones drawn alike read as one (`I`, `l`, `1`, `|` as `l`; `O`, `0` as `o`); separators,
/// punctuation and every other character left out. Two names that read alike are one name to
/// a reader (`DeleteAccount`, `delete_account`): the engine refuses a request's name that
/// reads like one the policies spell otherwise, and `stepup check` flags two such spellings in
/// one tenant's conditions (S015).
pub fn reading(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars()
        .map(|c| if c == '|' { 'l' } else { c })
        .filter(char::is_ascii_alphanumeric)
        .map(|c| match c.to_ascii_lowercase() {
            'i' | '1' => 'l',
            '0' => 'o',
            c => c,
        })
}
