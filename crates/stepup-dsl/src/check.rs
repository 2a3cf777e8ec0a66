//! Syntax tree → checked model: names resolved against the tenant's catalogs, types checked,
//! scripts compiled, and every error and lint of every file collected in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepup_core::{
    Aal, Factor, FactorSet, OperationClass, Requirement, Validity, did_you_mean, format_duration,
};

use crate::ast::{self, Arg, CmpOp, Expr, Factors, Lit, Member, RiskItem, ValidityAst};
use crate::diag::{Diagnostic, LineIndex, SourceFile, Span};
use crate::feed::ThreatFeed;
use crate::model::{
    ADMIN_DEFAULT_POLICY, Application, AttrType, Cond, DEFAULT_COUNTRY_WINDOW_DAYS, Origin, Policy,
    PolicySet, RiskConfig, SignalKind, Tenant,
};
use crate::script::{CTX_BUILTINS, CtxField, Script};

/// Longest validity accepted for an elevation (90 days).
pub const MAX_VALIDITY_SECS: u64 = 90 * 86_400;
/// Longest window accepted for a signal (10 years).
pub const MAX_WINDOW_DAYS: u64 = 3_650;
/// Longest recommended AAL3 elevation (15 minutes).
pub const AAL3_RECOMMENDED_SECS: u64 = 15 * 60;
const BUILTINS: [&str; 3] = ["operation", "resource", "risk"];
const SIGNALS: [&str; 5] = [
    "new_device",
    "new_country",
    "impossible_travel",
    "threat_intel",
    "first_access",
];

/// One parsed file, ready to check.
pub struct Parsed {
    /// The source.
    pub file: Arc<SourceFile>,
    /// Its syntax tree.
    pub ast: ast::File,
    /// The directory relative paths in it (threat feeds) are resolved against.
    pub base_dir: PathBuf,
}

struct Ctx<'a> {
    file: &'a Arc<SourceFile>,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        self.diags.push(
            Diagnostic::error(code, self.file, span, msg)
                .label(label)
                .maybe_help(help),
        );
    }
    fn warn(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        self.diags.push(
            Diagnostic::warning(code, self.file, span, msg)
                .label(label)
                .maybe_help(help),
        );
    }
}

fn mean(word: &str, candidates: &[&str]) -> Option<String> {
    did_you_mean(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

struct PolicyAt<'a> {
    file: &'a Arc<SourceFile>,
    lines: &'a LineIndex,
    policy: &'a ast::Policy,
    name: String,
}

struct AppAt<'a> {
    file: &'a Arc<SourceFile>,
    lines: &'a LineIndex,
    block: &'a ast::AppBlock,
}

