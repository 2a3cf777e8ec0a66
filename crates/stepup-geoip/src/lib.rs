//! Country and location from an IP address, with a MaxMind GeoIP2/GeoLite2 City or Country
//! database (`.mmdb`, SPEC §11). Whatever the database does not say — an address it does not
//! hold, a Country database's missing location, an unreadable record — is unknown, and the
//! signals that need it fail closed (SPEC §10).

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use stepup_engine::{Context, Location};

/// A GeoIP database loaded in memory.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
    kind: String,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Latitude and longitude (City databases).
    pub location: Option<Location>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    country: Option<CountryRec>,
    #[serde(default)]
    location: Option<LocationRec>,
}

#[derive(Deserialize)]
struct CountryRec {
    #[serde(default)]
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct LocationRec {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

impl GeoIp {
    /// Opens a City, Country or Enterprise database.
    ///
    /// # Errors
    /// When the file cannot be read, is not a MaxMind database, or is another kind of database
    /// (ASN, ISP…) that holds no country.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| format!("{}: not a MaxMind database: {e}", path.display()))?;
        Self::from_reader(reader).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A database from its bytes.
    ///
    /// # Errors
    /// As [`GeoIp::open`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| format!("not a MaxMind database: {e}"))?;
        Self::from_reader(reader)
    }

    fn from_reader(reader: maxminddb::Reader<Vec<u8>>) -> Result<Self, String> {
        let kind = reader.metadata().database_type.clone();
        if !["City", "Country", "Enterprise"]
            .iter()
            .any(|k| kind.contains(k))
        {
            return Err(format!(
                "a `{kind}` database holds no country: use a GeoIP2/GeoLite2 City or Country database"
            ));
        }
        Ok(GeoIp { reader, kind })
    }

    /// The database's type (`GeoLite2-City`, …).
    #[must_use]
    pub fn database_type(&self) -> &str {
        &self.kind
    }

    /// The country and location of `ip`; unknown parts are `None`.
    #[must_use]
    pub fn lookup(&self, ip: IpAddr) -> Place {
        let ip = ip.to_canonical();
        let Ok(found) = self.reader.lookup(ip) else {
            return Place::default();
        };
        let Ok(Some(rec)) = found.decode::<Record>() else {
            return Place::default();
        };
        let country = rec
            .country
            .and_then(|c| c.iso_code)
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()));
        let location = rec.location.and_then(|l| match (l.latitude, l.longitude) {
            (Some(lat), Some(lon))
                if lat.is_finite()
                    && lon.is_finite()
                    && (-90.0..=90.0).contains(&lat)
                    && (-180.0..=180.0).contains(&lon) =>
            {
                Some(Location { lat, lon })
            }
            _ => None,
        });
        Place { country, location }
    }

    /// Fills what `ctx` does not say from its IP address: the country when it has none, the
    /// location when it has none. What the context says is kept; an address that does not
    /// parse, or that the database does not hold, leaves the fields unknown (SPEC §10).
    pub fn fill(&self, ctx: &mut Context) {
        // A blank country says none (`Context::country_code`): it is filled too.
        if ctx.country_code().is_some() && ctx.location.is_some() {
            return;
        }
        let Some(ip) = ctx
            .ip
            .as_deref()
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        else {
            return;
        };
        let place = self.lookup(ip);
        if ctx.country_code().is_none() {
            ctx.country = place.country;
        }
        if ctx.location.is_none() {
            ctx.location = place.location;
        }
    }
}

/// Small GeoLite2-City-shaped databases for tests, written in memory (feature `test-db`).
#[cfg(any(test, feature = "test-db"))]
pub mod test_db {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Iso<'a> {
        iso_code: &'a str,
    }
    #[derive(Serialize)]
    struct Loc {
        latitude: f64,
        longitude: f64,
    }
    #[derive(Serialize)]
    struct CityRec<'a> {
        country: Iso<'a>,
        location: Loc,
    }

    /// A City database placing each network (`"192.0.2.0/24"`) in a country at a latitude and
    /// longitude.
    ///
    /// # Errors
    /// A network that does not parse, or a record the writer refuses.
    pub fn city(places: &[(&str, &str, f64, f64)]) -> Result<Vec<u8>, String> {
        use maxminddb_writer::paths::IpAddrWithMask;
        let mut db = maxminddb_writer::Database::default();
        db.metadata.database_type = "GeoLite2-City".into();
        db.metadata.binary_format_major_version = 2;
        db.metadata.languages = vec!["en".into()];
        for &(net, iso_code, latitude, longitude) in places {
            let r = db
                .insert_value(CityRec {
                    country: Iso { iso_code },
                    location: Loc {
                        latitude,
                        longitude,
                    },
                })
                .map_err(|e| e.to_string())?;
            let net = net
                .parse::<IpAddrWithMask>()
                .map_err(|e| format!("{net}: {e:?}"))?;
            db.insert_node(net, r);
        }
        db.write_to(Vec::new()).map_err(|e| e.to_string())
    }

    /// Paris at 192.0.2.0/24 and New York at 198.51.100.0/24.
    ///
    /// # Errors
    /// As [`city`].
    pub fn paris_new_york() -> Result<Vec<u8>, String> {
        city(&[
            ("192.0.2.0/24", "FR", 48.8566, 2.3522),
            ("198.51.100.0/24", "US", 40.7128, -74.0060),
        ])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn paris() -> GeoIp {
        GeoIp::from_bytes(test_db::city(&[("192.0.2.0/24", "FR", 48.8566, 2.3522)]).unwrap())
            .unwrap()
    }

    fn ctx(ip: Option<&str>, country: Option<&str>) -> Context {
        Context {
            ip: ip.map(str::to_string),
            country: country.map(str::to_string),
            ..Context::default()
        }
    }

    #[test]
    fn fill_adds_only_what_the_context_does_not_say() {
        let db = paris();
        let mut c = ctx(Some("192.0.2.7"), None);
        db.fill(&mut c);
        assert_eq!(c.country.as_deref(), Some("FR"));
        assert_eq!(c.location.map(|l| l.lat), Some(48.8566));

        let mut given = ctx(Some("192.0.2.7"), Some("DE"));
        db.fill(&mut given);
        assert_eq!(
            given.country.as_deref(),
            Some("DE"),
            "the context's own country wins"
        );
        assert!(given.location.is_some(), "its missing location is filled");

        // A blank country says none (as the engine reads it): it is filled too.
        for blank in ["", "  "] {
            let mut c = ctx(Some("192.0.2.7"), Some(blank));
            db.fill(&mut c);
            assert_eq!(c.country.as_deref(), Some("FR"), "{blank:?}");
        }
    }

    #[test]
    fn what_the_database_does_not_hold_stays_unknown() {
        let db = paris();
        for ip in [Some("203.0.113.1"), Some("not an address"), Some(""), None] {
            let mut c = ctx(ip, None);
            db.fill(&mut c);
            assert_eq!((c.country, c.location), (None, None), "{ip:?}");
        }
    }
}
