//! TLS on client connections: scripts/tls-certs.sh makes the CA and the
//! server certificate; clients verify the server with --nats-ca.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::ConnectOptions;
use clap::Parser as _;
use common::{seed_file, stored, AuthStack};
use vigia_schema::identity::inbox_prefix;
use vigia_schema::{HostToken, Role, SampleBody};
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::TempDir;

fn certificates(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tls-certs.sh");
    let made = std::process::Command::new("bash")
        .arg(script)
        .args([
            "--dir",
            dir.to_str().unwrap(),
            "--name",
            "localhost",
            "--ip",
            "127.0.0.1",
        ])
        .output()
        .expect("running scripts/tls-certs.sh");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

async fn tls_client(
    stack: &AuthStack,
    role: Role,
    name: &str,
    ca: PathBuf,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let key = stack.enroll(role, name);
    ConnectOptions::new()
        .nkey(key.seed().unwrap())
        .custom_inbox_prefix(inbox_prefix(role, &HostToken::parse(name).unwrap()))
        .add_root_certificates(ca)
        .require_tls(true)
        .connection_timeout(Duration::from_secs(10))
        .connect(stack.url())
        .await
}

#[tokio::test]
async fn clients_verify_the_server_and_a_wrong_ca_is_refused() {
    let certs = TempDir::new("vigia-tls");
    certificates(certs.path());
    let other = TempDir::new("vigia-tls-other");
    certificates(other.path());
    let ca = certs.path().join("ca.pem");
    let server_tls = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
        certs.path().join("server.pem").display(),
        certs.path().join("server-key.pem").display()
    );
    let stack = AuthStack::start_configured(&["--nats-ca", ca.to_str().unwrap()], &server_tls);

    // The sink's start-up over TLS.
    let sink = tls_client(&stack, Role::Sink, "sink-1", ca.clone())
        .await
        .expect("the sink connects over TLS");
    let config =
        vigia_sink::config::Config::parse_from(["vigia-sink", "--stream-max-bytes", "67108864"]);
    vigia_sink::jetstream::prepare(&async_nats::jetstream::new(sink), &config)
        .await
        .unwrap();

    // A publisher that verifies the server publishes.
    let key = stack.enroll(Role::Host, "tls-host");
    let seed = seed_file(&stack, "tls-host", &key);
    let mut publisher = start_publisher(
        &stack.url(),
        "tls-host",
        &[
            "--nats-nkey",
            seed.to_str().unwrap(),
            "--nats-ca",
            ca.to_str().unwrap(),
        ],
    );
    let operator = tls_client(&stack, Role::Operator, "alice", ca.clone())
        .await
        .expect("the operator connects over TLS");
    let probe = common::Probe::wrap(operator);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let hello = stored(&probe)
            .await
            .iter()
            .any(|s| s.host == "tls-host" && matches!(s.body, SampleBody::Hello(_)));
        if hello {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no hello over TLS");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    publisher
        .terminate(Duration::from_secs(15))
        .expect("the publisher stops");

    // A client trusting another CA does not talk to this server, nor does
    // one that trusts only the system's roots.
    let wrong = tls_client(&stack, Role::Watcher, "wendy", other.path().join("ca.pem")).await;
    assert!(wrong.is_err(), "a client trusting another CA connected");
    let key = stack.enroll(Role::Watcher, "walt");
    let unverified = ConnectOptions::new()
        .nkey(key.seed().unwrap())
        .require_tls(true)
        .connection_timeout(Duration::from_secs(5))
        .connect(stack.url())
        .await;
    assert!(unverified.is_err(), "a client without the CA connected");
}