/// Checks parsed files and builds the policy set. Errors make the set `None`.
#[must_use]
pub fn check(files: &[Parsed], hash: String) -> (Option<PolicySet>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut tenants: BTreeMap<String, Tenant> = BTreeMap::new();
    let mut policies: BTreeMap<String, Vec<PolicyAt<'_>>> = BTreeMap::new();
    let mut apps: Vec<AppAt<'_>> = Vec::new();
    let mut seen: BTreeMap<(String, &'static str, String), ()> = BTreeMap::new();

    // Pass 1: declarations of every tenant, in every file.
    let indexes: Vec<LineIndex> = files.iter().map(|p| LineIndex::new(&p.file.text)).collect();
    for (parsed, lines) in files.iter().zip(&indexes) {
        let mut cx = Ctx {
            file: &parsed.file,
            diags: &mut diags,
        };
        let stem = Path::new(&parsed.file.name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("rules")
            .to_string();
        let mut bare = 0usize;
        for item in &parsed.ast.items {
            let (tenant, members): (&str, &[Member]) = match item {
                ast::Item::Tenant(t) => (&t.name.text, &t.members),
                ast::Item::Member(m) => ("default", std::slice::from_ref(m)),
                ast::Item::Application(a) => {
                    apps.push(AppAt {
                        file: &parsed.file,
                        lines,
                        block: a,
                    });
                    continue;
                }
            };
            let t = tenants
                .entry(tenant.to_string())
                .or_insert_with(|| Tenant::new(tenant));
            for m in members {
                declare(&mut cx, t, m, &parsed.base_dir, &mut seen);
                if let Member::Policy(p) = m {
                    let name = match &p.name {
                        Some(n) => n.text.clone(),
                        None => {
                            bare += 1;
                            format!("{stem}#{bare}")
                        }
                    };
                    policies
                        .entry(tenant.to_string())
                        .or_default()
                        .push(PolicyAt {
                            file: &parsed.file,
                            lines,
                            policy: p,
                            name,
                        });
                } else if let Member::CacheOff(s) = m {
                    cx.err(
                        "E001",
                        *s,
                        "`cache off` belongs in an application block",
                        "not in a tenant",
                        Some("move it into `application NAME of TENANT { ... }`".into()),
                    );
                }
            }
        }
    }

    // Pass 2: tenant policies.
    let mut located: BTreeMap<String, Vec<Located>> = BTreeMap::new();
    for (tname, list) in &policies {
        let Some(tenant) = tenants.get(tname) else {
            continue;
        };
        let mut checked = Vec::new();
        let mut names: BTreeMap<&str, Span> = BTreeMap::new();
        for at in list {
            let mut cx = Ctx {
                file: at.file,
                diags: &mut diags,
            };
            if at.policy.is_override {
                cx.err(
                    "E010",
                    at.policy.span,
                    "`override` belongs in an application block",
                    "not in a tenant",
                    None,
                );
            }
            if let Some(n) = &at.policy.name
                && n.text == ADMIN_DEFAULT_POLICY
                && !at.policy.is_override
            {
                cx.err(
                    "E030",
                    n.span,
                    "`admin_default` is the built-in policy for `admin` operations",
                    "reserved name",
                    Some(format!(
                        "configure it in tenant `{tname}` with `admin default require ...` or `admin default off`, or name this policy otherwise"
                    )),
                );
            }
            if let Some(n) = &at.policy.name
                && names.insert(&n.text, n.span).is_some()
            {
                cx.err(
                    "E008",
                    n.span,
                    format!("policy `{}` is defined twice in tenant `{tname}`", n.text),
                    "second definition",
                    Some("give each policy its own name".into()),
                );
            }
            if let Some(p) = check_policy(&mut cx, tenant, at) {
                let p = Arc::new(p);
                let span = at.policy.name.as_ref().map_or(at.policy.span, |n| n.span);
                located
                    .entry(tname.clone())
                    .or_default()
                    .push(Located::new(&p, tenant, at.file, span, false));
                checked.push(p);
            }
        }
        disjoint_lint(
            &mut diags,
            located.get(tname).map_or(&[][..], Vec::as_slice),
            false,
        );
        if let Some(t) = tenants.get_mut(tname) {
            t.policies = checked;
        }
    }

    // Pass 3: applications.
    let mut applications: BTreeMap<(String, String), Application> = BTreeMap::new();
    let tenant_names: Vec<&str> = tenants.keys().map(String::as_str).collect();
    for app in &apps {
        let mut cx = Ctx {
            file: app.file,
            diags: &mut diags,
        };
        let b = app.block;
        let Some(tenant) = tenants.get(&b.tenant.text) else {
            cx.err(
                "E011",
                b.tenant.span,
                format!(
                    "application `{}` belongs to tenant `{}`, which is not defined",
                    b.name.text, b.tenant.text
                ),
                "unknown tenant",
                mean(&b.tenant.text, &tenant_names)
                    .or_else(|| Some("define it with `tenant NAME { ... }`".into())),
            );
            continue;
        };
        let key = (b.tenant.text.clone(), b.name.text.clone());
        if applications.contains_key(&key) {
            cx.err(
                "E016",
                b.name.span,
                format!(
                    "application `{}` of `{}` is defined twice",
                    b.name.text, b.tenant.text
                ),
                "second definition",
                Some("merge the two blocks".into()),
            );
            continue;
        }
        let mut out = Application {
            name: b.name.text.clone(),
            tenant: b.tenant.text.clone(),
            cache_off: false,
            policies: Vec::new(),
        };
        let mut names: BTreeMap<String, ()> = BTreeMap::new();
        let tenant_policy_names: Vec<&str> =
            tenant.policies.iter().map(|p| p.name.as_str()).collect();
        let mut app_located: Vec<Located> = Vec::new();
        let mut bare = 0usize;
        for m in &b.members {
            match m {
                Member::CacheOff(_) => out.cache_off = true,
                Member::Policy(p) => {
                    let name = match &p.name {
                        Some(n) => n.text.clone(),
                        None => {
                            bare += 1;
                            format!("{}#{bare}", b.name.text)
                        }
                    };
                    if names.insert(name.clone(), ()).is_some() {
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        cx.err(
                            "E008",
                            span,
                            format!(
                                "policy `{name}` is defined twice in application `{}`",
                                b.name.text
                            ),
                            "second definition",
                            None,
                        );
                        continue;
                    }
                    let is_admin_default = name == ADMIN_DEFAULT_POLICY;
                    if is_admin_default && !p.is_override {
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        cx.err(
                            "E030",
                            span,
                            "`admin_default` is the built-in policy for `admin` operations",
                            "reserved name",
                            Some(
                                "write `override policy admin_default` in an application to replace it"
                                    .into(),
                            ),
                        );
                        continue;
                    }
                    // The tenant's policy of that name: its own, or the built-in admin default.
                    let builtin = if is_admin_default {
                        tenant.builtin_admin_policy().map(Arc::new)
                    } else {
                        None
                    };
                    let base = tenant
                        .policies
                        .iter()
                        .find(|q| q.name == name)
                        .or(builtin.as_ref());
                    if p.is_override && base.is_none() {
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        let help = if is_admin_default {
                            Some(format!(
                                "the built-in `admin_default` applies only to a tenant with `admin` operations and without `admin default off`; declare one in tenant `{}`",
                                tenant.name
                            ))
                        } else {
                            mean(&name, &tenant_policy_names)
                                .or_else(|| Some("remove `override` to add a new policy".into()))
                        };
                        cx.err(
                            "E010",
                            span,
                            format!(
                                "`override` of policy `{name}`, which tenant `{}` does not have",
                                tenant.name
                            ),
                            "nothing to override",
                            help,
                        );
                        continue;
                    }
                    let at = PolicyAt {
                        file: app.file,
                        lines: app.lines,
                        policy: p,
                        name,
                    };
                    if let Some(checked) = check_policy(&mut cx, tenant, &at) {
                        if let Some(base) = base {
                            weaker_override(&mut cx, p, base, &checked);
                        }
                        let checked = Arc::new(checked);
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        let mut l = Located::new(&checked, tenant, app.file, span, true);
                        // An override that changes nothing the lint looks at repeats the
                        // tenant's pairs, which are reported on the tenant.
                        l.like_tenant = located
                            .get(&b.tenant.text)
                            .and_then(|v| v.iter().find(|x| x.name == l.name))
                            .is_some_and(|x| x.same_shape(&l));
                        app_located.push(l);
                        out.policies.push(checked);
                    }
                }
                other => {
                    let span = member_span(other);
                    cx.err(
                        "E001",
                        span,
                        "applications hold policies and `cache off` only",
                        "not allowed here",
                        Some(format!("declare this in `tenant {}`", tenant.name)),
                    );
                }
            }
        }
        // The policies in force for the application: the tenant's, replaced by name, and its own.
        let mut scope: Vec<Located> = located.get(&b.tenant.text).cloned().unwrap_or_default();
        for l in app_located {
            match scope.iter_mut().find(|x| x.name == l.name) {
                Some(slot) => *slot = l,
                None => scope.push(l),
            }
        }
        disjoint_lint(&mut diags, &scope, true);
        applications.insert(key, out);
    }

    diags.sort_by(|a, b| {
        (a.file.name.as_str(), a.span.start).cmp(&(b.file.name.as_str(), b.span.start))
    });
    let ok = !diags.iter().any(Diagnostic::is_error);
    (
        ok.then_some(PolicySet {
            tenants,
            applications,
            hash,
        }),
        diags,
    )
}

fn member_span(m: &Member) -> Span {
    match m {
        Member::Duration(d) => d.span,
        Member::Operation { span, .. }
        | Member::AdminDefault(_, span)
        | Member::Risk(_, span)
        | Member::CacheOff(span) => *span,
        Member::Resource(n) => n.span,
        Member::Attribute { name, .. } => name.span,
        Member::FactorStrength { factor, .. } => factor.span,
        Member::Policy(p) => p.span,
    }
}

fn declare(
    cx: &mut Ctx<'_>,
    t: &mut Tenant,
    m: &Member,
    base: &Path,
    seen: &mut BTreeMap<(String, &'static str, String), ()>,
) {
    let mut once = |cx: &mut Ctx<'_>, kind: &'static str, name: &str, span: Span| -> bool {
        if seen
            .insert((t.name.clone(), kind, name.to_string()), ())
            .is_some()
        {
            cx.err(
                "E017",
                span,
                format!("{kind} `{name}` is declared twice in tenant `{}`", t.name),
                "second declaration",
                Some("remove one of them".into()),
            );
            return false;
        }
        true
    };
    match m {
        Member::Duration(d) => {
            if once(cx, "duration", "", d.span)
                && let Some(secs) = check_validity_secs(cx, d)
            {
                t.default_validity = Validity::For(secs);
            }
        }
        Member::Operation { name, class, .. } => {
            if once(cx, "operation", &name.text, name.span) {
                t.operations.insert(name.text.clone(), *class);
            }
        }
        Member::Resource(n) => {
            if once(cx, "resource", &n.text, n.span) {
                t.resources.insert(n.text.clone());
            }
        }
        Member::Attribute { name, ty } => {
            let parsed = match ty.text.as_str() {
                "number" => Some(AttrType::Number),
                "string" => Some(AttrType::String),
                "bool" => Some(AttrType::Bool),
                _ => None,
            };
            match parsed {
                None => cx.err(
                    "E007",
                    ty.span,
                    format!("unknown attribute type `{}`", ty.text),
                    "not a type",
                    mean(&ty.text, &["number", "string", "bool"]).or_else(|| {
                        Some("attribute types are `number`, `string` and `bool`".into())
                    }),
                ),
                Some(_)
                    if BUILTINS.contains(&name.text.as_str())
                        || SIGNALS.contains(&name.text.as_str())
                        || CTX_BUILTINS.contains(&name.text.as_str()) =>
                {
                    cx.err(
                        "E017",
                        name.span,
                        format!(
                            "`{}` is built in and cannot be declared as an attribute",
                            name.text
                        ),
                        "built-in name",
                        Some("choose another name".into()),
                    );
                }
                Some(p) => {
                    if once(cx, "attribute", &name.text, name.span) {
                        t.attributes.insert(name.text.clone(), p);
                    }
                }
            }
        }
        Member::FactorStrength { factor, aal } => {
            let f = parse_factor(cx, factor);
            let a = parse_aal(cx, aal);
            if let (Some(f), Some(a)) = (f, a)
                && once(cx, "factor strength", f.as_str(), factor.span)
            {
                t.strengths.set(f, a);
            }
        }
        Member::AdminDefault(req, span) => {
            if once(cx, "admin default", "", *span) {
                t.admin_default = match req {
                    None => None,
                    Some(r) => check_require(cx, t, r),
                };
            }
        }
        Member::Risk(items, _) => {
            for item in items {
                match item {
                    RiskItem::Weight(name, n) => {
                        let Some(sig) = SignalKind::parse(&name.text) else {
                            cx.err(
                                "E006",
                                name.span,
                                format!("unknown signal `{}`", name.text),
                                "not a signal",
                                mean(
                                    &name.text,
                                    &[
                                        "new_device",
                                        "new_country",
                                        "impossible_travel",
                                        "threat_intel",
                                    ],
                                ),
                            );
                            continue;
                        };
                        match n.value {
                            Some(v) if v <= 100 => {
                                if once(cx, "risk weight", sig.as_str(), name.span)
                                    && let Some(w) = t.risk.weights.get_mut(sig as usize)
                                {
                                    *w = u32::try_from(v).unwrap_or(100);
                                }
                            }
                            _ => cx.err(
                                "E022",
                                n.span,
                                "a risk weight must be between 0 and 100",
                                "out of range",
                                Some(
                                    "the score is capped at 100; a weight of 100 alone reaches it"
                                        .into(),
                                ),
                            ),
                        }
                    }
                    RiskItem::MaxSpeed(n) => match n.value {
                        Some(v) if (1..=100_000).contains(&v) => {
                            if once(cx, "max_speed", "", n.span) {
                                t.risk.max_speed_kmh = u32::try_from(v).unwrap_or(100_000);
                            }
                        }
                        _ => cx.err(
                            "E022",
                            n.span,
                            "`max_speed` must be between 1 and 100000 km/h",
                            "out of range",
                            Some("900 km/h is a jet's cruising speed".into()),
                        ),
                    },
                    RiskItem::ThreatFeed(s) => {
                        if s.value.is_empty() {
                            cx.err(
                                "E022",
                                s.span,
                                "a threat feed needs a path",
                                "empty path",
                                None,
                            );
                        } else {
                            let path = base.join(&s.value);
                            load_feed(cx, &mut t.risk, s, &path);
                            t.risk.threat_feeds.push(path);
                        }
                    }
                }
            }
        }
        Member::CacheOff(_) | Member::Policy(_) => {}
    }
}

/// Malformed feed lines listed in a warning; the rest are counted.
const FEED_LINES_SHOWN: usize = 20;

/// Loads a threat feed into the tenant's merged feed: an unreadable file, or one with no valid
/// line, is an error (a missing blocklist would silently allow); malformed lines are warnings.
fn load_feed(cx: &mut Ctx<'_>, risk: &mut RiskConfig, s: &ast::Str, path: &Path) {
    let (feed, warnings) = match ThreatFeed::load(path) {
        Ok(x) => x,
        Err(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "the file does not exist".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string().to_lowercase(),
            };
            cx.err(
                "E031",
                s.span,
                format!("cannot read threat feed `{}`: {why}", s.value),
                "cannot read",
                Some(
                    "the path is relative to the policy file's directory; without its blocklist `threat_intel` could never fire"
                        .into(),
                ),
            );
            return;
        }
    };
    let lines: Vec<String> = warnings
        .iter()
        .take(FEED_LINES_SHOWN)
        .map(|w| format!("`{}:{}`: `{}`", s.value, w.line, w.text))
        .collect();
    let more = warnings.len().saturating_sub(FEED_LINES_SHOWN);
    let listed = if more > 0 {
        format!("{}\nand {more} more", lines.join("\n"))
    } else {
        lines.join("\n")
    };
    if feed.is_empty() && !warnings.is_empty() {
        cx.err(
            "E032",
            s.span,
            format!(
                "threat feed `{}` lists no IP address or CIDR range: every line is malformed",
                s.value
            ),
            "no valid line",
            Some(format!(
                "a feed lists one IPv4 or IPv6 address or CIDR range per line, with `#` or `;` comments:\n{listed}"
            )),
        );
        return;
    }
    match warnings.as_slice() {
        [] => {}
        [w] => cx.warn(
            "S009",
            s.span,
            format!(
                "`{}:{}`: `{}` is not an IP address or CIDR range; the line is skipped",
                s.value, w.line, w.text
            ),
            "malformed line",
            Some("fix or remove the line; `#` and `;` start comments".into()),
        ),
        _ => cx.warn(
            "S009",
            s.span,
            format!(
                "{} lines of threat feed `{}` are not IP addresses or CIDR ranges; they are skipped",
                warnings.len(),
                s.value
            ),
            "malformed lines",
            Some(format!(
                "fix or remove them; `#` and `;` start comments:\n{listed}"
            )),
        ),
    }
    Arc::make_mut(&mut risk.feed).extend(&feed);
    risk.feed_warnings.extend(warnings);
}

fn check_validity_secs(cx: &mut Ctx<'_>, d: &ast::Dur) -> Option<u64> {
    match d.secs {
        Some(0) => {
            cx.err(
                "E012",
                d.span,
                "a duration of zero never satisfies anything",
                "zero",
                Some(
                    "write `every time` for no caching, or a positive duration such as `5m`".into(),
                ),
            );
            None
        }
        Some(s) if s <= MAX_VALIDITY_SECS => Some(s),
        _ => {
            cx.err(
                "E013",
                d.span,
                "this duration is absurdly long for an elevation",
                "longer than 90 days",
                Some("elevations typically last 5 to 15 minutes".into()),
            );
            None
        }
    }
}

fn parse_factor(cx: &mut Ctx<'_>, n: &ast::Name) -> Option<Factor> {
    if let Ok(f) = n.text.parse::<Factor>() {
        return Some(f);
    }
    cx.err(
        "E002",
        n.span,
        format!("unknown factor `{}`", n.text),
        "not a factor",
        mean(&n.text, &Factor::names()).or_else(|| {
            Some(format!(
                "factors are {}",
                Factor::names()
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }),
    );
    None
}

fn parse_aal(cx: &mut Ctx<'_>, n: &ast::Name) -> Option<Aal> {
    if let Ok(a) = n.text.parse::<Aal>() {
        return Some(a);
    }
    cx.err(
        "E015",
        n.span,
        format!("unknown assurance level `{}`", n.text),
        "not an AAL",
        mean(&n.text, &["aal1", "aal2", "aal3"])
            .or_else(|| Some("assurance levels are `aal1`, `aal2` and `aal3`".into())),
    );
    None
}

fn check_require(cx: &mut Ctx<'_>, t: &Tenant, r: &ast::Require) -> Option<Requirement> {
    let aal = parse_aal(cx, &r.aal);
    let factors = match &r.factors {
        Factors::Unspecified | Factors::Any(_) => Some(FactorSet::ANY),
        Factors::Not(n) => parse_factor(cx, n).map(|f| FactorSet::one(f).complement()),
        Factors::List(list) => {
            let mut set = FactorSet::EMPTY;
            let mut ok = true;
            for n in list {
                match parse_factor(cx, n) {
                    Some(f) => set.insert(f),
                    None => ok = false,
                }
            }
            ok.then_some(set)
        }
    };
    let validity = match &r.validity {
        None => Some(t.default_validity),
        Some(ValidityAst::EveryTime(_)) => Some(Validity::EveryTime),
        Some(ValidityAst::For(d)) => check_validity_secs(cx, d).map(Validity::For),
    };
    let (aal, factors, validity) = (aal?, factors?, validity?);
    if factors.intersect(t.strengths.reaching(aal)).is_empty() {
        let strongest: Vec<String> = factors
            .iter()
            .map(|f| format!("`{f}` proves at most {}", t.strengths.strength(f)))
            .collect();
        let reach = t
            .strengths
            .reaching(aal)
            .names()
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        cx.err(
            "E009",
            r.span,
            format!("no allowed factor can reach {aal}"),
            "unreachable requirement",
            Some(format!(
                "{}; allow {reach}, or lower the AAL",
                strongest.join(", ")
            )),
        );
        return None;
    }
    Some(Requirement {
        aal,
        factors,
        validity,
    })
}

fn check_policy(cx: &mut Ctx<'_>, t: &Tenant, at: &PolicyAt<'_>) -> Option<Policy> {
    let p = at.policy;
    let cond = check_expr(cx, t, &p.when);
    let req = check_require(cx, t, &p.require);
    let (cond, req) = (cond?, req?);
    let name_span = p.name.as_ref().map_or(p.span, |n| n.span);
    match &p.message {
        None if p.name.is_some() => cx.warn("S002", name_span, format!("policy `{}` has no message for users", at.name), "no message", Some("say why the prompt appears, e.g. \"Confirm your identity before changing your email.\"".into())),
        Some(m) => {
            let lower = m.value.to_lowercase();
            if lower.trim().is_empty() {
                cx.warn("S002", m.span, format!("policy `{}` has an empty message", at.name), "empty", None);
            } else if ["security reasons", "security purposes", "for your security", "for security"].iter().any(|v| lower.contains(v)) {
                cx.warn("S003", m.span, "this message is too vague", "vague", Some("say specifically why the prompt appears, e.g. \"You're signing in from a new device — let's verify.\"".into()));
            }
        }
        None => {}
    }
    if req.aal == Aal::Aal3
        && let Validity::For(s) = req.validity
        && s > AAL3_RECOMMENDED_SECS
    {
        let span = match &p.require.validity {
            Some(ValidityAst::For(d)) => d.span,
            _ => p.require.span,
        };
        cx.warn(
            "S004",
            span,
            format!("an aal3 elevation kept for {}", format_duration(s)),
            "longer than 15 minutes",
            Some("5 minutes is recommended for AAL3 in highly sensitive operations".into()),
        );
    }
    routine_lint(cx, t, &p.when, true);
    unguarded_lint(cx, t, &at.name, &p.when, &cond);
    let line = at.lines.line(p.span.start);
    Some(Policy {
        name: at.name.clone(),
        message: p.message.as_ref().map(|m| m.value.clone()),
        condition: cond,
        requirement: req,
        origin: Origin {
            file: at.file.name.clone(),
            line,
        },
        report_only: p.report_only,
    })
}

fn routine_lint(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr, positive: bool) {
    let flag = |cx: &mut Ctx<'_>, n: &str, span: Span| {
        if positive && t.operations.get(n) == Some(&OperationClass::Routine) {
            cx.warn("S001", span, format!("step-up on `{n}`, a routine operation"), "routine", Some("over-stepping trains users to dismiss prompts; reserve step-up for what matters, or declare the operation `sensitive`".into()));
        }
    };
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| routine_lint(cx, t, e, positive)),
        Expr::Not(a) => routine_lint(cx, t, a, !positive),
        Expr::Cmp(n, CmpOp::Eq, lit) if n.text == "operation" => {
            if let Some((v, span)) = lit_text(lit) {
                flag(cx, v, span);
            }
        }
        Expr::In(n, items, _) if n.text == "operation" => {
            for i in items {
                if let Lit::Name(v) = i {
                    flag(cx, &v.text, v.span);
                } else if let Lit::Str(s) = i {
                    flag(cx, &s.value, s.span);
                }
            }
        }
        _ => {}
    }
}

/// An attribute read outside an operation guard: its name, where, and the condition text that
/// reads it (for the help's example).
struct Unguarded {
    attr: String,
    span: Span,
    example: String,
}

/// S008: a condition reads a request attribute where the event need not be an operation. Only
/// operations carry attributes; on every sign-in and access the attribute is absent, hence
/// unknown, and unknown fires (SPEC §10).
fn unguarded_lint(cx: &mut Ctx<'_>, t: &Tenant, policy: &str, e: &Expr, c: &Cond) {
    let mut found = Vec::new();
    unguarded_reads(cx.file, t, e, c, false, &mut found);
    let op = t
        .operations
        .iter()
        .find(|(_, c)| **c == OperationClass::Sensitive)
        .or_else(|| {
            t.operations
                .iter()
                .find(|(_, c)| **c == OperationClass::Admin)
        })
        .or_else(|| t.operations.iter().next())
        .map_or("payout", |(n, _)| n.as_str());
    let mut seen = BTreeSet::new();
    for u in found {
        if !seen.insert(u.attr.clone()) {
            continue;
        }
        cx.warn(
            "S008",
            u.span,
            format!(
                "policy `{policy}` reads `{}` without an `operation` guard: it can fire on every sign-in and access, where `{}` is absent",
                u.attr, u.attr
            ),
            "not guarded by an operation test",
            Some(format!(
                "guard it: `when operation == {op} and {}`",
                u.example
            )),
        );
    }
}

/// Collects the attribute reads of `e` (checked as `c`) that are not under an operation guard.
fn unguarded_reads(
    file: &SourceFile,
    t: &Tenant,
    e: &Expr,
    c: &Cond,
    guarded: bool,
    out: &mut Vec<Unguarded>,
) {
    let text = |span: Span| {
        file.text
            .get(span.start..span.end)
            .unwrap_or_default()
            .to_string()
    };
    match (e, c) {
        (Expr::And(es), Cond::And(cs)) if es.len() == cs.len() => {
            // A conjunct that is false on every other event guards its siblings.
            let g = guarded || cs.iter().any(Cond::only_on_operations);
            for (e, c) in es.iter().zip(cs) {
                unguarded_reads(file, t, e, c, g, out);
            }
        }
        (Expr::Or(es), Cond::Or(cs)) if es.len() == cs.len() => {
            for (e, c) in es.iter().zip(cs) {
                unguarded_reads(file, t, e, c, guarded, out);
            }
        }
        (Expr::Not(e), Cond::Not(c)) => unguarded_reads(file, t, e, c, guarded, out),
        _ if guarded => {}
        (Expr::Cmp(n, _, lit), _) if t.attributes.contains_key(&n.text) => out.push(Unguarded {
            attr: n.text.clone(),
            span: n.span,
            example: text(Span::new(n.span.start, lit.span().end)),
        }),
        (Expr::In(n, _, span), _) if t.attributes.contains_key(&n.text) => {
            out.push(Unguarded {
                attr: n.text.clone(),
                span: n.span,
                example: text(*span),
            });
        }
        (Expr::Flag(n), _) if t.attributes.contains_key(&n.text) => out.push(Unguarded {
            attr: n.text.clone(),
            span: n.span,
            example: n.text.clone(),
        }),
        (Expr::Script(s), Cond::Script(sc)) => {
            let example = if s.span.end.saturating_sub(s.span.start) <= 60 {
                format!("script {}", text(s.span))
            } else {
                "script \"...\"".to_string()
            };
            for site in sc.read_sites() {
                if let CtxField::Attr(a) = &site.field {
                    out.push(Unguarded {
                        attr: a.clone(),
                        span: script_span(file, s, site.line, site.column, site.width),
                        example: example.clone(),
                    });
                }
            }
        }
        _ => {}
    }
}

fn weaker_override(cx: &mut Ctx<'_>, p: &ast::Policy, base: &Policy, new: &Policy) {
    let (b, n) = (base.requirement, new.requirement);
    let mut why = Vec::new();
    if n.aal < b.aal {
        why.push(format!("a lower AAL ({} instead of {})", n.aal, b.aal));
    }
    if !n.factors.is_subset(b.factors) {
        why.push(format!(
            "more factors ({} instead of {})",
            n.factors, b.factors
        ));
    }
    if n.validity > b.validity {
        why.push(format!(
            "a longer duration ({} instead of {})",
            n.validity, b.validity
        ));
    }
    let mut help = if why.is_empty() {
        String::new()
    } else {
        format!("it has {}", why.join(", "))
    };
    if new.report_only && !base.report_only {
        help.push_str(if help.is_empty() {
            "it is"
        } else {
            ", and it is"
        });
        help.push_str(" `report_only`: this application never enforces it");
    }
    if !help.is_empty() {
        let span = p.name.as_ref().map_or(p.span, |x| x.span);
        cx.warn(
            "S005",
            span,
            if base.origin.line == 0 {
                format!(
                    "this override of `{}` is weaker than the built-in policy for `admin` operations",
                    base.name
                )
            } else {
                format!(
                    "this override of `{}` is weaker than the tenant's policy",
                    base.name
                )
            },
            "weaker override",
            Some(format!("{help}; overrides should tighten, not loosen")),
        );
    }
}

fn lit_text(l: &Lit) -> Option<(&str, Span)> {
    match l {
        Lit::Name(n) => Some((&n.text, n.span)),
        Lit::Str(s) => Some((&s.value, s.span)),
        Lit::Number(..) => None,
    }
}

fn describe_lit(l: &Lit) -> &'static str {
    match l {
        Lit::Name(_) => "a name",
        Lit::Str(_) => "a string",
        Lit::Number(..) => "a number",
    }
}

