//! `stepup-example-service --rules rules --dev-issuer` (development), or with a real key:
//! `STEPUP_HS256_SECRET=… stepup-example-service --rules rules --geoip GeoLite2-City.mmdb`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use stepup_core::{Aal, Factor};
use stepup_example_service::{Config, Key, StoreChoice, app};
use stepup_http::ClaimMapping;

#[derive(Debug, Parser)]
#[command(about = "An example service protected by stepup")]
struct Args {
    /// The rules directory (watched for changes).
    #[arg(long, default_value = "rules")]
    rules: PathBuf,
    /// The tenant whose rules apply.
    #[arg(long, default_value = "acme")]
    tenant: String,
    /// The application whose rules apply (`finance` has `every time` policies).
    #[arg(long, default_value = "dashboard")]
    application: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Redis URL for many instances (default: the embedded on-disk store).
    #[arg(long)]
    redis: Option<String>,
    /// Keep histories and sessions in memory, lost at exit (tests, benchmarks, profiles).
    #[arg(long, conflicts_with = "redis")]
    memory: bool,
    /// The embedded store's file.
    #[arg(long, default_value = ".stepup/service.redb")]
    db: PathBuf,
    /// A file holding the HS256 secret shared with the identity provider (at least 32 bytes;
    /// or set STEPUP_HS256_SECRET).
    #[arg(long)]
    hs256_secret_file: Option<PathBuf>,
    /// The identity provider's RS256 public key (PEM).
    #[arg(long)]
    rs256_pem: Option<PathBuf>,
    /// The identity provider's ES256 public key (PEM).
    #[arg(long)]
    es256_pem: Option<PathBuf>,
    /// The identity provider's keys (JWKS file).
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// The tokens' issuer.
    #[arg(long, default_value = stepup_example_service::ISSUER)]
    issuer: String,
    /// The tokens' audience.
    #[arg(long, default_value = stepup_example_service::AUDIENCE)]
    audience: String,
    /// Clock leeway for exp, nbf, iat and auth_time, in seconds.
    #[arg(long, default_value_t = stepup_http::token::DEFAULT_LEEWAY_SECS)]
    leeway: u64,
    /// Serve `POST /dev/token` — DEVELOPMENT ONLY (signs with the HS256 secret, or a random one).
    #[arg(long)]
    dev_issuer: bool,
    /// A MaxMind GeoIP2/GeoLite2 City or Country database (.mmdb).
    #[arg(long)]
    geoip: Option<PathBuf>,
    /// A proxy whose X-Forwarded-For is believed (address or CIDR range; repeatable).
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<String>,
    /// The header carrying a device fingerprint (e.g. x-device-fingerprint).
    #[arg(long)]
    device_header: Option<String>,
    /// The longest a request's body may take to arrive, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    body_timeout_ms: u64,
    /// A file holding the token `GET /_stepup` requires (or set STEPUP_STATUS_TOKEN); without
    /// one the status answers loopback callers only.
    #[arg(long)]
    status_token_file: Option<PathBuf>,
    /// Read an `amr` value as the weakest of these factors: `VALUE=f1|f2` (repeatable).
    #[arg(long = "amr")]
    amr: Vec<String>,
    /// Read an `acr` value as an AAL: `VALUE=aal2` (repeatable).
    #[arg(long = "acr")]
    acr: Vec<String>,
    /// The tenant's acr values for aal1, aal2 and aal3, comma-separated (sent to clients).
    #[arg(long)]
    acr_values: Option<String>,
    /// Audit records as JSON lines to this file (default: log them).
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Log every decision as a JSON line to this file (docs/decision-log.md), for `stepup
    /// backtest`; rotated by size.
    #[arg(long, value_name = "PATH")]
    decision_log: Option<PathBuf>,
    /// The largest size of one decision-log file, in bytes, before it is rotated (the live file and 8 rotated ones are kept).
    #[arg(long, default_value_t = stepup_http::decision_log::DEFAULT_MAX_BYTES, requires = "decision_log")]
    decision_log_max_bytes: u64,
    /// Pseudonymise user, session, device and challenge ids in the decision log with a keyed hash
    /// (HMAC-SHA256) whose key is read from this file (at least 16 bytes).
    #[arg(long, value_name = "FILE", requires = "decision_log")]
    pseudonymize_key_file: Option<PathBuf>,
}

