//! Requests to a publisher on `cmd.<host>` and its replies.
//!
//! A request is either JSON (so that `nats req cmd.web-1
//! '{"action":"kill","pid":1234}'` works from any shell) or a MessagePack
//! map (what `vigiactl` sends); the first byte tells which, and the reply
//! comes back in the request's encoding so that each client reads what it
//! wrote.
//!
//! ```text
//! request  {"action":"kill","pid":1234,"signal":"TERM","requested_by":"alice"}
//! reply    {"ok":true,"pid":1234,"name":"stress","signal":"TERM"}
//!          {"ok":false,"pid":1234,"error":"pid 1 is init; it is never signalled"}
//! ```

use serde::{Deserialize, Serialize};

/// Signal a process: the one action that changes anything.
pub const ACTION_KILL: &str = "kill";

/// Name yourself: every publisher listening on `cmd.<host>` answers with
/// its boot and the host name its token came from, and nothing else
/// happens. Two machines whose names reduce to one token both listen on
/// the same subject; gathering the answers to `who` is how a client learns
/// that, and which boot to name in the command it sends.
pub const ACTION_WHO: &str = "who";

/// How a request (and so its reply) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    MessagePack,
}

impl Encoding {
    /// JSON when the payload starts with `{` or white space (a JSON request
    /// is an object), MessagePack otherwise: a MessagePack map starts with
    /// 0x80–0x8f, 0xde or 0xdf, never with those bytes. An empty payload
    /// counts as JSON, the encoding a person typing a request reads.
    pub fn detect(payload: &[u8]) -> Encoding {
        match payload.first() {
            None => Encoding::Json,
            Some(b) if *b == b'{' || b.is_ascii_whitespace() => Encoding::Json,
            Some(_) => Encoding::MessagePack,
        }
    }
}

/// The signal a request names: a name (`TERM`, `SIGKILL`, `hup`) or a
/// number (`9`). Which names and numbers are accepted is the publisher's
/// call; the contract only carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalSpec {
    Number(i64),
    Name(String),
}

impl std::fmt::Display for SignalSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignalSpec::Number(n) => write!(f, "{n}"),
            SignalSpec::Name(name) => f.write_str(name),
        }
    }
}

/// A request on `cmd.<host>`. Unknown fields are ignored, as everywhere in
/// the contract.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandRequest {
    /// `kill`; anything else is refused.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// TERM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalSpec>,
    /// Who asks, for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The boot (one run of one publisher) the command is meant for; a
    /// publisher of any other boot refuses it. Absent, any publisher on
    /// the subject acts — what a request written before boots were named
    /// means, and safe only while one machine holds the host token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
}

/// The answer to a request. On success `pid`, `name` and `signal` say what
/// was signalled; on failure `error` says why, and `pid` echoes the request
/// when it had one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The boot of the publisher that answers: with two machines on one
    /// host token, it says which one this reply is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// In the answer to `who`: the host name the publisher's token was made
    /// from (`--host`, or the machine's name), so an operator can tell
    /// machines that share a token apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// Why a request or a reply could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("empty payload")]
    Empty,
    #[error("not a JSON request: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a MessagePack request: {0}")]
    MessagePack(#[from] rmp_serde::decode::Error),
}

impl CommandRequest {
    /// Reads a request in whichever encoding it came.
    pub fn decode(payload: &[u8]) -> Result<CommandRequest, CommandError> {
        decode(payload)
    }

    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        encode(self, encoding)
    }
}

impl CommandReply {
    pub fn decode(payload: &[u8]) -> Result<CommandReply, CommandError> {
        decode(payload)
    }

    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        encode(self, encoding)
    }
}

fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, CommandError> {
    if payload.is_empty() {
        return Err(CommandError::Empty);
    }
    match Encoding::detect(payload) {
        Encoding::Json => Ok(serde_json::from_slice(payload)?),
        Encoding::MessagePack => Ok(rmp_serde::from_slice(payload)?),
    }
}

