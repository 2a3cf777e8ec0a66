//! The same policies in Cedar and in Rego, with the same inputs, for side-by-side timing.
//! Each peer answers "which policies match", which is what stepup's `fired` list is.

use std::str::FromStr;

use crate::{Input, Predicates, SHARED_OP, SharedInput, SharedOp};

fn quoted(v: &[impl AsRef<str>]) -> String {
    v.iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The policies in Cedar: one `permit` per policy, the predicates over `context`.
#[must_use]
pub fn cedar_text(ps: &[Predicates]) -> String {
    ps.iter()
        .map(|p| {
            format!(
                "@id(\"{}\")\npermit(principal, action, resource) when {{ [{}].contains(context.operation) && context.amount >= {} && context.amount <= {} && [{}].contains(context.country) && context.risk >= {} && !context.new_device && [{}].contains(context.tier) && context.attempts < {} && context.age > {} && context.vip == {} }};\n",
                p.id,
                quoted(&p.ops),
                p.amount.0,
                p.amount.1,
                quoted(&p.countries),
                p.risk,
                quoted(&p.tiers),
                p.attempts_below,
                p.age_above,
                p.vip
            )
        })
        .collect()
}

/// The policies in Rego: a set `fired` of matching policy ids.
#[must_use]
pub fn rego_text(ps: &[Predicates]) -> String {
    let mut s = String::from("package stepup\n\nimport rego.v1\n\n");
    for p in ps {
        s.push_str(&format!(
            "fired contains \"{}\" if {{\n  input.operation in {{{}}}\n  input.amount >= {}\n  input.amount <= {}\n  input.country in {{{}}}\n  input.risk >= {}\n  not input.new_device\n  input.tier in {{{}}}\n  input.attempts < {}\n  input.age > {}\n  input.vip == {}\n}}\n\n",
            p.id,
            quoted(&p.ops),
            p.amount.0,
            p.amount.1,
            quoted(&p.countries),
            p.risk,
            quoted(&p.tiers),
            p.attempts_below,
            p.age_above,
            p.vip
        ));
    }
    s
}

/// The shared-operation policies in Cedar: one `permit` per policy, the predicates over
/// `context`, in stepup's order.
#[must_use]
pub fn shared_op_cedar_text(ps: &[SharedOp]) -> String {
    ps.iter()
        .map(|p| {
            format!(
                "@id(\"{}\")\npermit(principal, action, resource) when {{ context.operation == \"{SHARED_OP}\" && context.amount >= {} && context.amount <= {} && [{}].contains(context.country) && [{}].contains(context.tier) && [{}].contains(context.channel) && context.attempts < {} && context.age >= {} && context.age <= {} && context.vip == {} }};\n",
                p.id,
                p.amount.0,
                p.amount.1,
                quoted(&p.countries),
                quoted(&p.tiers),
                quoted(&p.channels),
                p.attempts_below,
                p.age.0,
                p.age.1,
                p.vip
            )
        })
        .collect()
}

/// The shared-operation policies in Rego: a set `fired` of matching policy ids, one rule per
/// line (regorus refuses a file of more than 20,000 lines).
#[must_use]
pub fn shared_op_rego_text(ps: &[SharedOp]) -> String {
    let mut s = String::from("package stepup\n\nimport rego.v1\n\n");
    for p in ps {
        s.push_str(&format!(
            "fired contains \"{}\" if {{ input.operation == \"{SHARED_OP}\"; input.amount >= {}; input.amount <= {}; input.country in {{{}}}; input.tier in {{{}}}; input.channel in {{{}}}; input.attempts < {}; input.age >= {}; input.age <= {}; input.vip == {} }}\n",
            p.id,
            p.amount.0,
            p.amount.1,
            quoted(&p.countries),
            quoted(&p.tiers),
            quoted(&p.channels),
            p.attempts_below,
            p.age.0,
            p.age.1,
            p.vip
        ));
    }
    s
}

/// Cedar, ready to answer.
pub struct Cedar {
    policies: cedar_policy::PolicySet,
    authorizer: cedar_policy::Authorizer,
    entities: cedar_policy::Entities,
}

/// A Cedar request built from an input (typed input: built once, outside the timed loop).
pub struct CedarRequest(cedar_policy::Request);

impl Cedar {
    /// Parses the policies.
    ///
    /// # Panics
    /// When the generated Cedar does not parse (a bug in the generator).
    #[must_use]
    pub fn new(ps: &[Predicates]) -> Cedar {
        Cedar::from_text(ps.iter().map(|p| p.id.as_str()), &cedar_text(ps))
    }

    /// The shared-operation policies.
    #[must_use]
    pub fn shared_op(ps: &[SharedOp]) -> Cedar {
        Cedar::from_text(ps.iter().map(|p| p.id.as_str()), &shared_op_cedar_text(ps))
    }

    /// Parses policies, one per `};` line end, named by `ids` in order.
    ///
    /// # Panics
    /// When the generated Cedar does not parse (a bug in the generator).
    #[must_use]
    #[expect(
        clippy::expect_used,
        reason = "benchmark setup: a generator bug should stop the run"
    )]
    pub fn from_text<'a>(ids: impl Iterator<Item = &'a str>, text: &str) -> Cedar {
        let mut policies = cedar_policy::PolicySet::new();
        for (id, text) in ids.zip(text.split_inclusive("};\n")) {
            let policy = cedar_policy::Policy::parse(Some(cedar_policy::PolicyId::new(id)), text)
                .expect("generated Cedar parses");
            policies.add(policy).expect("unique ids");
        }
        Cedar {
            policies,
            authorizer: cedar_policy::Authorizer::new(),
            entities: cedar_policy::Entities::empty(),
        }
    }
    /// A request.
    ///
    /// # Panics
    /// When the input does not convert (a bug in the generator).
    #[must_use]
    pub fn request(input: &Input) -> CedarRequest {
        Cedar::request_json(input.json())
    }

    /// A shared-operation request.
    #[must_use]
    pub fn shared_op_request(input: &SharedInput) -> CedarRequest {
        Cedar::request_json(input.json())
    }

    /// A request whose context is `json`.
    ///
    /// # Panics
    /// When the input does not convert (a bug in the generator).
    #[must_use]
    #[expect(clippy::expect_used, reason = "benchmark setup")]
    pub fn request_json(json: serde_json::Value) -> CedarRequest {
        let uid = |s: &str| cedar_policy::EntityUid::from_str(s).expect("uid");
        let ctx = cedar_policy::Context::from_json_value(json, None).expect("context");
        CedarRequest(
            cedar_policy::Request::new(
                uid("User::\"alice\""),
                uid("Action::\"op\""),
                uid("App::\"web\""),
                ctx,
                None,
            )
            .expect("request"),
        )
    }
    /// The matching policy ids, sorted.
    #[must_use]
    pub fn fired(&self, r: &CedarRequest) -> Vec<String> {
        let resp = self
            .authorizer
            .is_authorized(&r.0, &self.policies, &self.entities);
        let mut v: Vec<String> = resp
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        v.sort();
        v
    }
}

