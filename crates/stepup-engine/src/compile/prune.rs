//! Pass 5: attribute indexes inside an operation's bucket. When many policies guard the same
//! operation, the operation index prunes nothing; most of their tests are numeric ranges, set
//! memberships and flags on the request's attributes. For each attribute the bucket's policies
//! test at their top level, this pass divides the attribute's values into regions on which every
//! such test has one value, and keeps per region a bitset of the policies that survive: those
//! with no test on the attribute, and those whose tests all hold there. A request then looks up
//! one region per attribute, intersects the bitsets, and evaluates only the survivors.
//!
//! Only a test that is **false** prunes: a policy is dropped only when one of its conjuncts is
//! false for the request's value, which makes its whole condition false in three-valued logic.
//! A missing, mistyped or non-finite value is unknown to every test, so it prunes nothing and
//! every policy that reads it is evaluated (and fires: SPEC §10). Every test is judged by the
//! evaluator's own functions ([`num_value`], [`str_value`], [`bool_value`]) at a value inside
//! the region, so the index and the tree cannot disagree on a value.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::compile::{Attr, CExpr};
use crate::facts::{bool_value, num_value, str_value};
use crate::names::Places;
use crate::request::Value;
use crate::tree::AttrTable;
use crate::tri::Tri;

/// Bucket size from which the attribute indexes pay for their lookups.
pub const PRUNE_THRESHOLD: usize = 8;

/// Most 64-bit words one attribute's index may hold (2 MiB): an attribute with more distinct
/// constants × policies than this is not indexed (its tests are still evaluated).
const MAX_WORDS_PER_ATTR: usize = 1 << 18;

/// Most 64-bit words the indexes of one scope may hold together (64 MiB): policy text decides
/// how large they grow, so what it may cost is bounded; past it, buckets are evaluated without.
pub const MAX_WORDS_PER_SCOPE: usize = 1 << 23;

/// Most points a numeric index counts through rather than searches (see [`Regions::of`]).
const COUNTED_POINTS: usize = 64;

/// Most attributes indexed per bucket.
const MAX_ATTRS: usize = 16;

/// The attribute indexes of one bucket.
#[derive(Debug, Clone)]
pub struct Prune {
    /// 64-bit words per bitset (the bucket's length rounded up to 64).
    words: usize,
    /// One index per (attribute, kind of test).
    attrs: Box<[AttrIndex]>,
    /// Per bucket position, what the indexes already decided of the policy's condition.
    covered: Box<[Covered]>,
}

/// The top-level tests of one policy that its bucket's indexes judge. When every index the
/// policy has tests in found the request's value (known, of the test's type), a policy that
/// survives has all those tests **true** (a known value makes a test true or false, and a false
/// one would have pruned it): its condition is the rest of its conjuncts.
#[derive(Debug, Clone, Copy, Default)]
struct Covered {
    /// The indexes (bits by position in `attrs`) holding the policy's tests.
    needs: u16,
    /// The conjuncts those tests are (bits by position among the condition's top-level
    /// conjuncts; the first 64 only).
    conjuncts: u64,
}

#[derive(Debug, Clone)]
struct AttrIndex {
    slot: u8,
    regions: Regions,
    /// `words` words per region, region after region.
    bits: Box<[u64]>,
}

#[derive(Debug, Clone)]
enum Regions {
    /// Finite constants, sorted: region `2i + 1` is the point `points[i]`, region `2i` the open
    /// interval below it, region `2 * points.len()` everything above the last.
    Num(Box<[f64]>),
    /// Region `i` is the string at place `i`; region `places.len()` is every other string.
    Str(Places),
    /// Region 0 is `false`, region 1 `true`.
    Bool,
}

impl Regions {
    /// How costly a lookup is, in order (a flag, a hashed string, a searched number).
    fn cost(&self) -> u8 {
        match self {
            Regions::Bool => 0,
            Regions::Str(_) => 1,
            Regions::Num(_) => 2,
        }
    }

    /// The kind of test the regions are of.
    fn kind(&self) -> Kind {
        match self {
            Regions::Num(_) => Kind::Num,
            Regions::Str(_) => Kind::Str,
            Regions::Bool => Kind::Bool,
        }
    }