fn encode<T: Serialize>(value: &T, encoding: Encoding) -> Vec<u8> {
    // Both types are plain structs of strings, numbers and options: neither
    // encoder can fail on them.
    match encoding {
        Encoding::Json => serde_json::to_vec(value).expect("a command serializes to JSON"),
        Encoding::MessagePack => {
            rmp_serde::to_vec_named(value).expect("a command serializes to MessagePack")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_documented_json_request() {
        let r = CommandRequest::decode(
            br#"{"action":"kill","pid":1234,"signal":"TERM","requested_by":"operator"}"#,
        )
        .unwrap();
        assert_eq!(r.action, "kill");
        assert_eq!(r.pid, Some(1234));
        assert_eq!(r.signal, Some(SignalSpec::Name("TERM".into())));
        assert_eq!(r.requested_by.as_deref(), Some("operator"));
        let r =
            CommandRequest::decode(br#" {"action":"kill","pid":7,"signal":9,"x":[1]}"#).unwrap();
        assert_eq!(r.signal, Some(SignalSpec::Number(9)));
    }

    #[test]
    fn writes_the_documented_json_reply() {
        let reply = CommandReply {
            ok: true,
            pid: Some(1234),
            name: Some("stress".into()),
            signal: Some("TERM".into()),
            error: None,
            boot: Some("5f3a9c0d2e1b4a67".into()),
            hostname: None,
        };
        assert_eq!(
            String::from_utf8(reply.encode(Encoding::Json)).unwrap(),
            r#"{"ok":true,"pid":1234,"name":"stress","signal":"TERM","boot":"5f3a9c0d2e1b4a67"}"#
        );
    }

    #[test]
    fn messagepack_is_a_map_and_detected() {
        let request = CommandRequest {
            action: "kill".into(),
            pid: Some(5),
            boot: Some("b00t".into()),
            ..CommandRequest::default()
        };
        let bytes = request.encode(Encoding::MessagePack);
        assert_eq!(Encoding::detect(&bytes), Encoding::MessagePack);
        let value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        assert!(value.is_map());
        assert_eq!(CommandRequest::decode(&bytes).unwrap(), request);
    }

    #[test]
    fn a_request_without_a_boot_reads_as_before_and_writes_no_boot() {
        // Wire compatibility both ways: an old client's request reads with
        // no boot, and a request without one is written as it always was.
        let r = CommandRequest::decode(br#"{"action":"kill","pid":7}"#).unwrap();
        assert_eq!(r.boot, None);
        assert_eq!(
            String::from_utf8(r.encode(Encoding::Json)).unwrap(),
            r#"{"action":"kill","pid":7}"#
        );
        let r = CommandRequest::decode(br#"{"action":"who","boot":"ab12"}"#).unwrap();
        assert_eq!(
            (r.action.as_str(), r.boot.as_deref()),
            (ACTION_WHO, Some("ab12"))
        );
    }

    #[test]
    fn bad_payloads_are_errors() {
        assert!(matches!(
            CommandRequest::decode(b""),
            Err(CommandError::Empty)
        ));
        assert!(matches!(
            CommandRequest::decode(b"{not json"),
            Err(CommandError::Json(_))
        ));
        assert!(matches!(
            CommandRequest::decode(br#"{"pid":3}"#),
            Err(CommandError::Json(_))
        ));
        assert!(matches!(
            CommandRequest::decode(b"kill 1234"),
            Err(CommandError::MessagePack(_))
        ));
        assert!(CommandRequest::decode(br#"{"action":"kill","pid":"12"}"#).is_err());
    }

    fn signal() -> impl Strategy<Value = Option<SignalSpec>> {
        proptest::option::of(prop_oneof![
            any::<i64>().prop_map(SignalSpec::Number),
            "[A-Za-z]{0,8}".prop_map(SignalSpec::Name),
        ])
    }

    proptest! {
        #[test]
        fn requests_round_trip_in_both_encodings(
            action in ".{0,10}",
            pid in any::<Option<i64>>(),
            signal in signal(),
            requested_by in proptest::option::of(".{0,20}"),
            boot in proptest::option::of("[0-9a-f]{1,16}"),
        ) {
            let r = CommandRequest { action, pid, signal, requested_by, boot };
            for encoding in [Encoding::Json, Encoding::MessagePack] {
                let bytes = r.encode(encoding);
                prop_assert_eq!(Encoding::detect(&bytes), encoding);
                prop_assert_eq!(&CommandRequest::decode(&bytes).unwrap(), &r);
            }
        }

        #[test]
        fn replies_round_trip_in_both_encodings(
            ok in any::<bool>(),
            pid in any::<Option<i64>>(),
            name in proptest::option::of(".{0,15}"),
            signal in proptest::option::of("[A-Z]{1,6}"),
            error in proptest::option::of(".{0,40}"),
            boot in proptest::option::of("[0-9a-f]{1,16}"),
            hostname in proptest::option::of(".{0,20}"),
        ) {
            let r = CommandReply { ok, pid, name, signal, error, boot, hostname };
            for encoding in [Encoding::Json, Encoding::MessagePack] {
                prop_assert_eq!(&CommandReply::decode(&r.encode(encoding)).unwrap(), &r);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = CommandRequest::decode(&bytes);
        }
    }
}
