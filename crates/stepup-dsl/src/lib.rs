//! The stepup policy language: pest grammar (`grammar/policy.pest`), spanned syntax tree,
//! checks and lints with precise diagnostics, the canonical formatter, and the checked policy
//! model the engine compiles.
//!
//! ```
//! let loaded = stepup_dsl::load_sources(&[stepup_dsl::Source::text(
//!     "card.policy",
//!     "when risk >= 70 or new_country(30d) require aal3 factor webauthn|totp for 5m",
//! )]);
//! let set = loaded.set.expect("the design card's line is a valid policy file");
//! assert_eq!(set.tenants["default"].policies.len(), 1);
//! ```

// pest is built without `std` (no stack probe on every rule call, see the root Cargo.toml):
// the parser it derives names `::alloc`.
extern crate alloc;

pub mod ast;
pub mod check;
pub mod codes;
pub mod diag;
pub mod feed;
pub mod fmt;
pub mod lints;
pub mod model;
pub mod script;
pub mod syntax;
pub mod token;
pub mod vocab;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use diag::{Diagnostic, Severity, SourceFile, Span};
pub use model::PolicySet;

/// One policy file to load.
#[derive(Debug, Clone)]
pub struct Source {
    /// Name shown in diagnostics (usually the path).
    pub name: String,
    /// Raw bytes (checked for UTF-8).
    pub bytes: Vec<u8>,
    /// Directory relative paths in the file are resolved against; a threat feed must be a
    /// file under it (E041). Give it resolved ([`resolved_dir`], as [`load_paths`] does): an
    /// absolute one is taken as written, its `.` and `..` removed by name, so a link in it
    /// makes every feed E041; a relative one is resolved when the file is checked.
    pub base_dir: PathBuf,
}

impl Source {
    /// A source from text, with relative paths resolved against the current directory.
    #[must_use]
    pub fn text(name: &str, text: &str) -> Self {
        Source {
            name: name.to_string(),
            bytes: text.as_bytes().to_vec(),
            base_dir: PathBuf::from("."),
        }
    }
}

/// The outcome of loading policy files.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The checked set, when no file has an error.
    pub set: Option<PolicySet>,
    /// Every error and warning of every file, in file and position order; at most
    /// [`diag::MAX_DIAGNOSTICS_PER_FILE`] per file, then a note counting the rest by code.
    pub diagnostics: Vec<Diagnostic>,
    /// The errors and warnings left out of `diagnostics` by the cap (counted in the totals).
    pub hidden: diag::Hidden,
    /// The files as read.
    pub files: Vec<Arc<SourceFile>>,
}

impl Loaded {
    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count() + self.hidden.errors
    }
    /// Number of warnings.
    #[must_use]
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
            + self.hidden.warnings
    }
}

/// Parses one file's text (no checks): the syntax tree, or its diagnostics.
///
/// # Errors
/// The syntax errors.
pub fn parse_text(name: &str, text: &str) -> Result<ast::File, Vec<Diagnostic>> {
    let file = Arc::new(SourceFile {
        name: name.to_string(),
        text: text.to_string(),
    });
    syntax::parse(&file)
}

/// Formats one file's text canonically, keeping comments. A byte order mark the text starts
/// with is left out: `fmt` writes the file without it, as `check` reads it
/// ([`stepup_core::without_bom`]).
///
/// # Errors
/// The syntax errors, when the text does not parse.
pub fn format_text(name: &str, text: &str) -> Result<String, Vec<Diagnostic>> {
    let text = stepup_core::without_bom(text);
    let ast = parse_text(name, text)?;
    Ok(fmt::format_file(&ast, text))
}

/// In this crate's tests only (compiled out of every other build): a name holding
/// `{site}_panics` makes the code reading it at `site` panic. How the tests check that a bug
/// while loading is an error of the set, never a crash of the process and never a file or a
/// tenant's policies silently left out (which would leave their events unguarded).
#[cfg(test)]
pub(crate) fn fault(site: &str, name: &str) {
    assert!(
        !name.contains(&format!("{site}_panics")),
        "a panic on purpose at {site}: the test checks it is contained"
    );
}

/// A file whose text is not available (its reading failed), for the diagnostic that says so.
fn unread(name: &str) -> Arc<diag::SourceFile> {
    Arc::new(diag::SourceFile {
        name: name.to_string(),
        text: String::new(),
    })
}

