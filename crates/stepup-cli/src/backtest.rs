//! `stepup backtest`: logged traffic decided again with candidate rules, streamed from the
//! logs (a progress bar on a terminal), compared with a baseline or with the recorded decisions.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use stepup_decisionlog::backtest::{self, Backtest};
use stepup_decisionlog::reader::Lines;
use stepup_engine::CompiledSet;

use crate::Format;

/// Options of `stepup backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// Decision logs (JSON lines, as `stepup replay --decision-log` and services write them);
    /// `-` reads standard input.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// The candidate rules directory.
    #[arg(long, default_value = "rules")]
    pub rules: PathBuf,
    /// Rules to compare with (default: the decisions recorded in the logs).
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

fn load(dir: &PathBuf, what: &str) -> Result<Arc<CompiledSet>, String> {
    CompiledSet::load(std::slice::from_ref(dir))
        .map(Arc::new)
        .map_err(|e| format!("cannot load the {what} rules in `{}`: {e}", dir.display()))
}

/// Runs `stepup backtest`: exit 0, 1 when some lines could not be read, 2 on usage or I/O
/// errors (rules that do not load, a log that cannot be opened).
pub fn backtest(a: &BacktestArgs, out: &mut dyn Write) -> u8 {
    let candidate = match load(&a.rules, "candidate") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let baseline = match &a.baseline {
        Some(dir) => match load(dir, "baseline") {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        None => None,
    };
    let mut inputs: Vec<(String, Box<dyn std::io::Read>, u64)> = Vec::new();
    for p in &a.logs {
        if p.as_os_str() == "-" {
            inputs.push(("<stdin>".to_string(), Box::new(std::io::stdin()), 0));
            continue;
        }
        match File::open(p) {
            // A directory opens, and fails at its first read: an I/O error, not a log's line
            // (a CLI check read it as "unreadable lines: 1", exit 1).
            Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
                eprintln!("error: cannot open `{}`: it is a directory", p.display());
                return 2;
            }
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                inputs.push((p.display().to_string(), Box::new(f), len));
            }
            Err(e) => {
                eprintln!("error: cannot open `{}`: {e}", p.display());
                return 2;
            }
        }
    }
    let total: u64 = inputs.iter().map(|(_, _, n)| n).sum();
    let progress = (std::io::stderr().is_terminal() && total > 0).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut bt = Backtest::new(candidate, baseline);
    for (name, input, _) in inputs {
        let reader: Box<dyn BufRead> = match &progress {
            Some(pb) => {
                pb.set_message(name.clone());
                Box::new(BufReader::with_capacity(1 << 20, pb.wrap_read(input)))
            }
            None => Box::new(BufReader::with_capacity(1 << 20, input)),
        };
        for item in Lines::new(reader) {
            match item {
                Ok((line, rec)) => bt.add(&name, line, &rec),
                Err(e) => bt.unreadable(&name, &e),
            }
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let report = bt.finish();
    let _ = match a.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Human | Format::Plain => write!(out, "{}", backtest::render(&report)),
    };
    u8::from(report.unreadable > 0)
}
