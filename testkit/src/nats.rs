use std::time::Duration;

use crate::{free_port, wait_for_port, Child, TempDir};

/// A private nats-server with JetStream, on a free port.
pub struct NatsServer {
    pub port: u16,
    store: TempDir,
    process: Option<Child>,
}

impl NatsServer {
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
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
        let store = self.store.path().to_string_lossy().into_owned();
        let program =
            std::env::var("VIGIA_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let log = self.store.path().join("nats-server.log");
        self.process = Some(Child::spawn_with_log(
            program,
            &["-a", "127.0.0.1", "-p", &port, "-js", "-sd", &store],
            &[],
            Some(&log),
        ));
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "nats-server did not listen on 127.0.0.1:{port}"
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
