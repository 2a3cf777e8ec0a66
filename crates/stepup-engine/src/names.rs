//! Name lookups on the decision path: a multiply-rotate hash taking eight bytes at a time (as
//! rustc's FxHash does). The maps hold only names the policy set defines, so a request's key can
//! cost at most one probe sequence over them (no flooding risk: a request cannot add keys), and
//! short keys hash several times faster than with SipHash or byte-at-a-time FNV.

use std::hash::Hasher;

use stepup_dsl::vocab::reading;

/// The word hash of [`NameMap`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WordHash(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl WordHash {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for WordHash {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let (words, rest) = bytes.as_chunks::<8>();
        for w in words {
            self.add(u64::from_le_bytes(*w));
        }
        // The last few bytes, with their count (so "a" and "a\0" differ). Only the hash's spread
        // depends on how the count is folded in: a lookup compares the lengths itself, and for a
        // given length the word is a bijection of the bytes (see `equal_given_hash`).
        self.add(tail(rest) ^ ((rest.len() as u64) << 61));
    }
    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes its control bytes from the high bits: fold the low half in too.
        self.0 ^ (self.0 >> 29)
    }
}

/// Up to eight bytes as a word, in two loads and without a loop: four to eight bytes as two
/// 4-byte loads (the first and the last four, overlapping below eight), one to three as the
/// first, the middle and the last byte. Two byte strings of the same length have the same word
/// only when they are equal (together the loads cover every byte, at positions fixed by the
/// length).
#[inline]
fn tail(b: &[u8]) -> u64 {
    if let (Some(lo), Some(hi)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*lo)) | (u64::from(u32::from_le_bytes(*hi)) << 32)
    } else if let (Some(a), Some(m), Some(z)) = (b.first(), b.get(b.len() / 2), b.last()) {
        u64::from(*a) | (u64::from(*m) << 8) | (u64::from(*z) << 16)
    } else {
        0
    }
}

/// The hash of a name. Up to eight bytes (most names a policy set defines) in one round, with
/// no loop to set up: the bytes as one word ([`tail`] reads eight bytes whole) and their count.
#[inline]
fn hash(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut h = WordHash::default();
    if b.len() <= 8 {
        // The count's top bits (eight shifts out to nothing): only the spread depends on it, as
        // in `write`, since a lookup compares lengths itself.
        h.add(tail(b) ^ ((b.len() as u64) << 61));
    } else {
        h.write(b);
    }
    h.finish()
}

/// Byte equality of two short names, without a call to `memcmp` (whose set-up costs more than
/// comparing a name of a few bytes).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let ((wa, ra), (wb, rb)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    wa.iter()
        .zip(wb)
        .all(|(x, y)| u64::from_le_bytes(*x) == u64::from_le_bytes(*y))
        && tail(ra) == tail(rb)
}

/// Byte equality of two names whose hashes are equal. Up to eight bytes, the hash is a
/// bijection of the bytes and their count (one round of xor, rotate and multiply by an odd
/// constant, then an xor-shift: each step invertible), so equal hashes and lengths are equal
/// names and the bytes need not be read; longer names are compared.
#[inline]
fn equal_given_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.len() <= 8 || same(a, b))
}

/// A name's hash, the name and its value.
type Entry<V> = (u64, Box<str>, V);

/// A map from names to values, looked up on every decision: open addressing over a table at
/// most half full, each entry keeping its name's hash, so a lookup costs one hash of the
/// request's name and, when the hashes match, a length comparison (up to eight bytes the hash
/// is a bijection of the name and its length) or, for longer names, a byte comparison.
#[derive(Debug, Clone)]
pub struct NameMap<V> {
    entries: Box<[Option<Entry<V>>]>,
    len: usize,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            entries: Box::new([]),
            len: 0,
        }
    }
}

