//! Pass 1: the declarations of every tenant, in every file — operations, resources, attributes,
//! factor strengths, the admin default, risk settings and threat feeds — and where each policy
//! and application block is, for the passes after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepup_core::{OperationClass, Validity};

use super::lint;
use super::policies::{check_require, check_validity_secs, parse_aal, parse_factor};
use super::{AppAt, BUILTINS, Ctx, Parsed, PolicyAt, mean};
use crate::ast::{self, Member, RiskItem};
use crate::diag::{Diagnostic, LineIndex, SourceFile, Span};
use crate::feed::ThreatFeed;
use crate::model::{AttrType, RiskConfig, SignalKind, Tenant};
use crate::script::CTX_BUILTINS;

/// What pass 1 found: the tenants with their catalogs, and the policies and application blocks
/// still to check.
pub(super) struct Declared<'a> {
    /// Every tenant, by name (`default` for declarations outside a tenant block).
    pub(super) tenants: BTreeMap<String, Tenant>,
    /// Each tenant's policies, in file order.
    pub(super) policies: BTreeMap<String, Vec<PolicyAt<'a>>>,
    /// Every application block.
    pub(super) apps: Vec<AppAt<'a>>,
}

/// Declares every tenant's catalogs and collects the policies and applications to check.
pub(super) fn pass<'a>(
    files: &'a [Parsed],
    indexes: &'a [LineIndex],
    diags: &mut Vec<Diagnostic>,
) -> Declared<'a> {
    let mut tenants: BTreeMap<String, Tenant> = BTreeMap::new();
    let mut policies: BTreeMap<String, Vec<PolicyAt<'a>>> = BTreeMap::new();
    let mut apps: Vec<AppAt<'a>> = Vec::new();
    let mut seen: BTreeMap<(String, &'static str, String), ()> = BTreeMap::new();
    // The names given to bare rules, per tenant (an author cannot write a `#` in a name).
    let mut generated: std::collections::BTreeSet<(String, String)> = Default::default();
    // Each tenant's `admin default` (`None`: `off`), checked once the whole tenant is declared.
    let mut admin: Vec<(String, &'a Arc<SourceFile>, Option<&'a ast::Require>)> = Vec::new();
    // Every `admin` operation declared, in order: the built-in `admin default` is reported at
    // each tenant's first one that stands (a second declaration of a name is refused).
    let mut admin_ops: Vec<(String, &'a Arc<SourceFile>, Span, &'a str)> = Vec::new();
    for (parsed, lines) in files.iter().zip(indexes) {
        let mut cx = Ctx {
            file: &parsed.file,
            diags: &mut *diags,
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
                if let Member::Operation {
                    name,
                    class: OperationClass::Admin,
                    ..
                } = m
                {
                    admin_ops.push((tenant.to_string(), &parsed.file, name.span, &name.text));
                }
                if declare(&mut cx, t, m, &parsed.base_dir, &mut seen)
                    && let Member::AdminDefault(req, _) = m
                {
                    admin.push((tenant.to_string(), &parsed.file, req.as_ref()));
                }
                if let Member::Policy(p) = m {
                    let name = match &p.name {
                        Some(n) => n.text.clone(),
                        // A bare rule's name is unique in its tenant: two files of one stem
                        // (`a/risk.policy`, `b/risk.policy`) number on, not over each other.
                        None => loop {
                            bare += 1;
                            let name = format!("{stem}#{bare}");
                            if generated.insert((tenant.to_string(), name.clone())) {
                                break name;
                            }
                        },
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
    // The built-in `admin default` and an `admin default require ...` without `for` last the
    // tenant's `duration`, and are checked against its final strengths, wherever those lines are.
    for t in tenants.values_mut() {
        if let Some(r) = &mut t.admin_default {
            r.validity = t.default_validity;
        }
    }
    for &(ref tenant, file, req) in &admin {
        if let Some(t) = tenants.get_mut(tenant) {
            let mut cx = Ctx {
                file,
                diags: &mut *diags,
            };
            let required = req.and_then(|r| check_require(&mut cx, t, r));
            if let (Some(r), Some(checked)) = (req, &required) {
                super::lint::long_aal3_elevation(&mut cx, r, checked);
            }
            t.admin_default = required;
        }
    }
    // The built-in requirement is checked against the tenant's strengths as a written one is
    // (an outside check: with every factor lowered to aal1, each admin operation was refused
    // as a `conflict`, and `check` said nothing).
    let mut reported = std::collections::BTreeSet::new();
    for (tenant, file, span, op) in admin_ops {
        let Some(t) = tenants.get(&tenant) else {
            continue;
        };
        if t.operations.get(op) != Some(&OperationClass::Admin) || !reported.insert(tenant.clone())
        {
            continue;
        }
        let written = admin.iter().any(|(name, ..)| *name == tenant);
        if let (false, Some(r)) = (written, t.admin_default)
            && r.factors.intersect(t.strengths.reaching(r.aal)).is_empty()
        {
            Ctx {
                file,
                diags: &mut *diags,
            }
            .warn(
                "S012",
                span,
                format!(
                    "no factor can reach {}, which the built-in `admin_default` requires of `{op}`",
                    r.aal
                ),
                "unreachable requirement",
                Some(format!(
                    "this tenant's factor strengths leave no factor at {}: every admin operation is refused (`conflict`); raise a factor back, or declare `admin default require ...` for what the tenant can prove",
                    r.aal
                )),
            );
        }
    }
    Declared {
        tenants,
        policies,
        apps,
    }
}

/// Declares `m` in `t`; `true` for an `admin default` declared for the first time (which the
/// caller checks once the whole tenant is declared).
fn declare(
    cx: &mut Ctx<'_>,
    t: &mut Tenant,
    m: &Member,
    base: &Path,
    seen: &mut BTreeMap<(String, &'static str, String), ()>,
) -> bool {
    let mut once = |cx: &mut Ctx<'_>, kind: &'static str, name: &str, span: Span| -> bool {
        if seen
            .insert((t.name.clone(), kind, name.to_string()), ())
            .is_some()
        {
            cx.err(
                "E017",
                span,
                if name.is_empty() {
                    // `duration`, `admin default`: one per tenant, with no name of their own.
                    format!("`{kind}` is declared twice in tenant `{}`", t.name)
                } else {
                    format!("{kind} `{name}` is declared twice in tenant `{}`", t.name)
                },
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
                    "E036",
                    ty.span,
                    format!("unknown attribute type `{}`", ty.text),
                    "not a type",
                    mean(&ty.text, &["number", "string", "bool"]).or_else(|| {
                        Some("attribute types are `number`, `string` and `bool`".into())
                    }),
                ),
                Some(_)
                    if BUILTINS.contains(&name.text.as_str())
                        || SignalKind::condition_names().contains(&name.text.as_str())
                        || CTX_BUILTINS.contains(&name.text.as_str()) =>
                {
                    cx.err(
                        "E038",
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
                let default = stepup_core::StrengthTable::default().strength(f);
                if a > default {
                    cx.warn(
                        "S014",
                        aal.span,
                        format!(
                            "`{f}` is raised from {} to {a}: it satisfies every `require {a}` policy on its own",
                            default.as_str()
                        ),
                        "raised strength",
                        Some(format!(
                            "the default table (the source document's) gives `{f}` {}; raise a factor only for an authenticator that really proves {a} (a password alone, for instance, then passes every {a} prompt at sign-in)",
                            default.as_str()
                        )),
                    );
                }
                t.strengths.set(f, a);
            }
        }
        Member::AdminDefault(_, span) => {
            // Checked by the caller once the tenant is declared (its `duration` and strengths).
            return once(cx, "admin default", "", *span);
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
                                mean(&name.text, &SignalKind::ALL.map(SignalKind::as_str)),
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
                                "E039",
                                s.span,
                                "a threat feed needs a path",
                                "empty path",
                                None,
                            );
                        } else if let Some((path, file)) = open_feed(cx, s, base) {
                            load_feed(cx, &mut t.risk, s, &file, &path);
                            t.risk.threat_feeds.push(path);
                        }
                    }
                }
            }
        }
        Member::CacheOff(_) | Member::Policy(_) => {}
    }
    false
}

/// The file a `threat_feed` names, open, if it is inside the policy file's directory (`base`),
/// with its path as written (joined to `base`); `None` after E041 when it is not (an absolute
/// path, a `..`, a symbolic link that leads out, a path that cannot be resolved), or E031 when
/// it cannot be opened. A policy author must not make the loader read the host's files
/// (`/proc/self/environ`, a service's keys, another tenant's rules) into a set, or into a
/// diagnostic. A path that is not relative and down (no absolute path, no `..`) is refused
/// without a look at the file system; the others are looked at before they are opened (so that
/// a path out of the directory is never opened), then checked again where the kernel says the
/// open file is, and the file read is the one opened: a look at the path and a read of it, one
/// after the other, can be raced (a directory of the path swapped for a link between the two).
fn open_feed(cx: &mut Ctx<'_>, s: &ast::Str, base: &Path) -> Option<(PathBuf, std::fs::File)> {
    use std::path::Component;
    let rel = Path::new(&s.value);
    let lexical = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let path = base.join(rel);
    // The directory as the loader resolved it when it read the policy file (an absolute base),
    // not resolved again now: a directory swapped for a link since would move it.
    let root = if !lexical {
        None
    } else if base.is_absolute() {
        Some(normalized(base))
    } else {
        base_or_here(base).canonicalize().ok()
    };
    // Looked at before it is opened, so that a path out of the directory is never opened (an
    // outside pipe or device is not touched) and says nothing of what is there: resolved, it
    // must be inside; missing, the nearest entry on its path that exists must resolve inside (a
    // link to nowhere is an entry that does not resolve: outside, whatever is or is not there),
    // or be on the way to the directory itself (a directory that is missing): then it is E031,
    // "does not exist".
    let root = root.filter(|root| match path.canonicalize() {
        Ok(real) => real.starts_with(root),
        Err(_) => path
            .ancestors()
            .find(|a| a.symlink_metadata().is_ok())
            .and_then(|a| Some((a, a.canonicalize().ok()?)))
            .is_some_and(|(a, real)| {
                real.starts_with(root) || (base.starts_with(a) && root.starts_with(&real))
            }),
    });
    if let Some(root) = root {
        let file = match crate::feed::open_feed(&path) {
            Ok(f) => f,
            Err(e) => {
                unreadable_feed(cx, s, &e);
                return None;
            }
        };
        // And checked again where the kernel says the open file is: the look before the open
        // can be raced.
        // Not resolved (a path too long to resolve, a loop): never read.
        if opened_path(&file, &path).is_some_and(|real| real.starts_with(&root)) {
            return Some((path, file));
        }
    }
    cx.err(
        "E041",
        s.span,
        format!(
            "threat feed `{}` is outside the policy file's directory",
            s.value
        ),
        "outside the rules",
        Some(
            "name a file under the policy file's directory with a relative path (`feeds/blocklist.netset`): no absolute path, no `..`, no symbolic link out of it; copy a shared feed into the rules instead"
                .into(),
        ),
    );
    None
}

/// Where the open `file` is: on Linux, the kernel's own path of the open file (read from
/// `/proc/self/fd`, so that nothing done to the directories after the open can change the
/// answer); without `/proc` (a sandbox that does not mount it), as on other systems. `None`
/// when it cannot be told.
#[cfg(target_os = "linux")]
fn opened_path(file: &std::fs::File, path: &Path) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(p) => Some(p),
        Err(_) if !Path::new("/proc/self/fd").exists() => resolved_if_same(file, path),
        Err(_) => None,
    }
}

