//! Connecting to NATS the same way for every subcommand, with an error that
//! names the server.

use std::time::Duration;

use async_nats::ConnectOptions;

use crate::args::NatsArgs;

/// How long to try reaching the server before saying it is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {source}")]
pub struct ConnectError {
    pub url: String,
    #[source]
    pub source: async_nats::ConnectError,
}

pub async fn connect(args: &NatsArgs) -> Result<async_nats::Client, ConnectError> {
    let mut options = ConnectOptions::new()
        .name("vigiactl")
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some(token) = &args.nats_token {
        options = options.token(token.clone());
    }
    // Several servers (a cluster): the first that answers serves.
    let servers = vigia_schema::servers::server_urls(&args.nats_url).map_err(|e| ConnectError {
        url: args.nats_url.clone(),
        source: async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, e),
    })?;
    options
        .connect(servers)
        .await
        .map_err(|source| ConnectError {
            url: args.nats_url.clone(),
            source,
        })
}
