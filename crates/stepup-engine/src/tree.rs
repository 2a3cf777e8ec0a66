//! The compiled evaluator: walks only the candidate policies of the event, cheap tests first,
//! short-circuiting in three-valued logic. Nothing on the path that allows allocates.

use crate::compile::index::prune_of;
use crate::compile::prune::Prune;
use crate::compile::{Attr, CExpr, CompiledScope};
use crate::facts::{Facts, bool_value, num_value, str_value};
use crate::request::Value;
use crate::tri::Tri;

/// The event's interned operation and resource.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    /// Operation id, if the event is an operation the scope knows.
    pub op: Option<u32>,
    /// Resource id, if the event is an access to a resource the scope knows.
    pub res: Option<u32>,
}

/// Attributes with a slot: at most this many per scope (the rest are looked up by name).
pub const MAX_ATTR_SLOTS: usize = 32;

/// The request's attribute values by slot, filled once per decision (no allocation).
pub struct AttrTable<'r>(pub [Option<&'r Value>; MAX_ATTR_SLOTS]);

impl<'r> AttrTable<'r> {
    /// A table with no value.
    #[must_use]
    pub const fn empty() -> Self {
        AttrTable([None; MAX_ATTR_SLOTS])
    }

    /// Fills an empty table with an event's values (attributes exist on operations; one named
    /// twice has no value, as [`Event::attr`](crate::request::Event::attr) reads it). In place:
    /// the table is 256 bytes, and returning it would copy them.
    #[inline]
    pub fn fill(&mut self, slots: &crate::names::Slots, event: &'r crate::request::Event) {
        if let crate::request::Event::Operation { attrs, .. } = event {
            let mut twice = 0u32;
            for (k, v) in attrs {
                if let Some(s) = slots.get(k.as_str())
                    && let Some(slot) = self.0.get_mut(usize::from(s))
                {
                    if slot.is_none() {
                        *slot = Some(v);
                    } else {
                        twice |= 1u32.checked_shl(u32::from(s)).unwrap_or(0);
                    }
                }
            }
            while twice != 0 {
                let s = twice.trailing_zeros() as usize;
                if let Some(slot) = self.0.get_mut(s) {
                    *slot = None;
                }
                twice &= twice - 1;
            }
        }
    }

    /// The value in `slot`, if the request gave one.
    #[must_use]
    pub fn slot(&self, slot: u8) -> Option<&'r Value> {
        self.0.get(usize::from(slot)).copied().flatten()
    }

    fn get(&self, a: &Attr, f: &Facts<'r>) -> Option<&'r Value> {
        match a.slot {
            Some(s) => self.0.get(usize::from(s)).copied().flatten(),
            None => f.req.event.attr(&a.name),
        }
    }
}

/// Evaluates a compiled condition.
pub fn eval<'r>(e: &CExpr, f: &Facts<'r>, ids: Ids, attrs: &AttrTable<'r>) -> Tri {
    match e {
        CExpr::And(v) => all(v.iter(), f, ids, attrs),
        CExpr::Or(v) => {
            let mut unknown = false;
            for c in v.iter() {
                match eval(c, f, ids, attrs) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => unknown = true,
                    Tri::False => {}
                }
            }
            if unknown { Tri::Unknown } else { Tri::False }
        }
        CExpr::Not(c) => eval(c, f, ids, attrs).not(),
        CExpr::Op(set) => Tri::from(ids.op.is_some_and(|k| set.binary_search(&k).is_ok())),
        CExpr::Res(set) => Tri::from(ids.res.is_some_and(|k| set.binary_search(&k).is_ok())),
        CExpr::Risk(op, v) => f.risk(*op, *v),
        CExpr::AttrNum(a, op, v) => num_value(attrs.get(a, f), *op, *v),
        CExpr::AttrStr(a, s) => str_value(attrs.get(a, f), s),
        CExpr::AttrBool(a, b) => bool_value(attrs.get(a, f), *b),
        CExpr::Signal(k, d) => f.signal(*k, *d),
        CExpr::FirstAccess(r, w) => f.first_access(r, *w),
        CExpr::Script(s) => f.script(s),
        CExpr::Const(t) => *t,
    }
}

/// The three-valued `and` of `conditions`: false at the first false one, else unknown if one
/// is, else true.
#[inline(always)]
fn all<'e, 'r>(
    conditions: impl Iterator<Item = &'e CExpr>,
    f: &Facts<'r>,
    ids: Ids,
    attrs: &AttrTable<'r>,
) -> Tri {
    let mut unknown = false;
    for c in conditions {
        match eval(c, f, ids, attrs) {
            Tri::False => return Tri::False,
            Tri::Unknown => unknown = true,
            Tri::True => {}
        }
    }
    if unknown { Tri::Unknown } else { Tri::True }
}

