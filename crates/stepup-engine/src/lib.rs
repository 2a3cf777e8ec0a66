//! The stepup engine: compiles a checked policy set into a decision structure per (tenant,
//! application), computes risk signals from the user's history, and decides — allow, step up
//! (to which AAL, with which factors, for how long) or deny — with audit records and, on
//! request, an explanation. Every evaluation error fails closed.
//!
//! Embedding it in a service:
//!
//! ```
//! use stepup_core::{Factor, FactorSet, Timestamp};
//! use stepup_engine::{CompiledSet, Engine, MemoryStore, Request, Event};
//!
//! let rules = r#"tenant acme {
//!   operation change_email sensitive
//!   policy email "Confirm your identity before changing your email." {
//!     when operation == change_email require aal2 for 15m } }"#;
//! let engine = Engine::new(CompiledSet::from_text("acme.policy", rules).expect("valid rules"));
//! let store = MemoryStore::new();
//! let mut req = Request {
//!     tenant: "acme".into(), application: "".into(), user: "alice".into(),
//!     enrolled: [Factor::Password, Factor::Totp].into_iter().collect::<FactorSet>(),
//!     session: "s1".into(), now: Timestamp(1_800_000_000),
//!     event: Event::SignIn { context: Default::default(), factors: FactorSet::one(Factor::Password) },
//! };
//! // A session is established by an allowed sign-in; until then its other events are denied.
//! assert!(engine.process(&store, &req, false).allowed());
//! // Each request is decided at its own time (a time that never moves keeps every elevation
//! // fresh).
//! req.now = Timestamp(1_800_000_060);
//! req.event = Event::Operation { name: "change_email".into(), attrs: vec![], context: None };
//! let decision = engine.process(&store, &req, false);
//! let answer = stepup_engine::contract::http_answer(&decision).expect("a step-up");
//! assert_eq!((answer.status, answer.body["required_acr"].as_str()), (401, Some("aal2")));
//! // The user answers the challenge: the completion authorises nothing by itself...
//! req.now = Timestamp(1_800_000_080);
//! req.event = Event::StepUp { factor: Factor::Totp, success: true };
//! let completed = engine.process(&store, &req, false);
//! assert!(completed.succeeded() && !completed.allowed());
//! // ...the operation, decided again, is allowed (the session now proves aal2 for 15 minutes).
//! req.now = Timestamp(1_800_000_081);
//! req.event = Event::Operation { name: "change_email".into(), attrs: vec![], context: None };
//! assert!(engine.process(&store, &req, false).allowed());
//! ```

// The public face: the engine and the compiled set, requests, decisions, state and stores,
// the signals, and the HTTP contract. The compiler, the decision pipeline and the evaluators
// are private: how a decision is made may change, what it is may not.
mod compile;
pub mod contract;
mod decide;
pub mod decision;
pub mod engine;
mod facts;
mod names;
mod reference;
mod request;
pub mod risk;
pub mod state;
pub mod store;
mod tree;
mod tri;

pub use decide::{CHALLENGE_TTL_SECS, Record};
pub use decision::{
    AuditRecord, ChallengeId, Decision, DecisionKind, DenyReason, Names, ReportOnly, SetHash,
    WouldBe,
};
pub use engine::{CompiledSet, Engine, LoadError, MAX_COMMIT_ATTEMPTS};
pub use request::{Context, Event, Location, Request, Value};
pub use state::{SessionState, State, UserHistory};
pub use store::{MemoryStore, Store, StoreError};
pub use tri::Tri;

#[doc(hidden)]
pub use facts::script_runs_on_this_thread;
