//! What the engine is asked: who, in which session, did what, from where, and when.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stepup_core::{Factor, FactorSet, Timestamp};

/// A point on Earth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

impl Location {
    /// Whether it is a point on Earth: finite, latitude in [-90, 90], longitude in
    /// [-180, 180]. Any other is no location: the impossible-travel signal is unknown with it,
    /// and the history never learns it (a latitude of 408.85 would read as 48.85, and a `NaN`
    /// saved as JSON `null` would make the history unreadable).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)
    }

    /// `location`, if it is a point on Earth ([`Location::is_valid`]).
    #[must_use]
    pub fn valid(location: Option<Location>) -> Option<Location> {
        location.filter(Location::is_valid)
    }
}

/// Where a request comes from. On a sign-in it feeds the risk signals; other events may carry
/// one too (then their signals are computed as well).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Device fingerprint.
    pub device: Option<String>,
    /// Client IP address.
    pub ip: Option<String>,
    /// ISO country code.
    pub country: Option<String>,
    /// Geolocation.
    pub location: Option<Location>,
    /// A risk score (0..100) supplied by the platform; the higher of it and ours counts.
    pub platform_risk: Option<u32>,
}

impl Context {
    /// The device fingerprint, if the context names one (without surrounding spaces): an empty
    /// or blank one names none (SPEC §10: `new_device` is unknown and nothing is learned; read
    /// as a fingerprint, `""` was learned by one strong sign-in and known on every later one
    /// that sent it).
    #[must_use]
    pub fn device_id(&self) -> Option<&str> {
        named(self.device.as_deref())
    }

    /// The country code, if the context names one (without surrounding spaces; an empty or
    /// blank one names none).
    #[must_use]
    pub fn country_code(&self) -> Option<&str> {
        named(self.country.as_deref())
    }

    /// The client's address, if the context carries one: `Some(None)` when the text is not an
    /// IP address (read without surrounding spaces, as the HTTP layer reads a header).
    #[must_use]
    #[inline]
    pub fn ip_addr(&self) -> Option<Option<IpAddr>> {
        self.ip.as_deref().map(|ip| parse_ip(trimmed(ip)))
    }
}

/// `text` without the spaces around it, unless that leaves nothing (`" FR "` is `FR`, as the
/// HTTP layer reads a header).
fn named(text: Option<&str>) -> Option<&str> {
    text.map(trimmed).filter(|t| !t.is_empty())
}

/// `text.trim()`, with the common case (it starts and ends with a printable ASCII character,
/// which no trim removes) answered from its two ends: a decision reads the device, the country
/// and the address, and a full trim of each was 3% of a step-up.
fn trimmed(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// `text` as an IP address, as `text.parse::<IpAddr>()` reads it: a dotted quad is read here
/// (four numbers 0 to 255, without leading zeros, as the standard parser requires), anything
/// else by the standard parser (a step-up reads the address, and the standard IPv4 parser
/// was 4% of it).
#[must_use]
#[inline]
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    dotted_quad(text.as_bytes())
        .map(|o| IpAddr::V4(Ipv4Addr::from(o)))
        .or_else(|| text.parse::<IpAddr>().ok())
}

/// The four octets of a canonical dotted quad, or `None` (then the standard parser decides):
/// each octet read from its known places (a loop that kept a state per byte was about 200
/// instructions of a step-up).
fn dotted_quad(text: &[u8]) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut rest = text;
    for (k, o) in octets.iter_mut().enumerate() {
        let (v, used) = octet(rest)?;
        *o = v;
        rest = rest.get(used..)?;
        if k < 3 {
            let (&dot, after) = rest.split_first()?;
            if dot != b'.' {
                return None;
            }
            rest = after;
        }
    }
    rest.is_empty().then_some(octets)
}

/// The octet `text` starts with and how many digits it has: one to three digits, without a
/// leading zero (`0` alone is one), at most 255; a fourth digit is none (the standard parser
/// refuses both).
fn octet(text: &[u8]) -> Option<(u8, usize)> {
    let digit = |i: usize| {
        text.get(i)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|d| *d < 10)
    };
    let a = digit(0)?;
    let Some(b) = digit(1) else {
        return Some((a, 1));
    };
    if a == 0 {
        return None;
    }
    let Some(c) = digit(2) else {
        return Some((a * 10 + b, 2));
    };
    if digit(3).is_some() {
        return None;
    }
    let v = u16::from(a) * 100 + u16::from(b) * 10 + u16::from(c);
    Some((u8::try_from(v).ok()?, 3))
}

