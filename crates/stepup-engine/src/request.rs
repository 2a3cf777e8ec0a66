//! What the engine is asked: who, in which session, did what, from where, and when.

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
}

/// `text` without the spaces around it, unless that leaves nothing (`" FR "` is `FR`, as the
/// HTTP layer reads a header).
fn named(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
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
            Event::Operation { attrs, .. } => attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One question to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Tenant. (The four names are shared: a decision's audit record and challenge hold them
    /// without copying.)
    pub tenant: Arc<str>,
    /// Application (`""` for the tenant's own policies).
    pub application: Arc<str>,
    /// User id.
    pub user: Arc<str>,
    /// Factors the user has enrolled.
    pub enrolled: FactorSet,
    /// Session id.
    pub session: Arc<str>,
    /// What happened.
    pub event: Event,
    /// When (the clock is passed in; the engine never reads it).
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
}
