//! The shared vocabulary of stepup: authenticator assurance levels, factors and their
//! strength table, factor sets, validity windows and timestamps.
//!
//! Every other crate speaks in these types; none of them knows about syntax or storage.

pub mod threads;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An Authenticator Assurance Level (NIST SP 800-63B): `aal1 < aal2 < aal3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    /// Single factor.
    Aal1 = 1,
    /// Two factors, or one factor of AAL2 strength.
    Aal2 = 2,
    /// Hardware-bound or phishing-resistant proof.
    Aal3 = 3,
}

impl Aal {
    /// Every level, weakest first.
    pub const ALL: [Aal; 3] = [Aal::Aal1, Aal::Aal2, Aal::Aal3];

    /// The acr value sent to clients (`aal1`, `aal2`, `aal3`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
            Aal::Aal3 => "aal3",
        }
    }
}

impl fmt::Display for Aal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Aal {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "aal1" => Ok(Aal::Aal1),
            "aal2" => Ok(Aal::Aal2),
            "aal3" => Ok(Aal::Aal3),
            _ => Err(()),
        }
    }
}

/// An authentication factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    /// A memorised secret.
    Password = 0,
    /// A one-time code sent by email.
    EmailOtp = 1,
    /// A one-time code sent by SMS.
    Sms = 2,
    /// A one-time code read out by a phone call.
    Voice = 3,
    /// A push approval on an enrolled device.
    Push = 4,
    /// A time-based one-time password app.
    Totp = 5,
    /// A WebAuthn credential (passkey, security key).
    Webauthn = 6,
}

impl Factor {
    /// Every factor, in a fixed order (the order of their bits in a [`FactorSet`]).
    pub const ALL: [Factor; 7] = [
        Factor::Password,
        Factor::EmailOtp,
        Factor::Sms,
        Factor::Voice,
        Factor::Push,
        Factor::Totp,
        Factor::Webauthn,
    ];

    /// The factor's name in policies, scenarios and tokens (`amr`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::EmailOtp => "email_otp",
            Factor::Sms => "sms",
            Factor::Voice => "voice",
            Factor::Push => "push",
            Factor::Totp => "totp",
            Factor::Webauthn => "webauthn",
        }
    }

    /// The names of every factor, for "did you mean" hints.
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        Factor::ALL.iter().map(|f| f.as_str()).collect()
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Factor {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Factor::ALL.into_iter().find(|f| f.as_str() == s).ok_or(())
    }
}

/// A set of factors as a bit set: set operations cost one instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FactorSet(u8);

impl FactorSet {
    /// No factor.
    pub const EMPTY: FactorSet = FactorSet(0);
    /// Every factor.
    pub const ANY: FactorSet = FactorSet(0b111_1111);

    /// A set of one factor.
    #[must_use]
    pub const fn one(f: Factor) -> Self {
        FactorSet(1 << (f as u8))
    }
    /// The raw bits (bit `i` is `Factor::ALL[i]`).
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Builds a set from raw bits; bits beyond the known factors are dropped.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        FactorSet(bits & Self::ANY.0)
    }
    /// Whether `f` is in the set.
    #[must_use]
    pub const fn contains(self, f: Factor) -> bool {
        self.0 & (1 << (f as u8)) != 0
    }
    /// Adds `f`.
    pub fn insert(&mut self, f: Factor) {
        self.0 |= 1 << (f as u8);
    }
    /// Factors in both sets.
    #[must_use]
    pub const fn intersect(self, other: FactorSet) -> FactorSet {
        FactorSet(self.0 & other.0)
    }
    /// Factors in either set.
    #[must_use]
    pub const fn union(self, other: FactorSet) -> FactorSet {
        FactorSet(self.0 | other.0)
    }
    /// Every factor not in the set.
    #[must_use]
    pub const fn complement(self) -> FactorSet {
        FactorSet(!self.0 & Self::ANY.0)
    }
    /// Whether the set has no factor.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Number of factors in the set.
    #[must_use]
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }
    /// Whether every factor of `self` is in `other`.
    #[must_use]
    pub const fn is_subset(self, other: FactorSet) -> bool {
        self.0 & !other.0 == 0
    }
    /// The factors, in [`Factor::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Factor> {
        Factor::ALL.into_iter().filter(move |f| self.contains(*f))
    }
    /// The factors' names, in [`Factor::ALL`] order.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Factor::as_str).collect()
    }
}

impl FromIterator<Factor> for FactorSet {
    fn from_iter<I: IntoIterator<Item = Factor>>(iter: I) -> Self {
        let mut s = FactorSet::EMPTY;
        for f in iter {
            s.insert(f);
        }
        s
    }
}

impl fmt::Debug for FactorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for FactorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == FactorSet::ANY {
            return f.write_str("any");
        }
        f.write_str(&self.names().join("|"))
    }
}

