//! Real servers for tests, never mocks.
//!
//! - [`NatsServer`]: a private `nats-server -js` on a free port with its own
//!   store directory, which a test may stop and restart.
//! - [`NatsCluster`]: three private nats-servers routed into one cluster,
//!   any node of which a test may stop, restart, or find leading a stream.
//! - [`Mariadbd`]: a private MariaDB with its own data directory, likewise.
//! - [`TestDatabase`]: a uniquely named database on the machine's MariaDB
//!   (127.0.0.1:3306, root), dropped when the test ends.
//! - [`binary`] and [`Child`]: the workspace's binaries as processes.
//! - [`completeness`]: the one check that a host's samples reached MySQL
//!   whole (seq 1..N of each kind once, hello, bye).
//! - [`telemetry`]: the stream as the sink creates it, and reading samples
//!   back from it; [`vigia`]: publishers and sinks started for a test.
//! - [`commands`]: asking publishers (`who`, several answers to one
//!   request) and reading back their audit events.
//! - [`fleet`]: the synthetic fleet of the dashboards' tests and the
//!   benchmarks, samples made without reading /proc.
//!
//! Everything is removed on drop, so tests run in parallel and leave
//! nothing behind.

#![forbid(unsafe_code)]

mod child;
pub mod cluster;
pub mod commands;
pub mod completeness;
pub mod fleet;
mod mariadb;
mod nats;
mod net;
pub mod telemetry;
pub mod vigia;

pub use child::{binary, Child};
pub use cluster::NatsCluster;
pub use mariadb::{flush_dirty_pages, Mariadbd, TestDatabase, SHARED_MYSQL};
pub use nats::{auth_nats_server, NatsServer, AUTH_NATS_VERSION};
pub use net::{free_port, wait_for_port};

/// A name unique to this process and call: `<prefix>_<pid>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique_name(prefix));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        Self(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
