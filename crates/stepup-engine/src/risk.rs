//! Risk signals and the risk score (SPEC §5), and threat-intelligence feeds.
//!
//! Signals describe a sign-in attempt: they are computed for events that carry a context (every
//! sign-in; an operation or access only when it carries its own). Without a usable history
//! (store unavailable) every signal is *unknown*, which makes conditions that read it fire.

use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use stepup_dsl::model::{DEFAULT_COUNTRY_WINDOW_DAYS, RiskConfig, SignalKind};

use crate::request::{Context, Location};
use crate::state::UserHistory;
use crate::tri::Tri;

/// Jumps shorter than this are geolocation noise, never impossible travel.
pub const NOISE_KM: f64 = 100.0;
const EARTH_RADIUS_KM: f64 = 6_371.0;

/// Great-circle distance in km (haversine).
#[must_use]
pub fn distance_km(a: Location, b: Location) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// A set of IPv4 and IPv6 ranges with logarithmic lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreatFeed {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// A feed line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedWarning {
    /// File.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The text.
    pub text: String,
}

impl std::fmt::Display for FeedWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` is not an IP address or CIDR range; line skipped",
            self.file, self.line, self.text
        )
    }
}

fn merge<T: Ord + Copy>(mut v: Vec<(T, T)>, succ: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        if let Some(last) = out.last_mut()
            && (s <= last.1 || succ(last.1) == Some(s))
        {
            last.1 = last.1.max(e);
            continue;
        }
        out.push((s, e));
    }
    out
}

fn parse_entry(s: &str) -> Option<IpRange> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
        None => (s, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return None;
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let start = u32::from(a) & mask;
            Some(IpRange::V4(start, start | !mask))
        }
        IpAddr::V6(a) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return None;
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let start = u128::from(a) & mask;
            Some(IpRange::V6(start, start | !mask))
        }
    }
}

enum IpRange {
    V4(u32, u32),
    V6(u128, u128),
}

impl ThreatFeed {
    /// Parses feed text: one address or CIDR range per line, `#` comments, blank lines ignored.
    /// Malformed lines are returned as warnings and skipped.
    #[must_use]
    pub fn parse(name: &str, text: &str) -> (ThreatFeed, Vec<FeedWarning>) {
        let (mut v4, mut v6, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match parse_entry(line) {
                Some(IpRange::V4(s, e)) => v4.push((s, e)),
                Some(IpRange::V6(s, e)) => v6.push((s, e)),
                None => warnings.push(FeedWarning {
                    file: name.to_string(),
                    line: i + 1,
                    text: line.chars().take(80).collect(),
                }),
            }
        }
        (
            ThreatFeed {
                v4: merge(v4, |x| x.checked_add(1)),
                v6: merge(v6, |x| x.checked_add(1)),
            },
            warnings,
        )
    }

    /// Reads a feed file.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn load(path: &Path) -> std::io::Result<(ThreatFeed, Vec<FeedWarning>)> {
        let bytes = std::fs::read(path)?;
        Ok(ThreatFeed::parse(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        ))
    }

    /// Adds another feed's ranges.
    pub fn extend(&mut self, other: &ThreatFeed) {
        let mut v4 = std::mem::take(&mut self.v4);
        v4.extend_from_slice(&other.v4);
        self.v4 = merge(v4, |x| x.checked_add(1));
        let mut v6 = std::mem::take(&mut self.v6);
        v6.extend_from_slice(&other.v6);
        self.v6 = merge(v6, |x| x.checked_add(1));
    }

    /// Whether the address is in the feed (binary search over merged ranges).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn hit<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
            let i = ranges.partition_point(|(s, _)| *s <= x);
            i > 0 && ranges.get(i - 1).is_some_and(|(_, e)| x <= *e)
        }
        match ip {
            IpAddr::V4(a) => hit(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => hit(&self.v4, u32::from(v4)),
                None => hit(&self.v6, u128::from(a)),
            },
        }
    }

    /// Number of merged ranges.
    #[must_use]
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the feed is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Computes signals for one event, lazily and at most once each.
pub struct Signals<'a> {
    ctx: Option<&'a Context>,
    history: Option<&'a UserHistory>,
    config: &'a RiskConfig,
    feed: &'a ThreatFeed,
    now: stepup_core::Timestamp,
    memo: std::cell::Cell<[u8; 4]>,
    country_memo: std::cell::Cell<Option<(u32, Tri)>>,
    score_memo: std::cell::Cell<Option<Option<u32>>>,
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
            memo: std::cell::Cell::new([0; 4]),
            country_memo: std::cell::Cell::new(None),
            score_memo: std::cell::Cell::new(None),
        }
    }

    /// One signal's value (`days` is the window of `new_country`).
    pub fn get(&self, kind: SignalKind, days: u32) -> Tri {
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
        let mut memo = self.memo.get();
        let slot = kind as usize;
        if let Some(m) = memo.get(slot)
            && *m != 0
        {
            return Tri::from_u8(*m);
        }
        let v = self.compute(kind, days);
        if let Some(m) = memo.get_mut(slot) {
            *m = v.to_u8();
        }
        self.memo.set(memo);
        v
    }

    fn compute(&self, kind: SignalKind, days: u32) -> Tri {
        let Some(ctx) = self.ctx else {
            return Tri::False;
        };
        let Some(h) = self.history else {
            // Store unavailable: fail closed. The feed does not need the history.
            return if kind == SignalKind::ThreatIntel {
                self.threat(ctx)
            } else {
                Tri::Unknown
            };
        };
        match kind {
            SignalKind::NewDevice => match &ctx.device {
                Some(d) => Tri::from(!h.devices.contains(d)),
                None => Tri::False,
            },
            SignalKind::NewCountry => match &ctx.country {
                Some(c) => match h.countries.get(c) {
                    Some(seen) => Tri::from(self.now.since(*seen) > i64::from(days) * 86_400),
                    None => Tri::True,
                },
                None => Tri::False,
            },
            SignalKind::ImpossibleTravel => match (
                ctx.location,
                h.last_sign_in
                    .as_ref()
                    .and_then(|l| l.location.map(|loc| (l.at, loc))),
            ) {
                (Some(here), Some((at, there))) => {
                    let km = distance_km(there, here);
                    if km < NOISE_KM {
                        return Tri::False;
                    }
                    let secs = self.now.since(at);
                    // speed > max  ⇔  km * 3600 > max * secs (no division, exact at the boundary).
                    Tri::from(
                        secs <= 0
                            || km * 3_600.0 > f64::from(self.config.max_speed_kmh) * secs as f64,
                    )
                }
                _ => Tri::False,
            },
            SignalKind::ThreatIntel => self.threat(ctx),
        }
    }

    fn threat(&self, ctx: &Context) -> Tri {
        match &ctx.ip {
            None => Tri::False,
            Some(ip) => match ip.trim().parse::<IpAddr>() {
                Ok(a) => Tri::from(self.feed.contains(a)),
                // An address we cannot read might be anything: fail closed.
                Err(_) => Tri::Unknown,
            },
        }
    }

    /// The risk score: sum of the weights of present signals, capped at 100, or the platform's
    /// score where higher. Unknown when a signal with a weight is unknown.
    pub fn score(&self) -> Option<u32> {
        if let Some(s) = self.score_memo.get() {
            return s;
        }
        let s = self.compute_score();
        self.score_memo.set(Some(s));
        s
    }

    fn compute_score(&self) -> Option<u32> {
        let platform = self.ctx.and_then(|c| c.platform_risk).map(|p| p.min(100));
        let mut sum = 0u32;
        for k in SignalKind::ALL {
            let w = self.config.weight(k);
            match self.get(k, DEFAULT_COUNTRY_WINDOW_DAYS) {
                Tri::True => sum = sum.saturating_add(w),
                Tri::False => {}
                Tri::Unknown if w > 0 => return None,
                Tri::Unknown => {}
            }
        }
        Some(sum.min(100).max(platform.unwrap_or(0)))
    }

    /// Every signal with its weight, for explanations and audit records.
    pub fn breakdown(&self) -> RiskSummary {
        let signals = SignalKind::ALL
            .into_iter()
            .map(|k| SignalValue {
                signal: k.as_str(),
                value: self.get(k, DEFAULT_COUNTRY_WINDOW_DAYS),
                weight: self.config.weight(k),
            })
            .collect();
        RiskSummary {
            score: self.score(),
            platform: self.ctx.and_then(|c| c.platform_risk),
            signals,
        }
    }
}

