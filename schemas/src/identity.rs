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

/// Why a credentials file was refused. Never quotes the file: it is a
/// secret, and a wrong one may still be someone's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("not an nkey seed ({0})")]
    NotASeed(String),
    #[error("an nkey seed, but of {0} key, not of a user key (SU...)")]
    NotAUser(&'static str),
}

/// Reads a credentials file (`vigiactl enroll` writes them): one nkey seed
/// of a user key, the standard format every NATS client takes (`nats
/// --nkey`, nats-py's `nkeys_seed=`). Whitespace around it is ignored,
/// nothing else is. Returns the seed, checked, for the client to sign the
/// server's nonce with; the publisher, the sink, vigiactl and vigia-auth
/// (its own service key) all read their keys through this.
pub fn parse_seed(text: &str) -> Result<String, SeedError> {
    let seed = text.trim();
    let key = nkeys::KeyPair::from_seed(seed).map_err(|e| SeedError::NotASeed(e.to_string()))?;
    match key.key_pair_type() {
        nkeys::KeyPairType::User => Ok(seed.to_owned()),
        nkeys::KeyPairType::Account => Err(SeedError::NotAUser("an account")),
        nkeys::KeyPairType::Server => Err(SeedError::NotAUser("a server")),
        nkeys::KeyPairType::Operator => Err(SeedError::NotAUser("an operator")),
        nkeys::KeyPairType::Cluster => Err(SeedError::NotAUser("a cluster")),
        _ => Err(SeedError::NotAUser("another kind of")),
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
    fn a_credentials_file_is_one_user_seed_and_errors_never_quote_it() {
        let key = nkeys::KeyPair::new_user();
        let seed = key.seed().unwrap();
        assert_eq!(parse_seed(&format!("\n {seed}\n\n")), Ok(seed.clone()));
        let account = nkeys::KeyPair::new_account().seed().unwrap();
        assert_eq!(parse_seed(&account), Err(SeedError::NotAUser("an account")));
        for bad in [
            "",
            "SUAAAA",
            &seed[..seed.len() - 1],
            &format!("{seed} # mine"),
        ] {
            let e = parse_seed(bad).unwrap_err().to_string();
            assert!(e.starts_with("not an nkey seed"), "{e}");
            assert!(!e.contains(&seed[2..20]), "the error quotes the seed: {e}");
        }
        // A public key is not a seed.
        assert!(parse_seed(&key.public_key()).is_err());
    }

    #[test]
    fn roles_read_back_what_they_print() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
