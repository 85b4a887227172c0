//! The publisher's reading of the GCE metadata server's answer to its
//! identity token request (`vigia_publisher::gce_token::parse`): an HTTP
//! response, plain or chunked, from the network.
//!
//! Beyond "never panics": a token comes only out of a `200` answer; it is
//! three non-empty base64url parts joined by dots (it goes into the CONNECT
//! options as it is); from an answer that is not chunked it is the body
//! without the whitespace around it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_publisher::gce_token::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = parse(data) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("a token came out of UTF-8 only");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header end");
    let status = head.lines().next().unwrap_or_default();
    assert_eq!(status.split_whitespace().nth(1), Some("200"), "{status:?}");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token:?}");
    for part in parts {
        assert!(!part.is_empty(), "{token:?}");
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token:?}"
        );
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        assert_eq!(body.trim(), token);
    }
});
