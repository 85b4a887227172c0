//! `vigiactl kill`: one machine signalled, one line out, an exit code a
//! script can branch on.
//!
//! Two machines whose names reduce to one host token both listen on
//! `cmd.<host>`. So kill first asks `who` and gathers every answer for a
//! moment ([`gather::WHO_WINDOW`]): one boot answers, and the kill is sent
//! for that boot; two or more, and nothing is sent until the operator names
//! one with `--boot`. The kill itself names its boot, so a publisher of any
//! other boot refuses it even if it answered `who` too late to be counted.
//!
//! The request goes as MessagePack, the encoding the contract prefers
//! between programs (a person with `nats req` sends JSON; the publisher
//! answers each in kind).

use std::time::Duration;

use vigia_schema::command::{ACTION_KILL, ACTION_WHO};
use vigia_schema::text::Escaped;
use vigia_schema::{subject, CommandReply, CommandRequest, HostToken, SignalSpec};

use crate::args::KillArgs;
use crate::connect::connect;
use crate::gather::{self, Answer, Silence, WHO_WINDOW};

/// What came of a kill.
#[derive(Debug, Clone, PartialEq)]
pub enum KillOutcome {
    Signalled(CommandReply),
    Refused {
        host: String,
        reply: CommandReply,
    },
    /// More than one publisher holds the host token and no `--boot` chose
    /// one: nothing was sent. Their answers to `who`.
    Shared {
        host: String,
        publishers: Vec<CommandReply>,
    },
    /// No answer: the host is down or unknown, NATS is away, or the
    /// arguments could not be sent at all.
    NoAnswer(String),
}

impl KillOutcome {
    /// 0 signalled, 1 refused (by the publisher, or here for a shared
    /// host), 2 no answer.
    pub fn exit_code(&self) -> u8 {
        match self {
            KillOutcome::Signalled(_) => 0,
            KillOutcome::Refused { .. } | KillOutcome::Shared { .. } => 1,
            KillOutcome::NoAnswer(_) => 2,
        }
    }

    /// The one line printed for the operator. Every text in a reply comes
    /// from whoever answered on `cmd.<host>`: shown escaped.
    pub fn line(&self) -> String {
        match self {
            KillOutcome::Signalled(r) => format!(
                "signalled pid {} ({}) with SIG{}",
                r.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                Escaped(r.name.as_deref().unwrap_or("?")),
                Escaped(r.signal.as_deref().unwrap_or("?")),
            ),
            KillOutcome::Refused { host, reply } => format!(
                "refused by {}: {}",
                Escaped(host),
                Escaped(reply.error.as_deref().unwrap_or("no reason given"))
            ),
            KillOutcome::Shared { host, publishers } => {
                let each: Vec<String> = publishers
                    .iter()
                    .map(|p| {
                        format!(
                            "boot {} ({})",
                            Escaped(p.boot.as_deref().unwrap_or("?")),
                            Escaped(p.hostname.as_deref().unwrap_or("?"))
                        )
                    })
                    .collect();
                format!(
                    "refused: {} publishers share host {}: {}; name one with --boot; nothing was sent",
                    publishers.len(),
                    Escaped(host),
                    each.join(", ")
                )
            }
            KillOutcome::NoAnswer(why) => format!("no answer: {}", Escaped(why)),
        }
    }
}

pub async fn run(args: &KillArgs) -> KillOutcome {
    let host = match HostToken::parse(&args.host) {
        Ok(host) => host,
        Err(e) => return KillOutcome::NoAnswer(format!("--host: {e}")),
    };
    let mut request = CommandRequest {
        action: ACTION_KILL.to_owned(),
        pid: Some(args.pid),
        signal: Some(signal_spec(&args.signal)),
        requested_by: Some(args.requested_by.clone().unwrap_or_else(default_requester)),
        boot: args.boot.clone(),
    };
    let acting_as = match crate::connect::acting_as(&args.nats) {
        Ok(name) => name,
        Err(e) => return KillOutcome::NoAnswer(e.to_string()),
    };
    let client = match connect(&args.nats).await {
        Ok(client) => client,
        Err(e) => return KillOutcome::NoAnswer(e.to_string()),
    };
    // With an enrolled key the requests go in this operator's name, which
    // the server checks and the host records as the verified requester.
    let subject = match &acting_as {
        Some(name) => vigia_schema::identity::command_from(&host, name),
        None => subject::command(&host),
    };
    if request.boot.is_none() {
        match choose_boot(&client, &host, &subject, args.timeout).await {
            Ok(boot) => request.boot = boot,
            Err(outcome) => return outcome,
        }
    }
    request_reply(&client, &host, &subject, &request, args.timeout).await
}

