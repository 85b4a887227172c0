//! Answers authorization requests: who is it, and what may it do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use nkeys::KeyPair;
use tokio::sync::Semaphore;

use crate::callout::{self, Decision, Request};
use crate::gce::GceVerifier;
use crate::permissions::{self, StreamNames};
use crate::{nkey_proof, registry, server_config, Identity};

/// Requests handled at once; more wait (the server times them out).
const CONCURRENT: usize = 64;

pub struct Authenticator {
    pub issuer: KeyPair,
    pub registry: PathBuf,
    pub gce: Option<GceVerifier>,
    pub streams: StreamNames,
    /// How long a session may last before the server ends it and the
    /// client must prove itself again (its user JWT's expiry): a revoked
    /// key's live session ends within this, with no NATS restart.
    pub session_max: Duration,
}

/// Who a request proved to be, and until when (unix seconds) if limited.
#[derive(Debug, Clone, PartialEq)]
pub struct Proven {
    pub identity: Identity,
    pub expires: Option<i64>,
}

impl Authenticator {
    /// Decides who the client is. Blocking (reads the registry, may fetch
    /// Google's keys).
    pub fn authenticate(&self, request: &Request) -> Result<Proven, String> {
        let opts = &request.connect_opts;
        let session_end = crate::natsjwt::now()
            .saturating_add(i64::try_from(self.session_max.as_secs()).unwrap_or(i64::MAX));
        if let Some(nkey) = opts.nkey.as_deref() {
            nkey_proof::verify(
                nkey,
                request.client_info.nonce.as_deref(),
                opts.sig.as_deref(),
            )
            .map_err(|e| e.to_string())?;
            let entries = registry::load(&self.registry).map_err(|e| e.to_string())?;
            let identity = registry::find(&entries, nkey)
                .ok_or_else(|| format!("nkey {nkey} is not enrolled (or was revoked)"))?;
            return Ok(Proven {
                identity,
                expires: Some(session_end),
            });
        }
        if let Some(token) = opts.auth_token.as_deref() {
            if GceVerifier::looks_like_one(token) {
                let gce = self
                    .gce
                    .as_ref()
                    .ok_or("a GCE identity token, but GCE is not configured (--gce-audience)")?;
                let instance = gce.verify(token).map_err(|e| e.to_string())?;
                // No longer than the token: a stolen one opens no session
                // that outlives it, and the VM's publisher reconnects with a
                // fresh one.
                return Ok(Proven {
                    identity: instance.identity,
                    expires: Some(session_end.min(instance.expires)),
                });
            }
            return Err("a token that is not a GCE identity token".into());
        }
        Err("no credentials (an enrolled nkey or a GCE identity token is required)".into())
    }

    /// The response JWT for one raw request, or None when the request
    /// itself is not from a server (nothing to answer).
    pub fn answer(&self, payload: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(payload).ok()?;
        let request = match callout::decode_request(text) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%error, "ignoring an authorization request");
                return None;
            }
        };
        let permissions;
        let decision = match self.authenticate(&request) {
            Ok(proven) => {
                permissions = permissions::for_identity(
                    proven.identity.role,
                    &proven.identity.name,
                    &self.streams,
                );
                tracing::info!(
                    identity = %proven.identity,
                    client = request.client_info.host.as_deref().unwrap_or("?"),
                    "authorized"
                );
                Decision::Allow {
                    name: proven.identity.to_string(),
                    account: server_config::ACCOUNT,
                    permissions: &permissions,
                    expires: proven.expires,
                }
            }
            Err(why) => {
                // `why` quotes client input; escape it for the log.
                tracing::warn!(
                    client = request.client_info.host.as_deref().unwrap_or("?"),
                    reason = %vigia_schema::text::escape(&why),
                    "refused"
                );
                Decision::Deny(why)
            }
        };
        match callout::respond(&request, decision, &self.issuer) {
            Ok(jwt) => Some(jwt),
            Err(error) => {
                tracing::error!(%error, "cannot sign an authorization response");
                None
            }
        }
    }
}

/// Serves `$SYS.REQ.USER.AUTH` until the connection closes for good.
/// Several instances may run: they share the work through a queue group.
pub async fn serve(
    client: async_nats::Client,
    authenticator: Arc<Authenticator>,
) -> anyhow::Result<()> {
    let mut requests = client
        .queue_subscribe(callout::SUBJECT, "vigia-auth".into())
        .await?;
    tracing::info!(
        subject = callout::SUBJECT,
        "answering authorization requests"
    );
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    while let Some(message) = requests.next().await {
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let authenticator = authenticator.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let payload = message.payload;
            let answer = tokio::task::spawn_blocking(move || authenticator.answer(&payload)).await;
            if let Ok(Some(jwt)) = answer {
                if let Err(error) = client.publish(reply, jwt.into()).await {
                    tracing::warn!(%error, "cannot send an authorization response");
                }
            }
            drop(slot);
        });
    }
    Ok(())
}
