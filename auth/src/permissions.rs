//! What each role may publish and subscribe to: the server enforces these,
//! vigia-auth only writes them into each user JWT.
//!
//! Everything not listed is refused (NATS permissions are allow-lists once
//! an allow is given). The JetStream API subjects are the ones the clients'
//! calls use, found by running each client against a server that logs every
//! refusal (tests/matrix.rs proves each cell):
//!
//! - A host publishes `telemetry.<itself>.>` with a reply inbox, and the
//!   stream answers the ack there: no `$JS.API` subject at all.
//! - The sink creates or updates its two streams and its consumer, pulls
//!   from it and acknowledges (`$JS.ACK`, also the progress acks).
//! - Watching is a core subscription to `telemetry.>`; `vigiactl hosts`
//!   reads the stream's subjects and last messages.

use serde::Serialize;
use vigia_schema::identity::{inbox_prefix, Role};
use vigia_schema::subject::{
    CONSUMER, DEADLETTER_ALL, DEADLETTER_STREAM, STREAM, TELEMETRY, TELEMETRY_ALL,
};
use vigia_schema::HostToken;

/// The streams and consumer the permissions name (the sink's defaults).
#[derive(Debug, Clone)]
pub struct StreamNames {
    pub telemetry: String,
    pub deadletter: String,
    pub consumer: String,
}

impl Default for StreamNames {
    fn default() -> Self {
        Self {
            telemetry: STREAM.into(),
            deadletter: DEADLETTER_STREAM.into(),
            consumer: CONSUMER.into(),
        }
    }
}

/// The `pub`, `sub` and `resp` parts of a NATS user JWT.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Permissions {
    #[serde(rename = "pub")]
    pub publish: Allow,
    #[serde(rename = "sub")]
    pub subscribe: Allow,
    /// Present for roles that answer requests: they may publish once to
    /// the reply subject of each request they received, and nowhere else.
    #[serde(rename = "resp", skip_serializing_if = "Option::is_none")]
    pub responses: Option<Responses>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Allow {
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Responses {
    pub max: u32,
    /// Nanoseconds a reply may take (the JWT's duration unit).
    pub ttl: u64,
}

/// How long a host may take to answer a command: vigiactl waits 5 s.
const REPLY_WITHIN_NANOS: u64 = 60 * 1_000_000_000;

pub fn for_identity(role: Role, name: &HostToken, streams: &StreamNames) -> Permissions {
    let inbox = format!("{}.>", inbox_prefix(role, name));
    let StreamNames {
        telemetry,
        deadletter,
        consumer,
    } = streams;
    let js = |rest: &str| format!("$JS.API.{rest}");
    // What `vigiactl hosts` reads: the stream's subjects and last messages.
    let read_stream = [
        js(&format!("STREAM.INFO.{telemetry}")),
        js(&format!("STREAM.MSG.GET.{telemetry}")),
        js(&format!("DIRECT.GET.{telemetry}.>")),
    ];
    match role {
        Role::Host => Permissions {
            publish: Allow {
                allow: vec![format!("{TELEMETRY}.{name}.>")],
            },
            subscribe: Allow {
                allow: vec![
                    vigia_schema::subject::command(name),
                    format!("{}.*", vigia_schema::subject::command(name)),
                    inbox,
                ],
            },
            responses: Some(Responses {
                max: 1,
                ttl: REPLY_WITHIN_NANOS,
            }),
        },
        Role::Sink => {
            let mut publish = vec![DEADLETTER_ALL.to_owned()];
            for stream in [telemetry, deadletter] {
                for op in ["CREATE", "UPDATE", "INFO"] {
                    publish.push(js(&format!("STREAM.{op}.{stream}")));
                }
            }
            publish.extend([
                js(&format!("CONSUMER.CREATE.{telemetry}.{consumer}")),
                js(&format!("CONSUMER.CREATE.{telemetry}.{consumer}.>")),
                js(&format!("CONSUMER.DURABLE.CREATE.{telemetry}.{consumer}")),
                js(&format!("CONSUMER.INFO.{telemetry}.{consumer}")),
                js(&format!("CONSUMER.MSG.NEXT.{telemetry}.{consumer}")),
                format!("$JS.ACK.{telemetry}.{consumer}.>"),
            ]);
            Permissions {
                publish: Allow { allow: publish },
                subscribe: Allow { allow: vec![inbox] },
                responses: None,
            }
        }
        Role::Operator => Permissions {
            publish: Allow {
                allow: [format!("cmd.*.{name}")]
                    .into_iter()
                    .chain(read_stream)
                    .collect(),
            },
            subscribe: Allow {
                allow: vec![TELEMETRY_ALL.to_owned(), inbox],
            },
            responses: None,
        },
        Role::Watcher => Permissions {
            publish: Allow {
                allow: read_stream.to_vec(),
            },
            subscribe: Allow {
                allow: vec![TELEMETRY_ALL.to_owned(), inbox],
            },
            responses: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> HostToken {
        HostToken::parse(s).unwrap()
    }

    #[test]
    fn a_host_publishes_only_its_own_telemetry_and_hears_only_its_own_commands() {
        let p = for_identity(Role::Host, &t("web-1"), &StreamNames::default());
        assert_eq!(p.publish.allow, ["telemetry.web-1.>"]);
        assert_eq!(
            p.subscribe.allow,
            ["cmd.web-1", "cmd.web-1.*", "_INBOX.host.web-1.>"]
        );
        assert_eq!(p.responses.as_ref().map(|r| r.max), Some(1));
        assert!(p.publish.allow.iter().all(|s| !s.starts_with("$JS")));
    }

    #[test]
    fn an_operator_commands_only_in_its_own_name() {
        let p = for_identity(Role::Operator, &t("alice"), &StreamNames::default());
        assert!(p.publish.allow.contains(&"cmd.*.alice".to_owned()));
        assert!(!p.publish.allow.iter().any(|s| s == "cmd.>" || s == "cmd.*"));
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("resp").is_none());
        assert_eq!(json["sub"]["allow"][0], "telemetry.>");
    }
}
