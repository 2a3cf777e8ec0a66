//! Risk signals and the risk score (SPEC §5), and threat-intelligence feeds.
//!
//! Signals describe a sign-in attempt: they are computed for events that carry a context (every
//! sign-in; an operation or access only when it carries its own). Without a usable history
//! (store unavailable) every signal is *unknown*, which makes conditions that read it fire.

use serde::Serialize;
use stepup_dsl::ast::CmpOp;
use stepup_dsl::model::{DEFAULT_COUNTRY_WINDOW_DAYS, RiskConfig, SignalKind};

use crate::request::{Context, Location};
use crate::state::UserHistory;
use crate::tri::Tri;

/// Jumps shorter than this are geolocation noise, never impossible travel.
pub const NOISE_KM: f64 = 100.0;
const EARTH_RADIUS_KM: f64 = 6_371.0;

/// How far in the future a time in the history may lie and still count as now: the clocks of
/// two instances sharing a store differ a little. Further ahead, the time is not evidence the
/// engine can read (a store written by hand, imported, or by an instance whose clock runs
/// ahead): the signal that reads it (`new_country`, `impossible_travel`, `first_access`) is
/// unknown (SPEC §10), and the next allowed event's own time replaces it.
pub const HISTORY_CLOCK_SKEW_SECS: i64 = 300;

/// How long before `now` the history saw something it dated `at` (0 when up to the clocks'
/// skew later), or `None` when `at` is later still (see [`HISTORY_CLOCK_SKEW_SECS`]).
#[must_use]
pub fn age(now: stepup_core::Timestamp, at: stepup_core::Timestamp) -> Option<i64> {
    let age = now.since(at);
    (age >= -HISTORY_CLOCK_SKEW_SECS).then_some(age.max(0))
}

/// Great-circle distance in km (haversine).
#[must_use]
pub fn distance_km(a: Location, b: Location) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

pub use stepup_dsl::feed::{FeedWarning, FeedWarnings, ThreatFeed};

/// Computes signals for one event, lazily and at most once each.
///
/// Three-valued (SPEC §10): a signal whose input is missing from the event's context (no device
/// fingerprint, country, location or readable IP) is *unknown*, also where no value of it could
/// change the answer (no reference place for impossible travel; no threat feed loaded).
/// An event without a context (an operation or access that carries none) has no signals.
pub struct Signals<'a> {
    ctx: Option<&'a Context>,
    history: Option<&'a UserHistory>,
    config: &'a RiskConfig,
    feed: &'a ThreatFeed,
    now: stepup_core::Timestamp,
    /// Each signal's value once computed (0: not yet), a cell each: one array in one cell was
    /// written a byte and read back whole, which waited on the processor's store buffer at
    /// every signal (about half of the score's time, sampled).
    memo: [std::cell::Cell<u8>; 4],
    country_memo: std::cell::Cell<Option<(u32, Tri)>>,
    score_memo: std::cell::Cell<Option<ScoreRange>>,
}

/// The risk score as a range: from the weights of the signals known present to that plus the
/// weights of the unknown ones (capped at 100; the platform's score where higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScoreRange {
    /// Lowest possible score.
    pub min: u32,
    /// Highest possible score.
    pub max: u32,
}

impl ScoreRange {
    /// The score, when it is known exactly.
    #[must_use]
    pub const fn exact(self) -> Option<u32> {
        if self.min == self.max {
            Some(self.min)
        } else {
            None
        }
    }
    /// `score OP v` over the range: true or false when every score in it agrees, else unknown.
    #[must_use]
    pub fn compare(self, op: CmpOp, v: f64) -> Tri {
        let (mut any_true, mut any_false) = (false, false);
        for s in self.min..=self.max {
            if op.apply(&f64::from(s), &v) {
                any_true = true;
            } else {
                any_false = true;
            }
        }
        match (any_true, any_false) {
            (true, false) => Tri::True,
            (false, true) => Tri::False,
            _ => Tri::Unknown,
        }
    }
}

impl<'a> Signals<'a> {
    /// Signals for an event with this context (none: every signal is false).
    #[must_use]
    pub fn new(
        ctx: Option<&'a Context>,
        history: Option<&'a UserHistory>,
        config: &'a RiskConfig,
        feed: &'a ThreatFeed,
        now: stepup_core::Timestamp,
    ) -> Self {
        Signals {
            ctx,
            history,
            config,
            feed,
            now,
            memo: Default::default(),
            country_memo: std::cell::Cell::new(None),
            score_memo: std::cell::Cell::new(None),
        }
    }