/// The bytes of policy text from which files are read on several threads: as large as the
/// smallest file the parser cuts into pieces.
const PARALLEL_LOAD_BYTES: usize = 2 * syntax::MIN_PIECE_BYTES;

/// One file, read: decoded, parsed, and its canonical text (what the set's hash covers).
enum Read {
    /// Why it cannot be read: not UTF-8, or its syntax errors.
    Invalid(Arc<diag::SourceFile>, Vec<Diagnostic>),
    /// Its tree and canonical text.
    Parsed(Arc<diag::SourceFile>, ast::File, String),
}

/// Reads one file, cutting it into pieces parsed on up to `threads` threads.
fn read_one(src: &Source, threads: usize) -> Read {
    #[cfg(test)]
    fault("read", &src.name);
    match syntax::decode(&src.name, &src.bytes) {
        Err((f, d)) => Read::Invalid(f, vec![*d]),
        Ok(file) => match syntax::parse_canonical_on(&file, threads) {
            Ok((ast, canonical)) => Read::Parsed(file, ast, canonical),
            Err(d) => Read::Invalid(file, d),
        },
    }
}

/// Loads, parses and checks a set of files as one policy set.
#[must_use]
pub fn load_sources(sources: &[Source]) -> Loaded {
    load_sources_on(sources, PARALLEL_LOAD_BYTES)
}

/// [`load_sources`], the files read on several threads from `parallel_from` bytes.
fn load_sources_on(sources: &[Source], parallel_from: usize) -> Loaded {
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    let mut sorted: Vec<&Source> = sources.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    // Files are read apart (on several threads when there is much to read); the hash and the
    // diagnostics then take them in name order, as one after the other would.
    let bytes: usize = sorted.iter().map(|s| s.bytes.len()).sum();
    let parallel = bytes >= parallel_from;
    // The cores are shared between the files read at once: a file is cut into pieces only
    // with the threads left to it (no thread of a thread of a thread).
    // (Below the threshold no file is large enough to cut either.)
    let per_file = if parallel {
        (stepup_core::threads::cores() / sorted.len().max(1)).max(1)
    } else {
        1
    };
    let read =
        stepup_core::threads::map_contained(&sorted, parallel, |src| read_one(src, per_file));
    let mut hasher = Sha256::new();
    for (src, r) in sorted.iter().zip(read) {
        match r {
            Some(Read::Parsed(file, ast, canonical)) => {
                files.push(Arc::clone(&file));
                // The file's name, not its path: the hash names a version of the rules, wherever
                // they are checked out.
                let base = Path::new(&src.name)
                    .file_name()
                    .map_or_else(|| src.name.clone(), |n| n.to_string_lossy().into_owned());
                hasher.update(base.as_bytes());
                hasher.update([0]);
                hasher.update(canonical.as_bytes());
                hasher.update([0]);
                parsed.push(check::Parsed {
                    file,
                    ast,
                    base_dir: src.base_dir.clone(),
                });
            }
            Some(Read::Invalid(file, d)) => {
                files.push(file);
                diagnostics.extend(d);
            }
            // Reading the file panicked (a bug): it is an error, never a file left out.
            None => {
                let file = unread(&src.name);
                diagnostics.push(syntax::invariant(&file, diag::Span::new(0, 0), "this file"));
                files.push(file);
            }
        }
    }
    // A check that panicked (a bug) is an error of the set, not a crash of the process that
    // loads it (a service reloading its rules keeps the set it has).
    let (mut set, more) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check::check(&parsed, String::new())
    }))
    .unwrap_or_else(|_| {
        let file = files.first().cloned().unwrap_or_else(|| unread(""));
        (
            None,
            vec![syntax::invariant(
                &file,
                diag::Span::new(0, 0),
                "the policy set",
            )],
        )
    });
    diagnostics.extend(more);
    if let Some(set) = &mut set {
        // The blocklists decide too: the hash covers each tenant's merged feed.
        for (name, t) in &set.tenants {
            if t.risk.threat_feeds.is_empty() {
                continue;
            }
            hasher.update(b"threat_feed\0");
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(t.risk.feed.canonical().as_bytes());
            hasher.update([0]);
        }
        set.hash = hasher
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
    }
    diagnostics.sort_by(|a, b| {
        (a.file.name.as_str(), a.span.start).cmp(&(b.file.name.as_str(), b.span.start))
    });
    let set = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        set
    };
    let (diagnostics, hidden) = diag::cap_per_file(diagnostics, diag::MAX_DIAGNOSTICS_PER_FILE);
    Loaded {
        set,
        diagnostics,
        hidden,
        files,
    }
}