impl Serialize for FactorSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for FactorSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Factor>::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

/// The highest AAL each factor can prove. Tenants may override rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StrengthTable([Aal; 7]);

impl Default for StrengthTable {
    /// The source document's defaults: password → aal1; email_otp, sms, voice, push → aal2;
    /// totp, webauthn → aal3.
    fn default() -> Self {
        StrengthTable([
            Aal::Aal1,
            Aal::Aal2,
            Aal::Aal2,
            Aal::Aal2,
            Aal::Aal2,
            Aal::Aal3,
            Aal::Aal3,
        ])
    }
}

impl StrengthTable {
    /// The highest AAL `f` can prove.
    #[must_use]
    pub fn strength(&self, f: Factor) -> Aal {
        // `Factor as usize` is always < 7, the array's length.
        self.0.get(f as usize).copied().unwrap_or(Aal::Aal1)
    }
    /// Overrides one row.
    pub fn set(&mut self, f: Factor, aal: Aal) {
        if let Some(slot) = self.0.get_mut(f as usize) {
            *slot = aal;
        }
    }
    /// The factors strong enough to prove `aal`.
    #[must_use]
    pub fn reaching(&self, aal: Aal) -> FactorSet {
        // Row `i` is `Factor::ALL[i]`, bit `i` of the set: one bit per row, no branch (a
        // step-up asks this for its requirement).
        let mut bits = 0u8;
        for (i, strength) in self.0.iter().enumerate() {
            bits |= u8::from(*strength >= aal) << i;
        }
        FactorSet::from_bits(bits)
    }
    /// The highest AAL any factor of `set` proves, if the set is not empty.
    #[must_use]
    pub fn best(&self, set: FactorSet) -> Option<Aal> {
        set.iter().map(|f| self.strength(f)).max()
    }
}

/// How long a completed step-up keeps satisfying a requirement. Ordered by length:
/// `every time` is the shortest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Validity {
    /// Satisfied by an authentication event younger than this many seconds.
    For(u64),
    /// No caching: satisfied only by the completion of the challenge the policy caused, once.
    EveryTime,
}

impl Ord for Validity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Validity::EveryTime, Validity::EveryTime) => std::cmp::Ordering::Equal,
            (Validity::EveryTime, Validity::For(_)) => std::cmp::Ordering::Less,
            (Validity::For(_), Validity::EveryTime) => std::cmp::Ordering::Greater,
            (Validity::For(a), Validity::For(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Validity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Validity {
    /// The `max_age` sent to clients (RFC 9470): seconds, `0` for `every time`.
    #[must_use]
    pub const fn max_age_secs(self) -> u64 {
        match self {
            Validity::For(s) => s,
            Validity::EveryTime => 0,
        }
    }
    /// The shorter of two validities (`every time` is the shortest).
    #[must_use]
    pub fn min(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::For(a), Validity::For(b)) => Validity::For(a.min(b)),
            _ => Validity::EveryTime,
        }
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validity::For(s) => write!(f, "for {}", format_duration(*s)),
            Validity::EveryTime => f.write_str("every time"),
        }
    }
}

/// Opens the file at `path` for reading without waiting on a pipe: opening a FIFO for reading
/// blocks until something writes to it, and a rules or scenario directory (or a link in it)
/// holding one stopped every command that walked it (a review: `check rules/` hung).
///
/// # Errors
/// When the file cannot be opened.
pub fn open_nonblocking(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    nonblocking(std::fs::OpenOptions::new().read(true)).open(path)
}

/// `o` with O_NONBLOCK on Linux: opening a pipe neither waits for a writer (reading) nor for a
/// reader (writing: it fails at once, ENXIO); no effect on a regular file's reads and writes.
fn nonblocking(o: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(0o4000);
    }
    o
}

/// `text` without the byte order mark it may start with (Windows Notepad saves one): no part
/// of a policy file, a scenario or a feed line (a review: a feed's first range was skipped as
/// malformed, its addresses let through; a policy file was an E001 at 1:1).
#[must_use]
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Opens the file at `path` when it is a regular file (a link is followed), judged on the
/// opened handle, so a file swapped after a check is still judged: a pipe, a device or a
/// socket is refused with `not a regular file`, never read (a pipe nothing writes to would
/// be waited on forever, a device such as `/dev/zero` never ends) and never replaced.
///
/// # Errors
/// When the file cannot be opened, or is not a regular file.
pub fn open_regular(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    // Judged first by its path, so a device is not even opened and a socket (which cannot be
    // opened: "No such device or address") is named for what it is (a review), then by the
    // handle, for a file swapped in between.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = open_nonblocking(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(not_regular())
    }
}