    /// The region of the request's value, or `None` when the value is unknown to this kind of
    /// test (absent, another type, not finite): then nothing is pruned on it.
    fn of(&self, v: Option<&Value>) -> Option<usize> {
        match (self, v?) {
            (Regions::Num(points), Value::Number(x)) if x.is_finite() => {
                // The number of points below `x` (they are sorted). A few are counted: their
                // compares are independent of each other, where a binary search's are a chain
                // of dependent loads (on 40 points, most of an allow's time in this lookup).
                let i = if points.len() <= COUNTED_POINTS {
                    points.iter().map(|p| usize::from(*p < *x)).sum()
                } else {
                    points.partition_point(|p| *p < *x)
                };
                Some(if points.get(i) == Some(x) {
                    2 * i + 1
                } else {
                    2 * i
                })
            }
            (Regions::Str(places), Value::Str(s)) => {
                Some(places.get(s.as_str()).unwrap_or(places.len()))
            }
            (Regions::Bool, Value::Bool(b)) => Some(usize::from(*b)),
            _ => None,
        }
    }
}

/// A top-level test of a policy on one attribute.
#[derive(Clone, Copy)]
enum Test<'e> {
    Num(stepup_dsl::ast::CmpOp, f64),
    Str(&'e BTreeSet<String>),
    Bool(bool),
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Num,
    Str,
    Bool,
}

impl Test<'_> {
    fn kind(&self) -> Kind {
        match self {
            Test::Num(..) => Kind::Num,
            Test::Str(_) => Kind::Str,
            Test::Bool(_) => Kind::Bool,
        }
    }
    /// The test's value at `v`, by the evaluator's own function.
    fn at(&self, v: &Value) -> Tri {
        match self {
            Test::Num(op, c) => num_value(Some(v), *op, *c),
            Test::Str(set) => str_value(Some(v), set),
            Test::Bool(b) => bool_value(Some(v), *b),
        }
    }
}

/// A top-level test of a slotted attribute: its slot and test.
fn leaf_test(c: &CExpr) -> Option<(u8, Test<'_>)> {
    match c {
        CExpr::AttrNum(Attr { slot: Some(s), .. }, op, v) => Some((*s, Test::Num(*op, *v))),
        CExpr::AttrStr(Attr { slot: Some(s), .. }, set) => Some((*s, Test::Str(set))),
        CExpr::AttrBool(Attr { slot: Some(s), .. }, b) => Some((*s, Test::Bool(*b))),
        _ => None,
    }
}

/// The conjuncts of a condition that test a slotted attribute: `(position, slot, test)`, the
/// position among the condition's top-level conjuncts (0 for a condition that is one test).
fn conjunct_tests(e: &CExpr) -> Vec<(usize, u8, Test<'_>)> {
    let leaf = |(i, c)| leaf_test(c).map(|(s, t)| (i, s, t));
    match e {
        CExpr::And(v) => v.iter().enumerate().filter_map(leaf).collect(),
        other => leaf((0, other)).into_iter().collect(),
    }
}

