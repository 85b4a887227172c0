//! One request in, one reply and one audit record out.
//!
//! The order of the checks is the order of their cost and of their
//! importance: the rate limit first (it bounds everything after it), then
//! `--no-control`, the request's shape, the action, the signal, the pid's
//! number, what /proc says the pid is, and only then kill(2).

use std::time::Instant;

use rustix::io::Errno;
use rustix::process::{kill_process, Pid};
use vigia_schema::command::{ACTION_KILL, ACTION_WHO};
use vigia_schema::text::{truncate, Escaped};
use vigia_schema::{CommandReply, CommandRequest, Encoding, EventBody, Outcome};

use super::policy::Policy;
use super::rate::{Admission, PerRequester};
use super::signal::{self, NamedSignal};
use super::target::{self, InspectError};

/// Longest texts an event carries, in characters: what the `commands`
/// table stores. Requests come from anyone; the audit trail keeps a
/// bounded, storable record of them.
pub const MAX_ACTION: usize = 64;
pub const MAX_TEXT: usize = 255;
pub const MAX_ERROR: usize = 1024;

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The request's encoding, which the reply uses.
    pub encoding: Encoding,
    pub reply: CommandReply,
    /// The audit record; `None` for the refusals the rate limiter keeps out
    /// of the audit trail (all but the first of a burst).
    pub event: Option<EventBody>,
}

/// Which publisher answers: every reply carries the boot, so that a client
/// hearing from two machines on one host token can tell them apart, and a
/// command naming another boot is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// This run's boot id, as in every sample's envelope.
    pub boot: String,
    /// The host name the token was made from (`--host`, or the machine's).
    pub hostname: String,
}

/// Decides and acts on requests; owns the rate limiter's state.
pub struct Handler {
    policy: Policy,
    limiter: PerRequester,
    identity: Identity,
}

/// What a request that passed every check did.
enum Done {
    /// A `kill`: the process was signalled.
    Signalled,
    /// A `who`: answered with the identity, nothing else done or audited.
    Identified,
}

impl Handler {
    pub fn new(policy: Policy, per_second: u32, identity: Identity) -> Self {
        Self {
            policy,
            limiter: PerRequester::new(per_second),
            identity,
        }
    }

    /// Handles one payload. `nats_user` is the requester the server
    /// verified (identity.rs), when there is one; the rate limit counts
    /// per requester.
    pub fn handle(&mut self, payload: &[u8], nats_user: Option<String>) -> Handled {
        let encoding = Encoding::detect(payload);
        let mut event = EventBody {
            nats_user: nats_user.map(|u| clip(&u, MAX_TEXT)),
            ..EventBody::default()
        };
        let requester = event.nats_user.clone();
        let result = self.decide(payload, requester.as_deref(), &mut event);
        // `who` changes nothing and is asked before every vigiactl kill: it
        // is answered (and rate-limited) but leaves no audit record.
        let audited = !matches!(
            result,
            Err(Denial::RateLimited { first: false }) | Ok(Done::Identified)
        );
        let boot = Some(self.identity.boot.clone());
        let reply = match result {
            Ok(Done::Identified) => CommandReply {
                ok: true,
                boot,
                hostname: Some(self.identity.hostname.clone()),
                ..CommandReply::default()
            },
            Ok(Done::Signalled) => {
                event.outcome = Outcome::Ok;
                CommandReply {
                    ok: true,
                    pid: event.pid,
                    name: event.name.clone(),
                    signal: event.signal.clone(),
                    error: None,
                    boot,
                    hostname: None,
                }
            }
            Err(denial) => {
                let (outcome, error) = denial.explain(self.limiter.per_second());
                // An error may quote the request (a 1 MB string where the
                // pid goes comes back inside serde's message): the reply
                // and the audit row get the same bounded sentence, never
                // more than the table holds, whatever was sent.
                let error = truncate(&error, MAX_ERROR - '…'.len_utf8()).into_owned();
                event.outcome = outcome;
                event.error = Some(error.clone());
                CommandReply {
                    ok: false,
                    pid: event.pid,
                    name: event.name.clone(),
                    signal: None,
                    error: Some(error),
                    boot,
                    hostname: None,
                }
            }
        };
        Handled {
            encoding,
            reply,
            event: audited.then_some(event),
        }
    }

