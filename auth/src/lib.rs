//! vigia-auth: the NATS auth callout service that gives every connection
//! an identity and only that identity's permissions.
//!
//! ```text
//! client CONNECT ──► nats-server ──$SYS.REQ.USER.AUTH──► vigia-auth
//!   (nkey + signed nonce,        (request JWT,            who is it?  enrolled nkey (registry)
//!    or GCE identity token)       server-signed)                      or GCE token (Google's keys)
//!                 ◄── enforces ◄── response JWT ◄──────── user JWT: role's permissions for that name
//! ```
//!
//! Why auth callout rather than decentralized JWTs: a GCE VM's proof is a
//! Google-signed token, which the NATS server cannot check by itself, and
//! an autoscaled VM must connect without anyone minting it credentials
//! first. With the callout the check happens at every connect (a revoked
//! key is refused at its next connect, with no revocation list to push),
//! the only secrets are the issuer seed and the service's own nkey (both on
//! the central VM), and the server still does all the enforcing.

#![forbid(unsafe_code)]

pub mod callout;
pub mod config;
pub mod gce;
pub mod natsjwt;
pub mod nkey_proof;
pub mod permissions;
pub mod registry;
pub mod server_config;
pub mod service;

use vigia_schema::{HostToken, Role};

/// Who a connection is: a role and a name (a host token for hosts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub role: Role,
    pub name: HostToken,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.role, self.name)
    }
}
