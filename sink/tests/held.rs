//! Held messages stay with the sink past the consumer's ack wait for as
//! long as they are kept alive, and go back to the stream once they are
//! not (a dead sink). Against a private nats-server, with a 2 s ack wait.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::stream;
use futures::StreamExt;
use vigia_sink::held::Held;
use vigia_testkit::NatsServer;

const ACK_WAIT: Duration = Duration::from_secs(2);

/// What a pull of up to 5 messages gets within 1 s.
async fn fetch(consumer: &PullConsumer) -> Vec<async_nats::jetstream::Message> {
    consumer
        .fetch()
        .max_messages(5)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap()
        .map(|m| m.unwrap())
        .collect()
        .await
}

async fn info(consumer: &mut PullConsumer) -> (usize, usize) {
    let info = consumer.info().await.unwrap();
    (info.num_ack_pending, info.num_redelivered)
}

#[tokio::test]
async fn kept_alive_messages_outlast_the_ack_wait() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "HELD".into(),
        subjects: vec!["held.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..5 {
        js.publish(format!("held.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut consumer: PullConsumer = js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some("c".into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                ..Default::default()
            },
            "HELD",
        )
        .await
        .unwrap();
    let messages: Vec<_> = consumer
        .fetch()
        .max_messages(5)
        .messages()
        .await
        .unwrap()
        .map(|m| m.unwrap())
        .collect()
        .await;
    assert_eq!(messages.len(), 5);

    let held = Held::default();
    let id = held.hold(&messages);
    assert_eq!(held.len(), 5);
    // Three ack waits, kept alive four times a wait: nothing is handed out
    // again, even to a pull that asks for it.
    let during = async {
        tokio::time::sleep(3 * ACK_WAIT).await;
        fetch(&consumer).await
    };
    let again = tokio::select! {
        never = held.keep_alive(&client, ACK_WAIT / 4) => match never {},
        again = during => again,
    };
    assert_eq!(again.len(), 0, "redelivered while kept alive");
    assert_eq!(info(&mut consumer).await, (5, 0), "(pending, redelivered)");

    // No longer kept alive (a dead sink): the ack wait hands them out again.
    held.let_go(id);
    assert!(held.is_empty());
    tokio::time::sleep(2 * ACK_WAIT).await;
    let again = fetch(&consumer).await;
    assert_eq!(again.len(), 5, "redelivered once no longer kept alive");
    assert!(again.iter().all(|m| m.info().unwrap().delivered == 2));
}