/// Builds the indexes of a bucket (its policies' compiled conditions, in bucket order), or
/// `None` when the bucket is small or no attribute is worth indexing.
#[must_use]
pub fn build(bucket: &[&CExpr], budget: &AtomicUsize) -> Option<Prune> {
    if bucket.len() < PRUNE_THRESHOLD {
        return None;
    }
    let words = bucket.len().div_ceil(64);
    let tests: Vec<Vec<(usize, u8, Test<'_>)>> = bucket.iter().map(|e| conjunct_tests(e)).collect();
    let mut keys: Vec<(u8, Kind)> = tests
        .iter()
        .flatten()
        .map(|(_, s, t)| (*s, t.kind()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut attrs = Vec::new();
    for (slot, kind) in keys {
        // Each policy's tests on this attribute (empty: the policy is not constrained by it).
        let per_policy: Vec<Vec<Test<'_>>> = tests
            .iter()
            .map(|ts| {
                ts.iter()
                    .filter(|(_, s, t)| *s == slot && t.kind() == kind)
                    .map(|(_, _, t)| *t)
                    .collect()
            })
            .collect();
        let constrained = per_policy.iter().filter(|t| !t.is_empty()).count();
        // An attribute that only a few policies test prunes too little to pay for its lookup.
        if constrained * 4 < bucket.len() {
            continue;
        }
        let index = match kind {
            Kind::Num => num_index(slot, words, &per_policy),
            Kind::Str => str_index(slot, words, &per_policy),
            Kind::Bool => Some(bool_index(slot, words, &per_policy)),
        };
        debug_assert!(index.as_ref().is_none_or(|a| a.regions.kind() == kind));
        // Kept only while the scope's budget lasts.
        if let Some(index) = index
            && budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(index.bits.len())
                })
                .is_ok()
        {
            attrs.push(index);
        }
    }
    // The most selective first is not known without data; keep at most MAX_ATTRS, then put the
    // cheapest lookups first (a flag, a string's hash, a number's binary search): a request that
    // no policy survives stops at the first attribute that empties the set.
    attrs.truncate(MAX_ATTRS);
    attrs.sort_by_key(|a| a.regions.cost());
    if attrs.is_empty() {
        return None;
    }
    let covered = tests
        .iter()
        .map(|ts| {
            let mut c = Covered::default();
            for (pos, slot, t) in ts {
                let found = attrs
                    .iter()
                    .position(|a| a.slot == *slot && a.regions.kind() == t.kind());
                if let Some(i) = found
                    && *pos < 64
                {
                    c.needs |= 1 << i;
                    c.conjuncts |= 1 << pos;
                }
            }
            c
        })
        .collect();
    Some(Prune {
        words,
        attrs: attrs.into_boxed_slice(),
        covered,
    })
}

fn set_bit(bits: &mut [u64], words: usize, region: usize, policy: usize) {
    if let Some(w) = bits.get_mut(region * words + policy / 64) {
        *w |= 1 << (policy % 64);
    }
}

/// Whether a policy with `tests` on the attribute survives at `v`: none is false.
fn survives(tests: &[Test<'_>], v: &Value) -> bool {
    tests.iter().all(|t| t.at(v) != Tri::False)
}

/// A constant as a point of the regions: `-0` is `0` (they compare equal, so they are one
/// point; `total_cmp` alone would keep both apart and lose a policy's boundary at zero).
fn point(c: f64) -> f64 {
    c + 0.0
}

fn num_index(slot: u8, words: usize, per_policy: &[Vec<Test<'_>>]) -> Option<AttrIndex> {
    let mut points: Vec<f64> = per_policy
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Test::Num(_, c) if c.is_finite() => Some(point(*c)),
            _ => None,
        })
        .collect();
    points.sort_unstable_by(f64::total_cmp);
    points.dedup();
    let n_regions = 2 * points.len() + 1;
    if n_regions.saturating_mul(words) > MAX_WORDS_PER_ATTR {
        return None;
    }
    // A finite value inside each region (`None` for an open interval with no float in it: no
    // request value can land there). Every test compares with a constant among `points` or a
    // non-finite one, so its value is the same throughout a region.
    let inside = |r: usize| -> Option<f64> {
        let i = r / 2;
        let v = if r % 2 == 1 {
            *points.get(i)?
        } else {
            match (i.checked_sub(1).and_then(|j| points.get(j)), points.get(i)) {
                (None, None) => 0.0,
                (None, Some(hi)) => hi.next_down(),
                (Some(lo), None) => lo.next_up(),
                (Some(lo), Some(hi)) => {
                    let v = lo.next_up();
                    if v >= *hi {
                        return None;
                    }
                    v
                }
            }
        };
        v.is_finite().then_some(v)
    };
    let mut bits = vec![0u64; n_regions * words];
    for (j, tests) in per_policy.iter().enumerate() {
        if tests.is_empty() {
            for r in 0..n_regions {
                set_bit(&mut bits, words, r, j);
            }
            continue;
        }
        // The policy's tests change value only at its own constants: judge one value per run
        // of regions between them and fill the run.
        let mut cuts: Vec<usize> = tests
            .iter()
            .filter_map(|t| match t {
                Test::Num(_, c) => points
                    .binary_search_by(|p| p.total_cmp(&point(*c)))
                    .ok()
                    .map(|i| 2 * i + 1),
                _ => None,
            })
            .flat_map(|r| [r, r + 1])
            .collect();
        cuts.push(0);
        cuts.push(n_regions);
        cuts.sort_unstable();
        cuts.dedup();
        for run in cuts.windows(2) {
            let (start, end) = match run {
                [a, b] => (*a, *b),
                _ => continue,
            };
            // The first region of the run that holds a value decides the run.
            let alive = (start..end)
                .find_map(inside)
                .is_none_or(|v| survives(tests, &Value::Number(v)));
            if alive {
                for r in start..end {
                    set_bit(&mut bits, words, r, j);
                }
            }
        }
    }
    Some(AttrIndex {
        slot,
        regions: Regions::Num(points.into_boxed_slice()),
        bits: bits.into_boxed_slice(),
    })
}

fn str_index(slot: u8, words: usize, per_policy: &[Vec<Test<'_>>]) -> Option<AttrIndex> {
    let mut values: Vec<&str> = per_policy
        .iter()
        .flatten()
        .flat_map(|t| match t {
            Test::Str(set) => set.iter().map(String::as_str).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    values.sort_unstable();
    values.dedup();
    let n_regions = values.len() + 1;
    if n_regions.saturating_mul(words) > MAX_WORDS_PER_ATTR {
        return None;
    }
    // A string no test names: longer than every one that is.
    let other = "x".repeat(values.iter().map(|v| v.len()).max().unwrap_or(0) + 1);
    let inside: Vec<Value> = values
        .iter()
        .copied()
        .chain([other.as_str()])
        .map(|v| Value::Str(v.to_string()))
        .collect();
    let mut bits = vec![0u64; n_regions * words];
    for (j, tests) in per_policy.iter().enumerate() {
        for (r, v) in inside.iter().enumerate() {
            if survives(tests, v) {
                set_bit(&mut bits, words, r, j);
            }
        }
    }
    Some(AttrIndex {
        slot,
        regions: Regions::Str(Places::new(&values)),
        bits: bits.into_boxed_slice(),
    })
}

fn bool_index(slot: u8, words: usize, per_policy: &[Vec<Test<'_>>]) -> AttrIndex {
    let mut bits = vec![0u64; 2 * words];
    for (j, tests) in per_policy.iter().enumerate() {
        for b in [false, true] {
            if survives(tests, &Value::Bool(b)) {
                set_bit(&mut bits, words, usize::from(b), j);
            }
        }
    }
    AttrIndex {
        slot,
        regions: Regions::Bool,
        bits: bits.into_boxed_slice(),
    }
}

impl Prune {
    /// The positions in the bucket of the policies that survive the request's attribute values,
    /// in bucket order. Allocates nothing.
    #[must_use]
    pub fn survivors<'p>(&'p self, attrs: &AttrTable<'_>, len: usize) -> Survivors<'p> {
        // The offset of each indexed attribute's region (`UNKNOWN`: prunes nothing). Offsets
        // fit in `u32`: an index holds at most `MAX_WORDS_PER_ATTR` words.
        let mut offsets = [UNKNOWN; MAX_ATTRS];
        let mut known = 0u16;
        if self.words == 1 {
            // One word (64 policies or fewer): intersect as the regions are found, cheapest
            // attribute first, and stop when no policy is left (an `and` only removes). With
            // more words, the regions are all found first and the words intersected one by
            // one as the iterator needs them (measured: an up-front intersection of up to 8
            // words cost more than it saved).
            let mut alive = if len >= 64 {
                u64::MAX
            } else {
                (1u64 << len) - 1
            };
            for (i, a) in self.attrs.iter().enumerate() {
                // A region with no bitset (never, for an index built here) prunes nothing and
                // decides nothing.
                if let Some(bits) = a.regions.of(attrs.slot(a.slot)).and_then(|r| a.bits.get(r)) {
                    alive &= *bits;
                    known |= 1 << i;
                    if alive == 0 {
                        break;
                    }
                }
            }
            return Survivors {
                prune: self,
                offsets,
                known,
                len,
                word: 1,
                alive,
            };
        }
        for (i, (o, a)) in offsets.iter_mut().zip(self.attrs.iter()).enumerate() {
            if let Some(region) = a.regions.of(attrs.slot(a.slot))
                && (region + 1) * self.words <= a.bits.len()
                && let Ok(offset) = u32::try_from(region * self.words)
            {
                *o = offset;
                known |= 1 << i;
            }
        }
        Survivors {
            prune: self,
            offsets,
            known,
            len,
            word: 0,
            alive: 0,
        }
    }

    /// The top-level conjuncts of the policy at bucket position `k` that need not be evaluated
    /// for a request whose values the indexes in `known` found (bits of conjunct positions;
    /// 0: evaluate the whole condition). The policy must be a survivor of that request: its
    /// tests in those indexes are then all true.
    #[must_use]
    pub fn decided(&self, k: usize, known: u16) -> u64 {
        match self.covered.get(k) {
            Some(c) if c.needs & !known == 0 => c.conjuncts,
            _ => 0,
        }
    }
}

/// The offset of an attribute whose value is unknown to its index (it prunes nothing).
const UNKNOWN: u32 = u32::MAX;

/// Iterator over the surviving positions of a bucket.
pub struct Survivors<'p> {
    prune: &'p Prune,
    offsets: [u32; MAX_ATTRS],
    /// The indexes that found the request's value (bits by position).
    known: u16,
    len: usize,
    /// The next word to load.
    word: usize,
    /// The survivors of the word loaded last, not yet returned.
    alive: u64,
}

impl Survivors<'_> {
    /// The indexes that found the request's value (for [`Prune::decided`]).
    #[must_use]
    pub fn known(&self) -> u16 {
        self.known
    }
}

impl Iterator for Survivors<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.alive == 0 {
            let w = self.word;
            if w >= self.prune.words {
                return None;
            }
            self.word += 1;
            let mut alive = if (w + 1) * 64 <= self.len {
                u64::MAX
            } else {
                (1u64 << (self.len % 64)) - 1
            };
            for (&o, a) in self.offsets.iter().zip(self.prune.attrs.iter()) {
                if o != UNKNOWN {
                    alive &= a.bits.get(o as usize + w).copied().unwrap_or(u64::MAX);
                }
            }
            self.alive = alive;
        }
        let bit = self.alive.trailing_zeros() as usize;
        self.alive &= self.alive - 1;
        Some((self.word - 1) * 64 + bit)
    }
}

#[cfg(test)]
#[allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;
    use stepup_dsl::ast::CmpOp;

    fn range(lo: f64) -> CExpr {
        let amount = || Attr {
            name: "amount".into(),
            slot: Some(0),
        };
        CExpr::And(Box::new([
            CExpr::AttrNum(amount(), CmpOp::Ge, lo),
            CExpr::AttrNum(amount(), CmpOp::Lt, lo + 10.0),
        ]))
    }

    #[test]
    fn indexes_are_built_only_within_the_scopes_budget() {
        let conds: Vec<CExpr> = (0..100).map(|i| range(f64::from(i) * 10.0)).collect();
        let bucket: Vec<&CExpr> = conds.iter().collect();
        // 101 points (0, 10, …, 1000), 203 regions × 2 words.
        let budget = AtomicUsize::new(MAX_WORDS_PER_SCOPE);
        let prune = build(&bucket, &budget);
        assert!(prune.is_some());
        assert_eq!(
            budget.load(Ordering::Relaxed),
            MAX_WORDS_PER_SCOPE - 203 * 2
        );
        let small = AtomicUsize::new(203 * 2 - 1);
        assert!(
            build(&bucket, &small).is_none(),
            "over the budget: no index"
        );
        assert_eq!(small.load(Ordering::Relaxed), 203 * 2 - 1, "nothing taken");
    }

    /// A survivor's indexed tests are left out of its evaluation only when every index holding
    /// one found the request's value; its other conjuncts are always evaluated.
    #[test]
    fn a_survivor_skips_only_the_tests_its_indexes_decided() {
        let attr = |name: &str, slot| Attr {
            name: name.into(),
            slot: Some(slot),
        };
        // `amount >= lo and amount < lo + 10 and new_device and vip == true`, ten times.
        let conds: Vec<CExpr> = (0..10)
            .map(|i| {
                let lo = f64::from(i) * 10.0;
                CExpr::And(Box::new([
                    CExpr::AttrNum(attr("amount", 0), CmpOp::Ge, lo),
                    CExpr::AttrNum(attr("amount", 0), CmpOp::Lt, lo + 10.0),
                    CExpr::Signal(stepup_dsl::model::SignalKind::NewDevice, 30),
                    CExpr::AttrBool(attr("vip", 1), true),
                ]))
            })
            .collect();
        let bucket: Vec<&CExpr> = conds.iter().collect();
        let prune = build(&bucket, &AtomicUsize::new(MAX_WORDS_PER_SCOPE)).unwrap_or_else(|| {
            panic!("an index");
        });
        let (amount, vip) = (Value::Number(25.0), Value::Bool(true));
        let decided = |values: [Option<&Value>; 2]| {
            let mut t = AttrTable([None; crate::tree::MAX_ATTR_SLOTS]);
            t.0[0] = values[0];
            t.0[1] = values[1];
            let s = prune.survivors(&t, conds.len());
            let known = s.known();
            s.map(|k| (k, prune.decided(k, known))).collect::<Vec<_>>()
        };
        assert_eq!(decided([Some(&amount), Some(&vip)]), [(2, 0b1011)]);
        // The flag is missing: nothing is pruned on it, and no survivor skips a test.
        assert_eq!(
            decided([Some(&amount), None]),
            [(2, 0)],
            "a policy with a test on an unknown value is evaluated whole"
        );
        assert_eq!(decided([None, Some(&vip)]).len(), 10);
        assert!(decided([None, Some(&vip)]).iter().all(|(_, d)| *d == 0));
    }

    #[test]
    fn minus_zero_and_zero_are_one_boundary() {
        let amount = || Attr {
            name: "amount".into(),
            slot: Some(0),
        };
        // Found by review: `amount >= -0` beside `amount > 0` dropped the latter's boundary
        // and skipped it for every amount.
        let mut conds = vec![CExpr::AttrNum(amount(), CmpOp::Gt, 0.0)];
        for _ in 0..9 {
            conds.push(CExpr::AttrNum(amount(), CmpOp::Ge, -0.0));
        }
        conds.push(CExpr::AttrNum(amount(), CmpOp::Eq, 0.0));
        let bucket: Vec<&CExpr> = conds.iter().collect();
        let prune = build(&bucket, &AtomicUsize::new(MAX_WORDS_PER_SCOPE)).unwrap_or_else(|| {
            panic!("an index");
        });
        let found = |x: f64| {
            let v = Value::Number(x);
            let mut t = AttrTable([None; crate::tree::MAX_ATTR_SLOTS]);
            t.0[0] = Some(&v);
            prune.survivors(&t, conds.len()).collect::<Vec<_>>()
        };
        assert_eq!(
            found(1e6),
            (0..10).collect::<Vec<_>>(),
            "`> 0` and `>= -0` hold"
        );
        assert_eq!(
            found(0.0),
            (1..11).collect::<Vec<_>>(),
            "`>= -0` and `== 0` hold"
        );
        assert_eq!(found(-0.0), (1..11).collect::<Vec<_>>());
        assert_eq!(found(-1.0), Vec::<usize>::new());
    }

    /// A number's region is the same whether its points are counted (a few) or searched (many):
    /// the point it equals, else the gap below the first point above it.
    #[test]
    fn counted_and_searched_points_give_each_number_its_region() {
        for len in [
            0,
            1,
            2,
            7,
            COUNTED_POINTS - 1,
            COUNTED_POINTS,
            COUNTED_POINTS + 1,
            130,
        ] {
            let points: Vec<f64> = (0..len).map(|i| f64::from(i as u32) * 2.0 - 40.0).collect();
            let regions = Regions::Num(points.clone().into_boxed_slice());
            let mut probes: Vec<f64> = points
                .iter()
                .flat_map(|p| [*p - 1.0, *p, *p + 0.5])
                .collect();
            probes.extend([f64::MIN, -0.0, 0.0, f64::MAX, 1e300]);
            for x in probes {
                let want = match points.iter().position(|p| *p == x) {
                    Some(i) => 2 * i + 1,
                    None => 2 * points.iter().filter(|p| **p < x).count(),
                };
                assert_eq!(
                    regions.of(Some(&Value::Number(x))),
                    Some(want),
                    "{len} points, {x}"
                );
            }
            assert_eq!(regions.of(Some(&Value::Number(f64::INFINITY))), None);
            assert_eq!(regions.of(Some(&Value::Number(f64::NAN))), None);
        }
    }

    #[test]
    fn a_value_finds_only_the_range_that_holds_it() {
        let conds: Vec<CExpr> = (0..100).map(|i| range(f64::from(i) * 10.0)).collect();
        let bucket: Vec<&CExpr> = conds.iter().collect();
        let prune = build(&bucket, &AtomicUsize::new(MAX_WORDS_PER_SCOPE)).unwrap_or_else(|| {
            panic!("an index");
        });
        let table = |v: Option<Value>| {
            let mut t = AttrTable([None; crate::tree::MAX_ATTR_SLOTS]);
            t.0[0] = v.map(|v| &*Box::leak(Box::new(v)));
            t
        };
        let found = |v| prune.survivors(&table(v), 100).collect::<Vec<_>>();
        assert_eq!(found(Some(Value::Number(125.0))), [12]);
        assert_eq!(
            found(Some(Value::Number(130.0))),
            [13],
            "a range's lower bound"
        );
        assert_eq!(found(Some(Value::Number(-1.0))), Vec::<usize>::new());
        assert_eq!(found(None).len(), 100, "unknown prunes nothing");
        assert_eq!(found(Some(Value::Number(f64::NAN))).len(), 100);
        assert_eq!(found(Some(Value::Str("125".into()))).len(), 100);
    }
}
