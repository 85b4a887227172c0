//! Dead letters: payloads the sink cannot store go, raw and with the
//! reason in a header, to `deadletter.<original subject>`, where the
//! DEADLETTER stream keeps them for a week.

use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use vigia_schema::subject::{deadletter, HEADER_DEADLETTER_REASON, HEADER_MSG_ID};
use vigia_schema::text::{is_unsafe, truncate};

/// Longest reason a dead letter carries, before escaping.
const MAX_REASON_BYTES: usize = 2_048;

/// Publishes one dead letter and waits for the stream to take it.
/// `original_id` names the original message (its stream and sequence), so a
/// dead letter sent again after a crash is stored once.
pub async fn publish(
    jetstream: &Context,
    subject: &str,
    original_id: &str,
    payload: bytes::Bytes,
    reason: &str,
) -> Result<(), async_nats::Error> {
    let mut headers = HeaderMap::new();
    // Header values are one line, and whoever reads them (`nats sub`, a
    // log) must not be fooled by text from the wire. Reasons are escaped
    // where they are made (so a backslash is not doubled twice here); this
    // only makes sure, and cuts them so a reason never grows with what a
    // client sent.
    let reason: String = truncate(reason, MAX_REASON_BYTES)
        .chars()
        .flat_map(|c| {
            let escaped = is_unsafe(c).then(|| c.escape_unicode());
            let plain = (!is_unsafe(c)).then_some(c);
            escaped.into_iter().flatten().chain(plain)
        })
        .collect();
    headers.insert(HEADER_DEADLETTER_REASON, reason.as_str());
    headers.insert(HEADER_MSG_ID, format!("deadletter.{original_id}").as_str());
    jetstream
        .publish_with_headers(deadletter(subject), headers, payload)
        .await?
        .await?;
    Ok(())
}
