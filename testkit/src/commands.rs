//! Commands to publishers, from a test's side: asking every publisher of a
//! token, and reading back what they audited.

use std::time::Duration;

use futures::StreamExt as _;
use vigia_schema::{CommandReply, CommandRequest, Encoding, Outcome, SampleBody};

use crate::telemetry::stored_samples;

/// Sends `request` on `subject` once and gathers the replies until `count`
/// have come, each within 5 s (several publishers answer one request).
pub async fn gather(
    client: &async_nats::Client,
    subject: &str,
    request: &CommandRequest,
    count: usize,
) -> Vec<CommandReply> {
    let mut replies = send(client, subject, request).await;
    let mut got = Vec::new();
    while got.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .expect("every publisher answers within 5 s")
            .expect("the reply subscription ends only when dropped");
        got.push(CommandReply::decode(&message.payload).expect("a reply of the contract"));
    }
    got
}

/// The answers to `who` on `cmd.<token>` once `count` publishers answer it
/// (they subscribe a moment after they start, so it asks again until they
/// do, for up to 10 s), sorted by host name.
pub async fn who(client: &async_nats::Client, token: &str, count: usize) -> Vec<CommandReply> {
    let request = CommandRequest {
        action: "who".into(),
        ..CommandRequest::default()
    };
    let subject = format!("cmd.{token}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut answers = send(client, &subject, &request).await;
        let mut replies = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), answers.next()).await
        {
            if let Ok(reply) = CommandReply::decode(&message.payload) {
                replies.push(reply);
            }
        }
        if replies.len() >= count {
            replies.sort_by(|a, b| a.hostname.cmp(&b.hostname));
            return replies;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} publishers answer on {subject}",
            replies.len()
        );
    }
}

/// The boot and outcome of each of the first `count` event samples stored
/// for host `token`, in the order they were stored.
pub async fn event_outcomes(
    client: &async_nats::Client,
    token: &str,
    count: usize,
) -> Vec<(String, Outcome)> {
    let subject = format!("telemetry.{token}.event");
    stored_samples(client, &subject, count, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|s| match s.body {
            SampleBody::Event(e) => (s.boot, e.outcome),
            other => panic!("not an event on {subject}: {other:?}"),
        })
        .collect()
}

async fn send(
    client: &async_nats::Client,
    subject: &str,
    request: &CommandRequest,
) -> async_nats::Subscriber {
    let inbox = client.new_inbox();
    let replies = client
        .subscribe(inbox.clone())
        .await
        .expect("subscribing to an inbox");
    client
        .publish_with_reply(
            subject.to_owned(),
            inbox,
            request.encode(Encoding::MessagePack).into(),
        )
        .await
        .expect("publishing a request");
    replies
}