fn check_expr(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr) -> Option<Cond> {
    match e {
        Expr::And(v) => {
            let checked: Vec<Option<Cond>> = v.iter().map(|e| check_expr(cx, t, e)).collect();
            checked
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(Cond::And)
        }
        Expr::Or(v) => {
            let checked: Vec<Option<Cond>> = v.iter().map(|e| check_expr(cx, t, e)).collect();
            checked
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(Cond::Or)
        }
        Expr::Not(a) => Some(Cond::Not(Box::new(check_expr(cx, t, a)?))),
        Expr::Cmp(n, op, lit) => check_cmp(cx, t, n, *op, lit),
        Expr::In(n, items, span) => {
            if items.is_empty() {
                cx.err(
                    "E027",
                    *span,
                    "an empty list never matches",
                    "empty list",
                    Some("list at least one value".into()),
                );
                return None;
            }
            let mut acc: Vec<Cond> = Vec::new();
            let mut ok = true;
            if n.text == "operation"
                || n.text == "resource"
                || t.attributes.get(&n.text) == Some(&AttrType::String)
            {
                let mut set = BTreeSet::new();
                for i in items {
                    match single_name(cx, t, n, i) {
                        Some(v) => {
                            set.insert(v);
                        }
                        None => ok = false,
                    }
                }
                return ok.then(|| match n.text.as_str() {
                    "operation" => Cond::OperationIn(set),
                    "resource" => Cond::ResourceIn(set),
                    _ => Cond::AttrStrIn(n.text.clone(), set),
                });
            }
            for i in items {
                match check_cmp(cx, t, n, CmpOp::Eq, i) {
                    Some(c) => acc.push(c),
                    None => ok = false,
                }
            }
            ok.then_some(Cond::Or(acc))
        }
        Expr::Call(n, args, span) => check_call(cx, t, n, args, *span),
        Expr::Flag(n) => match n.text.as_str() {
            "new_device" => Some(Cond::Signal(SignalKind::NewDevice, 0)),
            "impossible_travel" => Some(Cond::Signal(SignalKind::ImpossibleTravel, 0)),
            "threat_intel" => Some(Cond::Signal(SignalKind::ThreatIntel, 0)),
            "new_country" => {
                cx.err("E028", n.span, "`new_country` needs a window", "no window", Some(format!("write `new_country({DEFAULT_COUNTRY_WINDOW_DAYS}d)`: no sign-in from the country in the last 30 days")));
                None
            }
            "first_access" => {
                cx.err(
                    "E028",
                    n.span,
                    "`first_access` needs a resource class",
                    "no resource",
                    Some("write e.g. `first_access(payments)`".into()),
                );
                None
            }
            other => match t.attributes.get(other) {
                Some(AttrType::Bool) => Some(Cond::AttrBool(other.to_string(), true)),
                Some(ty) => {
                    cx.err(
                        "E007",
                        n.span,
                        format!(
                            "`{other}` is a {} attribute, not a condition",
                            type_name(*ty)
                        ),
                        "not a boolean",
                        Some(format!("compare it, e.g. `{other} == ...`")),
                    );
                    None
                }
                None => {
                    let mut cands: Vec<&str> = SIGNALS.to_vec();
                    cands.extend(t.attributes.keys().map(String::as_str));
                    cx.err("E006", n.span, format!("unknown signal `{other}`"), "not a signal or attribute", mean(other, &cands).or_else(|| Some("signals are `new_device`, `new_country(Nd)`, `impossible_travel`, `threat_intel` and `first_access(resource)`".into())));
                    None
                }
            },
        },
        Expr::Script(s) => match Script::compile(&s.value) {
            Ok(sc) => {
                let mut ok = true;
                for site in sc.read_sites() {
                    let CtxField::Attr(name) = &site.field else {
                        continue;
                    };
                    if t.attributes.contains_key(name) {
                        continue;
                    }
                    ok = false;
                    let mut cands: Vec<&str> = t.attributes.keys().map(String::as_str).collect();
                    cands.extend(["risk", "operation", "resource", "event", "enrolled"]);
                    cx.err(
                        "E029",
                        script_span(cx.file, s, site.line, site.column, site.width),
                        format!(
                            "script reads `{}`, which is not a declared attribute",
                            site.field
                        ),
                        "not declared",
                        mean(name, &cands).or_else(|| {
                            Some(format!(
                                "declare it in tenant `{}`: `attribute {name}: number`",
                                t.name
                            ))
                        }),
                    );
                }
                ok.then(|| Cond::Script(Arc::new(sc)))
            }
            Err(e) => {
                let span = script_span(cx.file, s, e.line, e.column, e.width);
                cx.err(
                    "E014",
                    span,
                    format!("script error: {}", e.message.to_lowercase()),
                    "in this script",
                    Some(
                        "scripts are rhai expressions over `ctx`, e.g. `ctx.amount > 10000`".into(),
                    ),
                );
                None
            }
        },
    }
}

