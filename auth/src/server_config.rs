//! The nats-server configuration that hands authentication to vigia-auth.
//!
//! Two accounts: AUTH, where only the service's own nkey user lives and
//! the server sends its requests, and VIGIA (JetStream on), where every
//! authorized client is placed. Listing the service as an nkey user also
//! makes the server send a nonce to every client, which enrolled clients
//! sign to prove their key.

/// The account every authorized client is placed in.
pub const ACCOUNT: &str = "VIGIA";
/// The account the callout runs in.
pub const AUTH_ACCOUNT: &str = "AUTH";

/// The `accounts` and `authorization` blocks, to include in a server
/// config: `service_key` is the service's public user nkey, `issuer` the
/// public account nkey whose seed signs the responses.
pub fn render(service_key: &str, issuer: &str) -> String {
    format!(
        r#"# Written by vigia-auth: every client is authenticated by the callout.
accounts {{
  {AUTH_ACCOUNT} {{ users: [ {{ nkey: "{service_key}" }} ] }}
  {ACCOUNT} {{ jetstream: enabled }}
}}
authorization {{
  # Seconds the server waits for vigia-auth before refusing a connect.
  timeout: 5
  auth_callout {{
    issuer: "{issuer}"
    account: {AUTH_ACCOUNT}
    auth_users: [ "{service_key}" ]
  }}
}}
"#
    )
}