/// Where the open `file` is, elsewhere.
#[cfg(all(unix, not(target_os = "linux")))]
fn opened_path(file: &std::fs::File, path: &Path) -> Option<PathBuf> {
    resolved_if_same(file, path)
}

/// `path` resolved, if it still names the open `file` (same device and inode; the two lookups
/// can be raced where the kernel cannot say where a file is).
#[cfg(unix)]
fn resolved_if_same(file: &std::fs::File, path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let real = path.canonicalize().ok()?;
    let (a, b) = (file.metadata().ok()?, std::fs::metadata(&real).ok()?);
    (a.dev() == b.dev() && a.ino() == b.ino()).then_some(real)
}

/// Where the open `file` is, without inodes to compare: `path` resolved, if it is a file of the
/// same length (a weaker check).
#[cfg(not(unix))]
fn opened_path(file: &std::fs::File, path: &Path) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    let (a, b) = (file.metadata().ok()?, std::fs::metadata(&real).ok()?);
    (a.len() == b.len() && a.is_file() == b.is_file()).then_some(real)
}

/// E031: the feed `s` names cannot be opened or read.
fn unreadable_feed(cx: &mut Ctx<'_>, s: &ast::Str, e: &std::io::Error) {
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
}

/// An absolute path with its `.` and `..` taken out by their names alone (a `..` after a link
/// is not followed back: the result can only name a place the file's real path is not under,
/// never one it wrongly is).
fn normalized(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `base`, or the current directory for an empty one (a text checked without a file).
fn base_or_here(base: &Path) -> &Path {
    if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    }
}

