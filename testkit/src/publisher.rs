//! vigia's own processes, one per test: publishers and sinks.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The vigia-publisher binary; see [`workspace_binary`].
pub fn binary() -> PathBuf {
    workspace_binary("vigia-publisher")
}

/// A binary of this workspace in the running test's target directory
/// (`target/<profile>/<name>`), for a test of one crate that runs another
/// crate's binary. `cargo test --workspace` builds every binary before any
/// test runs.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .expect("the target directory");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build --workspace)",
        path.display()
    );
    path
}

fn test_stderr() -> Stdio {
    // Quiet unless asked: warnings (NATS going away in a fault test) are
    // expected noise in a test run.
    if std::env::var_os("VIGIA_TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// A running vigia-sink, stopped with SIGTERM (and waited for) on drop.
pub struct Sink {
    child: Child,
}

impl Sink {
    /// Starts the sink against `nats_url` and `database_url`, with its
    /// own durable consumer name so sinks of parallel tests never share one.
    pub fn start(nats_url: &str, database_url: &str) -> Sink {
        let consumer = crate::unique("sink");
        let child = Command::new(workspace_binary("vigia-sink"))
            .args(["--nats-url", nats_url, "--database-url", database_url])
            .args(["--consumer", &consumer])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(test_stderr())
            .spawn()
            .expect("starting vigia-sink");
        Sink { child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A running publisher, stopped with SIGTERM (and waited for) on drop.
pub struct Publisher {
    child: Child,
    pub host: String,
}

impl Publisher {
    /// Starts `binary` for `host` against `nats_url` with fast sampling and
    /// the extra `args`.
    pub fn start(binary: &PathBuf, nats_url: &str, host: &str, args: &[&str]) -> Publisher {
        let child = Command::new(binary)
            .args(["--nats-url", nats_url, "--host", host])
            .args(["--interval", "200ms", "--procs-interval", "1s"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(test_stderr())
            .spawn()
            .expect("starting vigia-publisher");
        Publisher {
            child,
            host: host.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM for a clean stop, SIGKILL after 5 s; kill(1) keeps this free of
/// unsafe code.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