/// The span of `width` characters at (`line`, `column`) of a script (1-based, within its value),
/// mapped through the string's escapes; the whole string when the position is unknown.
fn script_span(
    file: &SourceFile,
    s: &ast::Str,
    line: Option<usize>,
    column: Option<usize>,
    width: usize,
) -> Span {
    let (Some(line), Some(column)) = (line, column) else {
        return s.span;
    };
    // The file offset of each character of the value (an escape is one character), and the end.
    let inner_start = s.span.start + 1;
    let inner_end = s.span.end.saturating_sub(1).max(inner_start);
    let raw = file.text.get(inner_start..inner_end).unwrap_or("");
    let mut offsets = Vec::with_capacity(raw.len() + 1);
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        offsets.push(inner_start + i);
        if c == '\\' {
            chars.next();
        }
    }
    offsets.push(inner_end);
    let (mut l, mut c) = (1, 1);
    let mut start = None;
    for (k, ch) in s.value.chars().enumerate() {
        if (l, c) == (line, column) {
            start = Some(k);
            break;
        }
        if ch == '\n' {
            (l, c) = (l + 1, 1);
        } else {
            c += 1;
        }
    }
    let Some(k) = start else {
        return s.span;
    };
    match (
        offsets.get(k),
        offsets.get(k + width.max(1)).or(offsets.last()),
    ) {
        (Some(&a), Some(&b)) if a < b => Span::new(a, b),
        _ => s.span,
    }
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::Number => "number",
        AttrType::String => "string",
        AttrType::Bool => "bool",
    }
}

