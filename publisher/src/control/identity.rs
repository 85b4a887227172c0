//! Who sent a request, as far as the NATS server says.
//!
//! A plain NATS message carries nothing about its sender. When the request
//! crosses accounts through a service import with `share: true`, the server
//! adds a `Nats-Request-Info` header, a JSON object describing the
//! requester's connection; its `user` is the NATS user that the audit trail
//! records. Anything the request itself claims goes in `requested_by`
//! instead: that is the requester's word, this is the server's.

use async_nats::HeaderMap;

pub const HEADER_REQUEST_INFO: &str = "Nats-Request-Info";

/// The requester's NATS user, when the server passed it on.
pub fn nats_user(headers: Option<&HeaderMap>) -> Option<String> {
    let info = headers?.get(HEADER_REQUEST_INFO)?;
    let value: serde_json::Value = serde_json::from_str(info.as_str()).ok()?;
    value
        .get("user")
        .and_then(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_user_of_shared_request_info() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER_REQUEST_INFO,
            r#"{"acc":"OPS","rtt":"1ms","user":"alice","name":"vigiactl"}"#,
        );
        assert_eq!(nats_user(Some(&headers)).as_deref(), Some("alice"));
    }

    #[test]
    fn absent_or_unreadable_info_is_no_user() {
        assert_eq!(nats_user(None), None);
        let mut headers = HeaderMap::new();
        assert_eq!(nats_user(Some(&headers)), None);
        headers.insert(HEADER_REQUEST_INFO, "not json");
        assert_eq!(nats_user(Some(&headers)), None);
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_REQUEST_INFO, r#"{"acc":"OPS","user":""}"#);
        assert_eq!(nats_user(Some(&headers)), None);
    }
}