    /// Runs every check and, when all pass, sends the signal. Fills `event`
    /// with what it learns as it goes, so a refusal still records the
    /// action, pid, name and signal it got to.
    fn decide(
        &mut self,
        payload: &[u8],
        requester: Option<&str>,
        event: &mut EventBody,
    ) -> Result<Done, Denial> {
        let now = Instant::now();
        if let Admission::Refused { first } = self.limiter.admit(requester, now) {
            // The payload is not read: a flood costs no parsing.
            return Err(Denial::RateLimited { first });
        }
        let request = CommandRequest::decode(payload)
            .map_err(|e| Denial::Invalid(format!("malformed request: {e}")))?;
        event.action = clip(&request.action, MAX_ACTION);
        event.pid = request.pid;
        event.requested_by = request.requested_by.as_deref().map(|r| clip(r, MAX_TEXT));
        // Naming oneself controls nothing, so it is answered even under
        // --no-control: the operator learns which machine refuses.
        if request.action == ACTION_WHO {
            // Charged to its own allowance when it has room (rate.rs).
            self.limiter.was_who(requester, now);
            return Ok(Done::Identified);
        }
        self.policy.check_enabled().map_err(Denial::Refused)?;
        if let Some(boot) = request.boot.as_deref() {
            if boot != self.identity.boot {
                return Err(Denial::Refused(format!(
                    "this command is for boot {:?}; this publisher is boot {} ({}), \
                     another machine under the same host token",
                    clip(boot, MAX_ACTION),
                    self.identity.boot,
                    self.identity.hostname
                )));
            }
        }
        if request.action != ACTION_KILL {
            return Err(Denial::Refused(format!(
                "unknown action {:?}: the actions are \"kill\" and \"who\"",
                event.action
            )));
        }
        let NamedSignal {
            name: signal_name,
            signal,
        } = signal::resolve(request.signal.as_ref()).map_err(Denial::Invalid)?;
        event.signal = Some(signal_name.to_owned());
        let Some(pid) = request.pid else {
            return Err(Denial::Invalid(
                "malformed request: kill needs a pid".into(),
            ));
        };
        let pid = self.policy.check_pid(pid).map_err(Denial::Refused)?;
        let target = target::inspect(pid).map_err(|e| match e {
            InspectError::Missing(_) => Denial::Refused(e.to_string()),
            InspectError::Unreadable { .. } => Denial::Failed(e.to_string()),
        })?;
        event.name = Some(target.name.clone());
        self.policy.check_target(&target).map_err(Denial::Refused)?;
        // check_pid refused every pid <= 0, so this is always Some.
        let kernel_pid = Pid::from_raw(pid)
            .ok_or_else(|| Denial::Refused(format!("pid {pid} is not a process")))?;
        kill_process(kernel_pid, signal).map_err(|errno| {
            Denial::Failed(match errno {
                Errno::SRCH => format!("pid {pid} exited before it could be signalled"),
                Errno::PERM => format!(
                    "not permitted to signal pid {pid} ({}): vigia-publisher runs as uid {}",
                    target.name,
                    rustix::process::getuid().as_raw()
                ),
                other => format!("kill({pid}, SIG{signal_name}) failed: {other}"),
            })
        })?;
        // The name is whatever the process called itself and the requester
        // is the request's claim: both shown escaped, so neither can forge
        // a log line.
        tracing::info!(
            pid,
            name = %Escaped(&target.name),
            signal = signal_name,
            requested_by = %Escaped(event.requested_by.as_deref().unwrap_or("-")),
            "signalled a process on request"
        );
        Ok(Done::Signalled)
    }
}

/// Why a request was not carried out.
enum Denial {
    RateLimited { first: bool },
    Refused(String),
    Invalid(String),
    Failed(String),
}

