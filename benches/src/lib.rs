//! Reproducible workloads for the benchmarks (fixed seed): the source document's policy set
//! from `rules/`, 20 policies × 10 predicates, and 100 to 10,000 policies spread over tenants,
//! applications and operations. Each workload is policy text (written under `target/` so it can
//! be read) plus typed requests.

#![allow(
    clippy::indexing_slicing,
    reason = "benchmark workloads: generated indices are in range by construction"
)]

#[cfg(feature = "peers")]
pub mod peers;

use std::path::{Path, PathBuf};

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::state::{SessionState, UserHistory};
use stepup_engine::{Context, Event, Location, Request, State, Value};

/// The benchmarks' clock.
pub const NOW: i64 = 1_800_000_000;

/// A deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The repository root.
#[must_use]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One policy of the 20×10 family, as data, so every engine gets the same rules.
#[derive(Debug, Clone)]
pub struct Predicates {
    /// Policy id.
    pub id: String,
    /// Operations it applies to.
    pub ops: Vec<String>,
    /// Amount range (inclusive).
    pub amount: (i64, i64),
    /// Countries.
    pub countries: Vec<&'static str>,
    /// Risk threshold.
    pub risk: u32,
    /// Tiers.
    pub tiers: Vec<&'static str>,
    /// Attempts below.
    pub attempts_below: i64,
    /// Account age above (days).
    pub age_above: i64,
    /// VIP flag required.
    pub vip: bool,
}

const COUNTRIES: [&str; 6] = ["FR", "DE", "ES", "IT", "US", "BE"];
const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

/// `n` policies of ten predicates each over `n_ops` operations.
#[must_use]
pub fn predicates(n: usize, n_ops: u64, seed: u64) -> Vec<Predicates> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            let ops = (0..3)
                .map(|_| format!("o{}", r.below(n_ops)))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let lo = r.below(5_000) as i64;
            Predicates {
                id: format!("p{i}"),
                ops,
                amount: (lo, lo + 500 + r.below(5_000) as i64),
                countries: (0..3)
                    .map(|_| COUNTRIES[r.below(6) as usize])
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                risk: r.below(40) as u32,
                tiers: (0..2)
                    .map(|_| TIERS[r.below(3) as usize])
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                attempts_below: 1 + r.below(5) as i64,
                age_above: r.below(30) as i64,
                vip: r.below(2) == 0,
            }
        })
        .collect()
}

