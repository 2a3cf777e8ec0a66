//! S001 `routine-step-up`: a policy steps up on an operation the catalog declares `routine`.

use std::collections::BTreeMap;

use stepup_core::OperationClass;

use super::super::Ctx;
use crate::ast::{CmpOp, Expr, Lit};
use crate::diag::Span;
use crate::model::Tenant;

/// What a condition says for operation `op` (`None`: an operation none of its tests names)
/// once its operation tests are read: true, false, or what the rest of the request decides,
/// simplified (constants folded away). Two residues are compared as trees whose leaves are the
/// condition's own tests (by place), so equal residues are the same test of the rest.
#[derive(Debug, Clone, PartialEq)]
enum Residue<'e> {
    True,
    False,
    /// A test that is not of the operation.
    Leaf(Place<'e>),
    And(Vec<Residue<'e>>),
    Or(Vec<Residue<'e>>),
    Not(Box<Residue<'e>>),
}

/// A test compared by its place in the condition.
#[derive(Debug, Clone, Copy)]
struct Place<'e>(&'e Expr);

impl PartialEq for Place<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

fn residue<'e>(e: &'e Expr, op: Option<&str>) -> Residue<'e> {
    let known = |b: bool| if b { Residue::True } else { Residue::False };
    match e {
        Expr::And(v) => combine(v, op, false),
        Expr::Or(v) => combine(v, op, true),
        Expr::Not(a) => match residue(a, op) {
            Residue::True => Residue::False,
            Residue::False => Residue::True,
            Residue::Not(inner) => *inner,
            r => Residue::Not(Box::new(r)),
        },
        Expr::Cmp(n, CmpOp::Eq, lit) if n.text == "operation" => match lit_text(lit) {
            Some((v, _)) => known(Some(v) == op),
            None => Residue::Leaf(Place(e)),
        },
        Expr::Cmp(n, CmpOp::Ne, lit) if n.text == "operation" => match lit_text(lit) {
            Some((v, _)) => known(Some(v) != op),
            None => Residue::Leaf(Place(e)),
        },
        Expr::In(n, items, _) if n.text == "operation" => known(
            items
                .iter()
                .filter_map(lit_text)
                .any(|(v, _)| Some(v) == op),
        ),
        _ => Residue::Leaf(Place(e)),
    }
}

/// An `and` (`decisive` false) or an `or` (`decisive` true) for operation `op`: one part with
/// the decisive value decides; parts with the other value drop out.
fn combine<'e>(v: &'e [Expr], op: Option<&str>, decisive: bool) -> Residue<'e> {
    let mut open = Vec::new();
    for c in v {
        match residue(c, op) {
            Residue::True if decisive => return Residue::True,
            Residue::False if !decisive => return Residue::False,
            Residue::True | Residue::False => {}
            r => open.push(r),
        }
    }
    match (open.len(), decisive) {
        (0, d) => {
            if d {
                Residue::False
            } else {
                Residue::True
            }
        }
        (1, _) => open.pop().unwrap_or(Residue::True),
        (_, true) => Residue::Or(open),
        (_, false) => Residue::And(open),
    }
}

/// The most tests of the rest of the request whose values are enumerated to compare two
/// residues (2^12 assignments); past it, only residues that are constants are compared.
const MAX_ATOMS: usize = 12;

/// The most places of such tests read (a test written again is a place of its own).
const MAX_PLACES: usize = 64;

/// The tests of the rest of the request in residues, each a variable: tests written alike
/// (by their canonical text) are one variable, wherever they are.
#[derive(Default)]
struct Atoms<'e> {
    /// Each leaf's variable, by place.
    of: Vec<(Place<'e>, usize)>,
    /// The canonical texts seen, by variable.
    texts: Vec<String>,
    /// More tests or places than are enumerated.
    overflow: bool,
}

impl<'e> Atoms<'e> {
    fn collect(&mut self, r: &Residue<'e>) {
        if self.overflow {
            return;
        }
        match r {
            Residue::True | Residue::False => {}
            Residue::Leaf(p) => {
                if self.of.iter().any(|(q, _)| q == p) {
                    return;
                }
                if self.of.len() == MAX_PLACES || self.texts.len() > MAX_ATOMS {
                    self.overflow = true;
                    return;
                }
                let text = crate::fmt::expr(p.0);
                let i = match self.texts.iter().position(|t| *t == text) {
                    Some(i) => i,
                    None => {
                        self.texts.push(text);
                        self.texts.len() - 1
                    }
                };
                self.of.push((*p, i));
            }
            Residue::And(v) | Residue::Or(v) => v.iter().for_each(|c| self.collect(c)),
            Residue::Not(a) => self.collect(a),
        }
    }

