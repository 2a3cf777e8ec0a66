//! Each risk signal at its boundaries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use stepup_core::Timestamp;
use stepup_dsl::model::{RiskConfig, SignalKind};
use stepup_engine::risk::{ScoreRange, Signals, ThreatFeed, distance_km};
use stepup_engine::state::LastSignIn;
use stepup_engine::{Context, Location, Tri, UserHistory};

const NOW: i64 = 1_800_000_000;
const PARIS: Location = Location {
    lat: 48.8566,
    lon: 2.3522,
};
const NEW_YORK: Location = Location {
    lat: 40.7128,
    lon: -74.0060,
};

fn ctx(country: &str, loc: Location, ip: &str) -> Context {
    Context {
        device: Some("d".into()),
        ip: Some(ip.into()),
        country: Some(country.into()),
        location: Some(loc),
        platform_risk: None,
    }
}

fn signal(h: &UserHistory, c: &Context, k: SignalKind, days: u32, now: i64) -> Tri {
    let (cfg, feed) = (RiskConfig::default(), ThreatFeed::default());
    Signals::new(Some(c), Some(h), &cfg, &feed, Timestamp(now)).get(k, days)
}

#[test]
fn new_country_at_exactly_n_days_and_one_second_more() {
    let mut h = UserHistory::default();
    h.countries
        .insert("FR".into(), Timestamp(NOW - 30 * 86_400));
    let c = ctx("FR", PARIS, "198.51.100.1");
    assert_eq!(
        signal(&h, &c, SignalKind::NewCountry, 30, NOW),
        Tri::False,
        "exactly 30 days: seen within the window"
    );
    assert_eq!(
        signal(&h, &c, SignalKind::NewCountry, 30, NOW + 1),
        Tri::True,
        "30 days and one second: new"
    );
    assert_eq!(
        signal(
            &h,
            &ctx("BE", PARIS, "198.51.100.1"),
            SignalKind::NewCountry,
            30,
            NOW
        ),
        Tri::True,
        "never seen"
    );
}

fn travel(from: Location, to: Location, elapsed: i64, max_speed: u32) -> Tri {
    let h = UserHistory {
        last_sign_in: Some(LastSignIn {
            at: Timestamp(NOW - elapsed),
            country: None,
            location: Some(from),
        }),
        ..UserHistory::default()
    };
    let cfg = RiskConfig {
        max_speed_kmh: max_speed,
        ..RiskConfig::default()
    };
    let feed = ThreatFeed::default();
    Signals::new(
        Some(&ctx("US", to, "198.51.100.1")),
        Some(&h),
        &cfg,
        &feed,
        Timestamp(NOW),
    )
    .get(SignalKind::ImpossibleTravel, 0)
}

#[test]
fn impossible_travel_paris_then_new_york_five_minutes_later() {
    assert_eq!(travel(PARIS, NEW_YORK, 300, 900), Tri::True);
    assert_eq!(
        travel(PARIS, NEW_YORK, 10 * 3_600, 900),
        Tri::False,
        "ten hours later is a flight"
    );
}

#[test]
fn impossible_travel_at_exactly_max_speed_is_possible() {
    // 900 km/h for 2 hours is 1800 km: pick the speed so that the trip takes exactly 2 h.
    let km = distance_km(PARIS, NEW_YORK);
    let secs = 7_200_i64;
    let exact = km * 3_600.0 / secs as f64; // km/h
    let at_limit = exact.ceil() as u32; // the limit is at or just above the speed: possible
    assert_eq!(travel(PARIS, NEW_YORK, secs, at_limit), Tri::False);
    assert_eq!(
        travel(PARIS, NEW_YORK, secs, at_limit - 1),
        Tri::True,
        "one km/h less and it is impossible"
    );
}

#[test]
fn a_99_km_jump_is_geolocation_noise() {
    // About 99 km north of Paris, one second later.
    let north = Location {
        lat: PARIS.lat + 99.0 / 111.2,
        lon: PARIS.lon,
    };
    let km = distance_km(PARIS, north);
    assert!((98.0..100.0).contains(&km), "{km}");
    assert_eq!(travel(PARIS, north, 1, 900), Tri::False);
    let farther = Location {
        lat: PARIS.lat + 101.0 / 111.2,
        lon: PARIS.lon,
    };
    assert_eq!(travel(PARIS, farther, 1, 900), Tri::True);
}

#[test]
fn threat_feed_with_an_ipv6_48_comments_and_one_broken_line() {
    let (feed, warnings) = ThreatFeed::parse(
        "feeds/x.netset",
        "# bad actors\n203.0.113.0/24 # campaign 7\n2001:db8:bad::/48\n300.1.1.1/8\n\n",
    );
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings.kept()[0].to_string(),
        "feeds/x.netset:4: `300.1.1.1/8` is not an IP address or CIDR range; line skipped"
    );
    let cfg = RiskConfig::default();
    let h = UserHistory::default();
    let hit = |ip: &str| {
        Signals::new(
            Some(&ctx("FR", PARIS, ip)),
            Some(&h),
            &cfg,
            &feed,
            Timestamp(NOW),
        )
        .get(SignalKind::ThreatIntel, 0)
    };
    assert_eq!(hit("2001:db8:bad:1234::1"), Tri::True);
    assert_eq!(hit("2001:db8:bae::1"), Tri::False);
    assert_eq!(hit("203.0.113.200"), Tri::True);
    assert_eq!(hit("198.51.100.1"), Tri::False);
    assert_eq!(
        hit("garbage"),
        Tri::Unknown,
        "an unreadable address fails closed"
    );
}

