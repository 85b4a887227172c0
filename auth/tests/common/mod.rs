//! A real authenticated stack for tests: a pinned nats-server ≥ 2.10 with
//! the callout configuration, and vigia-auth in front of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event, ServerError};
use nkeys::KeyPair;
use tokio::sync::mpsc;
use vigia_auth::registry;
use vigia_auth::Identity;
use vigia_schema::identity::inbox_prefix;
use vigia_schema::{HostToken, Role};
use vigia_testkit::{binary, Child, NatsServer, TempDir};

pub struct AuthStack {
    pub nats: NatsServer,
    pub auth: Option<Child>,
    pub dir: TempDir,
    pub extra_args: Vec<String>,
}

impl AuthStack {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra flags for vigia-auth (GCE settings).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_configured(extra, "")
    }

    /// With extra flags for vigia-auth and more server configuration (TLS).
    pub fn start_configured(extra: &[&str], server_config: &str) -> Self {
        let dir = TempDir::new("vigia-auth-stack");
        let issuer = KeyPair::new_account();
        let service = KeyPair::new_user();
        std::fs::write(dir.path().join("issuer.nk"), issuer.seed().unwrap()).unwrap();
        std::fs::write(dir.path().join("service.nk"), service.seed().unwrap()).unwrap();
        let nats = NatsServer::start_with_config(&format!(
            "{}\n{server_config}",
            vigia_auth::server_config::render(&service.public_key(), &issuer.public_key())
        ));
        let mut stack = Self {
            nats,
            auth: None,
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        stack.start_auth();
        stack
    }

    /// What vigia-auth logged (who it authorized and refused, and why).
    pub fn auth_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vigia-auth.log")).unwrap_or_default()
    }

    pub fn registry(&self) -> PathBuf {
        self.dir.path().join("identities")
    }

    pub fn url(&self) -> String {
        self.nats.url()
    }

    /// Starts vigia-auth and waits until it answers requests.
    pub fn start_auth(&mut self) {
        self.start_auth_at(&self.url());
    }

    /// Starts vigia-auth with `urls` as its --nats-url (a server list).
    pub fn start_auth_at(&mut self, urls: &str) {
        let issuer = self.dir.path().join("issuer.nk");
        let service = self.dir.path().join("service.nk");
        let registry = self.registry();
        let url = urls.to_owned();
        let mut args = vec![
            "serve",
            "--nats-url",
            &url,
            "--nkey",
            service.to_str().unwrap(),
            "--issuer",
            issuer.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
        ];
        args.extend(self.extra_args.iter().map(String::as_str));
        let log = self.dir.path().join("vigia-auth.log");
        self.auth = Some(Child::spawn_with_log(
            binary("vigia-auth"),
            &args,
            &[("RUST_LOG", "info")],
            Some(&log),
        ));
        self.nats
            .wait_for_subscription(vigia_auth::callout::SUBJECT);
    }

    pub fn stop_auth(&mut self) {
        if let Some(mut auth) = self.auth.take() {
            auth.kill();
        }
    }

    /// Enrols `name` in `role`; returns its key (the seed a client holds).
    pub fn enroll(&self, role: Role, name: &str) -> KeyPair {
        registry::enroll(&self.registry(), &identity(role, name)).unwrap()
    }

    pub fn revoke(&self, role: Role, name: &str) -> bool {
        registry::revoke(&self.registry(), &identity(role, name)).unwrap()
    }

    /// Enrols and connects `name` as `role`.
    pub async fn client(&self, role: Role, name: &str) -> Probe {
        let key = self.enroll(role, name);
        Probe::connect(&self.url(), &key, role, name)
            .await
            .unwrap_or_else(|e| panic!("{role}:{name} could not connect: {e}"))
    }
}

pub fn identity(role: Role, name: &str) -> Identity {
    Identity {
        role,
        name: HostToken::parse(name).unwrap(),
    }
}

/// A client with the server's errors to it collected, to see what the
/// server refused.
pub struct Probe {
    pub client: Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Probe {
    pub async fn connect(
        url: &str,
        key: &KeyPair,
        role: Role,
        name: &str,
    ) -> Result<Probe, async_nats::ConnectError> {
        let (tx, errors) = mpsc::unbounded_channel();
        let client = ConnectOptions::new()
            .nkey(key.seed().unwrap())
            .custom_inbox_prefix(inbox_prefix(role, &HostToken::parse(name).unwrap()))
            .connection_timeout(Duration::from_secs(10))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let Event::ServerError(error) = event {
                        let text = match error {
                            ServerError::Other(text) => text,
                            other => other.to_string(),
                        };
                        let _ = tx.send(text.to_lowercase());
                    }
                }
            })
            .connect(url)
            .await?;
        Ok(Probe { client, errors })
    }

    /// A client connected elsewhere (TLS), with no errors collected.
    pub fn wrap(client: Client) -> Probe {
        let (_tx, errors) = mpsc::unbounded_channel();
        Probe { client, errors }
    }

    /// Waits until the server reports a permissions violation for
    /// `action` ("publish" or "subscription") on `subject`.
    pub async fn refused(&mut self, action: &str, subject: &str) {
        let _ = self.client.flush().await;
        let wanted = format!(
            "permissions violation for {action} to \"{}\"",
            subject.to_lowercase()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.errors.recv()).await {
                Ok(Some(error)) if error.contains(&wanted) => return,
                Ok(Some(_)) => continue,
                _ => panic!("the server did not refuse {action} to {subject:?}"),
            }
        }
    }

    pub async fn publish_refused(&mut self, subject: &str) {
        self.client
            .publish(subject.to_owned(), "x".into())
            .await
            .unwrap();
        self.refused("publish", subject).await;
    }

    pub async fn subscribe_refused(&mut self, subject: &str) {
        let _subscription = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.refused("subscription", subject).await;
    }

    /// Nothing refused so far.
    pub fn no_refusals(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(error) = self.errors.try_recv() {
            seen.push(error);
        }
        seen
    }
}

/// The sink's own start-up: both streams and the consumer, as the sink
/// binary creates them, with the sink's permissions.
pub async fn prepared(stack: &AuthStack) -> (Probe, async_nats::jetstream::consumer::PullConsumer) {
    use clap::Parser as _;
    let sink = stack.client(Role::Sink, "sink-1").await;
    // A small stream: tests run side by side on one disk.
    let config =
        vigia_sink::config::Config::parse_from(["vigia-sink", "--stream-max-bytes", "67108864"]);
    let consumer =
        vigia_sink::jetstream::prepare(&async_nats::jetstream::new(sink.client.clone()), &config)
            .await
            .expect("the sink prepares its streams and consumer");
    (sink, consumer)
}

/// Every sample in stream TELEMETRY, read one by one through the direct
/// message API an operator may use.
pub async fn stored(probe: &Probe) -> Vec<vigia_schema::Sample> {
    let mut stream = async_nats::jetstream::new(probe.client.clone())
        .get_stream(vigia_schema::subject::STREAM)
        .await
        .expect("stream TELEMETRY");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut samples = Vec::new();
    for seq in 1..=last {
        if let Ok(message) = stream.get_raw_message(seq).await {
            if let Ok(sample) = vigia_schema::Sample::decode(&message.payload) {
                samples.push(sample);
            }
        }
    }
    samples
}

/// A seed file for `key` in the stack's directory.
pub fn seed_file(stack: &AuthStack, name: &str, key: &KeyPair) -> PathBuf {
    let path = stack.dir.path().join(format!("{name}.nk"));
    std::fs::write(&path, key.seed().unwrap()).unwrap();
    path
}
