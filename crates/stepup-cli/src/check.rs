//! `stepup check` and `stepup fmt`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Format, color};

/// `stepup check`: exit 0 without errors, 1 with errors (or warnings under `--deny-warnings`),
/// 2 when a path cannot be read.
pub fn check(paths: &[PathBuf], format: Format, deny_warnings: bool, out: &mut dyn Write) -> u8 {
    let loaded = match stepup_dsl::load_paths(paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if loaded.files.is_empty() {
        // What was skipped for a near-miss name (S011), if anything, says why nothing was read.
        eprint!(
            "{}",
            stepup_dsl::diag::render_all(&loaded.diagnostics, color(format))
        );
        eprintln!("error: {}", stepup_dsl::no_policy_files(paths));
        return 2;
    }
    let (errors, warnings) = (loaded.error_count(), loaded.warning_count());
    let report_only = loaded.set.as_ref().map(report_only).unwrap_or_default();
    match format {
        Format::Json => {
            let v = serde_json::json!({
                "files": loaded.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
                "errors": errors,
                "warnings": warnings,
                "policy_set_hash": loaded.set.as_ref().map(|s| s.hash.clone()),
                "report_only": report_only.iter().map(|r| serde_json::json!({
                    "tenant": r.tenant,
                    "application": r.application,
                    "policy": r.policy,
                    "file": r.file,
                    "line": r.line,
                })).collect::<Vec<_>>(),
                "diagnostics": loaded.diagnostics.iter().map(stepup_dsl::Diagnostic::to_json).collect::<Vec<_>>(),
            });
            let _ = writeln!(out, "{v:#}");
        }
        Format::Human | Format::Plain => {
            let c = color(format);
            let _ = write!(
                out,
                "{}",
                stepup_dsl::diag::render_all(&loaded.diagnostics, c)
            );
            let n = loaded.files.len();
            let files = format!("{n} file{}", plural(n));
            let _ = match (errors, warnings) {
                (0, 0) => writeln!(out, "checked {files}: no problems"),
                (0, w) => writeln!(out, "checked {files}: {w} warning{}", plural(w)),
                (e, w) => writeln!(
                    out,
                    "checked {files}: {e} error{}, {w} warning{}",
                    plural(e),
                    plural(w)
                ),
            };
            if !report_only.is_empty() {
                let n = report_only.len();
                let _ = writeln!(
                    out,
                    "{n} report-only polic{} (evaluated and reported, never enforced):",
                    if n == 1 { "y" } else { "ies" }
                );
                for r in &report_only {
                    let scope = if r.application.is_empty() {
                        r.tenant.clone()
                    } else {
                        format!("{}/{}", r.tenant, r.application)
                    };
                    let _ = writeln!(out, "  {scope}: {} ({}:{})", r.policy, r.file, r.line);
                }
            }
        }
    }
    u8::from(errors > 0 || (deny_warnings && warnings > 0))
}

/// A report-only policy, where it is written.
struct ReportOnlyAt {
    tenant: String,
    application: String,
    policy: String,
    file: String,
    line: usize,
}

/// Every report-only policy of the set, tenants' first, so that none is forgotten.
fn report_only(set: &stepup_dsl::PolicySet) -> Vec<ReportOnlyAt> {
    let tenants = set
        .tenants
        .values()
        .flat_map(|t| t.policies.iter().map(move |p| (t.name.as_str(), "", p)));
    let apps = set.applications.values().flat_map(|a| {
        a.policies
            .iter()
            .map(move |p| (a.tenant.as_str(), a.name.as_str(), p))
    });
    tenants
        .chain(apps)
        .filter(|(_, _, p)| p.report_only)
        .map(|(t, a, p)| ReportOnlyAt {
            tenant: t.to_string(),
            application: a.to_string(),
            policy: p.name.clone(),
            file: p.origin.file.clone(),
            line: p.origin.line,
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `stepup fmt`: formats in place; `--check` lists files that would change and exits 1.
pub fn fmt(paths: &[PathBuf], check_only: bool, out: &mut dyn Write) -> u8 {
    let sources = match stepup_dsl::read_sources(paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if sources.is_empty() {
        // A check of no files would pass whatever path it was pointed at.
        eprintln!("error: {}", stepup_dsl::no_policy_files(paths));
        return 2;
    }
    let (mut changed, mut failed) = (0usize, 0usize);
    for src in &sources {
        let text = match std::str::from_utf8(&src.bytes) {
            Ok(t) => t,
            Err(_) => {
                eprintln!("error: `{}` is not valid UTF-8; not formatted", src.name);
                failed += 1;
                continue;
            }
        };
        match stepup_dsl::format_text(&src.name, text) {
            Ok(formatted) if formatted == text => {}
            Ok(formatted) => {
                changed += 1;
                if check_only {
                    let _ = writeln!(out, "would reformat {}", src.name);
                } else if let Err(e) = replace_file(Path::new(&src.name), &formatted) {
                    eprintln!("error: cannot write `{}`: {e}", src.name);
                    return 2;
                } else {
                    let _ = writeln!(out, "formatted {}", src.name);
                }
            }
            Err(diags) => {
                failed += 1;
                eprint!("{}", stepup_dsl::diag::render_all(&diags, false));
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} file{} could not be formatted", plural(failed));
        return 1;
    }
    u8::from(check_only && changed > 0)
}

/// Replaces the file at `path` (the file a symbolic link names, when it is one) with `text`,
/// whole or not at all: the text is written to a new file beside it, flushed to the disk, given
/// the file's permissions and owner and renamed over it. A write that fails (a full disk, a
/// quota, a size limit) leaves the file as it was, where writing it in place would leave it cut
/// short: and a policy file cut between two policies still checks, without the policies after
/// the cut. A file with other names (hard links), or whose owner cannot be kept, is written in
/// place, as before (a rename would part it from its other names, or change its owner); the
/// written length is then checked.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let target = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&target)?;
    // A pipe or a device (a link to one) is never replaced by a regular file (a review: a
    // pipe in the rules directory became one).
    if !meta.is_file() {
        return Err(stepup_core::not_regular());
    }
    #[cfg(unix)]
    let linked = std::os::unix::fs::MetadataExt::nlink(&meta) > 1;
    #[cfg(not(unix))]
    let linked = false;
    let in_place = || -> std::io::Result<()> {
        // Through one handle judged a regular file once open: a pipe swapped in since the
        // check above is refused, never waited on (a review: `fmt` hung).
        let mut f = stepup_core::open_regular_for_writing(&target)?;
        f.set_len(0)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let written = f.metadata()?.len();
        if written == text.len() as u64 {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "{written} of {} bytes written",
                text.len()
            )))
        }
    };
    if linked {
        return in_place();
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map_or_else(|| "policy".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.{}.stepup-fmt", std::process::id()));
    let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
    else {
        // No file can be made beside it (the directory is not writable): in place.
        return in_place();
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid())).is_err() {
            drop(f);
            let _ = std::fs::remove_file(&temp);
            return in_place();
        }
    }
    let written = (|| {
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::set_permissions(&temp, meta.permissions())?;
        // Judged again just before the rename: a pipe or a device put in the file's place
        // since is left as it is (the rename cannot ask, so a swap in between remains
        // possible for whoever may write the directory: they could write the file anyway).
        if !std::fs::symlink_metadata(&target)?.is_file() {
            return Err(stepup_core::not_regular());
        }
        std::fs::rename(&temp, &target)?;
        // The rename itself, on the disk.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