impl<V> NameMap<V> {
    /// The position of `name` (hash `h`), or of the empty entry where it would go; `None` when
    /// the table has no entry at all.
    #[inline]
    fn position(&self, h: u64, name: &str) -> Option<usize> {
        let mask = self.entries.len().checked_sub(1)?;
        let mut i = (h >> 40) as usize & mask;
        // At most half the entries are taken: the walk ends at an empty one.
        loop {
            match self.entries.get(i)? {
                None => return Some(i),
                Some((eh, n, _)) if *eh == h && equal_given_hash(n.as_bytes(), name.as_bytes()) => {
                    return Some(i);
                }
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// The value of `name`.
    #[inline(always)]
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&V> {
        let i = self.position(hash(name), name)?;
        self.entries.get(i)?.as_ref().map(|(_, _, v)| v)
    }

    /// Sets `name` to `v`; returns the value it replaced.
    pub fn insert(&mut self, name: String, v: V) -> Option<V> {
        if 2 * (self.len + 1) > self.entries.len() {
            self.grow();
        }
        let h = hash(&name);
        let slot = self
            .position(h, &name)
            .and_then(|i| self.entries.get_mut(i))?;
        match slot {
            Some((_, _, old)) => Some(std::mem::replace(old, v)),
            None => {
                *slot = Some((h, name.into_boxed_str(), v));
                self.len += 1;
                None
            }
        }
    }

    fn grow(&mut self) {
        let size = (self.entries.len() * 2).max(8);
        let old = std::mem::replace(
            &mut self.entries,
            std::iter::repeat_with(|| None).take(size).collect(),
        );
        self.len = 0;
        for (_, n, v) in old.into_vec().into_iter().flatten() {
            self.insert(n.into_string(), v);
        }
    }

    /// How many names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every name and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.iter().flatten().map(|(_, n, v)| (&**n, v))
    }
}

/// Up to eight names of up to eight bytes each, found by their place in order: each kept as one
/// word ([`tail`]) and its length, which together are the name, and a name looked for is read
/// the same way and compared with them in turn (no hash, no probe: for so few short names,
/// cheaper than a [`NameMap`]).
#[derive(Debug, Clone)]
pub struct ShortNames {
    /// The names as words.
    words: [u64; 8],
    /// Their lengths; [`u8::MAX`] past the last name (no name of up to eight bytes has it).
    lens: [u8; 8],
}

impl ShortNames {
    /// The names, in order; `None` when there are more than eight or one has more than eight
    /// bytes.
    #[must_use]
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let (mut words, mut lens) = ([0; 8], [u8::MAX; 8]);
        let mut places = words.iter_mut().zip(lens.iter_mut());
        for name in names {
            let b = name.as_bytes();
            let (w, l) = places.next()?;
            *l = u8::try_from(b.len()).ok().filter(|len| *len <= 8)?;
            *w = tail(b);
        }
        Some(ShortNames { words, lens })
    }

    /// The place of `name`.
    #[inline(always)]
    #[must_use]
    pub fn position(&self, name: &str) -> Option<usize> {
        let b = name.as_bytes();
        // Up to eight bytes, the word and the length are the name (see `tail`); a longer name
        // is none of them.
        let len = u8::try_from(b.len()).ok().filter(|len| *len <= 8)?;
        let word = tail(b);
        self.words
            .iter()
            .zip(&self.lens)
            .position(|(w, l)| *w == word && *l == len)
    }
}

/// A map from up to a few names to their places `0..n`, as [`ShortNames`] when the names allow
/// it, else hashed.
#[derive(Debug, Clone)]
pub struct Places {
    /// The names by place, when at most eight of at most eight bytes.
    short: Option<ShortNames>,
    /// Every name's place.
    map: NameMap<u32>,
}

impl Places {
    /// The names, each at its place in order (a name repeated keeps its first place).
    #[must_use]
    pub fn new(names: &[&str]) -> Self {
        let mut map = NameMap::default();
        let mut unique = Vec::with_capacity(names.len());
        for n in names {
            if map.get(n).is_none() {
                map.insert(
                    (*n).to_string(),
                    u32::try_from(unique.len()).unwrap_or(u32::MAX),
                );
                unique.push(*n);
            }
        }
        Places {
            short: ShortNames::new(unique),
            map,
        }
    }

    /// How many names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The place of `name`.
    #[inline(always)]
    #[must_use]
    pub fn get(&self, name: &str) -> Option<usize> {
        match &self.short {
            Some(short) => short.position(name),
            None => self.map.get(name).map(|p| *p as usize),
        }
    }

    /// The names of `map`, each at the place its value gives: as [`ShortNames`] when the
    /// values number the names from 0 without a gap (as the compiler's interner does) and the
    /// names allow it, else every name looked up in the map.
    #[must_use]
    pub fn numbered<V: Copy + Into<u32>>(map: &NameMap<V>) -> Self {
        let mut by_place: Vec<(u32, &str)> = map.iter().map(|(n, v)| ((*v).into(), n)).collect();
        by_place.sort_unstable();
        let numbered = by_place
            .iter()
            .enumerate()
            .all(|(i, (p, _))| usize::try_from(*p).is_ok_and(|p| p == i));
        Places {
            short: numbered
                .then(|| ShortNames::new(by_place.iter().map(|(_, n)| *n)))
                .flatten(),
            map: by_place
                .iter()
                .map(|(p, n)| ((*n).to_string(), *p))
                .collect(),
        }
    }

