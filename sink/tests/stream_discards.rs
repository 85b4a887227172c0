//! When a sink or MySQL outage outlasts what the stream holds, the stream
//! drops the oldest telemetry unread (discard old). The sink says so
//! (sink/src/discards.rs): counted in its metrics and in `sink_health`,
//! logged; and it counts nothing when nothing was lost.

mod common;

use std::time::Duration;

use common::inproc::{now_ns, InProcessSink};
use sqlx::MySqlPool;
use vigia_schema::{ProcessEntry, ProcsBody, RamBody, Sample, SampleBody};
use vigia_sink::config::Config;
use vigia_testkit::{NatsServer, TestDatabase};

fn ram(seq: u64) -> Sample {
    common::sample(
        "d",
        "b1",
        seq,
        now_ns() - 60_000_000_000 + seq as i64,
        SampleBody::Ram(RamBody {
            total: 1 << 30,
            used: 1 << 29,
            ..RamBody::default()
        }),
    )
}

/// A procs sample of 300 processes, about 20 kB.
fn procs(seq: u64) -> Sample {
    let processes = (1..=300)
        .map(|pid| ProcessEntry {
            pid,
            name: format!("process-number-{pid}"),
            user: "someone".into(),
            ..ProcessEntry::default()
        })
        .collect();
    common::sample(
        "d",
        "b1",
        seq,
        now_ns() - 30_000_000_000 + seq as i64,
        SampleBody::Procs(ProcsBody { processes }),
    )
}

fn config(nats: &NatsServer, db: &TestDatabase) -> Config {
    Config {
        nats_url: nats.url(),
        database_url: db.url(),
        batch_wait: Duration::from_millis(100),
        // 1 MiB, the smallest the flag takes: the outage below is 3 MiB.
        stream_max_bytes: 1 << 20,
        health_interval: Duration::from_millis(300),
        instance: Some("s1".into()),
        ..<Config as clap::Parser>::parse_from(["vigia-sink"])
    }
}

async fn scalar(pool: &MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("waited 30 s for {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_longer_than_the_stream_holds_is_counted_not_silent() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("stream_discards");
    let sink = InProcessSink::start_with(config(&nats, &db)).await;
    let pool = vigia_sink::store::connect(&db.url(), 2).await.unwrap();
    for seq in 1..=20 {
        sink.send(&ram(seq)).await;
    }
    until("the 20 ram samples", async || {
        common::seqs(&pool, "ram_samples", "d").await.len() == 20
    })
    .await;
    until("two health rows", async || {
        scalar(&pool, "SELECT COUNT(*) FROM sink_health").await >= 2
    })
    .await;
    // Nothing lost, nothing counted.
    let first_metrics = sink.metrics.clone();
    assert_eq!(first_metrics.snapshot().stream_discarded, 0);
    assert_eq!(
        scalar(
            &pool,
            "SELECT CAST(MAX(stream_discarded) AS SIGNED) FROM sink_health"
        )
        .await,
        0
    );
    sink.stop().await;

    // The outage: 150 procs samples, about 3 MiB, while no sink runs. The
    // 1 MiB stream keeps only the newest of them.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    for seq in 21..=170 {
        let sample = procs(seq);
        js.publish("telemetry.d.procs", sample.encode().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut stream = js.get_stream(vigia_schema::subject::STREAM).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.last_sequence, 170);
    assert!(
        state.first_sequence > 21,
        "the stream dropped nothing: {state:?}"
    );
    let lost = state.first_sequence - 21;

    // Back: the sink counts exactly what it never got, and stores the rest.
    let sink = InProcessSink::start_with(config(&nats, &db)).await;
    let metrics = sink.metrics.clone();
    until("the discards counted", async || {
        metrics.snapshot().stream_discarded == lost
    })
    .await;
    until("the discards in sink_health", async || {
        scalar(
            &pool,
            "SELECT CAST(COALESCE(MAX(stream_discarded), 0) AS SIGNED) FROM sink_health",
        )
        .await
            == lost as i64
    })
    .await;
    let kept = 170 - state.first_sequence + 1;
    until("every message the stream kept", async || {
        scalar(&pool, "SELECT COUNT(*) FROM procs_snapshots").await == kept as i64
    })
    .await;
    // Counted once, however many readings follow.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(metrics.snapshot().stream_discarded, lost);
    sink.stop().await;
}
