//! Decision logs and backtesting (SPEC §12).
//!
//! A **decision log** holds one JSON line per decision with everything needed to make it again
//! offline: the request (tenant, application, user, session, enrolled factors, the event with
//! its context and attributes, `now`), the state it was decided on (the part of the user's
//! history the decision can read, the session's authentication events, grants and open
//! challenges) and the decision itself with the hash of the policy set that made it. The format
//! is versioned (`"v": 1`) and described by `docs/decision-log.md` and the JSON Schema
//! `docs/decision-log.schema.json`.
//!
//! - [`record`]: the line's format, built from an engine decision and turned back into a
//!   request and a state.
//! - [`pseudo`]: user, session and device identifiers replaced by a keyed hash (HMAC-SHA256),
//!   which keeps every decision the same (they are only ever compared for equality).
//! - [`writer`]: appends lines, rotating the file by size; services and `stepup replay
//!   --decision-log` write through it.
//! - [`reader`]: reads logs line by line (never the whole file), reporting every line that
//!   cannot be read with its number.
//! - [`backtest`]: re-decides logged traffic with a candidate policy set and reports friction
//!   per policy and the decisions that change against a baseline or the recorded decisions.
//!
//! Each decision is decided again on the state the log recorded: a backtest measures what the
//! candidate rules would have answered to the same traffic, not how sessions would then have
//! gone on (a prompt the candidate adds is not followed by a step-up the user never made).

pub mod backtest;
pub mod pseudo;
pub mod reader;
pub mod record;
pub mod writer;

pub use backtest::{Backtest, BacktestReport};
pub use pseudo::Pseudonymizer;
pub use reader::{LineError, Lines};
pub use record::{FORMAT_VERSION, LoggedDecision, Record};
pub use writer::{Rotation, Writer};
