//! Who a connection is, in the subjects it may use.
//!
//! Under authentication (vigia-auth) every connection has a role and a
//! name, and the NATS server lets it touch only subjects that carry that
//! name. Two subject shapes make the name part of the contract:
//!
//! - `cmd.<host>.<requester>`: a command whose last token is the operator
//!   who sent it. An operator may publish only on `cmd.*.<itself>`, so the
//!   publisher reads the requester from the subject, which the server has
//!   checked, never from a header or the payload a client wrote.
//! - `_INBOX.<namespace>.<name>`: each identity's reply inbox. A client
//!   sets it as its inbox prefix and may subscribe only under it, so no one
//!   reads the replies (kill answers, JetStream acks and pulled messages)
//!   meant for someone else.
//!
//! Names follow the host token rules ([`HostToken`]): safe as one subject
//! token.

use crate::host::HostToken;

/// What a connection may do; see the matrix in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A monitored VM's publisher: its own telemetry, its own commands.
    Host,
    /// vigia-sink: the stream through its consumer, dead letters.
    Sink,
    /// vigiactl for a person who may kill: commands, watching.
    Operator,
    /// Read-only: watching.
    Watcher,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Host, Role::Sink, Role::Operator, Role::Watcher];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Sink => "sink",
            Role::Operator => "operator",
            Role::Watcher => "watcher",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The namespace of this role's inboxes. Operators and watchers share
    /// one ("user"), so a person's name is unique across both.
    fn inbox_namespace(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Sink => "sink",
            Role::Operator | Role::Watcher => "user",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first token of every inbox.
pub const INBOX: &str = "_INBOX";

/// `_INBOX.<namespace>.<name>`: the inbox prefix of `name` in `role`.
/// Sinks are interchangeable workers of one consumer and share
/// `_INBOX.sink`.
pub fn inbox_prefix(role: Role, name: &HostToken) -> String {
    match role {
        Role::Sink => format!("{INBOX}.sink"),
        _ => format!("{INBOX}.{}.{name}", role.inbox_namespace()),
    }
}

/// `cmd.<host>.<requester>`: a command whose sender the server vouches for.
pub fn command_from(host: &HostToken, requester: &HostToken) -> String {
    format!("{}.{requester}", crate::subject::command(host))
}

/// The requester named by a command subject of `host`: `Some` for
/// `cmd.<host>.<requester>`, `None` for the bare `cmd.<host>` (no verified
/// sender) or anything else.
pub fn requester(subject: &str, host: &HostToken) -> Option<HostToken> {
    let rest = subject.strip_prefix(&crate::subject::command(host))?;
    HostToken::parse(rest.strip_prefix('.')?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> HostToken {
        HostToken::parse(s).unwrap()
    }

    #[test]
    fn inboxes_name_their_owner_and_operators_share_a_namespace_with_watchers() {
        assert_eq!(inbox_prefix(Role::Host, &t("web-1")), "_INBOX.host.web-1");
        assert_eq!(
            inbox_prefix(Role::Operator, &t("alice")),
            "_INBOX.user.alice"
        );
        assert_eq!(
            inbox_prefix(Role::Watcher, &t("alice")),
            "_INBOX.user.alice"
        );
        assert_eq!(inbox_prefix(Role::Sink, &t("sink-2")), "_INBOX.sink");
    }

    #[test]
    fn the_requester_is_the_last_token_of_a_command_subject_of_this_host() {
        let host = t("web-1");
        let subject = command_from(&host, &t("alice"));
        assert_eq!(subject, "cmd.web-1.alice");
        assert_eq!(requester(&subject, &host), Some(t("alice")));
        assert_eq!(requester("cmd.web-1", &host), None);
        assert_eq!(requester("cmd.web-10.alice", &host), None);
        assert_eq!(requester("cmd.web-1.a.b", &host), None);
        assert_eq!(requester("cmd.web-1.", &host), None);
    }

    #[test]
    fn roles_read_back_what_they_print() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