/// A request attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Str(String),
}

/// The event being decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A sign-in with the factors the user just used.
    SignIn {
        /// Where from.
        context: Context,
        /// Factors used.
        factors: FactorSet,
    },
    /// A named operation with attributes.
    Operation {
        /// Operation name (from the tenant's catalog).
        name: String,
        /// Typed attributes (`amount`).
        attrs: Vec<(String, Value)>,
        /// Optional request context.
        context: Option<Context>,
    },
    /// Opening a resource class.
    Access {
        /// Resource class.
        resource: String,
        /// Optional request context.
        context: Option<Context>,
    },
    /// The user answered the latest open challenge.
    StepUp {
        /// The factor used.
        factor: Factor,
        /// Whether the factor verified.
        success: bool,
    },
}

impl Event {
    /// The event's kind as a word (`sign_in`, `operation`, `access`, `step_up`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SignIn { .. } => "sign_in",
            Event::Operation { .. } => "operation",
            Event::Access { .. } => "access",
            Event::StepUp { .. } => "step_up",
        }
    }
    /// The context signals are computed from, if any.
    #[must_use]
    pub fn context(&self) -> Option<&Context> {
        match self {
            Event::SignIn { context, .. } => Some(context),
            Event::Operation { context, .. } | Event::Access { context, .. } => context.as_ref(),
            Event::StepUp { .. } => None,
        }
    }
    /// Identifies "the same operation" for `every time` retries.
    #[must_use]
    pub fn key(&self) -> String {
        let (prefix, name) = self.key_parts();
        let mut k = String::with_capacity(prefix.len() + name.len());
        k.push_str(prefix);
        k.push_str(name);
        k
    }
    /// [`Event::key`] as a shared string, in one allocation when it is short (a step-up's
    /// challenge and audit record share it).
    #[must_use]
    pub fn shared_key(&self) -> std::sync::Arc<str> {
        let (prefix, name) = self.key_parts();
        let mut buf = [0u8; 64];
        let (p, n) = (prefix.as_bytes(), name.as_bytes());
        let slot = buf.get_mut(..p.len() + n.len()).and_then(|slot| {
            let (head, tail) = slot.split_at_mut_checked(p.len())?;
            head.copy_from_slice(p);
            tail.copy_from_slice(n);
            std::str::from_utf8(slot).ok()
        });
        slot.map_or_else(|| self.key().into(), Into::into)
    }
    /// [`Event::shared_key`], its name shown as [`crate::names::shown`] shows it when it is
    /// longer than any name can be ([`crate::decide::MAX_NAME_BYTES`]): what a refusal's
    /// record says of an event it refused for its name (a record is written whole to every
    /// audit sink).
    #[must_use]
    pub(crate) fn bounded_key(&self) -> std::sync::Arc<str> {
        let (prefix, name) = self.key_parts();
        if name.len() > crate::decide::MAX_NAME_BYTES {
            format!("{prefix}{}", crate::names::shown(name)).into()
        } else {
            self.shared_key()
        }
    }
    /// The key's fixed prefix and the event's name (empty for sign-ins and step-ups).
    fn key_parts(&self) -> (&'static str, &str) {
        match self {
            Event::SignIn { .. } => ("sign_in", ""),
            Event::Operation { name, .. } => ("operation:", name),
            Event::Access { resource, .. } => ("access:", resource),
            Event::StepUp { .. } => ("step_up", ""),
        }
    }
    /// An attribute's value.
    #[must_use]
    pub fn attr(&self, name: &str) -> Option<&Value> {
        match self {
            Event::Operation { attrs, .. } => {
                let mut named = attrs.iter().filter(|(k, _)| k == name);
                // An attribute given twice has no one value: it is unknown, as if absent (an
                // integrator's review: the first of `amount` 10 and `amount` 1e6 was read,
                // and a handler reading the last paid a million).
                match (named.next(), named.next()) {
                    (Some((_, v)), None) => Some(v),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Whether the event names attribute `name` more than once.
    #[must_use]
    pub fn attr_named_twice(&self, name: &str) -> bool {
        match self {
            Event::Operation { attrs, .. } => {
                attrs.iter().filter(|(k, _)| k == name).nth(1).is_some()
            }
            _ => false,
        }
    }
}

/// One question to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Tenant. (The four names are shared: a decision's audit record and challenge hold them
    /// without copying.)
    pub tenant: Arc<str>,
    /// Application (`""` for the tenant's own policies: an application's own policies and
    /// overrides then do not apply, so name the application whose rules the request is under).
    pub application: Arc<str>,
    /// User id (a blank one is refused: `cannot_evaluate`).
    pub user: Arc<str>,
    /// Factors the user has enrolled.
    pub enrolled: FactorSet,
    /// Session id: one per login (a blank one is refused; two logins under one id share its
    /// elevations).
    pub session: Arc<str>,
    /// What happened.
    pub event: Event,
    /// When (the clock is passed in; the engine never reads it). Give each request the time
    /// it is decided at: a time that does not move keeps every elevation fresh.
    pub now: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::{Context, Event};
    use stepup_core::{Factor, FactorSet};

    /// The shared key is the key, for every kind of event and for names short, at the stack
    /// buffer's edge, past it, and multibyte.
    #[test]
    fn shared_key_is_the_key() {
        let mut events = vec![
            Event::SignIn {
                context: Context::default(),
                factors: FactorSet::one(Factor::Password),
            },
            Event::StepUp {
                factor: Factor::Totp,
                success: true,
            },
        ];
        for name in [
            String::new(),
            "pay".to_string(),
            "x".repeat(54),
            "x".repeat(55),
            "y".repeat(57),
            "z".repeat(300),
            "paiement_éé€".to_string(),
        ] {
            events.push(Event::Operation {
                name: name.clone(),
                attrs: vec![],
                context: None,
            });
            events.push(Event::Access {
                resource: name,
                context: None,
            });
        }
        for e in &events {
            assert_eq!(&*e.shared_key(), e.key(), "{e:?}");
        }
    }

    proptest::proptest! {
        /// The fast trim is `str::trim`, on any text (spaces of every kind, controls, text
        /// that is only spaces).
        #[test]
        fn trimmed_is_trim(text in "[ \t\n\u{b}\u{c}\r\u{1c}\u{85}\u{a0}\u{2003}\u{3000}a-zA-Z0-9.:-]{0,12}") {
            proptest::prop_assert_eq!(super::trimmed(&text), text.trim());
        }

        /// The address is read as the standard parser reads it: dotted quads of every form
        /// (leading zeros, numbers past 255, too few or many parts, signs, spaces) and IPv6.
        #[test]
        fn parse_ip_is_the_standard_parser(
            text in r"([0-9]{0,4}|256|255|00|-1|\+1)(\.([0-9]{0,4}|255|0)){0,4}[ a:]?|[0-9a-f:.]{0,20}",
        ) {
            proptest::prop_assert_eq!(super::parse_ip(&text), text.parse::<std::net::IpAddr>().ok());
        }

        /// And on any text at all.
        #[test]
        fn parse_ip_is_the_standard_parser_on_any_text(text in r"\PC{0,20}") {
            proptest::prop_assert_eq!(super::parse_ip(&text), text.parse::<std::net::IpAddr>().ok());
        }
    }

    /// The dotted quads the fast path reads, and those it leaves to the standard parser.
    #[test]
    fn dotted_quads() {
        for (text, read) in [
            ("198.51.100.7", Some([198, 51, 100, 7])),
            ("0.0.0.0", Some([0, 0, 0, 0])),
            ("255.255.255.255", Some([255; 4])),
            ("256.1.1.1", None),
            ("01.1.1.1", None),
            ("1.1.1", None),
            ("1.1.1.1.", None),
            ("1..1.1", None),
            ("1.1.1.1 ", None),
            ("1.1.1.1234", None),
        ] {
            assert_eq!(super::dotted_quad(text.as_bytes()), read, "{text}");
            assert_eq!(
                super::parse_ip(text),
                text.parse::<std::net::IpAddr>().ok(),
                "{text}"
            );
        }
    }
}
