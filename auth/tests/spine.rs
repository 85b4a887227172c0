//! The spine with authentication on: publishers and sinks with enrolled
//! keys, vigia-auth in front of a real nats-server, MariaDB behind. The
//! same promise as sink/tests/spine.rs — every sample each publisher
//! stamped reaches MySQL exactly once — and what the auth service's own
//! outages must not break.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{prepared, seed_file, stored, AuthStack};
use sqlx::{MySqlPool, Row as _};
use vigia_schema::{Role, SampleBody};
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::{binary, Child, TestDatabase};

const TABLES: [(&str, &str); 3] = [
    ("cpu", "cpu_samples"),
    ("ram", "ram_samples"),
    ("procs", "procs_snapshots"),
];

struct AuthSpine {
    stack: AuthStack,
    db: TestDatabase,
    /// The streams exist before any publisher or sink starts: a sink
    /// killed before it got to create them (its migrations come first, and
    /// this machine is shared) must not leave the publishers with nowhere
    /// to publish when the test reads the byes.
    _streams: common::Probe,
}

impl AuthSpine {
    async fn new(prefix: &str) -> Self {
        let stack = AuthStack::start();
        let (streams, _consumer) = prepared(&stack).await;
        Self {
            stack,
            db: TestDatabase::new(prefix),
            _streams: streams,
        }
    }

    fn sink(&self) -> Child {
        let key = self.stack.enroll(Role::Sink, "sink-1");
        let seed = seed_file(&self.stack, "sink-1", &key);
        let url = self.stack.url();
        let db = self.db.url();
        Child::spawn(
            binary("vigia-sink"),
            &[
                "--nats-url",
                &url,
                "--database-url",
                &db,
                "--nats-nkey",
                seed.to_str().unwrap(),
                "--stream-max-bytes",
                "67108864",
            ],
            &[("RUST_LOG", "warn")],
        )
    }

    fn publisher(&self, host: &str) -> Child {
        let key = self.stack.enroll(Role::Host, host);
        let seed = seed_file(&self.stack, host, &key);
        start_publisher(
            &self.stack.url(),
            host,
            &["--nats-nkey", seed.to_str().unwrap()],
        )
    }
}

fn stop_all(publishers: &mut [Child]) {
    for p in publishers.iter() {
        p.signal("TERM");
    }
    for p in publishers.iter_mut() {
        let status = p
            .wait_for_exit(Duration::from_secs(15))
            .expect("publisher exits after SIGTERM");
        assert!(status.success(), "publisher exited with {status}");
    }
}

