//! Three-valued logic. A predicate that cannot be evaluated (script error, store unavailable)
//! is `Unknown`; a policy fires when its condition is `True` or `Unknown` (fail closed).
//! Kleene logic makes `and`/`or` order-independent, so the compiler may reorder freely.

use serde::Serialize;

/// True, false or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tri {
    /// False.
    False,
    /// True.
    True,
    /// Could not be evaluated.
    Unknown,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }
}

impl Tri {
    /// Negation (unknown stays unknown).
    #[must_use]
    pub const fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
    /// Kleene conjunction: false wins, then unknown.
    #[must_use]
    pub const fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::True,
        }
    }
    /// Kleene disjunction: true wins, then unknown.
    #[must_use]
    pub const fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::False,
        }
    }
    /// Whether a policy with this condition fires.
    #[must_use]
    pub const fn fires(self) -> bool {
        !matches!(self, Tri::False)
    }
    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            Tri::False => 1,
            Tri::True => 2,
            Tri::Unknown => 3,
        }
    }
    pub(crate) const fn from_u8(v: u8) -> Tri {
        match v {
            1 => Tri::False,
            2 => Tri::True,
            _ => Tri::Unknown,
        }
    }
}
