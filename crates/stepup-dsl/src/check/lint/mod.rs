//! The lints (S-codes), one module each; their documentation is [`crate::lints`].

mod disjoint_factors;
mod long_aal3_elevation;
mod malformed_feed_line;
mod message;
mod mistyped_script;
mod names_read_alike;
mod risk_threshold;
mod routine_step_up;
mod unguarded_attribute;
mod weaker_override;

pub(super) use disjoint_factors::{Located, disjoint_factors};
pub(super) use long_aal3_elevation::long_aal3_elevation;
pub(super) use malformed_feed_line::malformed_feed_lines;
pub(super) use message::message;
pub(super) use mistyped_script::mistyped_script;
pub(super) use names_read_alike::names_read_alike;
pub(super) use risk_threshold::risk_threshold;
pub(super) use routine_step_up::routine_step_up;
pub(super) use unguarded_attribute::unguarded_attribute;
pub(super) use weaker_override::weaker_override;