/// Evaluates a compiled condition whose top-level conjuncts in `decided` (bits by position; a
/// condition that is not an `and` is its own conjunct 0) are known to be true: the others
/// decide. Equal to [`eval`] when those conjuncts are indeed true.
pub fn eval_rest<'r>(
    e: &CExpr,
    decided: u64,
    f: &Facts<'r>,
    ids: Ids,
    attrs: &AttrTable<'r>,
) -> Tri {
    match e {
        CExpr::And(v) => all(
            v.iter()
                .enumerate()
                .filter(|(i, _)| *i >= 64 || decided & (1 << i) == 0)
                .map(|(_, c)| c),
            f,
            ids,
            attrs,
        ),
        _ if decided & 1 != 0 => Tri::True,
        other => eval(other, f, ids, attrs),
    }
}

/// Why a compiled condition that evaluated to unknown is unknown: descends only into unknown
/// children, so the reasons are the same whatever order the children are walked in (every
/// child of an unknown node was evaluated, and scripts ran once, memoized in `f`).
pub fn unknown_reasons<'r>(
    e: &CExpr,
    f: &Facts<'r>,
    ids: Ids,
    attrs: &AttrTable<'r>,
    out: &mut Vec<String>,
) {
    match e {
        CExpr::And(v) | CExpr::Or(v) => {
            for c in v.iter() {
                if eval(c, f, ids, attrs) == Tri::Unknown {
                    unknown_reasons(c, f, ids, attrs, out);
                }
            }
        }
        CExpr::Not(c) => unknown_reasons(c, f, ids, attrs, out),
        CExpr::Risk(..) => out.push(f.risk_reason()),
        CExpr::AttrNum(a, ..) | CExpr::AttrStr(a, _) | CExpr::AttrBool(a, _) => {
            out.push(f.attr_reason(&a.name));
        }
        CExpr::Signal(k, _) => out.push(f.signals.unknown_reason(*k)),
        CExpr::FirstAccess(r, _) => out.push(f.first_access_reason(r)),
        CExpr::Script(s) => out.push(f.script_reason(s)),
        CExpr::Op(_) | CExpr::Res(_) | CExpr::Const(_) => {}
    }
}

/// How many fired policies a decision keeps without allocating.
const FIRED_INLINE: usize = 16;

/// A small inline buffer of fired policy indices (spills to the heap past 16; kept small, as
/// it is built and moved on every decision).
pub struct FiredBuf {
    inline: [usize; FIRED_INLINE],
    len: usize,
    spill: Vec<usize>,
}

impl FiredBuf {
    /// An empty buffer.
    #[must_use]
    pub const fn new() -> Self {
        FiredBuf {
            inline: [0; FIRED_INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }
    /// Appends.
    pub fn push(&mut self, i: usize) {
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = i;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(i);
        }
    }
    /// The indices.
    #[must_use]
    pub fn as_slice(&self) -> &[usize] {
        if self.spill.is_empty() {
            self.inline.get(..self.len).unwrap_or(&[])
        } else {
            &self.spill
        }
    }
}

impl Default for FiredBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// The candidate policies for the event, and the attribute indexes of their bucket, if built.
#[must_use]
pub fn candidates<'s>(
    scope: &'s CompiledScope,
    event: &crate::request::Event,
    ids: Ids,
) -> (&'s [u32], Option<&'s Prune>) {
    use crate::request::Event;
    let idx = &scope.index;
    match event {
        Event::SignIn { .. } => (&idx.sign_in, None),
        Event::Operation { .. } => match ids.op {
            Some(k) => idx.by_op.get(k as usize).map_or((&[][..], None), |b| {
                (
                    &b[..],
                    idx.by_op_prune
                        .get(k as usize)
                        .and_then(|slot| prune_of(slot, b, &scope.exprs, &idx.prune_budget)),
                )
            }),
            None => (
                &idx.op_other,
                prune_of(
                    &idx.op_other_prune,
                    &idx.op_other,
                    &scope.exprs,
                    &idx.prune_budget,
                ),
            ),
        },
        Event::Access { .. } => (
            match ids.res {
                Some(k) => idx.by_res.get(k as usize).map_or(&[][..], |b| &b[..]),
                None => &idx.res_other,
            },
            None,
        ),
        Event::StepUp { .. } => (&[], None),
    }
}

#[cfg(test)]
mod tests {
    use super::{FIRED_INLINE, FiredBuf};

    /// Every index pushed is kept, in order, below, at and past the inline capacity.
    #[test]
    fn fired_buf_keeps_every_index_across_the_spill() {
        for n in [
            0,
            1,
            FIRED_INLINE - 1,
            FIRED_INLINE,
            FIRED_INLINE + 1,
            3 * FIRED_INLINE,
        ] {
            let mut b = FiredBuf::new();
            for i in 0..n {
                b.push(i * 7);
            }
            let want: Vec<usize> = (0..n).map(|i| i * 7).collect();
            assert_eq!(b.as_slice(), &want[..], "{n} pushed");
        }
    }
}