    fn value(&self, r: &Residue<'e>, assignment: u32) -> bool {
        match r {
            Residue::True => true,
            Residue::False => false,
            Residue::Leaf(p) => self
                .of
                .iter()
                .find(|(q, _)| q == p)
                .is_some_and(|(_, i)| assignment >> i & 1 == 1),
            Residue::And(v) => v.iter().all(|c| self.value(c, assignment)),
            Residue::Or(v) => v.iter().any(|c| self.value(c, assignment)),
            Residue::Not(a) => !self.value(a, assignment),
        }
    }
}

/// Whether S001 flags routine operation `op` of a condition, read with `op` (`here`) and with
/// an operation it does not name (`elsewhere`): `op` can be stepped up, and either every
/// operation is (`not (operation == y and risk > 50)`), or `op` can be where another operation
/// would not be (`(operation == y and risk > 50) or new_device`: on `y` for its risk alone).
/// A condition that steps `op` up only where it steps up any operation is a signal's step-up
/// there (`operation == x or new_device`; `risk >= 70 or (new_device and operation != y)`,
/// which exempts `y`; `(operation == y and new_device) or new_device`, which says one thing
/// twice). Tests of the rest of the request are read as free variables (their own
/// contradictions are not seen), and past [`MAX_ATOMS`] of them only a constant `elsewhere`
/// is read.
fn flags(here: &Residue<'_>, elsewhere: &Residue<'_>) -> bool {
    match (here, elsewhere) {
        (Residue::False, _) => false,
        (Residue::True, _) => true,
        (_, Residue::True | Residue::False) => {
            // Can `here` be true at all?
            let mut atoms = Atoms::default();
            atoms.collect(here);
            atoms.overflow
                || atoms.texts.len() > MAX_ATOMS
                || (0..1u32 << atoms.texts.len()).any(|a| atoms.value(here, a))
        }
        _ => {
            let mut atoms = Atoms::default();
            atoms.collect(here);
            atoms.collect(elsewhere);
            !atoms.overflow
                && atoms.texts.len() <= MAX_ATOMS
                && (0..1u32 << atoms.texts.len())
                    .any(|a| atoms.value(here, a) && !atoms.value(elsewhere, a))
        }
    }
}

/// An operation test: where its `operation` is, and each operation it names with where.
type OpTest<'e> = (Span, Vec<(&'e str, Span)>);

/// The operation tests of a condition.
fn operation_tests<'e>(e: &'e Expr, out: &mut Vec<OpTest<'e>>) {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|c| operation_tests(c, out)),
        Expr::Not(a) => operation_tests(a, out),
        Expr::Cmp(n, CmpOp::Eq | CmpOp::Ne, lit) if n.text == "operation" => {
            out.push((n.span, lit_text(lit).into_iter().collect()));
        }
        Expr::In(n, items, _) if n.text == "operation" => {
            out.push((n.span, items.iter().filter_map(lit_text).collect()));
        }
        _ => {}
    }
}

/// Flags each `routine` operation a condition that tests the operation steps up on: read with
/// that operation it is true whatever the rest of the request is, or it may be true and its
/// operation tests single the operation out (`operation == y and risk > 50`, `not (operation
/// == y and risk > 50)`); `operation != a and operation != b`, nested as it may be, steps up on
/// neither. Where the condition names the operation it points there; else at its first
/// operation test.
pub(in crate::check) fn routine_step_up(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr) {
    let mut tests = Vec::new();
    operation_tests(e, &mut tests);
    let Some((first, _)) = tests.first() else {
        return;
    };
    let first = *first;
    // Only the operations the tests name are read one by one: a tenant's catalog may hold
    // hundreds, and most policies name one or two (S001 read every policy with every
    // operation of the catalog: an eighth of loading 10,000 policies).
    let names = named(&tests);
    let flagged = flagged(&t.operations, e, &names);
    for o in flagged {
        let named = tests
            .iter()
            .flat_map(|(_, names)| names.iter())
            .find(|(v, _)| *v == o);
        let (span, label) = match named {
            Some((_, span)) => (*span, "routine".to_string()),
            None => {
                let others: Vec<&str> = names.iter().copied().filter(|v| *v != o).collect();
                let label = if others.is_empty() {
                    "every operation".to_string()
                } else {
                    format!(
                        "every operation but {}",
                        others
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                (first, label)
            }
        };
        cx.warn("S001", span, format!("step-up on `{o}`, a routine operation"), &label, Some("over-stepping trains users to dismiss prompts; reserve step-up for what matters, or declare the operation `sensitive`".into()));
    }
}

/// The operations `tests` name, sorted, without repeats.
fn named<'e>(tests: &[OpTest<'e>]) -> Vec<&'e str> {
    let mut names: Vec<&str> = tests
        .iter()
        .flat_map(|(_, names)| names.iter().map(|(v, _)| *v))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The routine operations of `catalog` S001 flags for condition `e`, whose operation tests name