    /// The place of `name` as an id (`u32`).
    #[inline(always)]
    #[must_use]
    pub fn id(&self, name: &str) -> Option<u32> {
        self.get(name).and_then(|p| u32::try_from(p).ok())
    }
}

/// A scope's attribute slots by name, read for each of a request's attributes on every
/// decision: the slots are numbered `0..n` in the order their names were met, so a name's slot
/// is its place.
#[derive(Debug, Clone)]
pub struct Slots(Places);

impl Slots {
    /// The slots of `map` (a name's slot, numbered from 0 without a gap; see
    /// [`Places::numbered`]).
    #[must_use]
    pub fn new(map: &NameMap<u8>) -> Self {
        Slots(Places::numbered(map))
    }

    /// The slot of `name`.
    #[inline(always)]
    #[must_use]
    pub fn get(&self, name: &str) -> Option<u8> {
        self.0.get(name).and_then(|s| u8::try_from(s).ok())
    }
}

/// The names a scope's policies spell, by how each reads: for a tenant without a catalog, an
/// operation or resource the policies do not name is evaluated as one no policy guards (it is
/// allowed unless a policy fires without reading it). A name that only reads like one they
/// guard (`Payout`, `pay-out`, `payoutI` or `payout1` for `payoutl`… see [`reading`]) is a
/// careless or hostile spelling of a guarded one, not another operation: it is refused, not allowed. So is
/// a name with a character outside printable ASCII that the policies do not spell (an
/// invisible or bidirectional character, a fullwidth, accented, Cyrillic or Greek look-alike,
/// a mathematical letter: Unicode has too many ways to draw `payout` to list them), unless the
/// policies name no operation (resource) at all. A catalog's names are ASCII names, and a
/// catalog refuses every name it does not declare.
#[derive(Debug, Clone, Default)]
pub struct Readings(Box<[(Box<str>, Box<str>)]>);

impl Readings {
    /// The readings of `names` (the names the scope's policies spell: its conditions' names and
    /// the strings of the scripts that read the field).
    #[must_use]
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut v: Vec<(Box<str>, Box<str>)> = names
            .into_iter()
            .map(|n| (reading(n).collect::<String>().into(), n.into()))
            .collect();
        v.sort_unstable();
        v.dedup();
        Readings(v.into())
    }

    /// Whether the policies spell `name` as it is.
    #[must_use]
    pub fn spells(&self, name: &str) -> bool {
        self.0.iter().any(|(_, n)| **n == *name)
    }

    /// Why `name`, which the policies do not spell as it is, is refused rather than read as a
    /// name no policy guards: the name the policies spell that it reads like, or `None` when it
    /// reads like none; for a name with a character outside printable ASCII, `NotAscii` even
    /// then (`None` when the policies spell no name).
    #[must_use]
    pub fn lookalike(&self, name: &str) -> Option<Lookalike<'_>> {
        let first = self.0.first()?;
        if self.spells(name) {
            return None;
        }
        if let Some((_, n)) = self
            .0
            .iter()
            .find(|(r, _)| !r.is_empty() && reading(name).eq(r.chars()))
        {
            return Some(Lookalike::ReadsLike(n));
        }
        (!name.chars().all(|c| c == ' ' || c.is_ascii_graphic()))
            .then_some(Lookalike::NotAscii(&first.1))
    }
}

