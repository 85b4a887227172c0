#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use nkeys::KeyPair;
use tracing_subscriber::EnvFilter;
use vigia_auth::config::{Cli, Command, InitArgs, ServeArgs};
use vigia_auth::gce::GceVerifier;
use vigia_auth::permissions::StreamNames;
use vigia_auth::service::{self, Authenticator};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Init(args) => init(&args),
        Command::Serve(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?
            .block_on(serve(*args)),
    }
}

fn read_seed(path: &Path, flag: &str) -> anyhow::Result<KeyPair> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{flag} {}", path.display()))?;
    KeyPair::from_seed(text.trim())
        .map_err(|e| anyhow::anyhow!("{flag} {}: not an nkey seed ({e})", path.display()))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let issuer = read_seed(&args.issuer, "--issuer")?;
    if !issuer.public_key().starts_with('A') {
        anyhow::bail!(
            "--issuer {}: must be an account seed (SA...)",
            args.issuer.display()
        );
    }
    // A user key, read as every client reads its credentials file.
    let own_text = std::fs::read_to_string(&args.nkey)
        .with_context(|| format!("--nkey {}", args.nkey.display()))?;
    let own_seed = vigia_schema::identity::parse_seed(&own_text)
        .with_context(|| format!("--nkey {}", args.nkey.display()))?;
    // An empty value (compose passes VIGIA_GCE_AUDIENCE= when unset) means
    // "no GCE", never "any audience" or "the project named ''".
    let projects: Vec<String> = args
        .gce_projects
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect();
    let gce = match args.gce_audience.as_deref().filter(|a| !a.is_empty()) {
        Some(audience) => {
            if projects.is_empty() {
                anyhow::bail!("--gce-audience {audience:?} needs --gce-projects (the allow-list)");
            }
            Some(GceVerifier::new(
                args.gce_jwks_url.clone(),
                audience.to_owned(),
                projects,
            ))
        }
        None => None,
    };
    let authenticator = Arc::new(Authenticator {
        issuer,
        registry: args.registry.clone(),
        gce,
        streams: StreamNames {
            telemetry: args.stream.clone(),
            consumer: args.consumer.clone(),
            ..StreamNames::default()
        },
        session_max: args.session_max,
    });
    let mut options = async_nats::ConnectOptions::new()
        .name("vigia-auth")
        .nkey(own_seed)
        // Clients connecting meanwhile wait: the server retries nothing,
        // but they do (their reconnect loop), so come up as soon as NATS does.
        .retry_on_initial_connect();
    if let Some(ca) = &args.nats_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    // Several servers (a cluster): vigia-auth must reach one of them for any
    // node's clients to get in, so it takes every node and fails over.
    let servers = vigia_schema::servers::server_urls(&args.nats_url).context("--nats-url")?;
    let client = options
        .connect(servers)
        .await
        .with_context(|| format!("--nats-url {:?}", args.nats_url))?;
    tokio::select! {
        result = service::serve(client, authenticator) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("--dir {}", args.dir.display()))?;
    let issuer = ensure_seed(&args.dir.join("issuer.nk"), KeyPair::new_account)?;
    let own = ensure_seed(&args.dir.join("service.nk"), KeyPair::new_user)?;
    print!(
        "{}",
        vigia_auth::server_config::render(&own.public_key(), &issuer.public_key())
    );
    Ok(())
}

/// The key in `path`, made and written (0600) if the file is absent.
fn ensure_seed(path: &Path, make: fn() -> KeyPair) -> anyhow::Result<KeyPair> {
    if path.exists() {
        return read_seed(path, "--dir");
    }
    let key = make();
    let seed = key.seed().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_secret(path, &seed)?;
    Ok(key)
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("writing {}", path.display()))
}