fn single_name(cx: &mut Ctx<'_>, t: &Tenant, n: &ast::Name, lit: &Lit) -> Option<String> {
    let Some((v, span)) = lit_text(lit) else {
        cx.err(
            "E007",
            lit.span(),
            format!("`{}` is compared with a number", n.text),
            "a number",
            Some(format!("`{}` takes a name", n.text)),
        );
        return None;
    };
    match n.text.as_str() {
        "operation" if !t.operations.is_empty() && !t.operations.contains_key(v) => {
            let names: Vec<&str> = t.operations.keys().map(String::as_str).collect();
            cx.err(
                "E003",
                span,
                format!("unknown operation `{v}`"),
                "not in the catalog",
                mean(v, &names).or_else(|| {
                    Some(format!(
                        "declare it in tenant `{}`: `operation {v} sensitive`",
                        t.name
                    ))
                }),
            );
            None
        }
        "resource" if !t.resources.is_empty() && !t.resources.contains(v) => {
            let names: Vec<&str> = t.resources.iter().map(String::as_str).collect();
            cx.err(
                "E004",
                span,
                format!("unknown resource class `{v}`"),
                "not declared",
                mean(v, &names)
                    .or_else(|| Some(format!("declare it in tenant `{}`: `resource {v}`", t.name))),
            );
            None
        }
        _ => Some(v.to_string()),
    }
}

