//! `vigiactl watch`: live telemetry straight from NATS (a plain
//! subscription, not the stream: what arrives now, nothing replayed).

use std::io::Write as _;

use anyhow::Context as _;
use futures::StreamExt as _;
use vigia_schema::text::Escaped;
use vigia_schema::{HostToken, Sample};

use crate::args::WatchArgs;
use crate::connect::connect;
use crate::render;

/// `telemetry.<host|*>.<kind|*>`
pub fn subject(host: Option<&HostToken>, kind: Option<vigia_schema::Kind>) -> String {
    format!(
        "{}.{}.{}",
        vigia_schema::subject::TELEMETRY,
        host.map(HostToken::as_str).unwrap_or("*"),
        kind.map(|k| k.as_str()).unwrap_or("*")
    )
}

pub async fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let host = args
        .host
        .as_deref()
        .map(HostToken::parse)
        .transpose()
        .context("--host")?;
    let subject = subject(host.as_ref(), args.kind);
    let client = connect(&args.nats).await?;
    let mut messages = client
        .subscribe(subject.clone())
        .await
        .with_context(|| format!("subscribing to {subject}"))?;
    let mut shown = 0u64;
    let mut out = std::io::stdout();
    while args.count.is_none_or(|n| shown < n) {
        let Some(message) = messages.next().await else {
            anyhow::bail!("the NATS connection closed");
        };
        match Sample::decode(&message.payload) {
            Ok(sample) => {
                shown += 1;
                // A closed pipe (watch | head) ends the watch quietly.
                if writeln!(out, "{}", render::line(&sample))
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return Ok(());
                }
            }
            // Subject and error (which may quote a map key) come from
            // whoever published: escaped like every text from the wire.
            Err(error) => eprintln!(
                "{}: undecodable payload: {}",
                Escaped(&message.subject),
                Escaped(&error.to_string())
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::Kind;

    #[test]
    fn subjects_narrow_by_host_and_kind() {
        let host = HostToken::parse("web-1").unwrap();
        assert_eq!(subject(None, None), "telemetry.*.*");
        assert_eq!(subject(Some(&host), None), "telemetry.web-1.*");
        assert_eq!(subject(None, Some(Kind::Procs)), "telemetry.*.procs");
    }
}
