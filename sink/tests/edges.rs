//! Bad configuration and unreachable services at start: one clear line
//! naming what and where, a non-zero exit, never a panic.

use std::process::Command;

use vigia_testkit::{binary, free_port, NatsServer, TestDatabase};

/// Runs the sink to completion; (exit code, stderr).
fn run_sink(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary("vigia-sink"))
        .args(args)
        .output()
        .expect("running vigia-sink");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_clear_line(stderr: &str, expected: &[&str]) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    for part in expected {
        assert!(
            last.contains(part),
            "expected {part:?} in the last line: {last:?}\n{stderr}"
        );
    }
}

#[test]
fn unreachable_nats_is_named() {
    let db = TestDatabase::new("edge_nats");
    let url = format!("nats://127.0.0.1:{}", free_port());
    let (code, stderr) = run_sink(&["--nats-url", &url, "--database-url", &db.url()]);
    assert_ne!(code, 0);
    assert_one_clear_line(&stderr, &["vigia-sink:", "cannot reach NATS at", &url]);
}

#[test]
fn unreachable_database_is_named_without_its_password() {
    let nats = NatsServer::start();
    let url = format!("mysql://vigia:s3cret@127.0.0.1:{}/vigia", free_port());
    let (code, stderr) = run_sink(&["--nats-url", &nats.url(), "--database-url", &url]);
    assert_ne!(code, 0);
    assert_one_clear_line(
        &stderr,
        &[
            "vigia-sink:",
            "cannot reach MySQL at",
            "vigia:***@127.0.0.1",
        ],
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn bad_flags_name_the_flag_and_value() {
    for (args, flag, value) in [
        (&["--batch-size", "0"][..], "--batch-size", "'0'"),
        (&["--retention", "forever"][..], "--retention", "'forever'"),
        (
            &["--batch-wait", "soonish"][..],
            "--batch-wait",
            "'soonish'",
        ),
    ] {
        let (code, stderr) = run_sink(args);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(flag) && stderr.contains(value), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_database_url_without_a_database_is_named() {
    let (code, stderr) = run_sink(&["--database-url", "mysql://root@127.0.0.1:3306"]);
    assert_ne!(code, 0);
    assert_one_clear_line(&stderr, &["--database-url", "names no database"]);
}
