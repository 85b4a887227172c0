//! The kill path under authentication, with a real vigia-publisher: only
//! the real host answers, the audit trail names the requester the server
//! verified, and one noisy requester cannot lock out another.

mod common;

use std::time::Duration;

use async_nats::HeaderMap;
use common::{prepared, seed_file, stored, AuthStack, Probe};
use vigia_schema::identity::command_from;
use vigia_schema::{
    CommandReply, CommandRequest, Encoding, HostToken, Role, SampleBody, SignalSpec,
};
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::Child;

fn t(s: &str) -> HostToken {
    HostToken::parse(s).unwrap()
}

/// A publisher for `host` with its enrolled key.
fn publisher(stack: &AuthStack, host: &str, extra: &[&str]) -> Child {
    let key = stack.enroll(Role::Host, host);
    let seed = seed_file(stack, host, &key);
    let mut args = vec!["--nats-nkey", seed.to_str().unwrap()];
    args.extend_from_slice(extra);
    start_publisher(&stack.url(), host, &args)
}

fn kill_pid_1() -> CommandRequest {
    CommandRequest {
        action: "kill".into(),
        pid: Some(1),
        signal: Some(SignalSpec::Name("TERM".into())),
        requested_by: Some("bob@laptop".into()),
        boot: None,
    }
}

/// Asks until the publisher has subscribed (before, there are no
/// responders); the reply.
async fn ask(
    probe: &Probe,
    subject: &str,
    headers: HeaderMap,
    request: &CommandRequest,
) -> CommandReply {
    let payload = request.encode(Encoding::MessagePack);
    for _ in 0..300 {
        let sent = probe.client.request_with_headers(
            subject.to_owned(),
            headers.clone(),
            payload.clone().into(),
        );
        match tokio::time::timeout(Duration::from_secs(5), sent).await {
            Ok(Ok(message)) => return CommandReply::decode(&message.payload).unwrap(),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("no answer on {subject}");
}

#[tokio::test]
async fn a_rogue_client_can_neither_see_nor_answer_commands_and_the_audit_names_the_verified_requester(
) {
    let stack = AuthStack::start();
    let (_sink, _consumer) = prepared(&stack).await;
    let _web1 = publisher(&stack, "web-1", &[]);
    // A stolen VM's key, trying to pre-empt web-1's answers.
    let mut rogue = stack.client(Role::Host, "rogue").await;
    rogue.subscribe_refused("cmd.>").await;
    rogue.subscribe_refused("cmd.web-1").await;
    rogue.subscribe_refused("cmd.web-1.*").await;
    // The audit-erasing attack: publish web-1's next event first, with the
    // message id the real one will carry, so the stream drops the real one
    // as a duplicate. The server refuses the publish outright.
    let mut pre_empt = HeaderMap::new();
    pre_empt.insert("Nats-Msg-Id", "web-1.anyboot.event.1");
    rogue
        .client
        .publish_with_headers("telemetry.web-1.event", pre_empt, "fake".into())
        .await
        .unwrap();
    rogue.refused("publish", "telemetry.web-1.event").await;

    let alice = stack.client(Role::Operator, "alice").await;
    // The header a client could set to pose as someone else.
    let mut forged = HeaderMap::new();
    forged.insert("Nats-Request-Info", r#"{"acc":"VIGIA","user":"root"}"#);
    let reply = ask(
        &alice,
        &command_from(&t("web-1"), &t("alice")),
        forged,
        &kill_pid_1(),
    )
    .await;
    // The real host's answer: pid 1 is never signalled.
    assert!(!reply.ok, "{reply:?}");
    assert!(
        reply.error.as_deref().unwrap_or("").contains("pid 1"),
        "{reply:?}"
    );

    // A host that does not exist has no responder, and no one can fake one.
    let nobody = alice
        .client
        .request(command_from(&t("ghost"), &t("alice")), "x".into())
        .await;
    assert!(
        nobody.is_err(),
        "someone answered for a host that does not exist"
    );

    // The audit event: requested_by is the request's word, nats_user the
    // identity the server checked, whatever the header said.
    let events = loop {
        let events: Vec<_> = stored(&alice)
            .await
            .into_iter()
            .filter_map(|s| match s.body {
                SampleBody::Event(e) if s.host == "web-1" => Some(e),
                _ => None,
            })
            .collect();
        if !events.is_empty() {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The real record, the only one.
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pid, Some(1));
    assert_eq!(events[0].nats_user.as_deref(), Some("alice"));
    assert_eq!(events[0].requested_by.as_deref(), Some("bob@laptop"));
}

#[tokio::test]
async fn a_flood_from_one_operator_does_not_lock_out_another() {
    let stack = AuthStack::start();
    let (_sink, _consumer) = prepared(&stack).await;
    let _web1 = publisher(&stack, "web-1", &["--control-rate", "5"]);
    let mallory = stack.client(Role::Operator, "mallory").await;
    let alice = stack.client(Role::Operator, "alice").await;
    let subject = command_from(&t("web-1"), &t("mallory"));
    // Wait until web-1 answers at all.
    ask(&mallory, &subject, HeaderMap::new(), &kill_pid_1()).await;
    let payload: bytes::Bytes = kill_pid_1().encode(Encoding::MessagePack).into();
    let mut limited = 0;
    for _ in 0..50 {
        let reply = mallory
            .client
            .request(subject.clone(), payload.clone())
            .await
            .unwrap();
        let reply = CommandReply::decode(&reply.payload).unwrap();
        if reply
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("rate limit")
        {
            limited += 1;
        }
    }
    assert!(limited > 0, "the flood was never rate limited");
    // Alice is still served (refused for pid 1, but not by the rate limit).
    let reply = ask(
        &alice,
        &command_from(&t("web-1"), &t("alice")),
        HeaderMap::new(),
        &kill_pid_1(),
    )
    .await;
    let error = reply.error.unwrap_or_default();
    assert!(!error.starts_with("rate limit"), "{error}");
    assert!(error.contains("pid 1"), "{error}");
}