fn list(v: &[impl AsRef<str>], quote: bool) -> String {
    v.iter()
        .map(|s| {
            if quote {
                format!("\"{}\"", s.as_ref())
            } else {
                s.as_ref().to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stepup text of a family of policies in one tenant.
#[must_use]
pub fn stepup_text(tenant: &str, apps: &[&str], ps: &[Predicates], n_ops: u64) -> String {
    let mut s = format!("tenant {tenant} {{\n");
    for k in 0..n_ops {
        s.push_str(&format!("  operation o{k} sensitive\n"));
    }
    s.push_str("  attribute amount: number\n  attribute country: string\n  attribute tier: string\n  attribute attempts: number\n  attribute age: number\n  attribute vip: bool\n");
    for p in ps {
        s.push_str(&format!(
            "  policy {} \"Confirm this {} request from your usual device.\" {{\n    when operation in [{}] and amount >= {} and amount <= {} and country in [{}] and risk >= {} and not new_device and tier in [{}] and attempts < {} and age > {} and vip == {}\n    require aal2 factor any for 15m\n  }}\n",
            p.id,
            p.id,
            list(&p.ops, false),
            p.amount.0,
            p.amount.1,
            list(&p.countries, true),
            p.risk,
            list(&p.tiers, true),
            p.attempts_below,
            p.age_above,
            p.vip
        ));
    }
    s.push_str("}\n");
    for a in apps {
        s.push_str(&format!("application {a} of {tenant} {{\n}}\n"));
    }
    s
}

/// The attributes of a typed request.
#[derive(Debug, Clone)]
pub struct Input {
    /// Operation.
    pub op: String,
    /// Amount.
    pub amount: i64,
    /// Country.
    pub country: &'static str,
    /// Platform risk score.
    pub risk: u32,
    /// Tier.
    pub tier: &'static str,
    /// Attempts.
    pub attempts: i64,
    /// Account age in days.
    pub age: i64,
    /// VIP.
    pub vip: bool,
}

impl Input {
    /// An input that satisfies every predicate of `p`.
    #[must_use]
    pub fn matching(p: &Predicates) -> Input {
        Input {
            op: p.ops[0].clone(),
            amount: p.amount.0 + 1,
            country: p.countries[0],
            risk: p.risk + 1,
            tier: p.tiers[0],
            attempts: 0,
            age: p.age_above + 1,
            vip: p.vip,
        }
    }
    /// The same input failing its last predicates (every predicate but `vip` is evaluated).
    #[must_use]
    pub fn near_miss(p: &Predicates) -> Input {
        Input {
            vip: !p.vip,
            ..Input::matching(p)
        }
    }
    /// The request and state stepup evaluates.
    #[must_use]
    pub fn stepup(&self, tenant: &str, app: &str) -> (Request, State) {
        let req = Request {
            tenant: tenant.into(),
            application: app.into(),
            user: "alice".into(),
            enrolled: [Factor::Password, Factor::Totp]
                .into_iter()
                .collect::<FactorSet>(),
            session: "s".into(),
            event: Event::Operation {
                name: self.op.clone(),
                attrs: vec![
                    ("amount".into(), Value::Number(self.amount as f64)),
                    ("country".into(), Value::Str(self.country.into())),
                    ("tier".into(), Value::Str(self.tier.into())),
                    ("attempts".into(), Value::Number(self.attempts as f64)),
                    ("age".into(), Value::Number(self.age as f64)),
                    ("vip".into(), Value::Bool(self.vip)),
                ],
                context: Some(Context {
                    device: Some("laptop-1".into()),
                    ip: Some("198.51.100.7".into()),
                    country: Some(self.country.into()),
                    location: Some(Location {
                        lat: 48.85,
                        lon: 2.35,
                    }),
                    platform_risk: Some(self.risk),
                }),
            },
            now: Timestamp(NOW),
        };
        let mut h = UserHistory::default();
        h.devices.insert("laptop-1".into());
        for c in COUNTRIES {
            h.countries.insert(c.into(), Timestamp(NOW - 86_400));
        }
        (
            req,
            State {
                history: Ok(h),
                session: SessionState {
                    established: true,
                    ..SessionState::default()
                },
            },
        )
    }
    /// The same facts as a JSON context (what Cedar and Rego are given; signals precomputed).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "operation": self.op, "amount": self.amount, "country": self.country, "risk": self.risk,
            "new_device": false, "tier": self.tier, "attempts": self.attempts, "age": self.age, "vip": self.vip,
        })
    }
}

/// A workload written to `target/bench-workloads/NAME.policy` (so it can be read and reused).
///
/// # Errors
/// When the file cannot be written.
pub fn write_workload(name: &str, text: &str) -> std::io::Result<PathBuf> {
    let dir = root().join("target/bench-workloads");
    std::fs::create_dir_all(&dir)?;
    let p = dir.join(format!("{name}.policy"));
    std::fs::write(&p, text)?;
    Ok(p)
}

/// `n` policies of ten predicates over tenants (1,000 policies each), two applications per
/// tenant, 200 operations per tenant; 2% of them carry no operation guard (they are examined
/// for every operation).
#[must_use]
pub fn scale_text(n: usize) -> (String, Vec<Predicates>) {
    let tenants = n.div_ceil(1_000).max(1);
    let mut text = String::new();
    let mut first = Vec::new();
    for t in 0..tenants {
        let count = (n - t * 1_000).min(1_000);
        let mut ps = predicates(count, 200, 42 + t as u64);
        for (i, p) in ps.iter_mut().enumerate() {
            p.id = format!("t{t}_p{i}");
        }
        let mut tenant = stepup_text(&format!("t{t}"), &["web", "mobile"], &ps, 200);
        // Unguarded policies: a risk rule every 50.
        let extra: String = (0..count / 50).map(|i| format!("  policy t{t}_risk{i} \"This sign-in looks unusual — confirm it's you.\" {{ when risk >= {} and not new_device require aal2 }}\n", 90 + i % 10)).collect();
        if let Some(pos) = tenant.find("}\napplication") {
            tenant.insert_str(pos, &extra);
        }
        text.push_str(&tenant);
        if t == 0 {
            first = ps;
        }
    }
    (text, first)
}

/// One policy of the shared-operation family: every policy guards the same operation
/// (`payout`) with nine more predicates on request attributes — two numeric ranges, a numeric
/// bound, three set memberships and a flag — as tenants write many policies about the same
/// few sensitive operations.
#[derive(Debug, Clone)]
pub struct SharedOp {
    /// Policy id.
    pub id: String,
    /// Amount range (inclusive).
    pub amount: (i64, i64),
    /// Countries.
    pub countries: Vec<&'static str>,
    /// Customer tiers.
    pub tiers: Vec<&'static str>,
    /// Channels.
    pub channels: Vec<&'static str>,
    /// Attempts below.
    pub attempts_below: i64,
    /// Account age range in days (inclusive).
    pub age: (i64, i64),
    /// VIP flag required.
    pub vip: bool,
}

/// The operation every shared-operation policy guards.
pub const SHARED_OP: &str = "payout";

const CHANNELS: [&str; 4] = ["web", "mobile", "api", "branch"];

fn subset(r: &mut Rng, of: &[&'static str], picks: usize) -> Vec<&'static str> {
    (0..picks)
        .map(|_| of[r.below(of.len() as u64) as usize])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The attributes of a shared-operation request.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedInput {
    /// Amount.
    pub amount: i64,
    /// Country.
    pub country: &'static str,
    /// Tier.
    pub tier: &'static str,
    /// Channel.
    pub channel: &'static str,
    /// Attempts.
    pub attempts: i64,
    /// Account age in days.
    pub age: i64,
    /// VIP.
    pub vip: bool,
}

impl SharedOp {
    /// Whether `i` satisfies every predicate (what each engine must answer).
    #[must_use]
    pub fn matches(&self, i: &SharedInput) -> bool {
        (self.amount.0..=self.amount.1).contains(&i.amount)
            && self.countries.contains(&i.country)
            && self.tiers.contains(&i.tier)
            && self.channels.contains(&i.channel)
            && i.attempts < self.attempts_below
            && (self.age.0..=self.age.1).contains(&i.age)
            && i.vip == self.vip
    }

    /// An input that satisfies every predicate.
    #[must_use]
    pub fn matching(&self) -> SharedInput {
        SharedInput {
            amount: self.amount.0 + 1,
            country: self.countries[0],
            tier: self.tiers[0],
            channel: self.channels[0],
            attempts: 0,
            age: self.age.0 + 1,
            vip: self.vip,
        }
    }
}

/// A shared-operation workload: `n` policies, the index of the one the *step-up* request
/// matches, the *step-up* request (exactly that policy fires) and the *allow* request (it
/// satisfies nine of that policy's ten predicates, all but the flag, and no policy fires).
/// Policies other than the target that either request would fire get an amount range that
/// starts above the requests' amount, so both decisions are the same at every size.
#[must_use]
pub fn shared_op(n: usize, seed: u64) -> (Vec<SharedOp>, usize, SharedInput, SharedInput) {
    let mut r = Rng::new(seed);
    let mut ps: Vec<SharedOp> = (0..n)
        .map(|i| {
            let lo = r.below(5_000) as i64;
            let age_lo = r.below(60) as i64;
            SharedOp {
                id: format!("s{i}"),
                amount: (lo, lo + 500 + r.below(5_000) as i64),
                countries: subset(&mut r, &COUNTRIES, 3),
                tiers: subset(&mut r, &TIERS, 2),
                channels: subset(&mut r, &CHANNELS, 2),
                attempts_below: 1 + r.below(5) as i64,
                age: (age_lo, age_lo + 30 + r.below(700) as i64),
                vip: r.below(2) == 0,
            }
        })
        .collect();
    let target = n / 2;
    let step_up = ps[target].matching();
    let allow = SharedInput {
        vip: !step_up.vip,
        ..step_up.clone()
    };
    for (i, p) in ps.iter_mut().enumerate() {
        if i != target && (p.matches(&step_up) || p.matches(&allow)) {
            let width = p.amount.1 - p.amount.0;
            p.amount = (step_up.amount + 1, step_up.amount + 1 + width);
        }
    }
    (ps, target, step_up, allow)
}

/// The scripts workload (`rhai` in benches/decision.rs, `one_script` in count.rs): one policy
/// on `pay` whose amount test is written plainly or as a script, and an operation it does not
/// fire on. Returns (plain, scripted, request, state).
///
/// # Panics
/// If the workload's rules do not load (they are fixed text).
#[must_use]
#[expect(
    clippy::expect_used,
    reason = "fixed rules: a set-up failure stops the benchmark"
)]
pub fn script_workload() -> (
    stepup_engine::CompiledSet,
    stepup_engine::CompiledSet,
    Request,
    State,
) {
    let base = "operation pay sensitive\nattribute amount: number\n";
    let set = |name: &str, test: &str| {
        stepup_engine::CompiledSet::from_text(
            name,
            &format!("{base}policy p \"Confirm this payment.\" {{ when operation == pay and {test} require aal2 }}\n"),
        )
        .expect("the script workload loads")
    };
    let (mut req, state) = Input::near_miss(&predicates(1, 1, 1)[0]).stepup("default", "");
    req.event = Event::Operation {
        name: "pay".into(),
        attrs: vec![("amount".into(), Value::Number(50.0))],
        context: None,
    };
    (
        set("p.policy", "amount > 100000"),
        set("s.policy", "script \"ctx.amount > 100000\""),
        req,
        state,
    )
}

/// The stepup text of a shared-operation workload (tenant `shared`).
#[must_use]
pub fn shared_op_text(ps: &[SharedOp]) -> String {
    let mut s = format!(
        "tenant shared {{\n  operation {SHARED_OP} sensitive\n  operation view sensitive\n  attribute amount: number\n  attribute country: string\n  attribute tier: string\n  attribute channel: string\n  attribute attempts: number\n  attribute age: number\n  attribute vip: bool\n"
    );
    for p in ps {
        s.push_str(&format!(
            "  policy {} \"Confirm this payout.\" {{\n    when operation == {SHARED_OP} and amount >= {} and amount <= {} and country in [{}] and tier in [{}] and channel in [{}] and attempts < {} and age >= {} and age <= {} and vip == {}\n    require aal2 factor any for 15m\n  }}\n",
            p.id,
            p.amount.0,
            p.amount.1,
            list(&p.countries, true),
            list(&p.tiers, true),
            list(&p.channels, true),
            p.attempts_below,
            p.age.0,
            p.age.1,
            p.vip
        ));
    }
    s.push_str("}\n");
    s
}

impl SharedInput {
    /// The request and state stepup evaluates (an established session, no context: a plain
    /// operation of a signed-in user).
    #[must_use]
    pub fn stepup(&self) -> (Request, State) {
        let req = Request {
            tenant: "shared".into(),
            application: "".into(),
            user: "alice".into(),
            enrolled: [Factor::Password, Factor::Totp]
                .into_iter()
                .collect::<FactorSet>(),
            session: "s".into(),
            event: Event::Operation {
                name: SHARED_OP.into(),
                attrs: vec![
                    ("amount".into(), Value::Number(self.amount as f64)),
                    ("country".into(), Value::Str(self.country.into())),
                    ("tier".into(), Value::Str(self.tier.into())),
                    ("channel".into(), Value::Str(self.channel.into())),
                    ("attempts".into(), Value::Number(self.attempts as f64)),
                    ("age".into(), Value::Number(self.age as f64)),
                    ("vip".into(), Value::Bool(self.vip)),
                ],
                context: None,
            },
            now: Timestamp(NOW),
        };
        let mut h = UserHistory::default();
        h.devices.insert("laptop-1".into());
        (
            req,
            State {
                history: Ok(h),
                session: SessionState {
                    established: true,
                    ..SessionState::default()
                },
            },
        )
    }

    /// The same facts as JSON (what Cedar and Rego are given).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "operation": SHARED_OP, "amount": self.amount, "country": self.country, "tier": self.tier,
            "channel": self.channel, "attempts": self.attempts, "age": self.age, "vip": self.vip,
        })
    }
}