    /// One signal's value (`days` is the window of `new_country`).
    pub fn get(&self, kind: SignalKind, days: u32) -> Tri {
        // An event without a context has no signals: known without a memo cell (an operation
        // usually carries none, and a step-up's audit record reads all four).
        if self.ctx.is_none() {
            return Tri::False;
        }
        if kind == SignalKind::NewCountry {
            if let Some((d, v)) = self.country_memo.get()
                && d == days
            {
                return v;
            }
            let v = self.compute(kind, days);
            self.country_memo.set(Some((days, v)));
            return v;
        }
        let Some(memo) = self.memo.get(kind as usize) else {
            return self.compute(kind, days);
        };
        if memo.get() != 0 {
            return Tri::from_u8(memo.get());
        }
        let v = self.compute(kind, days);
        memo.set(v.to_u8());
        v
    }

    fn compute(&self, kind: SignalKind, days: u32) -> Tri {
        let Some(ctx) = self.ctx else {
            return Tri::False;
        };
        if kind == SignalKind::ThreatIntel {
            // The feed does not need the history.
            return self.threat(ctx);
        }
        let Some(h) = self.history else {
            // Store unavailable: fail closed.
            return Tri::Unknown;
        };
        match kind {
            SignalKind::NewDevice => match ctx.device_id() {
                Some(d) => Tri::from(!h.devices.contains(d)),
                None => Tri::Unknown,
            },
            SignalKind::NewCountry => match ctx.country_code() {
                Some(c) => match h.country_seen(c) {
                    Some((_, seen)) => match age(self.now, *seen) {
                        Some(age) => Tri::from(age > i64::from(days) * 86_400),
                        None => Tri::Unknown,
                    },
                    None => Tri::True,
                },
                None => Tri::Unknown,
            },
            SignalKind::ImpossibleTravel => {
                // No location (or one not on Earth: out of range, not finite) is unknown (SPEC
                // §10), whether or not there is a place to travel from: what the engine does
                // not know never reads as `false`.
                let Some(here) = Location::valid(ctx.location) else {
                    return Tri::Unknown;
                };
                let Some((at, there)) = h
                    .last_sign_in
                    .as_ref()
                    .and_then(|l| l.location.map(|loc| (l.at, loc)))
                else {
                    // No known place to travel from: no location could make it impossible.
                    return Tri::False;
                };
                // A reference place that is not on Earth (a store written by hand) is unknown.
                if !there.is_valid() {
                    return Tri::Unknown;
                }
                let km = distance_km(there, here);
                if km < NOISE_KM {
                    return Tri::False;
                }
                let Some(secs) = age(self.now, at) else {
                    return Tri::Unknown;
                };
                // speed > max  ⇔  km * 3600 > max * secs (no division, exact at the boundary).
                Tri::from(
                    secs <= 0 || km * 3_600.0 > f64::from(self.config.max_speed_kmh) * secs as f64,
                )
            }
            SignalKind::ThreatIntel => self.threat(ctx),
        }
    }

    fn threat(&self, ctx: &Context) -> Tri {
        // An address we do not have or cannot read is unknown (SPEC §10), also when no feed is
        // loaded: what the engine does not know never reads as `false`.
        match ctx.ip_addr() {
            Some(Some(a)) => Tri::from(self.feed.contains(a)),
            None | Some(None) => Tri::Unknown,
        }
    }