fn check_cmp(cx: &mut Ctx<'_>, t: &Tenant, n: &ast::Name, op: CmpOp, lit: &Lit) -> Option<Cond> {
    match n.text.as_str() {
        "operation" | "resource" => {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                cx.err(
                    "E007",
                    n.span,
                    format!("`{}` can only be compared with `==` or `!=`", n.text),
                    "not ordered",
                    Some(format!("use `{} in [a, b]` for several values", n.text)),
                );
                return None;
            }
            let v = single_name(cx, t, n, lit)?;
            let set = BTreeSet::from([v]);
            let c = if n.text == "operation" {
                Cond::OperationIn(set)
            } else {
                Cond::ResourceIn(set)
            };
            Some(if op == CmpOp::Ne {
                Cond::Not(Box::new(c))
            } else {
                c
            })
        }
        "risk" => match lit {
            Lit::Number(v, span) => {
                let never = match op {
                    CmpOp::Gt => *v >= 100.0,
                    CmpOp::Ge | CmpOp::Eq => *v > 100.0,
                    CmpOp::Lt => *v <= 0.0,
                    CmpOp::Le => *v < 0.0,
                    CmpOp::Ne => false,
                };
                if never || !v.is_finite() {
                    cx.warn(
                        "S006",
                        *span,
                        format!(
                            "`risk {} {v}` is never true: the score is 0 to 100",
                            op.as_str()
                        ),
                        "out of range",
                        Some("choose a threshold between 0 and 100".into()),
                    );
                }
                Some(Cond::Risk(op, *v))
            }
            other => {
                cx.err(
                    "E007",
                    other.span(),
                    format!(
                        "`risk` is a number, but it is compared with {}",
                        describe_lit(other)
                    ),
                    "not a number",
                    Some("write e.g. `risk >= 70`".into()),
                );
                None
            }
        },
        name if SIGNALS.contains(&name) => {
            cx.err(
                "E007",
                n.span,
                format!("`{name}` is a signal, not a value to compare"),
                "a signal",
                Some(format!(
                    "use it on its own: `when {name} ...` or `when not {name} ...`"
                )),
            );
            None
        }
        name => match t.attributes.get(name) {
            None => {
                let mut cands: Vec<&str> = BUILTINS.to_vec();
                cands.extend(t.attributes.keys().map(String::as_str));
                cx.err(
                    "E005",
                    n.span,
                    format!("unknown attribute `{name}`"),
                    "not declared",
                    mean(name, &cands).or_else(|| {
                        Some(format!(
                            "declare it in tenant `{}`: `attribute {name}: number`",
                            t.name
                        ))
                    }),
                );
                None
            }
            Some(AttrType::Number) => match lit {
                Lit::Number(v, _) if v.is_finite() => Some(Cond::AttrNum(name.to_string(), op, *v)),
                Lit::Number(_, span) => {
                    cx.err("E018", *span, "this number is too large", "too large", None);
                    None
                }
                other => {
                    cx.err(
                        "E007",
                        other.span(),
                        format!(
                            "`{name}` is a number, but it is compared with {}",
                            describe_lit(other)
                        ),
                        "type mismatch",
                        Some(format!("write e.g. `{name} > 1000`")),
                    );
                    None
                }
            },
            Some(AttrType::String) => {
                if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    cx.err(
                        "E007",
                        n.span,
                        format!("`{name}` is a string and can only be compared with `==` or `!=`"),
                        "not ordered",
                        None,
                    );
                    return None;
                }
                let Some((v, _)) = lit_text(lit) else {
                    cx.err(
                        "E007",
                        lit.span(),
                        format!("`{name}` is a string, but it is compared with a number"),
                        "type mismatch",
                        Some(format!("write e.g. `{name} == \"value\"`")),
                    );
                    return None;
                };
                let c = Cond::AttrStrIn(name.to_string(), BTreeSet::from([v.to_string()]));
                Some(if op == CmpOp::Ne {
                    Cond::Not(Box::new(c))
                } else {
                    c
                })
            }
            Some(AttrType::Bool) => {
                let b = match lit {
                    Lit::Name(v) if v.text == "true" => Some(true),
                    Lit::Name(v) if v.text == "false" => Some(false),
                    _ => None,
                };
                match (b, op) {
                    (Some(b), CmpOp::Eq) => Some(Cond::AttrBool(name.to_string(), b)),
                    (Some(b), CmpOp::Ne) => Some(Cond::AttrBool(name.to_string(), !b)),
                    _ => {
                        cx.err(
                            "E007",
                            lit.span(),
                            format!("`{name}` is a bool: compare it with `== true` or `== false`"),
                            "type mismatch",
                            None,
                        );
                        None
                    }
                }
            }
        },
    }
}

