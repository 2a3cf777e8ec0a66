//! `stepup-studio`: the desktop policy simulator for security reviewers and policy authors.
//! [`studio`] holds the state and calls the library crates; [`app`] draws it with egui and turns
//! clicks into [`studio::Command`]s.

pub mod app;
pub mod highlight;
pub mod studio;

pub use app::StudioApp;
pub use studio::Studio;
