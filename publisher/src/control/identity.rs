//! Who sent a request, as far as the NATS server vouches.
//!
//! Under vigia-auth an operator may publish only on `cmd.*.<itself>`, so a
//! request on `cmd.<host>.<requester>` comes from that requester: the
//! server checked it. That is what the audit trail records as the verified
//! requester (`nats_user`). Nothing a client writes counts: not the
//! payload's `requested_by` (kept as the requester's own word), and not a
//! `Nats-Request-Info` header, which any client can set on a message it
//! publishes in its own account. A request on the bare `cmd.<host>` (no
//! auth: local runs and tests) has no verified requester.

use vigia_schema::{identity, HostToken};

/// The verified requester of a request that arrived on `subject`.
pub fn verified_requester(subject: &str, host: &HostToken) -> Option<String> {
    identity::requester(subject, host).map(|r| r.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requester_comes_from_the_subject_the_server_checked() {
        let host = HostToken::parse("web-1").unwrap();
        assert_eq!(
            verified_requester("cmd.web-1.alice", &host).as_deref(),
            Some("alice")
        );
        assert_eq!(verified_requester("cmd.web-1", &host), None);
        assert_eq!(verified_requester("cmd.web-2.alice", &host), None);
    }
}
