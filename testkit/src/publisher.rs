//! A vigia-publisher process per test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The vigia-publisher binary next to the running test's target directory
/// (`target/<profile>/vigia-publisher`). `cargo test --workspace` builds
/// it before any test runs.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/vigia-publisher
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("vigia-publisher"))
        .expect("the target directory");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p vigia-publisher)",
        path.display()
    );
    path
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
            // Quiet unless asked: a publisher's warnings (NATS going away
            // in a fault test) are expected noise in a test run.
            .stderr(if std::env::var_os("VIGIA_TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
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
        // SIGTERM for a clean stop; kill(1) keeps this free of unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
