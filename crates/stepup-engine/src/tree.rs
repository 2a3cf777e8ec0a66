//! The compiled evaluator: walks only the candidate policies of the event, cheap tests first,
//! short-circuiting in three-valued logic. Nothing on the path that allows allocates.

use crate::compile::{CExpr, CompiledScope};
use crate::facts::Facts;
use crate::tri::Tri;

/// The event's interned operation and resource.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    /// Operation id, if the event is an operation the scope knows.
    pub op: Option<u32>,
    /// Resource id, if the event is an access to a resource the scope knows.
    pub res: Option<u32>,
}

/// Evaluates a compiled condition.
pub fn eval(e: &CExpr, f: &Facts<'_>, ids: Ids) -> Tri {
    match e {
        CExpr::And(v) => {
            let mut unknown = false;
            for c in v.iter() {
                match eval(c, f, ids) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => unknown = true,
                    Tri::True => {}
                }
            }
            if unknown { Tri::Unknown } else { Tri::True }
        }
        CExpr::Or(v) => {
            let mut unknown = false;
            for c in v.iter() {
                match eval(c, f, ids) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => unknown = true,
                    Tri::False => {}
                }
            }
            if unknown { Tri::Unknown } else { Tri::False }
        }
        CExpr::Not(c) => eval(c, f, ids).not(),
        CExpr::Op(set) => Tri::from(ids.op.is_some_and(|k| set.binary_search(&k).is_ok())),
        CExpr::Res(set) => Tri::from(ids.res.is_some_and(|k| set.binary_search(&k).is_ok())),
        CExpr::Risk(op, v) => f.risk(*op, *v),
        CExpr::AttrNum(n, op, v) => f.attr_num(n, *op, *v),
        CExpr::AttrStr(n, s) => f.attr_str(n, s),
        CExpr::AttrBool(n, b) => f.attr_bool(n, *b),
        CExpr::Signal(k, d) => f.signal(*k, *d),
        CExpr::FirstAccess(r, w) => f.first_access(r, *w),
        CExpr::Script(s) => f.script(s),
        CExpr::Const(t) => *t,
    }
}

/// A small inline buffer of fired policy indices (spills to the heap past 32).
pub struct FiredBuf {
    inline: [usize; 32],
    len: usize,
    spill: Vec<usize>,
}

impl FiredBuf {
    /// An empty buffer.
    #[must_use]
    pub const fn new() -> Self {
        FiredBuf {
            inline: [0; 32],
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

/// The candidate policies for the event.
#[must_use]
pub fn candidates<'s>(
    scope: &'s CompiledScope,
    event: &crate::request::Event,
    ids: Ids,
) -> &'s [u32] {
    use crate::request::Event;
    let idx = &scope.index;
    match event {
        Event::SignIn { .. } => &idx.sign_in,
        Event::Operation { .. } => match ids.op {
            Some(k) => idx.by_op.get(k as usize).map_or(&[][..], |b| &b[..]),
            None => &idx.op_other,
        },
        Event::Access { .. } => match ids.res {
            Some(k) => idx.by_res.get(k as usize).map_or(&[][..], |b| &b[..]),
            None => &idx.res_other,
        },
        Event::StepUp { .. } => &[],
    }
}