/// A name as an explanation or a record shows it: its first 64 characters, each outside
/// printable ASCII (and the backtick that quotes it) escaped, so what it holds is seen.
#[must_use]
pub fn shown(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars().take(64) {
        match c {
            '`' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            ' ' => s.push(c),
            c if c.is_ascii_graphic() => s.push(c),
            c => s.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    if name.chars().nth(64).is_some() {
        s.push('…');
    }
    s
}

/// Why a name is refused as a look-alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookalike<'a> {
    /// It reads like this name the policies spell.
    ReadsLike(&'a str),
    /// It holds a character outside printable ASCII (the policies spell names, this one
    /// among them).
    NotAscii(&'a str),
}

impl<V> FromIterator<(String, V)> for NameMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut m = NameMap::default();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
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

    #[test]
    fn a_name_is_a_lookalike_only_of_names_the_policies_spell_and_never_of_itself() {
        let none = Readings::new([]);
        assert_eq!(
            none.lookalike("p\u{430}yout"),
            None,
            "no name spelt: nothing to look like"
        );
        let r = Readings::new(["payout", "change_email"]);
        assert_eq!(r.lookalike("payout"), None);
        assert_eq!(r.lookalike("view_profile"), None);
        assert_eq!(
            r.lookalike("payouts"),
            None,
            "another name, not another spelling"
        );
        assert_eq!(r.lookalike("Pay-Out"), Some(Lookalike::ReadsLike("payout")));
        assert_eq!(
            r.lookalike("CHANGE_EMA1L"),
            Some(Lookalike::ReadsLike("change_email"))
        );
        assert_eq!(
            r.lookalike("pay\u{200b}out"),
            Some(Lookalike::ReadsLike("payout"))
        );
        assert_eq!(
            r.lookalike("\u{fc}berweisung"),
            Some(Lookalike::NotAscii("change_email"))
        );
        let spelt = Readings::new(["\u{fc}berweisung"]);
        assert_eq!(
            spelt.lookalike("\u{fc}berweisung"),
            None,
            "spelt by the policies"
        );
        let odd = Readings::new(["", "\u{1f44d}", "payout"]);
        assert!(odd.spells("\u{1f44d}"));
        assert_eq!(
            odd.lookalike("--"),
            None,
            "reads like no name: refused as none"
        );
        assert_eq!(
            odd.lookalike("\u{43f}\u{43b}"),
            Some(Lookalike::NotAscii(""))
        );
    }

    #[test]
    fn a_name_is_shown_bounded_with_what_it_holds_escaped() {
        assert_eq!(shown("payout"), "payout");
        assert_eq!(shown("p\u{430}y out"), "p\\u{430}y out");
        assert_eq!(shown("a`b\\c\n"), "a\\`b\\\\c\\u{a}");
        let long = shown(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), 65);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn names_that_differ_in_any_byte_or_length_are_told_apart() {
        let names = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "amount",
            "amount_",
            "amounts",
            "country",
            "tier",
            "channel",
            "12345678",
            "123456789",
            "1234567a",
            "\0",
            "a\0",
        ];
        let map: NameMap<usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        assert_eq!(map.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(map.get(n), Some(&i), "{n:?}");
        }
        assert_eq!(map.get("amoun"), None);
        assert_eq!(map.get("amount\0"), None);
    }

    #[test]
    fn a_short_word_tells_apart_every_two_byte_strings_of_one_length() {
        // Every string of length 0..=8 over three bytes (3^8 = 6,561 at the longest): the
        // overlapping loads must still cover every position.
        for len in 0..=8u32 {
            let mut seen = std::collections::HashMap::new();
            for code in 0..3usize.pow(len) {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| [b'a', b'b', 0][code / 3usize.pow(i) % 3])
                    .collect();
                if let Some(other) = seen.insert(tail(&bytes), bytes.clone()) {
                    panic!("{bytes:?} and {other:?} load to one word");
                }
                assert!(same(&bytes, &bytes));
            }
        }
        // Up to eight bytes, equal hashes and lengths are equal names (what a lookup relies on).
        let mut by_hash = std::collections::HashMap::new();
        for len in 0..=8u32 {
            for code in 0..3usize.pow(len) {
                let name: String = (0..len)
                    .map(|i| ['a', 'b', '\0'][code / 3usize.pow(i) % 3])
                    .collect();
                if let Some(other) = by_hash.insert((hash(&name), name.len()), name.clone()) {
                    panic!("{name:?} and {other:?} hash alike");
                }
            }
        }
        assert!(!same(b"abcdefgh1", b"abcdefgh2"));
        assert!(!same(b"xbcdefgh1", b"abcdefgh1"));
        assert!(same(b"abcdefgh12345", b"abcdefgh12345"));
    }
}

#[cfg(test)]
mod map_tests {
    use super::*;