#[test]
fn risk_score_sums_weights_caps_at_100_and_takes_the_platform_score_if_higher() {
    let cfg = RiskConfig::default(); // new_device 30, new_country 40, travel 70, threat 80
    let (feed, _) = ThreatFeed::parse("f", "203.0.113.0/24\n");
    let h = UserHistory::default();
    let mut c = ctx("FR", PARIS, "198.51.100.1");
    let score = |c: &Context| {
        Signals::new(Some(c), Some(&h), &cfg, &feed, Timestamp(NOW))
            .score()
            .exact()
    };
    assert_eq!(score(&c), Some(70), "new device + new country");
    c.ip = Some("203.0.113.5".into());
    assert_eq!(score(&c), Some(100), "capped");
    let mut quiet = UserHistory::default();
    quiet.devices.insert("d".into());
    quiet.countries.insert("FR".into(), Timestamp(NOW));
    let c = Context {
        platform_risk: Some(55),
        ..ctx("FR", PARIS, "198.51.100.1")
    };
    assert_eq!(
        Signals::new(Some(&c), Some(&quiet), &cfg, &feed, Timestamp(NOW))
            .score()
            .exact(),
        Some(55)
    );
    assert_eq!(
        Signals::new(Some(&c), None, &cfg, &feed, Timestamp(NOW)).score(),
        ScoreRange { min: 55, max: 100 },
        "store unavailable: a range from the platform's score to the cap"
    );
}

#[test]
fn signals_are_false_without_a_context() {
    let (cfg, feed) = (RiskConfig::default(), ThreatFeed::default());
    let h = UserHistory::default();
    let s = Signals::new(None, Some(&h), &cfg, &feed, Timestamp(NOW));
    assert_eq!(s.get(SignalKind::NewDevice, 0), Tri::False);
    assert_eq!(s.score().exact(), Some(0));
}

/// The breakdown in audit records says what each signal and the score are: the same values
/// one read at a time gives, with or without a context, with or without a history, for a bare
/// context and for a full one (whose platform score counts).
#[test]
fn the_breakdown_is_the_signals_read_one_by_one() {
    let (feed, cfg, h) = listed_feed_and_a_device_seen_in_france();
    let full = Context {
        device: Some("other".into()),
        ip: Some("203.0.113.9".into()),
        country: Some("FR".into()),
        location: Some(PARIS),
        platform_risk: Some(20),
    };
    let bare = bare_sign_in();
    for ctx in [None, Some(&bare), Some(&full)] {
        for history in [None, Some(&h)] {
            let b = Signals::new(ctx, history, &cfg, &feed, Timestamp(NOW)).breakdown();
            let one = Signals::new(ctx, history, &cfg, &feed, Timestamp(NOW));
            for (v, k) in b.signals.iter().zip(SignalKind::ALL) {
                assert_eq!(v.signal, k);
                assert_eq!(v.value, one.get(k, 30), "{k:?}, context {ctx:?}");
                assert_eq!(v.weight, cfg.weight(k));
            }
            assert_eq!(b.range, one.score(), "context {ctx:?}");
            assert_eq!(b.score, one.score().exact());
            assert_eq!(b.platform, ctx.and_then(|c| c.platform_risk));
            if ctx.is_none() {
                assert!(
                    b.signals.iter().all(|v| v.value == Tri::False),
                    "no context: no signal"
                );
                assert_eq!(b.score, Some(0), "no context: a score of 0");
            }
        }
    }
}

/// A feed listing 203.0.113.0/24, the default risk configuration, and a history that knows
/// device `d` and saw France an hour ago.
fn listed_feed_and_a_device_seen_in_france() -> (ThreatFeed, RiskConfig, UserHistory) {
    let (feed, _) = ThreatFeed::parse("f", "203.0.113.0/24\n");
    let mut h = UserHistory::default();
    h.devices.insert("d".into());
    h.countries.insert("FR".into(), Timestamp(NOW - 3_600));
    (feed, RiskConfig::default(), h)
}

fn bare_sign_in() -> Context {
    Context {
        device: None,
        ip: None,
        country: None,
        location: None,
        platform_risk: None,
    }
}

#[test]
fn a_sign_in_missing_an_input_makes_its_signal_unknown() {
    let (feed, cfg, mut h) = listed_feed_and_a_device_seen_in_france();
    h.last_sign_in = Some(LastSignIn {
        at: Timestamp(NOW - 3_600),
        country: Some("FR".into()),
        location: Some(PARIS),
    });
    let c = bare_sign_in();
    let s = Signals::new(Some(&c), Some(&h), &cfg, &feed, Timestamp(NOW));
    for k in SignalKind::ALL {
        assert_eq!(s.get(k, 30), Tri::Unknown, "{k:?} without its input");
    }
    assert_eq!(s.score(), ScoreRange { min: 0, max: 100 });
    // An event that carries no context at all (an operation) has no signals.
    let s = Signals::new(None, Some(&h), &cfg, &feed, Timestamp(NOW));
    for k in SignalKind::ALL {
        assert_eq!(s.get(k, 30), Tri::False, "{k:?} without a context");
    }
}

