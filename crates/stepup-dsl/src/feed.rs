//! Threat-intelligence feeds (SPEC §5): IPv4 and IPv6 addresses and CIDR ranges, one per line,
//! comments after `#` or `;` (Spamhaus DROP style: `1.10.16.0/20 ; SBL256894`). The checker
//! loads every feed a tenant names, so a missing or unreadable blocklist is an error of the
//! rules, and the merged ranges are part of the policy set's hash.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Serialize;

/// Largest feed file read (64 MiB): larger files are refused, never read into memory.
pub const MAX_FEED_BYTES: u64 = 64 * 1024 * 1024;

/// IPv4-mapped IPv6 addresses (`::ffff:0:0/96`).
const MAPPED_START: u128 = 0xffff_0000_0000;
const MAPPED_END: u128 = 0xffff_ffff_ffff;

/// A set of IPv4 and IPv6 ranges with logarithmic lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreatFeed {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// A feed line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedWarning {
    /// File.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The text.
    pub text: String,
    /// Why it was skipped, after the text: [`NOT_AN_ADDRESS`] or [`ONLY_MAPPED`].
    pub why: &'static str,
}

/// Why a line that is no address or range is skipped.
pub const NOT_AN_ADDRESS: &str = "is not an IP address or CIDR range";

/// Why the range of exactly the IPv4-mapped block is skipped: it would match nothing (a
/// mapped address is looked up as the IPv4 address it maps, and read as IPv4 the line would
/// put every IPv4 client in the feed, which no feed means by it).
pub const ONLY_MAPPED: &str = "is the IPv4-mapped block, which matches no address here \
     (mapped addresses are looked up as IPv4; all of IPv4 is written `0.0.0.0/0`)";

impl std::fmt::Display for FeedWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` {}; line skipped",
            self.file, self.line, self.text, self.why
        )
    }
}

/// How many of a feed's malformed lines are kept to be shown; the rest are counted.
pub const FEED_WARNINGS_KEPT: usize = 20;

/// Malformed feed lines: the first [`FEED_WARNINGS_KEPT`], and how many there were (a feed of
/// millions of bad lines, a third party's broken refresh, kept every one: gigabytes, copied into
/// each compiled scope and logged line by line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedWarnings {
    kept: Vec<FeedWarning>,
    count: usize,
    /// How many of them are the IPv4-mapped block alone ([`ONLY_MAPPED`]), kept or not.
    only_mapped: usize,
}

impl FeedWarnings {
    /// Counts `w`, kept if fewer than [`FEED_WARNINGS_KEPT`] are.
    pub fn push(&mut self, w: FeedWarning) {
        self.note(w.why, || w);
    }
    /// Counts a malformed line, made by `make` only when it is kept (the lines past the first
    /// are counted, never copied).
    fn note(&mut self, why: &'static str, make: impl FnOnce() -> FeedWarning) {
        self.count = self.count.saturating_add(1);
        if why == ONLY_MAPPED {
            self.only_mapped = self.only_mapped.saturating_add(1);
        }
        if self.kept.len() < FEED_WARNINGS_KEPT {
            self.kept.push(make());
        }
    }
    /// Adds the lines of `other`.
    pub fn extend(&mut self, other: &FeedWarnings) {
        for w in &other.kept {
            self.push(w.clone());
        }
        self.count = self.count.saturating_add(other.unlisted());
        let unlisted_mapped = other
            .only_mapped
            .saturating_sub(other.kept.iter().filter(|w| w.why == ONLY_MAPPED).count());
        self.only_mapped = self.only_mapped.saturating_add(unlisted_mapped);
    }
    /// How many of the lines were the IPv4-mapped block alone (the rest are no address).
    #[must_use]
    pub fn only_mapped(&self) -> usize {
        self.only_mapped
    }
    /// How many lines were malformed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether none was.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The first of them.
    #[must_use]
    pub fn kept(&self) -> &[FeedWarning] {
        &self.kept
    }
    /// How many were counted and not kept.
    #[must_use]
    pub fn unlisted(&self) -> usize {
        self.count.saturating_sub(self.kept.len())
    }
}

fn merge<T: Ord + Copy>(mut v: Vec<(T, T)>, succ: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        if let Some(last) = out.last_mut()
            && (s <= last.1 || succ(last.1) == Some(s))
        {
            last.1 = last.1.max(e);
            continue;
        }
        out.push((s, e));
    }
    out
}

/// One line's range: IPv4, IPv6, or both (an IPv6 range that covers IPv4-mapped addresses).
struct Entry {
    v4: Option<(u32, u32)>,
    v6: Option<(u128, u128)>,
}

/// A line's range; `Err` with why the line is skipped.
fn parse_entry(s: &str) -> Result<Entry, &'static str> {
    read_entry(s)
        .ok_or(NOT_AN_ADDRESS)
        .and_then(|e| match e.v6 {
            Some((MAPPED_START, MAPPED_END)) => Err(ONLY_MAPPED),
            _ => Ok(e),
        })
}

fn read_entry(s: &str) -> Option<Entry> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.trim(), Some(l.trim().parse::<u32>().ok()?)),
        None => (s, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return None;
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let start = u32::from(a) & mask;
            Some(Entry {
                v4: Some((start, start | !mask)),
                v6: None,
            })
        }
        IpAddr::V6(a) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return None;
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let (start, end) = (u128::from(a) & mask, u128::from(a) | !mask);
            // An IPv4 range written in its mapped form (inside `::ffff:0:0/96`, not all of it)
            // goes to the IPv4 table, where lookups of IPv4-mapped addresses go. Any other
            // IPv6 range is of IPv6 addresses: `::/8`, the first line of common IPv6 bogon
            // lists, holds the mapped block, and read as IPv4 too it put every IPv4 client in
            // the feed (an outside check). All of IPv4 is written `0.0.0.0/0`.
            let inside = start >= MAPPED_START && end <= MAPPED_END;
            let whole = start <= MAPPED_START && end >= MAPPED_END;
            Some(if inside && !whole {
                let lo = u32::try_from(start - MAPPED_START).unwrap_or(0);
                let hi = u32::try_from(end - MAPPED_START).unwrap_or(u32::MAX);
                Entry {
                    v4: Some((lo, hi)),
                    v6: None,
                }
            } else {
                Entry {
                    v4: None,
                    v6: Some((start, end)),
                }
            })
        }
    }
}

/// The text of a feed line without its comment (`#` or `;`), surrounding blanks and a byte
/// order mark before it ([`stepup_core::without_bom`]): at the file's start, or at a later
/// line's where files were joined.
fn content(line: &str) -> &str {
    stepup_core::without_bom(line)
        .split(['#', ';'])
        .next()
        .unwrap_or("")
        .trim()
}

