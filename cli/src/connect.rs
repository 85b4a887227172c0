//! Connecting to NATS the same way for every subcommand, with an error that
//! names the server.

use std::time::Duration;

use async_nats::ConnectOptions;

use vigia_schema::identity::inbox_prefix;
use vigia_schema::{HostToken, Role};

use crate::args::NatsArgs;

/// How long to try reaching the server before saying it is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Nats {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("--nats-nkey {path}: {why}")]
    Key { path: String, why: String },
    #[error("--as {0:?}: {1}")]
    Name(String, vigia_schema::HostTokenError),
}

/// The name this client acts as, when it has an enrolled key: `--as`, or
/// the key file's stem (`vigiactl enroll` writes `<name>.nk`).
pub fn acting_as(args: &NatsArgs) -> Result<Option<HostToken>, ConnectError> {
    let Some(path) = &args.nats_nkey else {
        return Ok(None);
    };
    let name = match &args.as_name {
        Some(name) => name.clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    HostToken::parse(&name)
        .map(Some)
        .map_err(|e| ConnectError::Name(name, e))
}

pub async fn connect(args: &NatsArgs) -> Result<async_nats::Client, ConnectError> {
    let mut options = ConnectOptions::new()
        .name("vigiactl")
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some(token) = &args.nats_token {
        options = options.token(token.clone());
    }
    if let (Some(path), Some(name)) = (&args.nats_nkey, acting_as(args)?) {
        let key_error = |why: String| ConnectError::Key {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?;
        let seed =
            vigia_schema::identity::parse_seed(&text).map_err(|e| key_error(e.to_string()))?;
        // Operators and watchers may read only their own inbox.
        options = options
            .nkey(seed)
            .custom_inbox_prefix(inbox_prefix(Role::Operator, &name));
    }
    if let Some(ca) = &args.nats_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    // Several servers (a cluster): the first that answers serves.
    let servers =
        vigia_schema::servers::server_urls(&args.nats_url).map_err(|e| ConnectError::Nats {
            url: args.nats_url.clone(),
            source: async_nats::ConnectError::with_source(
                async_nats::ConnectErrorKind::ServerParse,
                e,
            ),
        })?;
    options
        .connect(servers)
        .await
        .map_err(|source| ConnectError::Nats {
            url: args.nats_url.clone(),
            source,
        })
}