impl Denial {
    fn explain(self, per_second: usize) -> (Outcome, String) {
        match self {
            Denial::RateLimited { .. } => (
                Outcome::Refused,
                format!("rate limit: at most {per_second} commands a second; try again shortly"),
            ),
            Denial::Refused(e) => (Outcome::Refused, e),
            Denial::Invalid(e) => (Outcome::Invalid, e),
            Denial::Failed(e) => (Outcome::Failed, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Identity {
        Identity {
            boot: "5f3a9c0d2e1b4a67".into(),
            hostname: "col.x".into(),
        }
    }

    fn handler() -> Handler {
        Handler::new(Policy::new(true, vec!["sshd".into()]), 100, me())
    }

    #[test]
    fn who_names_the_boot_and_host_name_and_is_not_audited() {
        for h in [
            &mut handler(),
            &mut Handler::new(Policy::new(false, vec![]), 100, me()),
        ] {
            let handled = h.handle(br#"{"action":"who"}"#, None);
            assert_eq!(
                handled.reply,
                CommandReply {
                    ok: true,
                    boot: Some(me().boot),
                    hostname: Some("col.x".into()),
                    ..CommandReply::default()
                }
            );
            assert_eq!(handled.event, None);
        }
    }

    #[test]
    fn a_command_for_another_boot_is_refused_and_audited() {
        let handled = handler().handle(
            br#"{"action":"kill","pid":999999999,"boot":"0000000000000000"}"#,
            None,
        );
        assert!(!handled.reply.ok);
        assert_eq!(handled.reply.boot, Some(me().boot));
        let error = handled.reply.error.unwrap();
        assert!(
            error.starts_with("this command is for boot \"0000000000000000\""),
            "{error}"
        );
        let event = handled.event.unwrap();
        assert_eq!(event.outcome, Outcome::Refused);
        assert_eq!(event.pid, Some(999_999_999));
        // Its own boot passes this check and reaches the next.
        let handled = handler().handle(
            format!(
                r#"{{"action":"kill","pid":999999999,"boot":"{}"}}"#,
                me().boot
            )
            .as_bytes(),
            None,
        );
        assert_eq!(
            handled.reply.error.as_deref(),
            Some("no process with pid 999999999")
        );
    }

    #[test]
    fn texts_from_requests_are_cut_to_what_the_table_holds() {
        let action = "x".repeat(1000);
        let by = "é".repeat(1000);
        let payload = serde_json::json!({"action": action, "requested_by": by}).to_string();
        let handled = handler().handle(payload.as_bytes(), Some("u".repeat(300)));
        let event = handled.event.unwrap();
        assert_eq!(event.action.chars().count(), MAX_ACTION);
        assert_eq!(event.requested_by.unwrap().chars().count(), MAX_TEXT);
        assert_eq!(event.nats_user.unwrap().chars().count(), MAX_TEXT);
        assert!(event.error.unwrap().chars().count() <= MAX_ERROR);
        assert_eq!(event.outcome, Outcome::Refused);
    }

    #[test]
    fn a_huge_string_where_the_pid_goes_gets_a_small_reply() {
        let huge = "9".repeat(1 << 20);
        for payload in [
            serde_json::json!({"action": "kill", "pid": huge}).to_string(),
            serde_json::json!({"action": "kill", "pid": 5, "signal": huge}).to_string(),
        ] {
            let handled = handler().handle(payload.as_bytes(), None);
            let reply = handled.reply.encode(handled.encoding);
            assert!(reply.len() < 2 * MAX_ERROR, "{} bytes", reply.len());
            let error = handled.reply.error.unwrap();
            assert!(error.len() <= MAX_ERROR && error.ends_with('…'), "{error}");
            assert_eq!(handled.event.unwrap().error, Some(error));
        }
    }

    #[test]
    fn kill_without_a_pid_is_invalid_and_names_the_signal_it_got_to() {
        let handled = handler().handle(br#"{"action":"kill","signal":9}"#, None);
        assert_eq!(handled.encoding, Encoding::Json);
        assert_eq!(
            handled.reply.error.as_deref(),
            Some("malformed request: kill needs a pid")
        );
        let event = handled.event.unwrap();
        assert_eq!(event.outcome, Outcome::Invalid);
        assert_eq!(event.signal.as_deref(), Some("KILL"));
    }

    #[test]
    fn at_one_command_a_second_a_who_leaves_the_kill_its_slot() {
        let mut h = Handler::new(Policy::new(true, vec![]), 1, me());
        assert!(h.handle(br#"{"action":"who"}"#, None).reply.ok);
        let handled = h.handle(br#"{"action":"kill","pid":999999999}"#, None);
        assert_eq!(
            handled.reply.error.as_deref(),
            Some("no process with pid 999999999"),
            "past the rate limit"
        );
    }

    #[test]
    fn refusals_beyond_the_first_of_a_burst_are_not_audited() {
        let mut h = Handler::new(Policy::new(true, vec![]), 1, me());
        let request = br#"{"action":"kill","pid":999999999}"#;
        let audited: Vec<bool> = (0..4)
            .map(|_| h.handle(request, None).event.is_some())
            .collect();
        assert_eq!(audited, [true, true, false, false]);
    }
}