/// A skipped line as a warning shows it: characters that print nothing (a byte order mark, a
/// zero-width space, a control character) are written as escapes, so a line that looks like a
/// range says why it is not one.
fn shown(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars().take(80) {
        if c.is_control()
            || matches!(c, '\u{feff}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{00a0}' | '\u{202f}')
        {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

impl ThreatFeed {
    /// Parses feed text: one address or CIDR range per line, `#` and `;` comments, blank lines
    /// ignored. Malformed lines are returned as warnings and skipped.
    #[must_use]
    pub fn parse(name: &str, text: &str) -> (ThreatFeed, FeedWarnings) {
        let (mut v4, mut v6, mut warnings) = (Vec::new(), Vec::new(), FeedWarnings::default());
        for (i, raw) in text.lines().enumerate() {
            let line = content(raw);
            if line.is_empty() {
                continue;
            }
            match parse_entry(line) {
                Ok(e) => {
                    v4.extend(e.v4);
                    v6.extend(e.v6);
                }
                Err(why) => warnings.note(why, || FeedWarning {
                    file: name.to_string(),
                    line: i + 1,
                    text: shown(line),
                    why,
                }),
            }
        }
        (
            ThreatFeed {
                v4: merge(v4, |x| x.checked_add(1)),
                v6: merge(v6, |x| x.checked_add(1)),
            },
            warnings,
        )
    }

    /// Reads a feed file (at most [`MAX_FEED_BYTES`]).
    ///
    /// # Errors
    /// When the file cannot be read, or is larger than [`MAX_FEED_BYTES`].
    pub fn load(path: &Path) -> std::io::Result<(ThreatFeed, FeedWarnings)> {
        Self::read(&open_feed(path)?, path)
    }

    /// Reads a feed from a file already open (the file the caller checked: it is not looked up
    /// again by its path), named `path` in warnings; at most [`MAX_FEED_BYTES`].
    ///
    /// # Errors
    /// When the file cannot be read, is not a regular file, or is larger than
    /// [`MAX_FEED_BYTES`].
    pub fn read(file: &std::fs::File, path: &Path) -> std::io::Result<(ThreatFeed, FeedWarnings)> {
        use std::io::Read;
        let too_large = || {
            std::io::Error::other(format!(
                "the file is larger than {} MiB",
                MAX_FEED_BYTES / (1024 * 1024)
            ))
        };
        // A device or a pipe (`/dev/zero`, a FIFO) reports no length and may never end: only
        // regular files are feeds, and no more than the limit is ever read.
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(stepup_core::not_regular());
        }
        if meta.len() > MAX_FEED_BYTES {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        file.take(MAX_FEED_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FEED_BYTES {
            return Err(too_large());
        }
        Ok(ThreatFeed::parse(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        ))
    }

    /// Adds another feed's ranges.
    pub fn extend(&mut self, other: &ThreatFeed) {
        let mut v4 = std::mem::take(&mut self.v4);
        v4.extend_from_slice(&other.v4);
        self.v4 = merge(v4, |x| x.checked_add(1));
        let mut v6 = std::mem::take(&mut self.v6);
        v6.extend_from_slice(&other.v6);
        self.v6 = merge(v6, |x| x.checked_add(1));
    }

    /// Whether the address is in the feed (binary search over merged ranges). IPv4-mapped
    /// IPv6 addresses are looked up as IPv4.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn hit<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
            let i = ranges.partition_point(|(s, _)| *s <= x);
            i > 0 && ranges.get(i - 1).is_some_and(|(_, e)| x <= *e)
        }
        match ip {
            IpAddr::V4(a) => hit(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => hit(&self.v4, u32::from(v4)),
                None => hit(&self.v6, u128::from(a)),
            },
        }
    }

    /// Number of merged ranges.
    #[must_use]
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the feed is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The merged ranges, one `first-last` per line, IPv4 then IPv6: the feed's canonical form
    /// (what the policy set's hash covers).
    #[must_use]
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (s, e) in &self.v4 {
            let _ = writeln!(out, "{}-{}", Ipv4Addr::from(*s), Ipv4Addr::from(*e));
        }
        for (s, e) in &self.v6 {
            let _ = writeln!(out, "{}-{}", Ipv6Addr::from(*s), Ipv6Addr::from(*e));
        }
        out
    }
}

/// Opens a feed file for reading when it is a regular file ([`stepup_core::open_regular`]),
/// without blocking on a pipe: opening a FIFO for reading waits for a writer, and a rules
/// directory (or a link in it) holding one would stop every load.
///
/// # Errors
/// When the file cannot be opened, or is not a regular file.
pub fn open_feed(path: &Path) -> std::io::Result<std::fs::File> {
    stepup_core::open_regular(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte order mark before a range (at the file's start, or a later line's, where files
    /// were joined) is no part of it: the range is read (it was skipped, its addresses let
    /// through: a review). A line still skipped shows what prints nothing as an escape.
    #[test]
    fn a_byte_order_mark_is_not_part_of_a_range() {
        let (feed, warnings) = ThreatFeed::parse(
            "f",
            "\u{feff}203.0.113.0/24\n\u{feff}# joined\n\u{feff}192.0.2.66\n\u{200b}198.51.100.1\n",
        );
        for ip in ["203.0.113.9", "192.0.2.66"] {
            assert!(
                feed.contains(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                "{ip}"
            );
        }
        assert_eq!(warnings.len(), 1);
        let w = format!("{warnings:?}");
        assert!(w.contains("\\\\u{200b}198.51.100.1"), "{w}");
    }

    #[test]
    fn a_device_or_a_directory_is_not_a_feed() {
        // `/dev/zero` has no length and no end: it used to be read until memory ran out.
        for p in ["/dev/zero", "/"] {
            let e = ThreatFeed::load(Path::new(p)).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.to_string() == "not a regular file"),
                "{p}: {e:?}"
            );
        }
    }

    fn has(f: &ThreatFeed, s: &str) -> bool {
        s.parse().is_ok_and(|ip| f.contains(ip))
    }

    #[test]
    fn feeds_match_ipv4_ipv6_and_skip_broken_lines() {
        let (f, w) = ThreatFeed::parse(
            "f",
            "# comment\n10.0.0.0/8\n\n192.0.2.7 # one host\nnot-an-ip\n2001:db8:bad::/48\n",
        );
        assert_eq!(
            w.kept(),
            [FeedWarning {
                file: "f".into(),
                line: 5,
                text: "not-an-ip".into(),
                why: NOT_AN_ADDRESS,
            }]
        );
        assert_eq!((w.len(), w.unlisted()), (1, 0));
        assert!(has(&f, "10.255.1.2"));
        assert!(!has(&f, "11.0.0.1"));
        assert!(has(&f, "192.0.2.7"));
        assert!(!has(&f, "192.0.2.8"));
        assert!(has(&f, "2001:db8:bad:ffff::1"));
        assert!(!has(&f, "2001:db8:bae::1"));
        assert!(has(&f, "::ffff:10.1.1.1"));
    }

    /// A review's finding: every malformed line was kept (about 130 bytes each, then copied
    /// into each compiled scope and logged one by one): a broken 64 MiB refresh took gigabytes.
    #[test]
    fn a_feed_of_many_malformed_lines_keeps_the_first_and_counts_the_rest() {
        let text = format!("192.0.2.7\n{}", "x\n".repeat(100_000));
        let (f, w) = ThreatFeed::parse("f", &text);
        assert!(has(&f, "192.0.2.7"));
        assert_eq!(
            (w.len(), w.kept().len(), w.unlisted()),
            (100_000, 20, 99_980)
        );
        assert_eq!(w.kept().last().map(|l| l.line), Some(21));
        let mut all = w.clone();
        all.extend(&w);
        assert_eq!((all.len(), all.kept().len()), (200_000, 20));
    }

    #[test]
    fn semicolon_comments_as_in_spamhaus_drop() {
        let (f, w) = ThreatFeed::parse(
            "drop.txt",
            "; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n2.56.192.0/22;SBL459831\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert!(has(&f, "1.10.31.255"));
        assert!(!has(&f, "1.10.32.0"));
        assert!(has(&f, "2.56.195.1"));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn ipv4_mapped_entries_go_to_the_ipv4_table() {
        let (f, w) = ThreatFeed::parse("f", "::ffff:192.0.2.0/120\n");
        assert!(w.is_empty());
        assert_eq!(f.canonical(), "192.0.2.0-192.0.2.255\n");
        assert!(has(&f, "192.0.2.77"));
        assert!(has(&f, "::ffff:192.0.2.77"));
        assert!(!has(&f, "192.0.3.1"));
        // A range of IPv6 addresses that holds the mapped block, or the whole block, is of
        // IPv6 addresses (an outside check: `::/8`, a bogon list's first line, put every IPv4
        // client in the feed).
        for range in ["::/0", "::/8", "::/80", "::ffff:0:0/96"] {
            let (six, w) = ThreatFeed::parse("f", &format!("{range}\n"));
            assert!(!has(&six, "198.51.100.1"), "{range}");
            assert!(!has(&six, "::ffff:198.51.100.1"), "{range}");
            // The mapped block alone matches nothing here, and the line says so (it was
            // skipped silently); the others hold IPv6 addresses.
            let whys: Vec<_> = w.kept().iter().map(|w| w.why).collect();
            let expected: &[&str] = if range == "::ffff:0:0/96" {
                &[ONLY_MAPPED]
            } else {
                &[]
            };
            assert_eq!(whys, expected, "{range}");
        }
        let (_, w) = ThreatFeed::parse("f", "::ffff:0.0.0.0/96\n");
        assert_eq!(
            w.kept().first().map(ToString::to_string).as_deref(),
            Some(
                "f:1: `::ffff:0.0.0.0/96` is the IPv4-mapped block, which matches no address here \
                 (mapped addresses are looked up as IPv4; all of IPv4 is written `0.0.0.0/0`); \
                 line skipped"
            )
        );
        let (all, _) = ThreatFeed::parse("f", "::/0\n");
        assert!(has(&all, "2001:db8::1"));
        let (bogons, _) = ThreatFeed::parse("f", "::/8\n");
        assert!(has(&bogons, "::1"));
    }

    #[test]
    fn extend_merges_and_the_canonical_form_is_the_merged_ranges() {
        let (mut a, _) = ThreatFeed::parse("a", "10.0.0.0/25\n2001:db8::/32\n");
        let (b, _) = ThreatFeed::parse("b", "10.0.0.128/25\n");
        a.extend(&b);
        assert_eq!(
            a.canonical(),
            "10.0.0.0-10.0.0.255\n2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\n"
        );
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn bad_prefixes_are_malformed() {
        let (f, w) = ThreatFeed::parse("f", "10.0.0.0/33\n::/129\n1.2.3.4/x\n");
        assert!(f.is_empty());
        assert_eq!(w.len(), 3);
    }
}
