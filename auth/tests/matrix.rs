//! Every cell of the permission matrix (README.md, "Identities"), against a
//! real nats-server with vigia-auth: each allowed action works, each
//! forbidden one is refused by the server.

mod common;

use async_nats::jetstream;
use common::{prepared, AuthStack, Probe};
use futures::StreamExt as _;
use vigia_schema::identity::command_from;
use vigia_schema::subject::{CONSUMER, STREAM};
use vigia_schema::{HostToken, Role};

fn t(s: &str) -> HostToken {
    HostToken::parse(s).unwrap()
}

/// What `vigiactl hosts` asks the stream: its subjects, and the last
/// message of one.
async fn reads_the_stream_as_vigiactl_hosts_does(probe: &Probe) {
    let stream = jetstream::new(probe.client.clone())
        .get_stream(STREAM)
        .await
        .expect("stream info");
    let mut subjects = stream.info_with_subjects("telemetry.>").await.unwrap();
    let mut names = Vec::new();
    while let Some((name, _)) = subjects.next().await.transpose().unwrap() {
        names.push(name);
    }
    assert!(!names.is_empty(), "the stream lists its subjects");
    stream
        .get_last_raw_message_by_subject(&names[0])
        .await
        .expect("the last message of a subject");
}

/// Publishes on `subject` as `host` until `watching` receives it: a new
/// subscription takes effect on the server a moment after the client
/// sends it, and a test must not guess how long that is.
async fn watch_until_seen(
    host: &Probe,
    watching: &mut async_nats::Subscriber,
    subject: &str,
) -> async_nats::Message {
    let js = jetstream::new(host.client.clone());
    for _ in 0..100 {
        js.publish(subject.to_owned(), "sample".into())
            .await
            .unwrap()
            .await
            .expect("the stream acknowledges a host's own telemetry");
        if let Ok(Some(message)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), watching.next()).await
        {
            return message;
        }
    }
    panic!("{subject} never reached the subscriber");
}

#[tokio::test]
async fn a_host_publishes_its_own_telemetry_with_acks_and_nothing_else() {
    let stack = AuthStack::start();
    let (_sink, _consumer) = prepared(&stack).await;
    let mut host = stack.client(Role::Host, "web-1").await;

    // Allowed: its own subjects, through JetStream, acknowledged.
    let js = jetstream::new(host.client.clone());
    let ack = js
        .publish("telemetry.web-1.cpu", "sample".into())
        .await
        .unwrap()
        .await
        .expect("the stream acknowledges a host's own telemetry");
    assert_eq!(ack.stream, STREAM);
    js.publish("telemetry.web-1.event", "event".into())
        .await
        .unwrap()
        .await
        .expect("and its own events");

    // Refused: another host's data and events, commands, dead letters and
    // the JetStream API (it needs none of it to publish).
    host.publish_refused("telemetry.web-2.cpu").await;
    host.publish_refused("telemetry.web-2.event").await;
    host.publish_refused("cmd.web-2").await;
    host.publish_refused("cmd.web-2.web-1").await;
    host.publish_refused("deadletter.telemetry.web-1.cpu").await;
    host.publish_refused(&format!("$JS.API.STREAM.INFO.{STREAM}"))
        .await;
    host.publish_refused(&format!("$JS.API.STREAM.DELETE.{STREAM}"))
        .await;
    host.publish_refused(&format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}"))
        .await;
    host.publish_refused(&format!(
        "$JS.API.DIRECT.GET.{STREAM}.telemetry.web-2.procs"
    ))
    .await;
    host.publish_refused(&format!("$JS.API.STREAM.CREATE.{STREAM}"))
        .await;
    host.publish_refused(&format!("$JS.API.STREAM.UPDATE.{STREAM}"))
        .await;
    // Nor read anything but its own commands and inbox.
    host.subscribe_refused("telemetry.>").await;
    host.subscribe_refused("telemetry.web-1.cpu").await;
    host.subscribe_refused("cmd.>").await;
    host.subscribe_refused("cmd.web-2").await;
    host.subscribe_refused("cmd.web-2.*").await;
    host.subscribe_refused("_INBOX.>").await;
    host.subscribe_refused("_INBOX.sink.>").await;
    host.subscribe_refused("_INBOX.user.alice.>").await;
    host.subscribe_refused("_INBOX.host.web-2.>").await;
    host.subscribe_refused("deadletter.>").await;
    host.subscribe_refused("$JS.API.>").await;
}