async fn pool(url: &str) -> MySqlPool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match MySqlPool::connect(url).await {
            Ok(pool) => return pool,
            Err(e) if Instant::now() > deadline => panic!("connecting to {url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// host → kind → the last seq its bye announced, read from the stream as
/// an operator.
async fn byes(stack: &AuthStack) -> BTreeMap<String, BTreeMap<String, u64>> {
    let operator = stack.client(Role::Operator, "checker").await;
    let mut out = BTreeMap::new();
    for sample in stored(&operator).await {
        if let SampleBody::Bye(bye) = sample.body {
            assert_eq!(bye.dropped, 0, "{} dropped samples", sample.host);
            assert!(
                out.insert(sample.host.clone(), bye.last_seq).is_none(),
                "two byes from {}",
                sample.host
            );
        }
    }
    out
}

/// Every seq 1..=last of each kind of each host in MySQL, once.
async fn assert_complete(pool: &MySqlPool, stack: &AuthStack, hosts: &[&str]) {
    let last = byes(stack).await;
    assert_eq!(
        last.keys().map(String::as_str).collect::<Vec<_>>(),
        hosts,
        "a bye from each host"
    );
    let deadline = Instant::now() + Duration::from_secs(150);
    for host in hosts {
        for (kind, table) in TABLES {
            let n = last[*host].get(kind).copied().unwrap_or(0);
            assert!(n >= 3, "{host} stamped only {n} {kind} samples");
            let expected: Vec<u64> = (1..=n).collect();
            loop {
                let got: Vec<u64> = sqlx::query(&format!(
                    "SELECT seq FROM {table} WHERE host = ? ORDER BY boot, seq"
                ))
                .bind(host)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<u64, _>("seq"))
                .collect();
                if got == expected {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{host} {kind}: expected seq 1..={n}, MySQL has {} rows",
                    got.len()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hosts_arrive_complete_with_auth_on() {
    let spine = AuthSpine::new("auth_three").await;
    let _sinks = [spine.sink(), spine.sink()];
    let hosts = ["host-a", "host-b", "host-c"];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_all(&mut publishers);
    let pool = pool(&spine.db.url()).await;
    assert_complete(&pool, &spine.stack, &hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_killed_mid_stream_loses_and_duplicates_nothing_with_auth_on() {
    let spine = AuthSpine::new("auth_sinkkill").await;
    let mut sink = spine.sink();
    let hosts = ["kill-a", "kill-b"];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sink.signal("KILL");
        sink.wait_for_exit(Duration::from_secs(5))
            .expect("sink dies");
        tokio::time::sleep(Duration::from_secs(1)).await;
        sink = spine.sink();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_all(&mut publishers);
    let pool = pool(&spine.db.url()).await;
    assert_complete(&pool, &spine.stack, &hosts).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publishers_reconnect_after_the_auth_service_restarts_and_nothing_is_lost() {
    let mut spine = AuthSpine::new("auth_restart").await;
    let _sink = spine.sink();
    let hosts = ["restart-a", "restart-b"];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The auth service goes away and NATS restarts: every client must
    // authenticate again and cannot until the service is back.
    spine.stack.stop_auth();
    spine.stack.nats.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    spine.stack.start_auth();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_all(&mut publishers);
    let pool = pool(&spine.db.url()).await;
    assert_complete(&pool, &spine.stack, &hosts).await;
}

#[tokio::test]
async fn connected_clients_keep_working_while_the_auth_service_is_down_and_new_ones_wait() {
    let mut stack = AuthStack::start();
    let (_sink, _consumer) = prepared(&stack).await;
    let host = stack.client(Role::Host, "web-1").await;
    let watcher = stack.client(Role::Watcher, "wendy").await;
    let late_key = stack.enroll(Role::Operator, "late");
    stack.stop_auth();

    // Already connected: the host still publishes with acks, the watcher
    // still sees it.
    let js = async_nats::jetstream::new(host.client.clone());
    let mut watching = watcher.client.subscribe("telemetry.>").await.unwrap();
    let mut seen = false;
    for _ in 0..100 {
        js.publish("telemetry.web-1.cpu", "c".into())
            .await
            .unwrap()
            .await
            .expect("acknowledged while vigia-auth is down");
        if let Ok(Some(_)) = tokio::time::timeout(
            Duration::from_millis(200),
            futures::StreamExt::next(&mut watching),
        )
        .await
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "the watcher saw nothing while vigia-auth was down");

    // A new connection cannot be authorized now; it keeps trying and gets
    // in once the service is back.
    // (With retry_on_initial_connect the client is handed back at once
    // and connects in the background, as the publisher's does.)
    let late = async_nats::ConnectOptions::new()
        .nkey(late_key.seed().unwrap())
        .custom_inbox_prefix("_INBOX.user.late")
        .retry_on_initial_connect()
        .connect(stack.url())
        .await
        .unwrap();
    // The server waits up to its auth timeout (5 s) for an answer, then
    // refuses; the client tries again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_ne!(
        late.connection_state(),
        async_nats::connection::State::Connected,
        "connected with vigia-auth down"
    );
    assert!(!stack.auth_log().contains("operator:late"));
    stack.start_auth();
    // Got in as the operator it is: it may read the stream's info.
    let js = async_nats::jetstream::new(late.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while js.get_stream(vigia_schema::subject::STREAM).await.is_err() {
        assert!(Instant::now() < deadline, "the waiting client never got in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        stack.auth_log().contains("operator:late"),
        "{}",
        stack.auth_log()
    );
}

#[tokio::test]
async fn vigia_auth_given_a_server_list_serves_through_the_node_that_answers() {
    let mut stack = AuthStack::start();
    stack.stop_auth();
    // A cluster's list, one node of which is down: vigia-auth must not take
    // the whole list for one address, and must get past the dead node.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let list = format!("nats://127.0.0.1:{dead},{}", stack.url());
    stack.start_auth_at(&list);
    stack.client(Role::Watcher, "wendy").await;
    assert!(
        stack.auth_log().contains("watcher:wendy"),
        "{}",
        stack.auth_log()
    );
}