    #[test]
    fn a_name_map_grows_replaces_and_finds_every_name() {
        let mut m = NameMap::default();
        assert_eq!(m.get(""), None, "an empty map finds nothing");
        for i in 0..1000 {
            assert_eq!(m.insert(format!("name{i}"), i), None);
        }
        assert_eq!(m.insert("name7".into(), 7_000), Some(7));
        assert_eq!(m.len(), 1000);
        for i in 0..1000 {
            let want = if i == 7 { 7_000 } else { i };
            assert_eq!(m.get(&format!("name{i}")), Some(&want));
        }
        assert_eq!(m.get("name1000"), None);
    }
}

#[cfg(test)]
mod property_tests {
    use super::*;
    use proptest::prelude::*;

    /// Names that stress the lookup: short (where a hash match is taken as equality), around
    /// the 8-byte word, sharing their first or last four bytes, with NULs and multibyte text.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab\\x00]{0,10}",
            "[a-z_]{0,17}",
            "(amou|coun|tier)[a-z\\x00]{0,6}",
            "[a-z]{0,4}(ount|ntry|_age)",
            "[éa€\\x00]{0,5}",
        ]
    }

    proptest! {
        /// A name map finds exactly what a standard map of the same names finds: a name that
        /// is not in it is never taken for one that is (a request's attribute, operation or
        /// tenant read as another's would be a wrong decision).
        #[test]
        fn a_name_map_answers_as_a_standard_map(
            names in proptest::collection::vec(name(), 0..40),
            probes in proptest::collection::vec(name(), 0..40),
        ) {
            let mut std_map = std::collections::HashMap::new();
            let mut map = NameMap::default();
            for (i, n) in names.iter().enumerate() {
                std_map.insert(n.clone(), i);
                map.insert(n.clone(), i);
            }
            prop_assert_eq!(map.len(), std_map.len());
            for n in names.iter().chain(&probes) {
                prop_assert_eq!(map.get(n), std_map.get(n), "{:?}", n);
            }
        }

        /// Attribute slots find exactly the slots a standard map of the same names finds, with
        /// few short names (compared as words) or not (looked up by hash).
        #[test]
        fn slots_answer_as_a_standard_map(
            names in proptest::collection::vec(name(), 0..12),
            probes in proptest::collection::vec(name(), 0..40),
        ) {
            let mut std_map = std::collections::HashMap::new();
            let mut map = NameMap::default();
            for n in &names {
                if !std_map.contains_key(n) {
                    let slot = u8::try_from(std_map.len()).unwrap_or(u8::MAX);
                    std_map.insert(n.clone(), slot);
                    map.insert(n.clone(), slot);
                }
            }
            let slots = Slots::new(&map);
            prop_assert_eq!(
                slots.0.short.is_some(),
                std_map.len() <= 8 && std_map.keys().all(|n| n.len() <= 8)
            );
            for n in names.iter().chain(&probes) {
                prop_assert_eq!(slots.get(n), std_map.get(n).copied(), "{:?}", n);
            }
        }

        /// Places numbered by a map answer as the map: with its values from 0 without a gap
        /// (compared as words when short), or with a gap (hashed).
        #[test]
        fn numbered_places_answer_as_their_map(
            names in proptest::collection::vec(name(), 0..12),
            probes in proptest::collection::vec(name(), 0..40),
            gap in any::<bool>(),
        ) {
            let mut map: NameMap<u32> = NameMap::default();
            for n in &names {
                if map.get(n).is_none() {
                    let next = u32::try_from(map.len()).unwrap_or(u32::MAX) + u32::from(gap);
                    map.insert(n.clone(), next);
                }
            }
            let places = Places::numbered(&map);
            prop_assert_eq!(
                places.short.is_some(),
                (!gap || map.len() == 0) && names.iter().all(|n| n.len() <= 8) && map.len() <= 8
            );
            for n in names.iter().chain(&probes) {
                prop_assert_eq!(places.id(n), map.get(n).copied(), "{:?}", n);
            }
        }

        /// Places find each name's first place, and nothing for another name, short or not.
        #[test]
        fn places_are_the_first_place_of_each_name(
            names in proptest::collection::vec(name(), 0..12),
            probes in proptest::collection::vec(name(), 0..40),
        ) {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let places = Places::new(&refs);
            let mut unique: Vec<&str> = Vec::new();
            for n in &refs {
                if !unique.contains(n) {
                    unique.push(n);
                }
            }
            prop_assert_eq!(places.len(), unique.len());
            for n in refs.iter().copied().chain(probes.iter().map(String::as_str)) {
                prop_assert_eq!(places.get(n), unique.iter().position(|u| *u == n), "{:?}", n);
            }
        }
    }
}
