//! Text from publishers is stored as sent on a database created latin1
//! (issue 11's review, defect b).
//!
//! Tables and a view whose migrations named no character set took the
//! database's default: on a latin1 database MariaDB refused a non-Latin
//! agent_version in host_events and publisher_health (error 1366), and the
//! processes view showed non-Latin names as '?'.

mod common;

use std::time::{Duration, Instant};

use common::inproc::{now_ns, InProcessSink};
use sqlx::{Connection as _, Executor as _, MySqlPool};
use vigia_schema::{ByeBody, HealthBody, HelloBody, ProcessEntry, ProcsBody, Sample, SampleBody};
use vigia_testkit::{NatsServer, TestDatabase, SHARED_MYSQL};

const HOST: &str = "cs-a";
const AGENT: &str = "версия-1.0";
const SOURCE: &str = "módulo";
const OS: &str = "Debian ГНУ/Linux 12";
const KERNEL: &str = "6.1.0-内核";
const NAMES: [(&str, &str); 3] = [
    ("процесс", "пользователь"),
    ("进程", "用户"),
    ("wörker", "bjørn"),
];

fn sample(seq: u64, body: SampleBody) -> Sample {
    common::sample(
        HOST,
        "b1",
        seq,
        now_ns() - 10_000_000_000 + seq as i64,
        body,
    )
}

/// Waits for `sql` (one text column of one row) to give a text.
async fn text(pool: &MySqlPool, sql: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(Some(text)) = sqlx::query_scalar::<_, Option<String>>(sql)
            .fetch_optional(pool)
            .await
            .unwrap()
        {
            return text;
        }
        assert!(Instant::now() < deadline, "nothing from {sql} after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn non_latin_text_is_stored_as_sent_on_a_database_created_latin1() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("latin1");
    let mut server = sqlx::MySqlConnection::connect(SHARED_MYSQL).await.unwrap();
    server
        .execute(format!("CREATE DATABASE `{}` CHARACTER SET latin1", db.name).as_str())
        .await
        .unwrap();
    let sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(100)).await;
    let pool = common::pool(&db.url()).await;

    let processes = NAMES
        .iter()
        .zip(1..)
        .map(|(&(name, user), pid)| ProcessEntry {
            pid,
            ppid: 1,
            name: name.into(),
            user: user.into(),
            state: "S".into(),
            cpu_pct: 10.0 * pid as f32,
            start_ts: now_ns() - 60_000_000_000,
            ..ProcessEntry::default()
        })
        .collect();
    let hello = HelloBody {
        agent_version: AGENT.into(),
        kernel: KERNEL.into(),
        os: OS.into(),
        cpus: 2,
        ram_total: 1 << 30,
        boot_time: now_ns() - 3_600_000_000_000,
        source: SOURCE.into(),
        interval_ms: 1000,
        procs_interval_ms: 5000,
    };
    for s in [
        sample(1, SampleBody::Hello(hello)),
        sample(1, SampleBody::Procs(ProcsBody { processes })),
        sample(
            1,
            SampleBody::Health(HealthBody {
                source: SOURCE.into(),
                agent_version: AGENT.into(),
                ..HealthBody::default()
            }),
        ),
        sample(1, SampleBody::Bye(ByeBody::default())),
    ] {
        sink.send(&s).await;
    }

    let host = |column: &str| format!("SELECT {column} FROM hosts WHERE host = '{HOST}'");
    assert_eq!(text(&pool, &host("agent_version")).await, AGENT);
    assert_eq!(text(&pool, &host("source")).await, SOURCE);
    assert_eq!(text(&pool, &host("os")).await, OS);
    assert_eq!(text(&pool, &host("kernel")).await, KERNEL);
    assert_eq!(
        text(&pool, "SELECT detail FROM host_events WHERE kind = 'hello'").await,
        format!("agent {AGENT} on {OS} ({KERNEL}), source {SOURCE}, 2 CPUs")
    );
    assert_eq!(
        text(&pool, "SELECT agent_version FROM publisher_health").await,
        AGENT
    );
    assert_eq!(
        text(&pool, "SELECT source FROM publisher_health").await,
        SOURCE
    );
    for (table, order) in [("processes", "pid"), ("process_samples", "pid")] {
        let got: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT name, `user` FROM {table} WHERE host = ? ORDER BY {order}"
        ))
        .bind(HOST)
        .fetch_all(&pool)
        .await
        .unwrap();
        let sent: Vec<(String, String)> = NAMES
            .iter()
            .map(|&(n, u)| (n.to_owned(), u.to_owned()))
            .collect();
        assert_eq!(got, sent, "{table}");
    }
    assert_eq!(sink.metrics.snapshot().dead_lettered, 0);

    // And so for every text column a migration makes, present and future:
    // ASCII where it holds tokens, utf8mb4 where it holds text.
    let others: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME NOT IN ('ascii', 'utf8mb4') \
         AND TABLE_NAME <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(others, [], "text columns in the database's latin1");
    sink.stop().await;
}
