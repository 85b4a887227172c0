//! A private nats-server per test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;

/// A nats-server with JetStream on 127.0.0.1, stopped and its store
/// removed on drop.
pub struct NatsServer {
    child: Child,
    port: u16,
    monitor_port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let store = tempfile::tempdir().expect("a temporary JetStream store");
        let port = free_port();
        let monitor_port = free_port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor_port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (scripts/services.sh installs it)");
        let server = NatsServer {
            child,
            port,
            monitor_port,
            _store: store,
        };
        crate::wait_for("nats-server to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connecting to the test's nats-server")
    }

    /// Whether some client subscribes to exactly `subject`, from the
    /// server's monitoring endpoint: lets a test wait until a publisher
    /// takes commands without sending it anything.
    pub fn has_subscription(&self, subject: &str) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.monitor_port)) else {
            return false;
        };
        let request =
            "GET /subsz?subs=1&limit=100000 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".to_string();
        let mut body = String::new();
        if stream.write_all(request.as_bytes()).is_err()
            || stream.read_to_string(&mut body).is_err()
        {
            return false;
        }
        body.contains(&format!("\"subject\":\"{subject}\""))
            || body.contains(&format!("\"subject\": \"{subject}\""))
    }

    /// Waits until `subject` has a subscriber.
    pub fn wait_for_subscription(&self, subject: &str) {
        crate::wait_for(
            &format!("a subscription to {subject}"),
            Duration::from_secs(15),
            || self.has_subscription(subject).then_some(()),
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stream vigia-sink creates, as it creates it: `telemetry.>`, a
/// duplicate window for retried publishes.
pub async fn create_telemetry_stream(client: &async_nats::Client) -> jetstream::stream::Stream {
    jetstream::new(client.clone())
        .get_or_create_stream(jetstream::stream::Config {
            name: "TELEMETRY".into(),
            subjects: vec![vigia_schema::subject::TELEMETRY_ALL.into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("creating stream TELEMETRY")
}

/// A port nothing listens on now (the kernel's pick for an ephemeral bind).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The samples stored on `subject` in stream TELEMETRY, oldest first,
/// waiting up to `timeout` until there are at least `count`, then 300 ms
/// more for any extra ones (so that a test comparing counts sees them).
pub async fn stored_samples(
    client: &async_nats::Client,
    subject: &str,
    count: usize,
    timeout: Duration,
) -> Vec<vigia_schema::Sample> {
    use futures::StreamExt as _;
    let stream = jetstream::new(client.clone())
        .get_stream("TELEMETRY")
        .await
        .expect("stream TELEMETRY");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await
        .expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("consuming");
    let mut samples = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while samples.len() < count {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(message))) => samples.push(
                vigia_schema::Sample::decode(&message.payload).expect("a stored sample decodes"),
            ),
            Ok(Some(Err(error))) => panic!("reading {subject}: {error}"),
            Ok(None) | Err(_) => panic!(
                "{subject}: {} samples after {timeout:?}, expected {count}",
                samples.len()
            ),
        }
    }
    let linger = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(linger, messages.next()).await {
        samples
            .push(vigia_schema::Sample::decode(&message.payload).expect("a stored sample decodes"));
    }
    samples
}