#[tokio::test]
async fn a_host_hears_only_its_own_commands_and_answers_each_once() {
    let stack = AuthStack::start();
    let host = stack.client(Role::Host, "web-1").await;
    let mut operator = stack.client(Role::Operator, "alice").await;
    let mut commands = host.client.subscribe("cmd.web-1.*").await.unwrap();
    let bare = host.client.subscribe("cmd.web-1").await.unwrap();
    let answering = {
        let client = host.client.clone();
        tokio::spawn(async move {
            let mut subjects = Vec::new();
            while let Some(request) = commands.next().await {
                subjects.push(request.subject.to_string());
                let reply_to = request.reply.expect("a request has a reply subject");
                client.publish(reply_to, "done".into()).await.unwrap();
                client.flush().await.unwrap();
                if subjects.len() == 1 {
                    return subjects;
                }
            }
            subjects
        })
    };
    // Until the host's subscription is in place there are no responders.
    let mut answer = None;
    for _ in 0..100 {
        match tokio::time::timeout(
            std::time::Duration::from_secs(2),
            operator
                .client
                .request(command_from(&t("web-1"), &t("alice")), "kill?".into()),
        )
        .await
        {
            Ok(Ok(message)) => {
                answer = Some(message);
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    let answer = answer.expect("the operator gets the host's answer");
    assert_eq!(&answer.payload[..], b"done");
    assert_eq!(answering.await.unwrap(), ["cmd.web-1.alice"]);

    // The operator cannot use the bare subject, so nothing ever arrives
    // there without a name the server checked.
    operator.publish_refused("cmd.web-1").await;
    drop(bare);
}

#[tokio::test]
async fn the_sink_reads_the_stream_through_its_consumer_and_writes_dead_letters_only() {
    let stack = AuthStack::start();
    let (mut sink, consumer) = prepared(&stack).await;
    let host = stack.client(Role::Host, "web-1").await;
    jetstream::new(host.client.clone())
        .publish("telemetry.web-1.ram", "r".into())
        .await
        .unwrap()
        .await
        .unwrap();

    // Allowed: pull through the consumer, acknowledge, dead-letter.
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = batch.next().await.unwrap().unwrap();
    assert_eq!(message.subject.as_str(), "telemetry.web-1.ram");
    message.ack().await.expect("the sink acknowledges");
    let js = jetstream::new(sink.client.clone());
    js.publish("deadletter.telemetry.web-1.ram", "bad".into())
        .await
        .unwrap()
        .await
        .expect("the DEADLETTER stream takes the sink's dead letters");
    let mut consumer = consumer;
    let info = consumer.info().await.expect("its consumer's info");
    assert_eq!(info.num_ack_pending, 0);

    // Refused: writing telemetry, commanding, destroying or reading the
    // stream by other ways than its consumer.
    sink.publish_refused("telemetry.web-1.cpu").await;
    sink.publish_refused("cmd.web-1.sink-1").await;
    sink.publish_refused(&format!("$JS.API.STREAM.DELETE.{STREAM}"))
        .await;
    sink.publish_refused(&format!("$JS.API.STREAM.PURGE.{STREAM}"))
        .await;
    sink.publish_refused(&format!("$JS.API.CONSUMER.DELETE.{STREAM}.{CONSUMER}"))
        .await;
    sink.publish_refused(&format!("$JS.API.CONSUMER.CREATE.{STREAM}.other"))
        .await;
    sink.publish_refused(&format!("$JS.API.DIRECT.GET.{STREAM}.telemetry.web-1.cpu"))
        .await;
    sink.publish_refused("$JS.API.STREAM.MSG.GET.TELEMETRY")
        .await;
    sink.subscribe_refused("telemetry.>").await;
    sink.subscribe_refused("cmd.>").await;
    sink.subscribe_refused("_INBOX.user.alice.>").await;
}

#[tokio::test]
async fn an_operator_commands_in_its_own_name_and_watches() {
    let stack = AuthStack::start();
    let (_sink, _consumer) = prepared(&stack).await;
    let mut operator = stack.client(Role::Operator, "alice").await;
    let host = stack.client(Role::Host, "web-1").await;

    // Allowed: watching live telemetry and the stream, commanding as alice.
    let mut watching = operator.client.subscribe("telemetry.>").await.unwrap();
    let seen = watch_until_seen(&host, &mut watching, "telemetry.web-1.hello").await;
    assert_eq!(seen.subject.as_str(), "telemetry.web-1.hello");
    reads_the_stream_as_vigiactl_hosts_does(&operator).await;
    operator
        .client
        .publish("cmd.web-1.alice", "k".into())
        .await
        .unwrap();

    // Refused: commanding in another's name or with no name, writing
    // telemetry (so no forged events), the JetStream admin API, other
    // people's inboxes and the command traffic.
    operator.publish_refused("cmd.web-1.bob").await;
    operator.publish_refused("cmd.web-1").await;
    operator.publish_refused("telemetry.web-1.event").await;
    operator.publish_refused("deadletter.x").await;
    operator
        .publish_refused(&format!("$JS.API.STREAM.DELETE.{STREAM}"))
        .await;
    operator
        .publish_refused(&format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}"))
        .await;
    operator
        .publish_refused("$JS.API.STREAM.CREATE.TELEMETRY")
        .await;
    operator
        .publish_refused("$JS.API.STREAM.PURGE.TELEMETRY")
        .await;
    operator.subscribe_refused("cmd.>").await;
    operator.subscribe_refused("cmd.web-1.*").await;
    operator.subscribe_refused("_INBOX.>").await;
    operator.subscribe_refused("_INBOX.user.bob.>").await;
    operator.subscribe_refused("_INBOX.host.web-1.>").await;
}

#[tokio::test]
async fn a_watcher_only_watches() {
    let stack = AuthStack::start();
    let (_sink, _consumer) = prepared(&stack).await;
    let mut watcher = stack.client(Role::Watcher, "wendy").await;
    let host = stack.client(Role::Host, "web-1").await;

    let mut watching = watcher.client.subscribe("telemetry.>").await.unwrap();
    let seen = watch_until_seen(&host, &mut watching, "telemetry.web-1.cpu").await;
    assert_eq!(seen.subject.as_str(), "telemetry.web-1.cpu");
    reads_the_stream_as_vigiactl_hosts_does(&watcher).await;

    watcher.publish_refused("cmd.web-1.wendy").await;
    watcher.publish_refused("cmd.web-1").await;
    watcher.publish_refused("telemetry.web-1.cpu").await;
    watcher.publish_refused("deadletter.x").await;
    watcher
        .publish_refused(&format!("$JS.API.STREAM.DELETE.{STREAM}"))
        .await;
    watcher
        .publish_refused("$JS.API.STREAM.CREATE.TELEMETRY")
        .await;
    watcher
        .publish_refused("$JS.API.STREAM.PURGE.TELEMETRY")
        .await;
    watcher
        .publish_refused("$JS.API.CONSUMER.MSG.NEXT.TELEMETRY.sink")
        .await;
    watcher.subscribe_refused("cmd.>").await;
    watcher.subscribe_refused("_INBOX.>").await;
    watcher.subscribe_refused("_INBOX.host.web-1.>").await;
}
