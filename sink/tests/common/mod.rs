//! A whole spine for a test: a private nats-server, a database of its own,
//! the sink and publishers as real processes, and the checks that say
//! whether every sample arrived exactly once.

#![allow(dead_code)] // each test file uses its own part of this module

pub mod inproc;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use sqlx::Row;
use vigia_testkit::{binary, Child, NatsServer, TestDatabase};

/// Fast sampling so a test sees many samples in a few seconds.
pub const INTERVAL: &str = "100ms";
pub const PROCS_INTERVAL: &str = "500ms";

pub fn sink(nats_url: &str, database_url: &str) -> Child {
    Child::spawn(
        binary("vigia-sink"),
        &[
            "--nats-url",
            nats_url,
            "--database-url",
            database_url,
            "--batch-wait",
            "100ms",
        ],
        &[("RUST_LOG", "info")],
    )
}

pub fn publisher(nats_url: &str, host: &str) -> Child {
    Child::spawn(
        binary("vigia-publisher"),
        &[
            "--nats-url",
            nats_url,
            "--host",
            host,
            "--interval",
            INTERVAL,
            "--procs-interval",
            PROCS_INTERVAL,
        ],
        &[("RUST_LOG", "info")],
    )
}

/// One publisher per host name.
pub fn publishers(nats_url: &str, hosts: &[&str]) -> Vec<Child> {
    hosts.iter().map(|h| publisher(nats_url, h)).collect()
}

pub struct Spine {
    pub nats: NatsServer,
    pub db: TestDatabase,
}

impl Spine {
    pub fn new(name: &str) -> Self {
        Self {
            nats: NatsServer::start(),
            db: TestDatabase::new(name),
        }
    }

    pub fn sink(&self) -> Child {
        sink(&self.nats.url(), &self.db.url())
    }

    pub fn publisher(&self, host: &str) -> Child {
        publisher(&self.nats.url(), host)
    }
}

pub async fn pool(url: &str) -> MySqlPool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match MySqlPool::connect(url).await {
            Ok(pool) => return pool,
            Err(e) if Instant::now() > deadline => panic!("connecting to {url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The `last_seq` each host's `bye` reported, per kind, read from MySQL's
/// host_events is not enough (it keeps only text), so it comes from the
/// stream itself: see [`byes`].
pub type LastSeqs = BTreeMap<String, BTreeMap<String, u64>>;

/// Reads every `bye` in the TELEMETRY stream: host → kind → last seq.
pub async fn byes(nats_url: &str) -> LastSeqs {
    byes_on(nats_url, "telemetry.*.bye").await
}

/// [`byes`] of `hosts` only (other clients may send byes too).
pub async fn byes_of(nats_url: &str, hosts: &[&str]) -> LastSeqs {
    let mut out = LastSeqs::new();
    for host in hosts {
        out.extend(byes_on(nats_url, &format!("telemetry.{host}.bye")).await);
    }
    out
}

async fn byes_on(nats_url: &str, filter: &str) -> LastSeqs {
    let mut out = LastSeqs::new();
    for sample in vigia_testkit::telemetry::all_stored(nats_url, filter).await {
        let vigia_schema::SampleBody::Bye(bye) = sample.body else {
            panic!("not a bye")
        };
        assert_eq!(bye.dropped, 0, "{} dropped samples", sample.host);
        out.insert(sample.host, bye.last_seq);
    }
    out
}

/// How many messages the DEADLETTER stream holds.
pub async fn dead_letters(nats_url: &str) -> u64 {
    let client = async_nats::connect(nats_url)
        .await
        .expect("connecting to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(vigia_schema::subject::DEADLETTER_STREAM)
        .await
        .expect("stream DEADLETTER");
    stream.info().await.expect("stream info").state.messages
}

/// Every seq of `table` for `host`, in order, with repeats kept.
pub async fn seqs(pool: &MySqlPool, table: &str, host: &str) -> Vec<u64> {
    sqlx::query(&format!(
        "SELECT seq FROM {table} WHERE host = ? ORDER BY boot, seq"
    ))
    .bind(host)
    .fetch_all(pool)
    .await
    .expect("reading seqs")
    .iter()
    .map(|r| r.get::<u64, _>("seq"))
    .collect()
}

/// Waits until MySQL holds, for each host, every seq 1..=last of each kind
/// its bye announced, then checks there is nothing else: no gap, no
/// duplicate, no extra boot, one hello and one bye. The check itself is
/// `vigia_testkit::completeness`, shared with the fleet simulator.
pub async fn assert_complete(pool: &MySqlPool, last: &LastSeqs, hosts: &[&str]) {
    use vigia_testkit::completeness::{wait_for_complete, Expected, SAMPLED};
    assert_eq!(
        last.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        hosts.iter().copied().collect::<BTreeSet<_>>(),
        "a bye from each host, once"
    );
    let deadline = Instant::now() + Duration::from_secs(150);
    for host in hosts {
        let last_seq = SAMPLED.map(|(kind, _)| last[*host].get(kind).copied().unwrap_or(0));
        for ((kind, _), n) in SAMPLED.iter().zip(last_seq) {
            assert!(n >= 3, "{host} stamped only {n} {kind} samples");
        }
        let expected = Expected {
            last_seq: Some(last_seq),
            at_least: [3; 3],
            bye: true,
        };
        let (_, verdict) = wait_for_complete(pool, host, &expected, deadline)
            .await
            .expect("reading a host's rows");
        assert!(verdict.is_complete(), "{}", verdict.problems().join("\n"));
    }
}

/// SIGTERMs each publisher and checks it exits 0 within 10 s.
pub fn stop_all(publishers: &mut [Child]) {
    for p in publishers.iter() {
        p.signal("TERM");
    }
    for p in publishers.iter_mut() {
        let status = p
            .wait_for_exit(Duration::from_secs(10))
            .expect("publisher exits after SIGTERM");
        assert!(status.success(), "publisher exited with {status}");
    }
}

/// A sample with the given envelope.
pub fn sample(
    host: &str,
    boot: &str,
    seq: u64,
    ts: i64,
    body: vigia_schema::SampleBody,
) -> vigia_schema::Sample {
    vigia_schema::Sample {
        v: vigia_schema::SCHEMA_VERSION,
        host: host.into(),
        boot: boot.into(),
        seq,
        ts,
        body,
    }
}