#[test]
fn a_missing_input_is_unknown_even_where_no_value_of_it_could_fire_the_signal() {
    // SPEC §10: "no location → impossible_travel; no or unparseable IP → threat_intel" are
    // unknown, never false — also with no place to travel from and no feed loaded.
    let cfg = RiskConfig::default();
    let h = UserHistory::default(); // no reference place
    let c = bare_sign_in();
    let empty = ThreatFeed::default();
    let s = Signals::new(Some(&c), Some(&h), &cfg, &empty, Timestamp(NOW));
    for k in SignalKind::ALL {
        assert_eq!(s.get(k, 30), Tri::Unknown, "{k:?} without its input");
    }
    assert_eq!(s.score(), ScoreRange { min: 0, max: 100 });
    // An unreadable address is unknown without a feed too.
    let c = Context {
        ip: Some("not-an-ip".into()),
        ..bare_sign_in()
    };
    let s = Signals::new(Some(&c), Some(&h), &cfg, &empty, Timestamp(NOW));
    assert_eq!(s.get(SignalKind::ThreatIntel, 0), Tri::Unknown);
    // With the input, no reference place and no feed are known answers: `false`.
    let c = Context {
        ip: Some("198.51.100.7".into()),
        location: Some(Location {
            lat: 48.85,
            lon: 2.35,
        }),
        ..bare_sign_in()
    };
    let s = Signals::new(Some(&c), Some(&h), &cfg, &empty, Timestamp(NOW));
    assert_eq!(
        s.get(SignalKind::ImpossibleTravel, 0),
        Tri::False,
        "no known place to travel from"
    );
    assert_eq!(
        s.get(SignalKind::ThreatIntel, 0),
        Tri::False,
        "no feed: no address is listed"
    );
}

#[test]
fn risk_comparisons_over_a_range_are_three_valued() {
    use stepup_dsl::ast::CmpOp;
    let r = ScoreRange { min: 30, max: 70 };
    assert_eq!(r.compare(CmpOp::Ge, 30.0), Tri::True);
    assert_eq!(r.compare(CmpOp::Ge, 50.0), Tri::Unknown);
    assert_eq!(r.compare(CmpOp::Ge, 70.0), Tri::Unknown);
    assert_eq!(r.compare(CmpOp::Ge, 71.0), Tri::False);
    assert_eq!(r.compare(CmpOp::Lt, 30.0), Tri::False);
    assert_eq!(r.compare(CmpOp::Eq, 80.0), Tri::False);
    assert_eq!(r.compare(CmpOp::Ne, 80.0), Tri::True);
    assert_eq!(r.compare(CmpOp::Eq, 40.0), Tri::Unknown);
    assert_eq!(
        ScoreRange { min: 40, max: 40 }.compare(CmpOp::Eq, 40.0),
        Tri::True
    );
}

/// Why `impossible_travel` is unknown is said in the order it is decided: the event's place,
/// then the history's (a re-review found a missing location explained as a last sign-in dated
/// in the future, and a place off Earth as no place).
#[test]
fn impossible_travel_says_why_it_is_unknown_in_the_order_it_is_decided() {
    let cfg = RiskConfig::default();
    let empty = ThreatFeed::default();
    let last = |days_ahead: i64, location: Option<Location>| UserHistory {
        last_sign_in: Some(LastSignIn {
            at: Timestamp(NOW + days_ahead * 86_400),
            country: None,
            location,
        }),
        ..UserHistory::default()
    };
    let off_earth = Location {
        lat: 200.0,
        lon: 2.35,
    };
    let at = |location: Option<Location>| Context {
        location,
        ..bare_sign_in()
    };
    for (h, c, why) in [
        (last(10, None), at(None), "the event has no location"),
        (last(10, Some(PARIS)), at(None), "the event has no location"),
        (
            last(0, Some(PARIS)),
            at(Some(off_earth)),
            "the event's location is not a place on Earth",
        ),
        (
            last(0, Some(off_earth)),
            at(Some(PARIS)),
            "the history's last sign-in place is not a place on Earth",
        ),
        (
            last(10, Some(PARIS)),
            at(Some(Location {
                lat: 40.71,
                lon: -74.0,
            })),
            "the history dates the sign-in it reads in the future",
        ),
    ] {
        let s = Signals::new(Some(&c), Some(&h), &cfg, &empty, Timestamp(NOW));
        assert_eq!(
            s.get(SignalKind::ImpossibleTravel, 0),
            Tri::Unknown,
            "{why}"
        );
        assert_eq!(
            s.unknown_reason(SignalKind::ImpossibleTravel),
            format!("`impossible_travel` is unknown: {why}")
        );
    }
}
