//! The VM's instance identity token, from the GCE metadata server.
//!
//! `GET <metadata>/computeMetadata/v1/instance/service-accounts/default/identity?audience=<aud>&format=full`
//! with `Metadata-Flavor: Google`. The token is a Google-signed JWT naming
//! this instance and its project; it lasts an hour, so the publisher asks
//! for a fresh one at every connect and reconnect. Plain HTTP to a
//! link-local server: a small hand-written GET is all it takes, with the
//! answer bounded.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where the metadata server is on every GCE VM.
pub const METADATA_URL: &str = "http://metadata.google.internal";
const PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";
/// A token is ~1 KB; anything much larger is not one.
const MAX_RESPONSE: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--metadata-url {0:?}: only http://host[:port] is supported")]
    Url(String),
    #[error("metadata server {url}: {why}")]
    Fetch { url: String, why: String },
}

/// Fetches a fresh identity token for `audience`.
pub async fn fetch(metadata_url: &str, audience: &str) -> Result<String, TokenError> {
    let authority = metadata_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| TokenError::Url(metadata_url.to_owned()))?;
    let failed = |why: String| TokenError::Fetch {
        url: metadata_url.to_owned(),
        why,
    };
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let request = format!(
        "GET {PATH}?audience={}&format=full HTTP/1.1\r\nHost: {authority}\r\nMetadata-Flavor: Google\r\nConnection: close\r\n\r\n",
        percent_encode(audience)
    );
    let exchange = async {
        let mut stream = TcpStream::connect(&address).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream
            .take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| failed(format!("no answer within {TIMEOUT:?}")))?
        .map_err(|e| failed(e.to_string()))?;
    if response.len() > MAX_RESPONSE {
        return Err(failed(format!("answer longer than {MAX_RESPONSE} bytes")));
    }
    parse(&response).map_err(failed)
}

/// The body of a `200` answer, de-chunked when it is chunked: the token.
/// Public for the fuzz target (the answer comes over the network).
pub fn parse(response: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(response).map_err(|_| "answer is not UTF-8".to_owned())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("answer has no header end")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!(
            "answered {:?}",
            vigia_schema::text::truncate(status, 80)
        ));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    let token = body.trim().to_owned();
    // Three non-empty base64url parts, nothing else: it goes into the
    // CONNECT options as it is.
    let base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| base64url(p)) {
        return Err("answer is not a JWT".into());
    }
    Ok(token)
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("short chunk")?;
        out.push_str(chunk);
        body = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_or_chunked_200_gives_the_token_and_anything_else_an_error() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\na.b.c";
        assert_eq!(parse(plain).unwrap(), "a.b.c");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na.b\r\n2\r\n.c\r\n0\r\n\r\n";
        assert_eq!(parse(chunked).unwrap(), "a.b.c");
        let refused = b"HTTP/1.1 403 Forbidden\r\n\r\nno";
        assert!(parse(refused).unwrap_err().contains("403"));
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\nnot a token").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\na.b c.d").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\na..c").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_answer_parses_to_a_token_or_an_error_never_a_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            chunked in ".{0,200}",
        ) {
            let _ = parse(&bytes);
            let answer = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}");
            let _ = parse(answer.as_bytes());
        }
    }

    #[test]
    fn the_audience_is_percent_encoded() {
        assert_eq!(
            percent_encode("nats://10.0.0.2:4222"),
            "nats%3A%2F%2F10.0.0.2%3A4222"
        );
    }
}