/// The directory of the file at `f`, resolved (links and `..` followed: the place a [`Source`]'s
/// `base_dir` names, under which its threat feeds must be), and the path to read the file at
/// through it. Resolve it once, before the file is read: a directory of the rules swapped for a
/// link later does not move it. (Unresolvable: the parent as written, and `f`.)
#[must_use]
pub fn resolved_dir(f: &Path) -> (PathBuf, PathBuf) {
    let parent = f.parent().map(Path::to_path_buf).unwrap_or_default();
    let here = if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent.clone()
    };
    match (here.canonicalize(), f.file_name()) {
        (Ok(dir), Some(name)) => {
            let at = dir.join(name);
            (dir, at)
        }
        _ => (parent, f.to_path_buf()),
    }
}

/// Every `.policy` file under `path` (a file or a directory, searched recursively), sorted.
///
/// # Errors
/// When the path cannot be read.
pub fn policy_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    files_under(path, "policy")
}

/// Every file named `*.{extension}` under `path` (a file, which is taken whatever its name, or
/// a directory, searched recursively), sorted. The extension is compared without case: a
/// `Payouts.POLICY` written on another system is read, never skipped (its policies would
/// otherwise guard nothing, silently). A directory reached twice (through a symbolic
/// link to it, or to one of its parents) is searched once: a link loop ends, and no file is
/// read twice through it.
///
/// # Errors
/// When the path or a directory under it cannot be read.
pub fn files_under(path: &Path, extension: &str) -> std::io::Result<Vec<PathBuf>> {
    Ok(walk(path, extension)?.0)
}

/// The files under the directory `path` that [`files_under`] skips although their extension
/// is one or two letters from `extension` (`payouts.polcy`, `payouts.policy~`, `a.rno`; one
/// letter for an extension of four letters or fewer), starts with its first five
/// (`payouts.policies`) or is it cut short (`payouts.pol`), or whose name holds it before
/// another (`payouts.policy.txt`, `payouts.policy.`, `.policy`), sorted: a file meant to be read and skipped for a typo guards nothing
/// (or tests nothing), silently, so the tools name it. Nothing for a file path.
///
/// # Errors
/// When the path or a directory under it cannot be read.
pub fn near_misses(path: &Path, extension: &str) -> std::io::Result<Vec<PathBuf>> {
    Ok(walk(path, extension)?.1)
}

/// The files under `path` with `extension` and those that nearly have it (see
/// [`files_under`] and [`near_misses`]).
fn walk(path: &Path, extension: &str) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    // A device or a pipe given by name is refused, not read: a pipe with no writer blocks the
    // read forever, and `fmt` would replace it with a regular file (walked as a directory, it
    // said "Not a directory").
    if !meta.is_dir() {
        return Err(std::io::Error::other("not a regular file or a directory"));
    }
    let (mut out, mut near) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        // An error inside names the directory it is about (a review: an unreadable
        // subdirectory was reported as its parent, the path given).
        let within = |e: std::io::Error| {
            if dir == path {
                e
            } else {
                std::io::Error::new(e.kind(), format!("`{}`: {e}", dir.display()))
            }
        };
        if !seen.insert(std::fs::canonicalize(&dir).map_err(within)?) {
            continue;
        }
        for entry in std::fs::read_dir(&dir).map_err(within)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let wanted = extension.to_lowercase();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            match p.extension().map(|e| e.to_string_lossy().to_lowercase()) {
                Some(e) if e == wanted => out.push(p),
                // `payouts.polcy`, `payouts.pol`; `payouts.policy.txt`, `payouts.policy.` (the
                // extension kept inside the name); `.policy` (a name that is all extension).
                Some(e) if nearly(&e, &wanted) => near.push(p),
                _ if name.contains(&format!(".{wanted}")) => near.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    near.sort();
    Ok((out, near))
}

