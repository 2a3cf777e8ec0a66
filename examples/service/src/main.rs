//! `stepup-example-service --rules rules --addr 127.0.0.1:8080 --dev-issuer`

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use stepup_example_service::{Config, StoreChoice, app};

#[derive(Debug, Parser)]
#[command(about = "An example service protected by stepup")]
struct Args {
    /// The rules directory (watched for changes).
    #[arg(long, default_value = "rules")]
    rules: PathBuf,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Redis URL for many instances (default: the embedded on-disk store).
    #[arg(long)]
    redis: Option<String>,
    /// The embedded store's file.
    #[arg(long, default_value = ".stepup/service.redb")]
    db: PathBuf,
    /// HS256 secret shared with the identity provider.
    #[arg(long, default_value = "dev-secret-change-me")]
    secret: String,
    /// Serve `POST /dev/token` — DEVELOPMENT ONLY.
    #[arg(long)]
    dev_issuer: bool,
    /// Audit records as JSON lines to this file (default: log them).
    #[arg(long)]
    audit: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a = Args::parse();
    let cfg = Config {
        rules: a.rules,
        store: a.redis.map_or(StoreChoice::Disk(a.db), StoreChoice::Redis),
        secret: a.secret.into_bytes(),
        dev_issuer: a.dev_issuer,
        reload_every: Duration::from_millis(500),
        audit_file: a.audit,
    };
    if cfg.dev_issuer {
        tracing::warn!("the development token issuer is ON (POST /dev/token): never in production");
    }
    let (router, _) = match app(&cfg) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&a.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", a.addr);
            return std::process::ExitCode::from(2);
        }
    };
    tracing::info!("listening on http://{}", a.addr);
    if let Err(e) = axum::serve(listener, router).await {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(1);
    }
    std::process::ExitCode::SUCCESS
}
