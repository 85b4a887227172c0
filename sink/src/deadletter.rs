//! Dead letters: payloads the sink cannot store go, raw and with the
//! reason in a header, to `deadletter.<original subject>`, where the
//! DEADLETTER stream keeps them for a week.

use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use vigia_schema::subject::{deadletter, HEADER_DEADLETTER_REASON, HEADER_MSG_ID};
use vigia_schema::text::is_unsafe;

/// The most bytes of a reason a log line shows: a decode error can quote a
/// long key, and a log line should stay a line.
pub const MAX_LOGGED_REASON: usize = 1024;

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
    // Header values are one line, and whoever reads them (`nats stream
    // view`, say) sees neither terminal escapes nor bidi overrides.
    let reason: String = reason
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect();
    headers.insert(HEADER_DEADLETTER_REASON, reason.as_str());
    headers.insert(HEADER_MSG_ID, format!("deadletter.{original_id}").as_str());
    jetstream
        .publish_with_headers(deadletter(subject), headers, payload)
        .await?
        .await?;
    Ok(())
}