/// Loads a threat feed into the tenant's merged feed: an unreadable file, or one with no valid
/// line, is an error (a missing blocklist would silently allow); malformed lines are warnings.
fn load_feed(
    cx: &mut Ctx<'_>,
    risk: &mut RiskConfig,
    s: &ast::Str,
    file: &std::fs::File,
    path: &Path,
) {
    let (feed, warnings) = match ThreatFeed::read(file, path) {
        Ok(x) => x,
        Err(e) => {
            unreadable_feed(cx, s, &e);
            return;
        }
    };
    if feed.is_empty() && !warnings.is_empty() {
        // A feed whose lines include the IPv4-mapped block alone says so: that line is a
        // range, one that matches nothing here, not a malformed one.
        let (message, help) = match warnings.only_mapped() {
            0 => (
                format!(
                    "threat feed `{}` lists no IP address or CIDR range: every line is malformed",
                    s.value
                ),
                format!(
                    "a feed lists one IPv4 or IPv6 address or CIDR range per line, with `#` or `;` comments; none of its {} line(s) with text is one (is it the right file?)",
                    warnings.len()
                ),
            ),
            mapped => (
                format!(
                    "threat feed `{}` lists no range that matches an address: {mapped} of its {} line(s) with text {} the IPv4-mapped block alone (`::ffff:0:0/96`), which matches nothing here{}",
                    s.value,
                    warnings.len(),
                    if mapped == 1 { "is" } else { "are" },
                    if mapped == warnings.len() {
                        ""
                    } else {
                        ", and the rest are malformed"
                    }
                ),
                "mapped addresses are looked up as IPv4: all of IPv4 is written `0.0.0.0/0`"
                    .to_string(),
            ),
        };
        cx.err("E032", s.span, message, "no valid line", Some(help));
        return;
    }
    lint::malformed_feed_lines(cx, s, &warnings);
    Arc::make_mut(&mut risk.feed).extend(&feed);
    risk.feed_warnings.extend(&warnings);
}