/// Whether `found` looks like a typo of `wanted` (both lowercase): at most two edits apart
/// (one for a `wanted` of four letters or fewer, where two edits make most short words),
/// starting with `wanted`'s first five letters, or `wanted` cut short (three letters or more).
fn nearly(found: &str, wanted: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (found.chars().collect(), wanted.chars().collect());
    let most = if b.len() <= 4 { 1 } else { 2 };
    if b.len() >= 5 && a.len() > b.len() && a.starts_with(b.get(..5).unwrap_or_default()) {
        return true;
    }
    // Cut short: `pol`, `poli` for `policy`.
    if a.len() >= 3 && a.len() < b.len() && b.starts_with(&a) {
        return true;
    }
    a.len().abs_diff(b.len()) <= most
        && a.len() <= 64
        && stepup_core::edit_distance(found, wanted) <= most
}

/// What is wrong with `paths` when they hold no `.policy` file (every command says it alike).
#[must_use]
pub fn no_policy_files(paths: &[PathBuf]) -> String {
    format!(
        "no `.policy` files under {}",
        paths
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Reads the sources under several paths (files or directories).
///
/// # Errors
/// The first path that cannot be read, with its name.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, String> {
    Ok(read_sources_and_near_misses(paths)?.0)
}

/// [`read_sources`], with the files skipped for a name that nearly ends in `.policy`
/// ([`near_misses`]), found in the same walk of each directory.
fn read_sources_and_near_misses(paths: &[PathBuf]) -> Result<(Vec<Source>, Vec<PathBuf>), String> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        let (files, near) =
            walk(p, "policy").map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        skipped.extend(near);
        for f in files {
            // The file's directory, resolved once, before the file is read: its threat feeds
            // must be files under this very place (a directory of the rules swapped for a link
            // later, while the set loads, does not move it), and the file is read through it.
            let (base_dir, read_at) = resolved_dir(&f);
            // Only a regular file is a policy file, judged on the opened handle: a pipe in the
            // directory (or a link to one) was waited on forever, a device (`/dev/zero`) never
            // ends (reviews). A policy file that cannot be read stops the load: its policies
            // would guard nothing.
            let cannot = |e: std::io::Error| format!("cannot read `{}`: {e}", f.display());
            let file = stepup_core::open_regular(&read_at).map_err(cannot)?;
            let len = file.metadata().map_err(cannot)?.len();
            // Refuse to read huge files into memory: the parser would refuse them anyway; no
            // more than one byte past its limit is read of a file that grows as it is read.
            let bytes = if len > (syntax::MAX_FILE_BYTES as u64) * 2 {
                vec![b' '; syntax::MAX_FILE_BYTES + 1]
            } else {
                use std::io::Read;
                let mut bytes = Vec::new();
                file.take(syntax::MAX_FILE_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(cannot)?;
                bytes
            };
            out.push(Source {
                name: f.display().to_string(),
                bytes,
                base_dir,
            });
        }
    }
    Ok((out, skipped))
}

/// Loads every `.policy` file under the paths as one policy set.
///
/// # Errors
/// When a path cannot be read.
pub fn load_paths(paths: &[PathBuf]) -> Result<Loaded, String> {
    let (sources, near) = read_sources_and_near_misses(paths)?;
    let mut loaded = load_sources(&sources);
    let mut skipped: Vec<Diagnostic> = near
        .iter()
        .map(|f| {
            Diagnostic::warning(
                SKIPPED_FILE,
                &unread(&f.display().to_string()),
                diag::Span::new(0, 0),
                "this file is not read: its name does not end in `.policy`",
            )
            .label("not read")
            .help("rename it to end in `.policy` (or give it an extension that is not close to it)")
        })
        .collect();
    // Before the files' own diagnostics: the files, and then the set, are as read without them.
    skipped.append(&mut loaded.diagnostics);
    loaded.diagnostics = skipped;
    Ok(loaded)
}