/// `names` (sorted, without repeats), in the catalog's order: every one the tests do not name
/// or none of them (read with any of them, the condition is the same), and those they name
/// read one by one.
fn flagged<'c>(
    catalog: &'c BTreeMap<String, OperationClass>,
    e: &Expr,
    names: &[&str],
) -> Vec<&'c str> {
    let elsewhere = residue(e, None);
    if elsewhere == Residue::True {
        catalog
            .iter()
            .filter(|(o, class)| {
                **class == OperationClass::Routine
                    && (names.binary_search(&o.as_str()).is_err()
                        || flags(&residue(e, Some(o)), &elsewhere))
            })
            .map(|(o, _)| o.as_str())
            .collect()
    } else {
        names
            .iter()
            .filter_map(|o| catalog.get_key_value(*o))
            .filter(|(o, class)| {
                **class == OperationClass::Routine && flags(&residue(e, Some(o)), &elsewhere)
            })
            .map(|(o, _)| o.as_str())
            .collect()
    }
}

fn lit_text(l: &Lit) -> Option<(&str, Span)> {
    match l {
        Lit::Name(n) => Some((&n.text, n.span)),
        Lit::Str(s) => Some((&s.value, s.span)),
        Lit::Number(..) => None,
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;
    use crate::ast::Name;

    fn name(text: &str) -> Name {
        Name {
            text: text.into(),
            span: Span { start: 0, end: 0 },
        }
    }

    /// Reading only the operations the tests name flags what reading every operation of the
    /// catalog, one by one, flags: conditions drawn from operation tests (`==`, `!=`, `in`) on
    /// named and unnamed operations, other tests, `and`, `or` and `not`, nested.
    #[test]
    fn reading_the_named_operations_flags_what_reading_every_one_does() {
        let ops = ["a", "b", "c", "d", "e"];
        let catalog: BTreeMap<String, OperationClass> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let class = if i % 3 == 2 {
                    OperationClass::Sensitive
                } else {
                    OperationClass::Routine
                };
                ((*o).to_string(), class)
            })
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n).unwrap()
        };
        fn draw(next: &mut dyn FnMut(u64) -> usize, depth: u32, ops: &[&str]) -> Expr {
            let op = |next: &mut dyn FnMut(u64) -> usize| {
                // `z` is in no catalog: a test of an operation the tenant does not have.
                let all = [ops, &["z"]].concat();
                Lit::Name(name(all[next(all.len() as u64)]))
            };
            let pick = if depth == 0 { next(5) } else { next(8) };
            match pick {
                0 => Expr::Cmp(name("operation"), CmpOp::Eq, op(next)),
                1 => Expr::Cmp(name("operation"), CmpOp::Ne, op(next)),
                2 => Expr::In(
                    name("operation"),
                    (0..1 + next(3)).map(|_| op(next)).collect(),
                    Span { start: 0, end: 0 },
                ),
                3 => Expr::Flag(name("new_device")),
                4 => Expr::Cmp(
                    name("risk"),
                    CmpOp::Gt,
                    Lit::Number(50.0, Span { start: 0, end: 0 }),
                ),
                5 => Expr::Not(Box::new(draw(next, depth - 1, ops))),
                6 => Expr::And(
                    (0..2 + next(2))
                        .map(|_| draw(next, depth - 1, ops))
                        .collect(),
                ),
                _ => Expr::Or(
                    (0..2 + next(2))
                        .map(|_| draw(next, depth - 1, ops))
                        .collect(),
                ),
            }
        }
        let mut some = 0;
        for _ in 0..5_000 {
            let e = draw(&mut next, 3, &ops);
            let mut tests = Vec::new();
            operation_tests(&e, &mut tests);
            let names = named(&tests);
            let elsewhere = residue(&e, None);
            let every: Vec<&str> = catalog
                .iter()
                .filter(|(o, class)| {
                    **class == OperationClass::Routine && flags(&residue(&e, Some(o)), &elsewhere)
                })
                .map(|(o, _)| o.as_str())
                .collect();
            if tests.is_empty() {
                continue;
            }
            some += usize::from(!every.is_empty());
            assert_eq!(flagged(&catalog, &e, &names), every, "{e:?}");
        }
        assert!(some > 500, "too few conditions flag anything: {some}");
    }
}