fn window_days(cx: &mut Ctx<'_>, a: &Arg) -> Option<u32> {
    match a {
        Arg::Duration(d) => match d.secs {
            Some(s) if s > 0 && s % 86_400 == 0 && s / 86_400 <= MAX_WINDOW_DAYS => {
                u32::try_from(s / 86_400).ok()
            }
            Some(0) => {
                cx.err(
                    "E012",
                    d.span,
                    "a window of zero days never matches",
                    "zero",
                    Some("write e.g. `30d`".into()),
                );
                None
            }
            Some(s) if s % 86_400 != 0 => {
                cx.err(
                    "E013",
                    d.span,
                    "signal windows are whole days",
                    "not whole days",
                    Some("write e.g. `30d`".into()),
                );
                None
            }
            _ => {
                cx.err(
                    "E013",
                    d.span,
                    "this window is absurdly long",
                    "longer than 10 years",
                    Some("write e.g. `30d`".into()),
                );
                None
            }
        },
        Arg::Name(n) => {
            cx.err(
                "E007",
                n.span,
                "expected a window in days here",
                "not a duration",
                Some("write e.g. `30d`".into()),
            );
            None
        }
    }
}

fn check_call(
    cx: &mut Ctx<'_>,
    t: &Tenant,
    n: &ast::Name,
    args: &[Arg],
    span: Span,
) -> Option<Cond> {
    match (n.text.as_str(), args) {
        ("new_country", [a]) => Some(Cond::Signal(SignalKind::NewCountry, window_days(cx, a)?)),
        ("first_access", [Arg::Name(r)]) | ("first_access", [Arg::Name(r), _]) => {
            if !t.resources.is_empty() && !t.resources.contains(&r.text) {
                let names: Vec<&str> = t.resources.iter().map(String::as_str).collect();
                cx.err(
                    "E004",
                    r.span,
                    format!("unknown resource class `{}`", r.text),
                    "not declared",
                    mean(&r.text, &names).or_else(|| {
                        Some(format!(
                            "declare it in tenant `{}`: `resource {}`",
                            t.name, r.text
                        ))
                    }),
                );
                return None;
            }
            let window = match args.get(1) {
                Some(a) => Some(window_days(cx, a)?),
                None => None,
            };
            Some(Cond::FirstAccess(r.text.clone(), window))
        }
        ("new_country", _) => {
            cx.err(
                "E028",
                span,
                "`new_country` takes one window",
                "wrong arguments",
                Some("write e.g. `new_country(30d)`".into()),
            );
            None
        }
        ("first_access", _) => {
            cx.err(
                "E028",
                span,
                "`first_access` takes a resource class and an optional window",
                "wrong arguments",
                Some("write e.g. `first_access(payments)` or `first_access(payments, 30d)`".into()),
            );
            None
        }
        ("new_device" | "impossible_travel" | "threat_intel", _) => {
            cx.err(
                "E028",
                span,
                format!("`{}` takes no arguments", n.text),
                "no arguments expected",
                Some(format!("write `{}`", n.text)),
            );
            None
        }
        (other, _) => {
            cx.err("E006", n.span, format!("unknown signal `{other}`"), "not a signal", mean(other, &SIGNALS).or_else(|| Some("signals are `new_device`, `new_country(Nd)`, `impossible_travel`, `threat_intel` and `first_access(resource)`".into())));
            None
        }
    }
}