fn secret_from(file: Option<&PathBuf>, env: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(p) = file {
        let bytes =
            stepup_core::read_bounded(p, 64 * 1024).map_err(|e| format!("{}: {e}", p.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        return Ok(Some(
            text.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
        ));
    }
    Ok(std::env::var(env)
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes))
}

fn mapping(a: &Args) -> Result<ClaimMapping, String> {
    let mut m = ClaimMapping::default();
    if let Some(v) = &a.acr_values {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        let [a1, a2, a3] = parts.as_slice() else {
            return Err(format!(
                "--acr-values `{v}`: give three values (aal1,aal2,aal3)"
            ));
        };
        // Each is sent as one value of `acr_values` (RFC 9470), a space-separated list: a value
        // with a space, a quote or a backslash would be read as other values.
        if let Some(bad) = parts.iter().find(|p| {
            p.is_empty()
                || p.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
        }) {
            return Err(format!(
                "--acr-values `{v}`: `{bad}` is not one value (no spaces, quotes or backslashes)"
            ));
        }
        // Three levels, three values: a value given twice would read back as the higher
        // level (an outside check: `p,q,q` read `q` as aal3).
        if a1 == a2 || a1 == a3 || a2 == a3 {
            return Err(format!(
                "--acr-values `{v}`: give three different values (aal1,aal2,aal3)"
            ));
        }
        m = m.acr_values(a1, a2, a3);
    }
    // A value mapped twice is ambiguous, and the last would win (`--acr r=aal1 --acr r=aal3`
    // read `r` as aal3): refused, as is a value that is empty, and one `--acr-values` sends
    // for another level (`--acr-values lo,mid,hi --acr lo=aal3` read the value asked for at
    // aal1 as aal3: a review).
    let sent: Vec<String> = a
        .acr_values
        .as_deref()
        .map(|v| v.split(',').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for row in &a.acr {
        let (value, aal) = row
            .split_once('=')
            .ok_or_else(|| format!("--acr `{row}`: write VALUE=aal2"))?;
        if value.is_empty() {
            return Err(format!("--acr `{row}`: the value is empty"));
        }
        if !seen.insert(value) {
            return Err(format!("--acr: `{value}` is mapped twice"));
        }
        let parsed: Option<Aal> = aal.parse().ok();
        if let Some(level) = sent.iter().position(|v| v == value)
            && parsed.is_some_and(|p| Some(&p) != [Aal::Aal1, Aal::Aal2, Aal::Aal3].get(level))
        {
            return Err(format!(
                "--acr `{row}`: `{value}` is what --acr-values sends for aal{}",
                level + 1
            ));
        }
        let aal: Aal = aal
            .parse()
            .map_err(|()| format!("--acr `{row}`: `{aal}` is not aal1, aal2 or aal3"))?;
        m = m.map_acr(value, aal);
    }
    let mut seen = std::collections::BTreeSet::new();
    for row in &a.amr {
        let (value, factors) = row
            .split_once('=')
            .ok_or_else(|| format!("--amr `{row}`: write VALUE=factor|factor"))?;
        if value.is_empty() {
            return Err(format!("--amr `{row}`: the value is empty"));
        }
        if !seen.insert(value) {
            return Err(format!(
                "--amr: `{value}` is mapped twice (one value, the factors it may be: `{value}=a|b`)"
            ));
        }
        let mut list = Vec::new();
        for f in factors.split('|').filter(|f| !f.is_empty()) {
            list.push(
                f.parse::<Factor>()
                    .map_err(|()| format!("--amr `{row}`: unknown factor `{f}`"))?,
            );
        }
        m = m.map_amr(value, &list);
    }
    Ok(m)
}

fn config(a: Args) -> Result<(Config, String), String> {
    let hs = secret_from(a.hs256_secret_file.as_ref(), "STEPUP_HS256_SECRET")?;
    let keys = [
        hs.is_some(),
        a.rs256_pem.is_some(),
        a.es256_pem.is_some(),
        a.jwks.is_some(),
    ];
    if keys.iter().filter(|k| **k).count() > 1 {
        return Err("give one verification key".into());
    }
    let key = if let Some(s) = hs {
        Key::Hs256(s)
    } else if let Some(p) = a.rs256_pem.clone() {
        Key::Rs256Pem(p)
    } else if let Some(p) = a.es256_pem.clone() {
        Key::Es256Pem(p)
    } else if let Some(p) = a.jwks.clone() {
        Key::Jwks(p)
    } else {
        Key::None
    };
    let status_token = secret_from(a.status_token_file.as_ref(), "STEPUP_STATUS_TOKEN")?
        .map(|t| String::from_utf8_lossy(&t).into_owned());
    let claims = mapping(&a)?;
    let mut cfg = Config::new(a.rules);
    cfg.store = if a.memory {
        StoreChoice::Memory
    } else {
        a.redis.map_or(StoreChoice::Disk(a.db), StoreChoice::Redis)
    };
    cfg.key = key;
    cfg.issuer = a.issuer;
    cfg.audience = a.audience;
    // An authentication dated further ahead than the engine's skew proves nothing: a leeway
    // past it would accept tokens whose step-up is then asked again (a review).
    let most = stepup_engine::state::AUTH_CLOCK_SKEW_SECS.unsigned_abs();
    if a.leeway > most {
        return Err(format!(
            "--leeway {}: at most {most} s (an authentication dated further ahead proves nothing)",
            a.leeway
        ));
    }
    cfg.leeway_s = a.leeway;
    cfg.dev_issuer = a.dev_issuer;
    cfg.tenant = a.tenant;
    cfg.application = a.application;
    cfg.audit_file = a.audit;
    cfg.decision_log = a.decision_log;
    cfg.decision_log_max_bytes = a.decision_log_max_bytes.max(1);
    cfg.pseudonymize_key_file = a.pseudonymize_key_file;
    cfg.geoip = a.geoip;
    cfg.trusted_proxies = a.trusted_proxies;
    cfg.device_header = a.device_header;
    cfg.body_timeout = Duration::from_millis(a.body_timeout_ms);
    cfg.status_token = status_token;
    cfg.claims = claims;
    Ok((cfg, a.addr))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (cfg, addr) = match config(Args::parse()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if cfg.dev_issuer {
        tracing::warn!("the development token issuer is ON (POST /dev/token): never in production");
    }
    if cfg.geoip.is_none() {
        tracing::warn!(
            "no GeoIP database (--geoip): sign-ins have no country or place, so the signals that need them are unknown and their policies fire"
        );
    }
    let (router, _) = match app(&cfg) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing::info!(
        "listening on http://{addr} for {}/{}",
        cfg.tenant,
        cfg.application
    );
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service).await {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(1);
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "tests: a failed assertion is the report"
    )]

    use super::*;

    /// `--acr-values` takes three single values: one with a space (two values to an RFC 9470
    /// client), a quote, a backslash or nothing is refused with the reason.
    #[test]
    fn acr_values_are_single_values() {
        let args = |v: &str| Args::parse_from(["service", "--acr-values", v]);
        assert!(mapping(&args("urn:a:1,urn:a:2,urn:a:3")).is_ok());
        for bad in [
            "urn:a:1,urn:a 2,urn:a:3",
            "urn:a:1,urn:a:2,\"x\"",
            "urn:a:1,,urn:a:3",
            "urn:a:1,urn:a:2,a\\b",
        ] {
            let e = mapping(&args(bad)).unwrap_err();
            assert!(e.contains("not one value"), "{bad}: {e}");
        }
    }

    /// A leeway past the engine's clock skew is refused (a review: a token dated 61 s ahead
    /// was accepted, and its step-up asked again).
    #[test]
    fn a_leeway_past_the_engines_skew_is_refused() {
        let e = config(Args::parse_from([
            "service",
            "--dev-issuer",
            "--leeway",
            "61",
        ]))
        .err()
        .unwrap();
        assert!(e.contains("at most 60 s"), "{e}");
        assert!(
            config(Args::parse_from([
                "service",
                "--dev-issuer",
                "--leeway",
                "60"
            ]))
            .is_ok()
        );
    }

    /// A mapping that is ambiguous is refused at start (an outside check: `--acr-values
    /// p,q,q` read `q` as aal3, and a value mapped twice read as its last mapping).
    #[test]
    fn ambiguous_claim_mappings_are_refused() {
        for (args, said) in [
            (&["--acr-values", "p,q,q"][..], "three different values"),
            (
                &["--acr", "r=aal1", "--acr", "r=aal3"],
                "`r` is mapped twice",
            ),
            (&["--acr", "=aal2"], "the value is empty"),
            (
                &["--amr", "otp=sms", "--amr", "otp=totp"],
                "`otp` is mapped twice",
            ),
            (&["--amr", "=sms"], "the value is empty"),
            (
                &["--acr-values", "lo,mid,hi", "--acr", "lo=aal3"],
                "`lo` is what --acr-values sends for aal1",
            ),
        ] {
            let a = Args::parse_from(std::iter::once("service").chain(args.iter().copied()));
            let e = mapping(&a).unwrap_err();
            assert!(e.contains(said), "{args:?}: {e}");
        }
        let a = Args::parse_from(["service", "--acr", "r=aal1", "--amr", "otp=sms|totp"]);
        assert!(mapping(&a).is_ok());
        let a = Args::parse_from(["service", "--acr-values", "lo,mid,hi", "--acr", "hi=aal3"]);
        assert!(mapping(&a).is_ok());
    }
}
