//! History stores behind [`stepup_engine::Store`]: [`DiskStore`], embedded, on disk, ACID, no
//! server (redb) — the default for the CLI and services; and [`RedisStore`] for services running
//! as many instances. Both pass the same conformance suite ([`conformance`]).

pub mod conformance;
pub mod disk;
pub mod redis_store;

pub use disk::DiskStore;
pub use redis_store::RedisStore;

/// The retention a store needs for a policy set: the longest window any policy reads, and at
/// least 90 days (new-country windows, first accesses) — data older than that may expire.
#[must_use]
pub fn retention_secs(set: &stepup_engine::CompiledSet) -> u64 {
    let mut days: u64 = 90;
    for t in set.model.tenants.values() {
        for p in &t.policies {
            p.condition.for_each_leaf(&mut |c| match c {
                stepup_dsl::model::Cond::Signal(_, d)
                | stepup_dsl::model::Cond::FirstAccess(_, Some(d)) => {
                    days = days.max(u64::from(*d))
                }
                stepup_dsl::model::Cond::FirstAccess(_, None) => days = days.max(400),
                _ => {}
            });
        }
    }
    days * 86_400
}
