//! Pass 1: names become small integers and the model's leaves become compiled leaves.
//! `operation` classes expand to the ids of the operations of that class.

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
}

fn id(map: &mut NameMap<u32>, name: &str) -> u32 {
    let n = u32::try_from(map.len()).unwrap_or(u32::MAX);
    *map.entry(name.to_string()).or_insert(n)
}

impl<'t> Interner<'t> {
    /// An interner seeded with the tenant's catalogs.
    #[must_use]
    pub fn new(tenant: &'t Tenant) -> Self {
        let mut s = Interner {
            tenant,
            ops: NameMap::default(),
            res: NameMap::default(),
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
            Cond::AttrNum(n, op, v) => CExpr::AttrNum(n.as_str().into(), *op, *v),
            Cond::AttrStrIn(n, s) => CExpr::AttrStr(n.as_str().into(), s.clone()),
            Cond::AttrBool(n, b) => CExpr::AttrBool(n.as_str().into(), *b),
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
