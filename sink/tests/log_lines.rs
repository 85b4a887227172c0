//! Nothing from the wire reaches the sink's log raw: a sender who puts a
//! newline and a fake `ERROR vigia_sink: …` into a map key, or terminal
//! escapes and a bidi override into a subject, gets one escaped log line
//! per dead letter, never a line of their own. The sink runs as a real
//! process and its stderr is read as an operator's log collector reads it.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use vigia_schema::subject::HEADER_MSG_ID;
use vigia_testkit::{binary, unique_name, Child, NatsServer, TestDatabase};

const FORGED: &str =
    "\n2026-12-02T00:00:00.000000Z ERROR vigia_sink: forged: MySQL dropped table hosts";

/// A bye whose `last_seq` map has the forged line as a key and a string as
/// its value: the decode error names the key.
fn bye_with_forged_key() -> Vec<u8> {
    let value = rmpv::Value::Map(vec![
        ("v".into(), 1.into()),
        ("host".into(), "forger".into()),
        ("boot".into(), "b007".into()),
        ("kind".into(), "bye".into()),
        ("seq".into(), 1.into()),
        ("ts".into(), 1_700_000_000_000_000_000i64.into()),
        (
            "body".into(),
            rmpv::Value::Map(vec![
                ("reason".into(), "SIGTERM".into()),
                ("dropped".into(), 0.into()),
                (
                    "last_seq".into(),
                    rmpv::Value::Map(vec![(FORGED.into(), "not a number".into())]),
                ),
            ]),
        ),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    bytes
}

/// Waits until `log` holds `count` lines containing `needle`; returns the
/// whole log.
fn wait_for_lines(log: &std::path::Path, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().filter(|l| l.contains(needle)).count() >= count {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{count} lines with {needle:?} not logged within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_log_line_in_a_dead_letter_stays_inside_one_escaped_line() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("log_lines");
    let log = std::env::temp_dir().join(format!("{}.log", unique_name("sink-log")));
    let _sink = Child::spawn_with_log(
        binary("vigia-sink"),
        &[
            "--nats-url",
            &nats.url(),
            "--database-url",
            &db.url(),
            "--batch-wait",
            "50ms",
        ],
        // Every dead letter logged, not only the first of each minute.
        &[("RUST_LOG", "info,vigia_sink=debug")],
        Some(&log),
    );
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    while js.get_stream(vigia_schema::subject::STREAM).await.is_err() {
        assert!(Instant::now() < deadline, "the sink made no stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let hostile: [(&str, Vec<u8>); 3] = [
        ("telemetry.forger.bye", bye_with_forged_key()),
        // A subject that clears the screen and sets the terminal's title.
        (
            "telemetry.x\u{1b}[2J\u{1b}]0;pwned\u{7}.cpu",
            b"\x80".to_vec(),
        ),
        // A subject that reads backwards past a bidi override.
        ("telemetry.evil\u{202e}gpj.ram", b"\x80".to_vec()),
    ];
    for (i, (subject, payload)) in hostile.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, format!("hostile-{i}").as_str());
        js.publish_with_headers(subject.to_string(), headers, payload.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let text = wait_for_lines(&log, "dead-lettered a message", hostile.len());
    // One line per event: every line is a log record with its own time and
    // level, and none is an ERROR (the sink had nothing to complain of).
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let time = fields.next().unwrap_or_default();
        let level = fields.next().unwrap_or_default();
        assert!(
            time.len() >= 20 && time.starts_with("20") && time.ends_with('Z'),
            "a line that is not a log record: {line:?}\nwhole log:\n{text}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN"].contains(&level),
            "level {level:?}: {line:?}\nwhole log:\n{text}"
        );
        assert!(
            !line.chars().any(vigia_schema::text::is_unsafe),
            "an unescaped character: {line:?}"
        );
    }
    // The forged text is there, escaped, inside the dead letter's line.
    let forged: Vec<&str> = text.lines().filter(|l| l.contains("forged")).collect();
    assert_eq!(forged.len(), 1, "{text}");
    assert!(
        forged[0].contains("dead-lettered a message"),
        "{}",
        forged[0]
    );
    assert!(
        forged[0].contains("\\u{a}2026-12-02T00:00:00.000000Z ERROR vigia_sink: forged"),
        "{}",
        forged[0]
    );
    let subjects: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("dead-lettered a message"))
        .collect();
    assert!(
        subjects
            .iter()
            .any(|l| l.contains("telemetry.x\\u{1b}[2J\\u{1b}]0;pwned\\u{7}.cpu")),
        "{subjects:#?}"
    );
    assert!(
        subjects
            .iter()
            .any(|l| l.contains("telemetry.evil\\u{202e}gpj.ram")),
        "{subjects:#?}"
    );
    let _ = std::fs::remove_file(&log);
}
