//! History stores behind [`stepup_engine::Store`]: [`DiskStore`], embedded, on disk, ACID, no
//! server (redb) — the default for the CLI and services; [`RedisStore`] for services running
//! as many instances; and [`MemoryStore`], in memory, for a service that runs as one process.
//! All pass the same conformance suite ([`conformance`]).

pub mod conformance;
pub mod disk;
pub mod memory;
pub mod redis_store;

pub use disk::DiskStore;
pub use memory::MemoryStore;
pub use redis_store::RedisStore;

/// The retention a store needs for a policy set: how far back its policies read a user's
/// history ([`stepup_engine::CompiledSet::history_window_secs`]); older data may expire.
#[must_use]
pub fn retention_secs(set: &stepup_engine::CompiledSet) -> u64 {
    set.history_window_secs()
}
