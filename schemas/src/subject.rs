//! Subjects and headers: where a sample travels and how it is labelled.
//!
//! ```text
//! telemetry.<host>.<kind>              a sample (kind: cpu ram procs hello bye event health)
//! deadletter.telemetry.<host>.<kind>   a payload the sink could not store
//! cmd.<host>                           requests to a host's publisher
//! ```

use std::time::Duration;

use crate::{HostToken, Kind};

/// First token of every telemetry subject.
pub const TELEMETRY: &str = "telemetry";
/// Every telemetry subject, as a stream or a subscription names it.
pub const TELEMETRY_ALL: &str = "telemetry.>";
/// Prefix put in front of the original subject of a dead-lettered payload.
pub const DEADLETTER: &str = "deadletter";
/// Every dead-letter subject.
pub const DEADLETTER_ALL: &str = "deadletter.>";

/// The JetStream stream that holds every telemetry subject, as the sink
/// creates it by default.
pub const STREAM: &str = "TELEMETRY";
/// The JetStream stream that keeps dead letters for a person to look at.
pub const DEADLETTER_STREAM: &str = "DEADLETTER";
/// The sink's durable pull consumer on [`STREAM`], by default.
pub const CONSUMER: &str = "sink";

/// How long [`STREAM`] remembers a [`HEADER_MSG_ID`]: a second message
/// with the same id inside this window is acknowledged and dropped. The
/// publisher's "nothing duplicated" rests on it: after a failure it sends
/// every unacknowledged message again with its id, and its retries come
/// within seconds of NATS answering again, far inside the window. (A copy
/// that lands later still makes no second row: the sink's tables are
/// unique on host, boot and seq.) The sink creates the stream with it, and
/// a test that creates the stream itself uses it too.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// JetStream drops a second message with the same id inside the stream's
/// duplicate window, so a publisher may retry without fear of duplicates.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
pub const HEADER_CONTENT_TYPE: &str = "Content-Type";
pub const CONTENT_TYPE_MSGPACK: &str = "application/msgpack";
/// Why the sink dead-lettered a payload, in words.
pub const HEADER_DEADLETTER_REASON: &str = "Vigia-Deadletter-Reason";

/// `telemetry.<host>.<kind>`; `host` is a host token.
pub fn telemetry(host: &str, kind: Kind) -> String {
    format!("{TELEMETRY}.{host}.{}", kind.as_str())
}

/// `cmd.<host>`: where a host's publisher takes requests.
pub fn command(host: &HostToken) -> String {
    format!("cmd.{host}")
}

/// `deadletter.<original subject>`
pub fn deadletter(original: &str) -> String {
    format!("{DEADLETTER}.{original}")
}

/// Splits `telemetry.<host>.<kind>` into its host and kind tokens, without
/// judging them: the caller decides what an unknown kind means.
pub fn split_telemetry(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix(TELEMETRY)?.strip_prefix('.')?;
    let (host, kind) = rest.split_once('.')?;
    if host.is_empty() || kind.is_empty() || kind.contains('.') {
        return None;
    }
    Some((host, kind))
}

/// `<host>.<boot>.<kind>.<seq>`: unique per sample, stable across retries.
pub fn msg_id(host: &str, boot: &str, kind: Kind, seq: u64) -> String {
    format!("{host}.{boot}.{}.{seq}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_splits_subjects() {
        let host = HostToken::parse("web-1").unwrap();
        let subject = telemetry(host.as_str(), Kind::Procs);
        assert_eq!(subject, "telemetry.web-1.procs");
        assert_eq!(split_telemetry(&subject), Some(("web-1", "procs")));
        assert_eq!(deadletter(&subject), "deadletter.telemetry.web-1.procs");
        assert_eq!(command(&host), "cmd.web-1");
    }

    #[test]
    fn rejects_other_shapes() {
        for s in [
            "telemetry",
            "telemetry.a",
            "telemetry..cpu",
            "telemetry.a.b.c",
            "x.a.cpu",
        ] {
            assert_eq!(split_telemetry(s), None, "{s}");
        }
    }

    #[test]
    fn msg_id_names_every_part() {
        assert_eq!(msg_id("a", "0f", Kind::Cpu, 7), "a.0f.cpu.7");
    }
}
