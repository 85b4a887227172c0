//! Test support shared by vigia's crates: every test gets its own
//! nats-server (on a free loopback port, with its own JetStream store), its
//! own host names and its own MariaDB database, so tests run in parallel
//! and leave nothing behind.
//!
//! Only for tests: failures here panic with a message, which is what a test
//! wants.

pub mod database;
pub mod nats;
pub mod publisher;

use std::sync::atomic::{AtomicU32, Ordering};

/// A name unique to this test run and call: `prefix-<pid>-<n>`, usable as a
/// host token and, with `-` replaced, as a database name.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
