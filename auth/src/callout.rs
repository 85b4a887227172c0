//! The auth callout protocol (nats-server ≥ 2.10, ADR-26).
//!
//! The server publishes an *authorization request* JWT, signed by its own
//! key, on `$SYS.REQ.USER.AUTH` in the callout account, with the client's
//! CONNECT options, its client info (with the nonce the client signed, when
//! it signed one) and a fresh user nkey the server made for the connection.
//! The service answers with an *authorization response* JWT signed by the
//! configured issuer (an account nkey), addressed to the server (`aud` =
//! the server id) and naming that user nkey; inside it, a *user* JWT with
//! the same subject, placed in the target account (`aud`), carrying the
//! permissions. The server checks the signatures, the subject and the
//! audience, then enforces the permissions itself.

use nkeys::KeyPair;
use serde::{Deserialize, Serialize};

use crate::natsjwt::{self, JwtError};
use crate::permissions::Permissions;

/// Where the server sends authorization requests.
pub const SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// The `aud` of every authorization request.
pub const REQUEST_AUDIENCE: &str = "nats-authorization-request";

#[derive(Debug, Deserialize)]
pub struct RequestClaims {
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub exp: Option<i64>,
    pub nats: Request,
}

#[derive(Debug, Deserialize)]
pub struct Request {
    pub server_id: ServerId,
    pub user_nkey: String,
    #[serde(default)]
    pub client_info: ClientInfo,
    #[serde(default)]
    pub connect_opts: ConnectOpts,
}

#[derive(Debug, Deserialize)]
pub struct ServerId {
    pub id: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ClientInfo {
    #[serde(default)]
    pub host: Option<String>,
    /// The nonce the server sent this client, when the client signed it.
    #[serde(default)]
    pub nonce: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConnectOpts {
    #[serde(default)]
    pub nkey: Option<String>,
    /// The client's signature of the nonce (base64url).
    #[serde(default)]
    pub sig: Option<String>,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("authorization request: {0}")]
    Jwt(#[from] JwtError),
    #[error("authorization request has audience {0:?}")]
    Audience(String),
    #[error("authorization request expired")]
    Expired,
    #[error("authorization request is not signed by a server key")]
    NotAServer,
}

/// Decodes and checks a request: signed by a server key (N...), meant for
/// authorization, not expired.
pub fn decode_request(jwt: &str) -> Result<Request, RequestError> {
    let (claims, issuer): (RequestClaims, String) = natsjwt::decode(jwt)?;
    if !issuer.starts_with('N') {
        return Err(RequestError::NotAServer);
    }
    if claims.aud != REQUEST_AUDIENCE {
        return Err(RequestError::Audience(claims.aud));
    }
    if claims.exp.is_some_and(|exp| exp < natsjwt::now()) {
        return Err(RequestError::Expired);
    }
    Ok(claims.nats)
}

#[derive(Serialize)]
struct Claims<T> {
    jti: String,
    iat: i64,
    iss: String,
    sub: String,
    aud: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    nats: T,
}

#[derive(Serialize)]
struct User<'a> {
    #[serde(flatten)]
    permissions: &'a Permissions,
    /// No limit on subscriptions, data or payload beyond the server's.
    subs: i64,
    data: i64,
    payload: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    version: u8,
}

#[derive(Serialize)]
struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    version: u8,
}

/// What the service decided for one request.
pub enum Decision<'a> {
    /// Let the user in as `name` in `account` with `permissions`, until
    /// `expires` (unix seconds) if given.
    Allow {
        name: String,
        account: &'a str,
        permissions: &'a Permissions,
        expires: Option<i64>,
    },
    /// Refuse, with a reason the server logs (the client sees only
    /// "Authorization Violation").
    Deny(String),
}

/// The signed response JWT for `request`.
pub fn respond(
    request: &Request,
    decision: Decision<'_>,
    issuer: &KeyPair,
) -> Result<String, JwtError> {
    let now = natsjwt::now();
    let (jwt, error) = match decision {
        Decision::Allow {
            name,
            account,
            permissions,
            expires,
        } => {
            let user = Claims {
                jti: natsjwt::new_id(),
                iat: now,
                iss: issuer.public_key(),
                sub: request.user_nkey.clone(),
                aud: account.to_owned(),
                name: Some(name),
                exp: expires,
                nats: User {
                    permissions,
                    subs: -1,
                    data: -1,
                    payload: -1,
                    kind: "user",
                    version: 2,
                },
            };
            (Some(natsjwt::encode(&user, issuer)?), None)
        }
        Decision::Deny(reason) => (None, Some(reason)),
    };
    let response = Claims {
        jti: natsjwt::new_id(),
        iat: now,
        iss: issuer.public_key(),
        sub: request.user_nkey.clone(),
        aud: request.server_id.id.clone(),
        name: None,
        exp: None,
        nats: Response {
            jwt,
            error,
            kind: "authorization_response",
            version: 2,
        },
    };
    natsjwt::encode(&response, issuer)
}
