//! Pass 1: names become small integers and the model's leaves become compiled leaves.
//! `operation` classes expand to the ids of the operations of that class.

use std::sync::Arc;

use stepup_dsl::model::{Cond, Tenant};

use crate::names::NameMap;

use super::CExpr;

/// Interns operation and resource names of one scope.
pub struct Interner<'t> {
    tenant: &'t Tenant,
    /// Operation ids.
    pub ops: NameMap<u32>,
    /// Resource ids.
    pub res: NameMap<u32>,
    /// Attribute slots.
    pub attrs: NameMap<u8>,
    /// The name of the attribute in each slot, shared by every leaf that reads it.
    slot_names: Vec<Arc<str>>,
}

fn id(map: &mut NameMap<u32>, name: &str) -> u32 {
    let n = u32::try_from(map.len()).unwrap_or(u32::MAX);
    match map.get(name) {
        Some(id) => *id,
        None => {
            map.insert(name.to_string(), n);
            n
        }
    }
}

impl<'t> Interner<'t> {
    /// An interner seeded with the tenant's catalogs.
    #[must_use]
    pub fn new(tenant: &'t Tenant) -> Self {
        let mut s = Interner {
            tenant,
            ops: NameMap::default(),
            res: NameMap::default(),
            attrs: NameMap::default(),
            slot_names: Vec::new(),
        };
        for o in tenant.operations.keys() {
            id(&mut s.ops, o);
        }
        for r in &tenant.resources {
            id(&mut s.res, r);
        }
        s
    }

    fn ids<'a>(map: &mut NameMap<u32>, names: impl Iterator<Item = &'a String>) -> Box<[u32]> {
        let mut v: Vec<u32> = names.map(|n| id(map, n)).collect();
        v.sort_unstable();
        v.dedup();
        v.into_boxed_slice()
    }

    fn attr(&mut self, name: &str) -> super::Attr {
        let next = self.attrs.len();
        let slot = match self.attrs.get(name) {
            Some(s) => Some(*s),
            None if next < crate::tree::MAX_ATTR_SLOTS => {
                let s = u8::try_from(next).unwrap_or(u8::MAX);
                self.attrs.insert(name.to_string(), s);
                self.slot_names.push(name.into());
                Some(s)
            }
            None => None,
        };
        // A slot's name was made with the slot; an attribute without one (past the slots) has
        // its own.
        let shared = slot.and_then(|s| self.slot_names.get(usize::from(s)));
        super::Attr {
            name: shared.map_or_else(|| name.into(), Arc::clone),
            slot,
        }
    }

    /// Lowers a model condition.
    pub fn lower(&mut self, c: &Cond) -> CExpr {
        match c {
            Cond::And(v) => CExpr::And(v.iter().map(|c| self.lower(c)).collect()),
            Cond::Or(v) => CExpr::Or(v.iter().map(|c| self.lower(c)).collect()),
            Cond::Not(c) => CExpr::Not(Box::new(self.lower(c))),
            Cond::OperationIn(s) => CExpr::Op(Self::ids(&mut self.ops, s.iter())),
            Cond::OperationClassIs(class) => {
                let names: Vec<String> = self
                    .tenant
                    .operations
                    .iter()
                    .filter(|(_, c)| *c == class)
                    .map(|(n, _)| n.clone())
                    .collect();
                CExpr::Op(Self::ids(&mut self.ops, names.iter()))
            }
            Cond::ResourceIn(s) => CExpr::Res(Self::ids(&mut self.res, s.iter())),
            Cond::Risk(op, v) => CExpr::Risk(*op, *v),
            Cond::AttrNum(n, op, v) => CExpr::AttrNum(self.attr(n), *op, *v),
            Cond::AttrStrIn(n, s) => CExpr::AttrStr(self.attr(n), s.clone()),
            Cond::AttrBool(n, b) => CExpr::AttrBool(self.attr(n), *b),
            Cond::Signal(k, d) => CExpr::Signal(*k, *d),
            Cond::FirstAccess(r, w) => {
                // The resource must be interned so the index can route accesses to it.
                id(&mut self.res, r);
                CExpr::FirstAccess(r.as_str().into(), *w)
            }
            Cond::Script(s) => CExpr::Script(std::sync::Arc::clone(s)),
        }
    }
}