/// The boot to send the kill to, from the answers to `who`: the one
/// publisher's boot; `None` for one publisher too old to name its boot
/// (the kill then goes as it always did). Two or more, and the outcome is
/// [`KillOutcome::Shared`].
pub async fn choose_boot(
    client: &async_nats::Client,
    host: &HostToken,
    subject: &str,
    timeout: Duration,
) -> Result<Option<String>, KillOutcome> {
    let who = CommandRequest {
        action: ACTION_WHO.to_owned(),
        ..CommandRequest::default()
    };
    let answers = gather::all(client, subject, &who, timeout, WHO_WINDOW)
        .await
        .map_err(|silence| no_answer(host, subject, timeout, &silence, &[]))?;
    let replies: Vec<CommandReply> = answers.iter().filter_map(|a| a.clone().ok()).collect();
    // One entry per boot (a publisher answers once, but count machines, not
    // messages); answers without a boot come from publishers older than
    // `who`, one machine each.
    let (mut named, unnamed): (Vec<CommandReply>, Vec<CommandReply>) =
        replies.into_iter().partition(|r| r.boot.is_some());
    named.sort_by(|a, b| a.boot.cmp(&b.boot));
    named.dedup_by(|a, b| a.boot == b.boot);
    match (named.len(), unnamed.len()) {
        (1, 0) if named[0].ok => Ok(named[0].boot.clone()),
        // A refusal (the rate limit, say) says why better than anything.
        (1, 0) => Err(KillOutcome::Refused {
            host: host.to_string(),
            reply: named.remove(0),
        }),
        (0, 1) => Ok(None),
        (0, 0) => Err(no_answer(
            host,
            subject,
            timeout,
            &Silence::TimedOut,
            &answers,
        )),
        _ => Err(KillOutcome::Shared {
            host: host.to_string(),
            publishers: named.into_iter().chain(unnamed).collect(),
        }),
    }
}

/// Sends `request` to `host` and reads the answer of the boot it names
/// within `timeout`.
pub async fn request_reply(
    client: &async_nats::Client,
    host: &HostToken,
    subject: &str,
    request: &CommandRequest,
    timeout: Duration,
) -> KillOutcome {
    match gather::from_boot(client, subject, request, timeout).await {
        Ok((reply, _)) if reply.ok => KillOutcome::Signalled(reply),
        Ok((reply, _)) => KillOutcome::Refused {
            host: host.to_string(),
            reply,
        },
        Err((silence, others)) => {
            let mut outcome = no_answer(host, subject, timeout, &silence, &others);
            if let (KillOutcome::NoAnswer(why), Some(boot)) = (&mut outcome, &request.boot) {
                if !others.is_empty() {
                    why.push_str(&format!(
                        "; the publisher of boot {boot} did not answer, {} other(s) on {subject} did",
                        others.len()
                    ));
                }
            }
            outcome
        }
    }
}

/// Why nothing usable came back, for the operator.
fn no_answer(
    host: &HostToken,
    subject: &str,
    timeout: Duration,
    silence: &Silence,
    answers: &[Answer],
) -> KillOutcome {
    if let Some(Err(unreadable)) = answers.iter().find(|a| a.is_err()) {
        return KillOutcome::NoAnswer(format!(
            "{host} answered something unreadable: {unreadable}"
        ));
    }
    KillOutcome::NoAnswer(match silence {
        Silence::NoResponders => {
            format!("no publisher listens on {subject} (host down or unknown)")
        }
        Silence::TimedOut => format!(
            "{host} did not answer within {} (publisher down or host unknown)",
            humantime::format_duration(timeout)
        ),
        Silence::Failed(e) => format!("request to {subject} failed: {e}"),
    })
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
            ..CommandReply::default()
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
        let shared = KillOutcome::Shared {
            host: "col".into(),
            publishers: ["a1", "b2"]
                .iter()
                .map(|boot| CommandReply {
                    ok: true,
                    boot: Some((*boot).into()),
                    hostname: Some(format!("col.{boot}\u{202e}")),
                    ..CommandReply::default()
                })
                .collect(),
        };
        assert_eq!(
            shared.line(),
            r"refused: 2 publishers share host col: boot a1 (col.a1\u{202e}), boot b2 (col.b2\u{202e}); name one with --boot; nothing was sent"
        );
        assert_eq!(shared.exit_code(), 1);
    }

    #[test]
    fn the_requester_names_a_user() {
        assert!(!default_requester().is_empty());
    }
}
