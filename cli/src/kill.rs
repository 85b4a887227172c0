//! `vigiactl kill`: one request on `cmd.<host>`, one line out, an exit code
//! a script can branch on.
//!
//! The request goes as MessagePack, the encoding the contract prefers
//! between programs (a person with `nats req` sends JSON; the publisher
//! answers each in kind).

use std::time::Duration;

use async_nats::RequestErrorKind;
use vigia_schema::{subject, CommandReply, CommandRequest, Encoding, HostToken, SignalSpec};

use crate::args::KillArgs;
use crate::connect::connect;

/// What came of a kill.
#[derive(Debug, Clone, PartialEq)]
pub enum KillOutcome {
    Signalled(CommandReply),
    Refused {
        host: String,
        reply: CommandReply,
    },
    /// No answer: the host is down or unknown, NATS is away, or the
    /// arguments could not be sent at all.
    NoAnswer(String),
}

impl KillOutcome {
    /// 0 signalled, 1 refused, 2 no answer.
    pub fn exit_code(&self) -> u8 {
        match self {
            KillOutcome::Signalled(_) => 0,
            KillOutcome::Refused { .. } => 1,
            KillOutcome::NoAnswer(_) => 2,
        }
    }

    /// The one line printed for the operator.
    pub fn line(&self) -> String {
        match self {
            KillOutcome::Signalled(r) => format!(
                "signalled pid {} ({}) with SIG{}",
                r.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                r.name.as_deref().unwrap_or("?"),
                r.signal.as_deref().unwrap_or("?"),
            ),
            KillOutcome::Refused { host, reply } => format!(
                "refused by {host}: {}",
                reply.error.as_deref().unwrap_or("no reason given")
            ),
            KillOutcome::NoAnswer(why) => format!("no answer: {why}"),
        }
    }
}

pub async fn run(args: &KillArgs) -> KillOutcome {
    let host = match HostToken::parse(&args.host) {
        Ok(host) => host,
        Err(e) => return KillOutcome::NoAnswer(format!("--host: {e}")),
    };
    let request = CommandRequest {
        action: vigia_schema::command::ACTION_KILL.to_owned(),
        pid: Some(args.pid),
        signal: Some(signal_spec(&args.signal)),
        requested_by: Some(args.requested_by.clone().unwrap_or_else(default_requester)),
    };
    let acting_as = match crate::connect::acting_as(&args.nats) {
        Ok(name) => name,
        Err(e) => return KillOutcome::NoAnswer(e.to_string()),
    };
    let client = match connect(&args.nats).await {
        Ok(client) => client,
        Err(e) => return KillOutcome::NoAnswer(e.to_string()),
    };
    // With an enrolled key the request goes in this operator's name, which
    // the server checks and the host records as the verified requester.
    let subject = match &acting_as {
        Some(name) => vigia_schema::identity::command_from(&host, name),
        None => subject::command(&host),
    };
    request_on(&client, &host, subject, &request, args.timeout).await
}

/// Sends `request` to `host` and reads the answer within `timeout`.
pub async fn request_reply(
    client: &async_nats::Client,
    host: &HostToken,
    request: &CommandRequest,
    timeout: Duration,
) -> KillOutcome {
    request_on(client, host, subject::command(host), request, timeout).await
}

/// Sends `request` for `host` on `subject` (bare, or naming the requester).
pub async fn request_on(
    client: &async_nats::Client,
    host: &HostToken,
    subject: String,
    request: &CommandRequest,
    timeout: Duration,
) -> KillOutcome {
    let payload = request.encode(Encoding::MessagePack);
    let answer =
        tokio::time::timeout(timeout, client.request(subject.clone(), payload.into())).await;
    let message = match answer {
        Err(_) => {
            return KillOutcome::NoAnswer(format!(
                "{host} did not answer within {} (publisher down or host unknown)",
                humantime::format_duration(timeout)
            ))
        }
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
            return KillOutcome::NoAnswer(format!(
                "no publisher listens on {subject} (host down or unknown)"
            ))
        }
        Ok(Err(e)) => return KillOutcome::NoAnswer(format!("request to {subject} failed: {e}")),
        Ok(Ok(message)) => message,
    };
    match CommandReply::decode(&message.payload) {
        Ok(reply) if reply.ok => KillOutcome::Signalled(reply),
        Ok(reply) => KillOutcome::Refused {
            host: host.to_string(),
            reply,
        },
        Err(e) => KillOutcome::NoAnswer(format!("{host} answered something unreadable: {e}")),
    }
}

/// A number stays a number, so that the publisher judges it as one.
fn signal_spec(text: &str) -> SignalSpec {
    match text.trim().parse::<i64>() {
        Ok(n) => SignalSpec::Number(n),
        Err(_) => SignalSpec::Name(text.trim().to_owned()),
    }
}

/// `$USER@<host name>`, so the audit trail says who and from where.
fn default_requester() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    match std::fs::read_to_string("/proc/sys/kernel/hostname") {
        Ok(name) if !name.trim().is_empty() => format!("{user}@{}", name.trim()),
        _ => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_keep_numbers_as_numbers() {
        assert_eq!(signal_spec("9"), SignalSpec::Number(9));
        assert_eq!(signal_spec("KILL"), SignalSpec::Name("KILL".into()));
        assert_eq!(signal_spec(" hup "), SignalSpec::Name("hup".into()));
    }

    #[test]
    fn lines_and_exit_codes() {
        let ok = KillOutcome::Signalled(CommandReply {
            ok: true,
            pid: Some(1234),
            name: Some("sleep".into()),
            signal: Some("TERM".into()),
            error: None,
        });
        assert_eq!(ok.line(), "signalled pid 1234 (sleep) with SIGTERM");
        assert_eq!(ok.exit_code(), 0);
        let refused = KillOutcome::Refused {
            host: "web-1".into(),
            reply: CommandReply {
                ok: false,
                pid: Some(1),
                error: Some("pid 1 is init; it is never signalled".into()),
                ..CommandReply::default()
            },
        };
        assert_eq!(
            refused.line(),
            "refused by web-1: pid 1 is init; it is never signalled"
        );
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(KillOutcome::NoAnswer("x".into()).exit_code(), 2);
    }

    #[test]
    fn the_requester_names_a_user() {
        assert!(!default_requester().is_empty());
    }
}