/// A checked policy with where its name is written, for lints across policies.
#[derive(Clone)]
struct Located {
    name: String,
    file: Arc<SourceFile>,
    span: Span,
    from_app: bool,
    /// An application's policy the lint sees exactly as the tenant's policy it replaces.
    like_tenant: bool,
    /// Report-only: never merged with the others, so it conflicts with none.
    report_only: bool,
    /// The factors that can satisfy it (allowed and strong enough).
    factors: stepup_core::FactorSet,
    /// Operations it is restricted to, if a top-level conjunct says so.
    ops: Option<BTreeSet<String>>,
    /// Resource classes it is restricted to (accesses only), if a top-level conjunct says so.
    res: Option<BTreeSet<String>>,
}

impl Located {
    fn new(p: &Policy, t: &Tenant, file: &Arc<SourceFile>, span: Span, from_app: bool) -> Self {
        let (mut ops, mut res): (Option<BTreeSet<String>>, Option<BTreeSet<String>>) = (None, None);
        let conjuncts: Vec<&Cond> = match &p.condition {
            Cond::And(v) => v.iter().collect(),
            other => vec![other],
        };
        let narrow = |slot: &mut Option<BTreeSet<String>>, s: BTreeSet<String>| {
            *slot = Some(match slot.take() {
                Some(prev) => prev.intersection(&s).cloned().collect(),
                None => s,
            });
        };
        for c in conjuncts {
            match c {
                Cond::OperationIn(s) => narrow(&mut ops, s.clone()),
                Cond::ResourceIn(s) => narrow(&mut res, s.clone()),
                Cond::FirstAccess(r, _) => narrow(&mut res, BTreeSet::from([r.clone()])),
                _ => {}
            }
        }
        Located {
            name: p.name.clone(),
            file: Arc::clone(file),
            span,
            from_app,
            like_tenant: false,
            report_only: p.report_only,
            factors: p
                .requirement
                .factors
                .intersect(t.strengths.reaching(p.requirement.aal)),
            ops,
            res,
        }
    }

    /// Whether the lint sees both alike: same factors and same guards.
    fn same_shape(&self, o: &Located) -> bool {
        self.factors == o.factors
            && self.ops == o.ops
            && self.res == o.res
            && self.report_only == o.report_only
    }

    /// Whether some event can make both fire (conservative: `true` unless their guards exclude it).
    fn may_meet(&self, o: &Located) -> bool {
        match (&self.ops, &self.res, &o.ops, &o.res) {
            (Some(a), _, Some(b), _) => !a.is_disjoint(b),
            (_, Some(a), _, Some(b)) => !a.is_disjoint(b),
            (Some(_), _, _, Some(_)) | (_, Some(_), Some(_), _) => false,
            _ => true,
        }
    }
}

/// S007: two policies that can fire on the same event but share no factor that satisfies both —
/// their merge allows nothing, so the user is refused. `in_app`: the scope is an application's
/// (the tenant's policies, replaced by name, and the application's own).
fn disjoint_lint(diags: &mut Vec<Diagnostic>, scope: &[Located], in_app: bool) {
    let tenants = |x: &Located| !x.from_app || x.like_tenant;
    for (i, a) in scope.iter().enumerate() {
        for b in scope.iter().skip(i + 1) {
            // Tenant pairs are reported once, on the tenant, not again for each application
            // (also an application that changes nothing, or overrides without changing factors).
            let reported_elsewhere = in_app && tenants(a) && tenants(b);
            let enforced = !a.report_only && !b.report_only;
            if enforced
                && a.factors.intersect(b.factors).is_empty()
                && !reported_elsewhere
                && a.may_meet(b)
            {
                diags.push(
                    Diagnostic::warning("S007", &b.file, b.span, format!("policies `{}` and `{}` can fire together but no factor satisfies both", a.name, b.name))
                        .label("disjoint factors")
                        .help(format!("`{}` allows {} and `{}` allows {}: when both fire, the merged requirement allows no factor and the action is refused", a.name, a.factors, b.name, b.factors)),
                );
            }
        }
    }
}
