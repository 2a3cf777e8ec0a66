//! The in-memory store for a service that runs as one process (the example service's
//! `--memory`): the engine's [`MemoryStore`], found by tenant, then user, then session, with
//! the same compare-and-set as every store. Nothing is kept across restarts; single use holds
//! within the process, and across instances needs a shared store ([`crate::RedisStore`],
//! [`crate::DiskStore`]).

pub use stepup_engine::MemoryStore;
