//! vigia-auth's settings; every flag also reads an environment variable.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vigia-auth",
    version,
    about = "NATS auth callout for vigia: verifies each connection's identity and grants only its role's permissions"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer the server's authorization requests.
    Serve(Box<ServeArgs>),
    /// Make the issuer and service keys in a directory and print the
    /// nats-server configuration that uses them.
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// NATS server (its callout account AUTH); several, comma-separated,
    /// for a cluster.
    #[arg(long, env = "VIGIA_NATS_URL", default_value = vigia_schema::servers::DEFAULT_URL)]
    pub nats_url: String,

    /// The service's own user nkey seed file (listed in auth_users).
    #[arg(long, env = "VIGIA_AUTH_NKEY")]
    pub nkey: PathBuf,

    /// The issuer account nkey seed file: signs every response.
    #[arg(long, env = "VIGIA_AUTH_ISSUER")]
    pub issuer: PathBuf,

    /// CA certificate to verify the NATS server with (TLS).
    #[arg(long, env = "VIGIA_NATS_CA")]
    pub nats_ca: Option<PathBuf>,

    /// The enrolled identities (`vigiactl enroll` writes it).
    #[arg(long, env = "VIGIA_IDENTITIES", default_value = crate::registry::DEFAULT_PATH)]
    pub registry: PathBuf,

    /// Audience GCE identity tokens must carry (vigia's NATS endpoint, e.g.
    /// nats://10.0.0.2:4222); without it GCE tokens are refused.
    #[arg(long, env = "VIGIA_GCE_AUDIENCE")]
    pub gce_audience: Option<String>,

    /// GCP projects whose VMs may connect as hosts, comma-separated.
    #[arg(long, env = "VIGIA_GCE_PROJECTS", value_delimiter = ',')]
    pub gce_projects: Vec<String>,

    /// Where Google publishes the keys that sign identity tokens (JWKS).
    #[arg(long, env = "VIGIA_GCE_JWKS_URL", default_value = crate::gce::GOOGLE_JWKS_URL)]
    pub gce_jwks_url: String,

    /// Longest session: the server ends a connection this long after it was
    /// authorized (a GCE VM's at its token's expiry if sooner), and the
    /// client proves itself again. Bounds how long a revoked key keeps a
    /// live session.
    #[arg(long, env = "VIGIA_AUTH_SESSION_MAX", default_value = "1h",
          value_parser = parse_session_max)]
    pub session_max: std::time::Duration,

    /// JetStream names the sink's permissions name.
    #[arg(long, env = "VIGIA_STREAM", default_value = vigia_schema::subject::STREAM)]
    pub stream: String,
    #[arg(long, env = "VIGIA_CONSUMER", default_value = vigia_schema::subject::CONSUMER)]
    pub consumer: String,
}

fn parse_session_max(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory for issuer.nk and service.nk (mode 0600); existing keys
    /// are kept.
    #[arg(long)]
    pub dir: PathBuf,
}