    /// Why a signal is unknown, for explanations and audit records.
    #[must_use]
    pub fn unknown_reason(&self, kind: SignalKind) -> String {
        let input = match kind {
            SignalKind::ThreatIntel => {
                return match self.ctx.and_then(|c| c.ip.as_deref()) {
                    Some(ip) => format!(
                        "`threat_intel` is unknown: `{}` is not an IP address",
                        ip.chars().take(64).collect::<String>()
                    ),
                    None => "`threat_intel` is unknown: the event has no IP address".to_string(),
                };
            }
            _ if self.history.is_none() => {
                return format!(
                    "`{}` is unknown: the history store is unavailable",
                    kind.as_str()
                );
            }
            // In the order `compute` asks: the event's place, then the history's.
            SignalKind::ImpossibleTravel => {
                let here = self.ctx.and_then(|c| c.location);
                let there = self
                    .history
                    .and_then(|h| h.last_sign_in.as_ref())
                    .and_then(|l| l.location);
                return match (here, there) {
                    (None, _) => "`impossible_travel` is unknown: the event has no location",
                    (Some(_), _) if Location::valid(here).is_none() => {
                        "`impossible_travel` is unknown: the event's location is not a place on Earth"
                    }
                    (Some(_), Some(there)) if !there.is_valid() => {
                        "`impossible_travel` is unknown: the history's last sign-in place is not a place on Earth"
                    }
                    _ if self.dated_ahead(kind) => {
                        "`impossible_travel` is unknown: the history dates the sign-in it reads in the future"
                    }
                    _ => "`impossible_travel` is unknown",
                }
                .to_string();
            }
            SignalKind::NewCountry if self.dated_ahead(kind) => {
                return format!(
                    "`{}` is unknown: the history dates the sign-in it reads in the future",
                    kind.as_str()
                );
            }
            SignalKind::NewDevice => "device fingerprint",
            SignalKind::NewCountry => "country",
        };
        format!("`{}` is unknown: the event has no {input}", kind.as_str())
    }

    /// Whether the history time `kind` reads is later than the clocks' skew allows.
    fn dated_ahead(&self, kind: SignalKind) -> bool {
        let (Some(ctx), Some(h)) = (self.ctx, self.history) else {
            return false;
        };
        let at = match kind {
            SignalKind::NewCountry => ctx
                .country_code()
                .and_then(|c| h.country_seen(c))
                .map(|(_, at)| at),
            // Only a sign-in with a place is one impossible travel reads.
            SignalKind::ImpossibleTravel => h
                .last_sign_in
                .as_ref()
                .filter(|l| l.location.is_some())
                .map(|l| &l.at),
            _ => None,
        };
        at.is_some_and(|at| age(self.now, *at).is_none())
    }

    /// The risk score as a range: sum of the weights of present signals (and, for the upper
    /// bound, of unknown ones), capped at 100, or the platform's score where higher.
    pub fn score(&self) -> ScoreRange {
        // No context: no signal and no platform score, so 0 (what `compute_score` sums).
        if self.ctx.is_none() {
            return ScoreRange { min: 0, max: 0 };
        }
        if let Some(s) = self.score_memo.get() {
            return s;
        }
        let s = self.compute_score();
        self.score_memo.set(Some(s));
        s
    }

    fn compute_score(&self) -> ScoreRange {
        let platform = self
            .ctx
            .and_then(|c| c.platform_risk)
            .map_or(0, |p| p.min(100));
        let (mut lo, mut hi) = (0u32, 0u32);
        for k in SignalKind::ALL {
            let w = self.config.weight(k);
            match self.get(k, DEFAULT_COUNTRY_WINDOW_DAYS) {
                Tri::True => {
                    lo = lo.saturating_add(w);
                    hi = hi.saturating_add(w);
                }
                Tri::False => {}
                Tri::Unknown => hi = hi.saturating_add(w),
            }
        }
        ScoreRange {
            min: lo.min(100).max(platform),
            max: hi.min(100).max(platform),
        }
    }

    /// Every signal with its weight, for explanations and audit records.
    pub fn breakdown(&self) -> RiskSummary {
        let signals = SignalKind::ALL.map(|k| SignalValue {
            signal: k,
            value: self.get(k, DEFAULT_COUNTRY_WINDOW_DAYS),
            weight: self.config.weight(k),
        });
        let range = self.score();
        RiskSummary {
            score: range.exact(),
            range,
            platform: self.ctx.and_then(|c| c.platform_risk),
            signals,
        }
    }
}

/// One signal in a risk breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignalValue {
    /// Which (serialized as its name).
    pub signal: SignalKind,
    /// Value.
    pub value: Tri,
    /// Weight in the score.
    pub weight: u32,
}

/// The risk score and its breakdown (a copy: no allocation, however many records hold it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RiskSummary {
    /// 0..100 when known exactly; `None` when some signal is unknown (see `range`).
    pub score: Option<u32>,
    /// The range the score lies in (`min == max` when known).
    pub range: ScoreRange,
    /// The platform-supplied score, if any.
    pub platform: Option<u32>,
    /// Each signal, in the order of [`SignalKind::ALL`].
    pub signals: [SignalValue; SignalKind::ALL.len()],
}
