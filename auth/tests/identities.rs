//! Who may connect: enrolled keys proven by a signed nonce; nobody else.

mod common;

use std::time::Duration;

use async_nats::{Auth, ConnectErrorKind, ConnectOptions};
use common::{AuthStack, Probe};
use nkeys::KeyPair;
use vigia_schema::Role;

async fn refused(options: ConnectOptions, stack: &AuthStack) {
    let result = options
        .connection_timeout(Duration::from_secs(10))
        .connect(stack.url())
        .await;
    let Err(error) = result else {
        panic!("the server let in a client it must refuse");
    };
    assert_eq!(
        error.kind(),
        ConnectErrorKind::AuthorizationViolation,
        "{error}"
    );
}

#[tokio::test]
async fn no_credentials_a_shared_token_or_an_unenrolled_key_is_refused() {
    let stack = AuthStack::start();
    refused(ConnectOptions::new(), &stack).await;
    refused(
        ConnectOptions::new().token("the-old-shared-token".into()),
        &stack,
    )
    .await;
    refused(
        ConnectOptions::new().user_and_password("root".into(), "root".into()),
        &stack,
    )
    .await;
    let stranger = KeyPair::new_user();
    refused(ConnectOptions::new().nkey(stranger.seed().unwrap()), &stack).await;
    let log = stack.auth_log();
    assert!(log.contains("is not enrolled"), "{log}");
    assert!(log.contains("no credentials"), "{log}");
}

#[tokio::test]
async fn claiming_an_enrolled_key_without_its_seed_is_refused() {
    let stack = AuthStack::start();
    let victim = stack.enroll(Role::Host, "web-1");
    let thief = KeyPair::new_user();
    let victim_public = victim.public_key();
    // The thief knows the public key (it is no secret) and signs the nonce
    // with its own key.
    let options = ConnectOptions::with_auth_callback(move |nonce| {
        let (public, thief) = (victim_public.clone(), thief.seed().unwrap());
        async move {
            let thief = KeyPair::from_seed(&thief).unwrap();
            let mut auth = Auth::new();
            auth.nkey = Some(public);
            auth.signature = Some(thief.sign(&nonce).unwrap());
            Ok(auth)
        }
    });
    refused(options, &stack).await;
    assert!(
        stack.auth_log().contains("does not verify"),
        "{}",
        stack.auth_log()
    );
    // The real key gets in.
    Probe::connect(&stack.url(), &victim, Role::Host, "web-1")
        .await
        .expect("the enrolled key connects");
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_its_next_connect_and_a_rotated_one_replaces_it() {
    let stack = AuthStack::start();
    let key = stack.enroll(Role::Operator, "alice");
    Probe::connect(&stack.url(), &key, Role::Operator, "alice")
        .await
        .expect("enrolled");
    assert!(stack.revoke(Role::Operator, "alice"));
    refused(ConnectOptions::new().nkey(key.seed().unwrap()), &stack).await;

    // Enrolling again issues a new key; the old one stays refused.
    let rotated = stack.enroll(Role::Operator, "alice");
    Probe::connect(&stack.url(), &rotated, Role::Operator, "alice")
        .await
        .expect("the rotated key connects");
    refused(ConnectOptions::new().nkey(key.seed().unwrap()), &stack).await;
}

/// A client that keeps reconnecting, as the publisher and the sink do, with
/// a count of its (re)connections.
async fn persistent(
    stack: &AuthStack,
    key: &KeyPair,
    role: Role,
    name: &str,
) -> (
    async_nats::Client,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let connects = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let client = ConnectOptions::new()
        .nkey(key.seed().unwrap())
        .custom_inbox_prefix(vigia_schema::identity::inbox_prefix(
            role,
            &vigia_schema::HostToken::parse(name).unwrap(),
        ))
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let counter = counter.clone();
            async move {
                if let async_nats::Event::Connected = event {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .connect(stack.url())
        .await
        .unwrap();
    (client, connects)
}

#[tokio::test]
async fn a_session_ends_at_its_limit_so_a_revoked_key_is_cut_off_live_and_the_others_come_back() {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let stack = AuthStack::start_with(&["--session-max", "3s"]);
    let kept = stack.enroll(Role::Watcher, "kept");
    let revoked = stack.enroll(Role::Watcher, "gone");
    let (kept_client, kept_connects) = persistent(&stack, &kept, Role::Watcher, "kept").await;
    let (gone_client, _) = persistent(&stack, &revoked, Role::Watcher, "gone").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while kept_client.connection_state() != async_nats::connection::State::Connected
        || gone_client.connection_state() != async_nats::connection::State::Connected
    {
        assert!(
            Instant::now() < deadline,
            "the two watchers never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Revoked while connected: no NATS restart, no reconnect of its own.
    assert!(stack.revoke(Role::Watcher, "gone"));

    // Past the session limit the server ends both sessions; the kept key
    // proves itself again and is back, the revoked one stays out.
    let deadline = Instant::now() + Duration::from_secs(20);
    while kept_connects.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the kept watcher was not re-authorized after its session ended: {}",
            stack.auth_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        kept_client.connection_state(),
        async_nats::connection::State::Connected
    );
    assert_ne!(
        gone_client.connection_state(),
        async_nats::connection::State::Connected,
        "the revoked key kept its session past the limit"
    );
    let log = stack.auth_log();
    assert!(
        log.matches("watcher:kept").count() >= 2,
        "the kept watcher was authorized only once: {log}"
    );
    assert!(log.contains("is not enrolled (or was revoked)"), "{log}");
}