/// One signal in a risk breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalValue {
    /// Name.
    pub signal: &'static str,
    /// Value.
    pub value: Tri,
    /// Weight in the score.
    pub weight: u32,
}

/// The risk score and its breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RiskSummary {
    /// 0..100, `None` when unknown (store unavailable).
    pub score: Option<u32>,
    /// The platform-supplied score, if any.
    pub platform: Option<u32>,
    /// Each signal.
    pub signals: Vec<SignalValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_match_ipv4_ipv6_and_skip_broken_lines() {
        let (f, w) = ThreatFeed::parse(
            "f",
            "# comment\n10.0.0.0/8\n\n192.0.2.7 # one host\nnot-an-ip\n2001:db8:bad::/48\n",
        );
        assert_eq!(
            w,
            vec![FeedWarning {
                file: "f".into(),
                line: 5,
                text: "not-an-ip".into()
            }]
        );
        let has = |s: &str| s.parse().is_ok_and(|ip| f.contains(ip));
        assert!(has("10.255.1.2"));
        assert!(!has("11.0.0.1"));
        assert!(has("192.0.2.7"));
        assert!(!has("192.0.2.8"));
        assert!(has("2001:db8:bad:ffff::1"));
        assert!(!has("2001:db8:bae::1"));
        assert!(has("::ffff:10.1.1.1"));
    }
}
