//! Scenario replay: RON scenario files run through the engine event by event, with expectations
//! checked (`stepup replay --expect`), friction statistics, and table and JSON output.
//!
//! A bad scenario is reported with file, line, column and the field, and nothing of it is
//! printed; the other files still replay. Every event that loads is replayed as the engine
//! decides it (a `StepUp` with no open challenge is `failed`, never a file error).

pub mod output;
pub mod run;
pub mod scenario;
pub mod stats;

pub use run::{
    EventResult, FileReport, InputError, Mismatch, Observer, Options, load, replay, replay_in,
    replay_observed, replay_with,
};
pub use scenario::Scenario;
