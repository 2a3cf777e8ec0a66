//! Where a request comes from (SPEC §11): the client's address — the connection's peer, or what
//! `X-Forwarded-For` says only when the peer is a configured trusted proxy — and an optional
//! device fingerprint header. Anything that cannot be read is unknown, never guessed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use stepup_engine::risk::ThreatFeed;

/// Most `X-Forwarded-For` entries read; a longer chain leaves the address unknown.
pub const MAX_FORWARDED_HOPS: usize = 32;
/// Longest device fingerprint accepted.
pub const MAX_DEVICE_BYTES: usize = 256;

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges, IPv4 and IPv6.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(ThreatFeed);

impl TrustedProxies {
    /// None: `X-Forwarded-For` is ignored and the connection's peer is the client.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`).
    ///
    /// # Errors
    /// Names each entry that is not an address or a range.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let text: Vec<&str> = entries.iter().map(AsRef::as_ref).collect();
        if let Some(bad) = text
            .iter()
            .find(|e| e.trim().is_empty() || e.contains(['#', ';', '\n', '\r']))
        {
            return Err(format!(
                "trusted proxy `{bad}` is not an IP address or CIDR range"
            ));
        }
        let (feed, warnings) = ThreatFeed::parse("trusted proxies", &text.join("\n"));
        if let Some(w) = warnings.kept().first() {
            return Err(format!(
                "trusted proxy `{}` is not an IP address or CIDR range",
                w.text
            ));
        }
        Ok(TrustedProxies(feed))
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// Whether no proxy is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`203.0.113.7:5123`,
/// `[2001:db8::1]:443`).
fn forwarded_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy (the leftmost when all are).
/// `None` (unknown) without a peer, or when a forwarded entry the walk reaches cannot be read.
#[must_use]
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    let mut entries = Vec::new();
    for h in headers.get_all("x-forwarded-for") {
        let text = h.to_str().ok()?;
        for part in text.split(',') {
            if entries.len() >= MAX_FORWARDED_HOPS {
                return None;
            }
            entries.push(part);
        }
    }
    if entries.is_empty() {
        // The proxy forwarded nothing: it is the client as far as we know.
        return Some(peer);
    }
    let mut leftmost = None;
    for part in entries.iter().rev() {
        let ip = forwarded_entry(part)?;
        if !trusted.contains(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// The device fingerprint from header `name`: visible ASCII, at most [`MAX_DEVICE_BYTES`];
/// anything else is unknown.
#[must_use]
pub fn device(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let v = values.next()?;
    if values.next().is_some() {
        // Two fingerprints: which one is the device? Unknown.
        return None;
    }
    let s = v.to_str().ok()?.trim();
    (!s.is_empty() && s.len() <= MAX_DEVICE_BYTES && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::none();
        let lb = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).unwrap();
        let h = headers(&["203.0.113.7"]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &none), ip("198.51.100.1"));
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &lb),
            ip("198.51.100.1"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &lb), ip("203.0.113.7"));
        assert_eq!(
            client_ip(ip("::ffff:10.1.2.3"), &h, &lb),
            ip("203.0.113.7"),
            "a v4-mapped peer is the v4 address"
        );
        // A client cannot spoof by prepending: the rightmost untrusted entry wins.
        let h = headers(&["6.6.6.6, 203.0.113.7", "10.0.0.9"]);
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &lb), ip("203.0.113.7"));
        let h = headers(&["[2001:db8::7]:443, 203.0.113.7:5123"]);
        assert_eq!(client_ip(ip("::1"), &h, &lb), ip("203.0.113.7"));
        let h = headers(&["junk, 10.0.0.2"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &h, &lb),
            None,
            "unreadable: unknown"
        );
        let h = headers(&["10.0.0.7, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &lb), ip("10.0.0.7"));
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers(&[]), &lb),
            ip("10.1.2.3")
        );
        assert_eq!(client_ip(None, &headers(&["203.0.113.7"]), &lb), None);
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    }

    #[test]
    fn device_fingerprints_are_bounded_visible_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(device(&h, "x-device"), None);
        h.insert("x-device", "laptop-1".parse().unwrap());
        assert_eq!(device(&h, "x-device").as_deref(), Some("laptop-1"));
        h.insert("x-device", "a b".parse().unwrap());
        assert_eq!(device(&h, "x-device"), None);
        h.insert("x-device", "x".repeat(257).parse().unwrap());
        assert_eq!(device(&h, "x-device"), None);
        h.insert("x-device", "one".parse().unwrap());
        h.append("x-device", "two".parse().unwrap());
        assert_eq!(device(&h, "x-device"), None);
    }
}