/// The error for a path that is not a regular file where one is wanted.
#[must_use]
pub fn not_regular() -> std::io::Error {
    std::io::Error::other("not a regular file")
}

/// Opens the file at `path` for writing, without creating or truncating it, when it is a
/// regular file, judged on the opened handle: opening a pipe for writing waits for a reader
/// (a review: `fmt` hung on a pipe swapped in for the file it was rewriting), and one that
/// has a reader is refused once open.
///
/// # Errors
/// When the file cannot be opened, or is not a regular file.
pub fn open_regular_for_writing(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let file = nonblocking(std::fs::OpenOptions::new().write(true)).open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(not_regular())
    }
}

/// [`read_bounded`] of a regular file only ([`open_regular`]): what the tools read from the
/// directories they walk (policies, scenarios), where a pipe or a device is a mistake or a
/// trap, never a source.
///
/// # Errors
/// When the file cannot be opened or read, is not a regular file, or holds more than `limit`
/// bytes.
pub fn read_regular_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_to_limit(open_regular(path)?, limit)
}

/// The bytes of the file at `path`, at most `limit` of them: a larger file is an error (its
/// limit named), and so is a pipe or a device that gives more (`/dev/zero`, a FIFO, a process
/// substitution: their length is unknown until read, and a check of the file's length let
/// them grow memory without bound: a review).
///
/// A pipe is read (a key handed over by process substitution, `<(vault read …)`, never
/// touches the disk); [`read_regular_bounded`] refuses one.
///
/// # Errors
/// When the file cannot be opened or read, or holds more than `limit` bytes.
pub fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_to_limit(std::fs::File::open(path)?, limit)
}

/// At most `limit` bytes of `file`; more is an error naming the limit.
fn read_to_limit(file: std::fs::File, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "the file is too large (the limit is {})",
            format_bytes(limit)
        )));
    }
    Ok(bytes)
}

/// `bytes` as a person reads a limit: `4 MiB`, `64 KiB`, `100 bytes`.
fn format_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Formats seconds in the DSL's duration syntax, choosing the largest exact unit (`90s`, `5m`, `1h`, `30d`).
#[must_use]
pub fn format_duration(secs: u64) -> String {
    if secs != 0 && secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs != 0 && secs.is_multiple_of(3_600) {
        format!("{}h", secs / 3_600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// A requirement a session must satisfy: target AAL, allowed factors, validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requirement {
    /// The AAL to prove.
    pub aal: Aal,
    /// The factors allowed to prove it.
    pub factors: FactorSet,
    /// How long the proof stays valid.
    pub validity: Validity,
}

/// A point in time, in whole seconds since the Unix epoch (UTC). Decisions are measured to the second.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses an RFC 3339 time (`2026-11-27T09:00:00Z`).
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Timestamp(t.timestamp()))
            .map_err(|e| {
                format!("`{s}` is not an RFC 3339 time ({e}); write e.g. `2026-11-27T09:00:00Z`")
            })
    }
    /// The time as RFC 3339 in UTC.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp(self.0, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| format!("@{}", self.0))
    }
    /// The current time.
    #[must_use]
    pub fn now() -> Self {
        Timestamp(chrono::Utc::now().timestamp())
    }
    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    #[must_use]
    pub const fn since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
    /// `self` plus `secs` seconds, saturating.
    #[must_use]
    pub const fn plus(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Class of an operation in a tenant's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationClass {
    /// Routine reads and preference changes: never worth a prompt.
    Routine,
    /// Sensitive changes: email, phone, API keys, payouts.
    Sensitive,
    /// Administrative actions on other users or the tenant: step up by default.
    Admin,
}

impl OperationClass {
    /// The class's keyword.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationClass::Routine => "routine",
            OperationClass::Sensitive => "sensitive",
            OperationClass::Admin => "admin",
        }
    }
}