/// The code of the warning that names a file skipped for a near-miss extension.
pub const SKIPPED_FILE: &str = "S011";

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;

    /// What is a near miss of an extension, and what is not.
    #[test]
    fn near_misses_of_an_extension() {
        for found in [
            "polcy", "plicy", "policyy", "poilcy", "policies", "polic", "policy~", "poliyc",
            "polisy",
        ] {
            assert!(nearly(found, "policy"), "{found}");
        }
        for found in ["pol", "poli"] {
            assert!(nearly(found, "policy"), "cut short: {found}");
        }
        for found in [
            "txt", "md", "bak", "rs", "json", "po", "yaml", "toml", "ron", "py",
        ] {
            assert!(!nearly(found, "policy"), "{found}");
        }
        for found in ["rno", "rn", "ronn", "rom", "orn"] {
            assert!(nearly(found, "ron"), "{found}");
        }
        for found in [
            "rs", "md", "json", "yaml", "toml", "txt", "py", "sh", "r", "policy",
        ] {
            assert!(!nearly(found, "ron"), "{found}");
        }
    }

    /// Files read on threads load as files read one after the other: the same set, hash,
    /// diagnostics (in order, located) and files, whatever each file holds.
    #[test]
    fn files_read_on_threads_load_as_files_read_in_order() {
        let tenant = |t: usize, broken: bool| {
            let extra = if broken {
                "  policy p \"Twice.\" { when amountt > 1 require aal2 }\n"
            } else {
                ""
            };
            format!(
                "tenant t{t} {{\n  operation pay sensitive\n  attribute amount: number\n  policy p \"Confirm.\" {{ when operation == pay and amount > {t} require aal2 for 5m }}\n{extra}}}\n"
            )
        };
        let valid: Vec<Source> = (0..6)
            .map(|t| Source::text(&format!("f{t}.policy"), &tenant(t, false)))
            .collect();
        let hash = |from| load_sources_on(&valid, from).set.map(|s| s.hash);
        assert!(hash(usize::MAX).is_some());
        assert_eq!(hash(0), hash(usize::MAX), "the set's hash");
        let mut sources: Vec<Source> = (0..6)
            .map(|t| Source::text(&format!("f{t}.policy"), &tenant(t, t % 2 == 0)))
            .collect();
        sources.push(Source::text("bad.policy", "when new_device require\n"));
        sources.push(Source {
            name: "latin1.policy".into(),
            bytes: b"when new_device require aal2 # caf\xe9\n".to_vec(),
            base_dir: std::path::PathBuf::new(),
        });
        sources.push(Source::text(
            "app.policy",
            "application a of t0 {\n  when amount > 3 require aal3\n}\n",
        ));
        // The set as printed, the diagnostics as `stepup check` renders them (located), and
        // the files read.
        let show = |l: Loaded| {
            (
                l.set.map(|s| format!("{s:?}")),
                diag::render_all(&l.diagnostics, false),
                l.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            )
        };
        let threads = show(load_sources_on(&sources, 0));
        let in_order = show(load_sources_on(&sources, usize::MAX));
        for code in ["E001", "E005", "E008", "E021"] {
            assert!(in_order.1.contains(code), "{code}: {}", in_order.1);
        }
        assert_eq!(threads, in_order);
    }

    /// A bug that panics while a file is read, while a tenant's policies are checked or while
    /// the set is checked makes the load fail with an E000 naming what was lost, on threads or
    /// not: never a crash, and never a set with that file or those policies left out.
    #[test]
    fn a_panic_while_loading_is_an_error_of_the_set_never_a_part_left_out() {
        let tenant = |name: &str| {
            format!(
                "tenant {name} {{\n  operation pay sensitive\n  policy p {{ when operation == pay require aal2 }}\n}}\n"
            )
        };
        let cases = [
            ("x_read_panics.policy", tenant("t1"), "reading this file"),
            (
                "x.policy",
                tenant("t_check_tenant_panics"),
                "reading the policies of this tenant",
            ),
            (
                "x_check_panics.policy",
                tenant("t1"),
                "reading the policy set",
            ),
        ];
        for (name, text, what) in cases {
            let sources = [
                Source::text("a.policy", &tenant("t0")),
                Source::text(name, &text),
            ];
            for parallel_from in [0, usize::MAX] {
                let loaded = load_sources_on(&sources, parallel_from);
                assert!(loaded.set.is_none(), "{name}: a set with a part missing");
                let shown = diag::render_all(&loaded.diagnostics, false);
                assert!(
                    shown.contains("E000") && shown.contains(what),
                    "{name}: {shown}"
                );
                let files: Vec<&str> = loaded.files.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(files, ["a.policy", name]);
            }
        }
    }
}
