//! vigiactl against a three-node NATS cluster (three real nats-servers on
//! loopback): a kill request sent while a node is down, the very node the
//! target's publisher was connected to, is still answered, because the
//! publisher and vigiactl both take every node's URL and fail over.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::{unique_name, NatsCluster};

fn vigiactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigiactl"))
        .args(args)
        .env_remove("VIGIA_NATS_URL")
        .output()
        .expect("running vigiactl")
}

/// Waits up to 20 s for `found` to give a node.
fn wait_for_node(what: &str, mut found: impl FnMut() -> Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(node) = found() {
            return node;
        }
        assert!(Instant::now() < deadline, "{what} after 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn a_kill_request_sent_while_a_node_is_down_is_answered() {
    let mut cluster = NatsCluster::start();
    jetstream::new(cluster.client().await)
        .get_or_create_stream(jetstream::stream::Config {
            name: vigia_schema::subject::STREAM.into(),
            subjects: vec![vigia_schema::subject::TELEMETRY_ALL.into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("creating stream TELEMETRY with three replicas");
    let host = unique_name("cluster-kill");
    let _publisher = start_publisher(&cluster.urls(), &host, &[]);
    let client_name = format!("vigia-publisher {host}");
    let serving = wait_for_node("the publisher connected to no node", || {
        cluster.node_serving(&client_name)
    });

    // The node the publisher is on goes down and stays down.
    cluster.stop(serving);
    let now_on = wait_for_node("the publisher did not fail over", || {
        cluster.node_serving(&client_name)
    });
    assert_ne!(now_on, serving);

    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let urls = cluster.urls();
    let args = [
        "kill",
        "--nats-url",
        &urls,
        "--host",
        &host,
        "--pid",
        &pid,
        "--signal",
        "KILL",
        "--timeout",
        "10s",
    ];
    // The publisher re-subscribes to cmd.<host> just after reconnecting;
    // until then a request finds no responder (exit 2, said so), never a
    // wrong answer. Every try goes through the list with the dead node in it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = vigiactl(&args);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(2) || !text.contains("no publisher listens") {
            break out;
        }
        assert!(Instant::now() < deadline, "still no responder: {text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("signalled pid {pid} (sleep) with SIGKILL\n")
    );
    assert_eq!(sleeper.wait().unwrap().signal(), Some(9), "sleep is killed");
    assert!(!cluster.is_up(serving), "the node stayed down throughout");
}

#[test]
fn a_server_list_with_an_empty_entry_is_one_clear_line() {
    let out = vigiactl(&[
        "kill",
        "--nats-url",
        "nats://127.0.0.1:1,,nats://127.0.0.1:2",
        "--host",
        "h",
        "--pid",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // `kill` says "no answer" and why on stdout, as for any unreachable NATS.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("empty entry (position 2)"),
        "the error names the entry: {text}"
    );
}