/// Closest candidate to `word` by edit distance, for "did you mean" hints.
#[must_use]
pub fn did_you_mean<'a, I: IntoIterator<Item = &'a str>>(
    word: &str,
    candidates: I,
) -> Option<&'a str> {
    // Written in other capitals (`TOTP`) is the nearest of all; a word every letter of which
    // would change (`b` for `a`) is no typo.
    candidates
        .into_iter()
        .map(|c| {
            // Case aside (`TOTPP` is one typo from `totp`), and a difference of case alone
            // nearest.
            let d = if c != word && c.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()).max(1)
            };
            (d, c)
        })
        .filter(|(d, c)| {
            let longest = c.chars().count().max(word.chars().count());
            *c != word && *d <= (longest / 3).max(1) && *d < longest
        })
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// The number of typing mistakes between `a` and `b`: letters inserted, deleted or replaced,
/// and two neighbours swapped (`poilcy` is one from `policy`; optimal string alignment). Both
/// the "did you mean" hints and the near-miss file names read it.
#[must_use]
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let at = |row: &[usize], k: usize| row.get(k).copied().unwrap_or(usize::MAX / 2);
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let mut d = (at(&prev, j) + usize::from(ca != cb))
                .min(at(&prev, j + 1) + 1)
                .min(at(&cur, j) + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) {
                d = d.min(at(&before, j - 1) + 1);
            }
            if let Some(c) = cur.get_mut(j + 1) {
                *c = d;
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe (with or without a reader) and a socket are refused at once, for reading and for
    /// writing, never waited on; a regular file opens, and opening it for writing keeps it.
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(clippy::unwrap_used, reason = "test setup")]
    fn pipes_and_sockets_are_refused_without_waiting() {
        let dir = std::env::temp_dir().join(format!("stepup-core-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        let said = |e: Option<std::io::Error>| e.map(|e| e.to_string());
        let refused = Some("not a regular file".to_string());
        assert_eq!(said(open_regular(&fifo).err()), refused);
        assert_eq!(said(read_regular_bounded(&fifo, 10).err()), refused);
        // No reader: the open fails at once (ENXIO); with one, it is judged once open.
        assert!(open_regular_for_writing(&fifo).is_err());
        let reader = open_nonblocking(&fifo).unwrap();
        assert_eq!(said(open_regular_for_writing(&fifo).err()), refused);
        drop(reader);
        let socket = dir.join("socket");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(said(open_regular(&socket).err()), refused);
        drop(listener);
        assert_eq!(
            said(open_regular(std::path::Path::new("/dev/zero")).err()),
            refused
        );
        let file = dir.join("file");
        std::fs::write(&file, "kept").unwrap();
        assert!(open_regular(&file).is_ok());
        assert!(open_regular_for_writing(&file).is_ok());
        assert_eq!(read_regular_bounded(&file, 10).ok(), Some(b"kept".to_vec()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn strength_defaults_follow_the_source_document() {
        let t = StrengthTable::default();
        assert_eq!(t.strength(Factor::Password), Aal::Aal1);
        assert_eq!(t.strength(Factor::Sms), Aal::Aal2);
        assert_eq!(t.strength(Factor::Totp), Aal::Aal3);
        assert_eq!(t.reaching(Aal::Aal3).names(), vec!["totp", "webauthn"]);
    }

    /// `reaching` is the factors whose strength reaches the AAL, for every row set to every
    /// level (it is computed a bit per row).
    #[test]
    fn reaching_is_the_factors_strong_enough() {
        let aals = [Aal::Aal1, Aal::Aal2, Aal::Aal3];
        let mut tables = vec![StrengthTable::default()];
        for f in Factor::ALL {
            for a in aals {
                let mut t = *tables.last().unwrap_or(&StrengthTable::default());
                t.set(f, a);
                tables.push(t);
            }
        }
        for t in tables {
            for aal in aals {
                let expected: FactorSet = Factor::ALL
                    .into_iter()
                    .filter(|f| t.strength(*f) >= aal)
                    .collect();
                assert_eq!(t.reaching(aal), expected, "{t:?} {aal}");
            }
        }
    }

    #[test]
    fn factor_set_algebra() {
        let a: FactorSet = [Factor::Sms, Factor::Totp].into_iter().collect();
        let b = FactorSet::one(Factor::Totp);
        assert_eq!(a.intersect(b), b);
        assert!(b.is_subset(a));
        assert_eq!(FactorSet::one(Factor::Sms).complement().len(), 6);
        assert_eq!(a.to_string(), "sms|totp");
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(did_you_mean("totpp", Factor::names()), Some("totp"));
        assert_eq!(
            did_you_mean("TOTP", Factor::names()),
            Some("totp"),
            "capitals"
        );
        assert_eq!(did_you_mean("totp", Factor::names()), None, "itself");
        assert_eq!(
            did_you_mean("TOTPP", Factor::names()),
            Some("totp"),
            "capitals and a typo"
        );
        assert_eq!(
            did_you_mean("b", ["a", "c"]),
            None,
            "one letter for another"
        );
        assert_eq!(did_you_mean("al2", ["aal2", "aal3"]), Some("aal2"));
        assert_eq!(
            did_you_mean("ottp", Factor::names()),
            Some("totp"),
            "a swap is one"
        );
        assert_eq!(edit_distance("poilcy", "policy"), 1);
        assert_eq!(edit_distance("plicy", "policy"), 1);
        assert_eq!(edit_distance("", "ron"), 3);
        assert_eq!(did_you_mean("banana", Factor::names()), None);
    }

    #[test]
    fn durations_format_with_the_largest_exact_unit() {
        assert_eq!(format_duration(300), "5m");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(86400 * 30), "30d");
    }
}
