//! vigia's own processes, started for a test.

use crate::{binary, Child};

/// vigia-publisher for `host` against `nats_url`, sampling fast (200 ms,
/// procs every second), with the extra `args`.
pub fn start_publisher(nats_url: &str, host: &str, args: &[&str]) -> Child {
    let mut all = vec![
        "--nats-url",
        nats_url,
        "--host",
        host,
        "--interval",
        "200ms",
        "--procs-interval",
        "1s",
    ];
    all.extend_from_slice(args);
    Child::spawn(binary("vigia-publisher"), &all, &[("RUST_LOG", "warn")])
}

/// vigia-sink from `nats_url` into `database_url` (which it creates and
/// migrates).
pub fn start_sink(nats_url: &str, database_url: &str) -> Child {
    Child::spawn(
        binary("vigia-sink"),
        &["--nats-url", nats_url, "--database-url", database_url],
        &[("RUST_LOG", "warn")],
    )
}