/// Rego (regorus), ready to answer.
pub struct Rego {
    engine: regorus::Engine,
}

impl Rego {
    /// Loads the policies.
    ///
    /// # Panics
    /// When the generated Rego does not parse (a bug in the generator).
    #[must_use]
    pub fn new(ps: &[Predicates]) -> Rego {
        Rego::from_text(rego_text(ps))
    }

    /// The shared-operation policies.
    #[must_use]
    pub fn shared_op(ps: &[SharedOp]) -> Rego {
        Rego::from_text(shared_op_rego_text(ps))
    }

    /// Loads a policy.
    ///
    /// # Panics
    /// When the generated Rego does not parse (a bug in the generator).
    #[must_use]
    #[expect(clippy::expect_used, reason = "benchmark setup")]
    pub fn from_text(text: String) -> Rego {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("stepup.rego".into(), text)
            .expect("generated Rego parses");
        Rego { engine }
    }
    /// An input value (typed input: built once).
    ///
    /// # Panics
    /// When the JSON does not convert.
    #[must_use]
    #[expect(clippy::expect_used, reason = "benchmark setup")]
    pub fn input(input: &Input) -> regorus::Value {
        regorus::Value::from_json_str(&input.json().to_string()).expect("input")
    }

    /// A shared-operation input value (built once).
    ///
    /// # Panics
    /// When the JSON does not convert.
    #[must_use]
    #[expect(clippy::expect_used, reason = "benchmark setup")]
    pub fn shared_op_input(input: &SharedInput) -> regorus::Value {
        regorus::Value::from_json_str(&input.json().to_string()).expect("input")
    }
    /// The matching policy ids, sorted.
    ///
    /// # Panics
    /// When evaluation fails.
    #[expect(
        clippy::expect_used,
        reason = "benchmark: an evaluation error should stop the run"
    )]
    pub fn fired(&mut self, input: &regorus::Value) -> Vec<String> {
        self.engine.set_input(input.clone());
        let v = self
            .engine
            .eval_rule("data.stepup.fired".into())
            .expect("eval");
        let mut out: Vec<String> = match v.as_set() {
            Ok(set) => set
                .iter()
                .filter_map(|x| x.as_string().ok().map(|s| s.to_string()))
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort();
        out
    }
}
