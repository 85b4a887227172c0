//! Bad input never stops the sink: each bad message goes to
//! `deadletter.<subject>` with its reason, is counted, and the good
//! messages around it are stored.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use vigia_schema::subject::{HEADER_DEADLETTER_REASON, HEADER_MSG_ID};
use vigia_schema::{RamBody, Sample, SampleBody, SCHEMA_VERSION};
use vigia_sink::config::Config;
use vigia_sink::metrics::Metrics;
use vigia_testkit::{NatsServer, TestDatabase};

fn ram(host: &str, seq: u64) -> Sample {
    Sample {
        v: SCHEMA_VERSION,
        host: host.into(),
        boot: "b007".into(),
        seq,
        // Within the sink's retention: older samples are dead-lettered.
        ts: chrono::Utc::now().timestamp_nanos_opt().unwrap() - 60_000_000_000 + seq as i64,
        body: SampleBody::Ram(RamBody {
            total: 1 << 30,
            ..RamBody::default()
        }),
    }
}

fn wrong_type() -> Vec<u8> {
    let value = rmpv::Value::Map(vec![
        ("v".into(), 1.into()),
        ("host".into(), "dl-a".into()),
        ("boot".into(), "b007".into()),
        ("kind".into(), "ram".into()),
        ("seq".into(), "three".into()),
        ("ts".into(), 5.into()),
        ("body".into(), rmpv::Value::Map(vec![])),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    bytes
}

/// The sink running in this process (so its counters can be read), with
/// a subscription to dead letters and a JetStream context once the sink has
/// created its streams.
struct InProcessSink {
    _nats: NatsServer,
    db: TestDatabase,
    metrics: Arc<Metrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    js: async_nats::jetstream::Context,
    dead: async_nats::Subscriber,
}

impl InProcessSink {
    async fn start(name: &str, batch_wait: Duration) -> Self {
        let nats = NatsServer::start();
        let db = TestDatabase::new(name);
        let config = Config {
            nats_url: nats.url(),
            database_url: db.url(),
            batch_wait,
            ..<Config as clap::Parser>::parse_from(["vigia-sink"])
        };
        let metrics = Arc::new(Metrics::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(vigia_sink::run(config, metrics.clone(), async {
            let _ = stopped.await;
        }));
        let client = async_nats::connect(nats.url()).await.unwrap();
        let dead = client.subscribe("deadletter.>").await.unwrap();
        let js = async_nats::jetstream::new(client);
        for _ in 0..100 {
            if js.get_stream(vigia_schema::subject::STREAM).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            _nats: nats,
            db,
            metrics,
            stop,
            task,
            js,
            dead,
        }
    }

    /// Stops the sink and checks it ended without an error.
    async fn stop(self) {
        assert!(!self.task.is_finished(), "the sink keeps going");
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_are_dead_lettered_and_counted() {
    let mut sink = InProcessSink::start("deadletter", Duration::from_millis(50)).await;
    let (js, metrics) = (sink.js.clone(), sink.metrics.clone());
    let publish = |subject: &'static str, id: &str, payload: Vec<u8>| {
        let js = js.clone();
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, id);
        async move {
            js.publish_with_headers(subject, headers, payload.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    publish("telemetry.dl-a.ram", "good-1", ram("dl-a", 1).encode()).await;
    publish(
        "telemetry.dl-a.cpu",
        "garbage",
        b"\x93not msgpack at all".to_vec(),
    )
    .await;
    publish("telemetry.dl-a.ram", "wrong-type", wrong_type()).await;
    publish(
        "telemetry.dl-a.ram",
        "mismatch",
        ram("someone-else", 2).encode(),
    )
    .await;
    publish("telemetry.dl-a.ram", "good-2", ram("dl-a", 2).encode()).await;

    let mut reasons = Vec::new();
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(20), sink.dead.next())
            .await
            .expect("a dead letter within 20 s")
            .expect("subscription open");
        let reason = message
            .headers
            .as_ref()
            .and_then(|h| h.get(HEADER_DEADLETTER_REASON))
            .map(|v| v.to_string())
            .expect("a reason header");
        reasons.push((message.subject.to_string(), reason, message.payload.len()));
    }
    reasons.sort();
    assert_eq!(reasons[0].0, "deadletter.telemetry.dl-a.cpu");
    assert!(reasons[0].1.contains("not a vigia sample"), "{reasons:?}");
    assert_eq!(
        reasons[0].2,
        b"\x93not msgpack at all".len(),
        "raw payload kept"
    );
    let ram_reasons: Vec<&str> = reasons[1..].iter().map(|r| r.1.as_str()).collect();
    assert!(
        ram_reasons.iter().any(|r| r.contains("host mismatch")),
        "{ram_reasons:?}"
    );
    assert!(
        ram_reasons
            .iter()
            .any(|r| r.starts_with("not a vigia sample: seq: ")),
        "{ram_reasons:?}"
    );

    // The good ones around them are stored, and the sink is still running.
    let pool = common::pool(&sink.db.url()).await;
    let mut seqs = Vec::new();
    for _ in 0..100 {
        seqs = common::seqs(&pool, "ram_samples", "dl-a").await;
        if seqs.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seqs, [1, 2]);
    assert_eq!(metrics.snapshot().dead_lettered, 3);

    // Dead letters are kept by the DEADLETTER stream too.
    let kept = js
        .get_stream(vigia_schema::subject::DEADLETTER_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(kept, 3);
    sink.stop().await;
}

/// A sample that decodes but breaks the contract's bounds (here: 10,000
/// per-CPU values, more than the TEXT column holds) is dead-lettered before
/// MySQL sees it; the rest of its batch is stored and the sink goes on.
/// (What MySQL itself refuses is tested in poison.rs.)
#[tokio::test(flavor = "multi_thread")]
async fn a_sample_beyond_the_bounds_is_dead_lettered_and_its_batch_stored() {
    // A long batch wait so the good and the bad samples share one batch.
    let mut sink = InProcessSink::start("rejected", Duration::from_millis(1500)).await;
    let huge = Sample {
        v: SCHEMA_VERSION,
        host: "rj-a".into(),
        boot: "b007".into(),
        seq: 1,
        ts: chrono::Utc::now().timestamp_nanos_opt().unwrap(),
        body: SampleBody::Cpu(vigia_schema::CpuBody {
            per_cpu_busy_pct: vec![12.345_678; 10_000],
            cpus: 10_000,
            ..vigia_schema::CpuBody::default()
        }),
    };
    for (subject, sample) in [
        ("telemetry.rj-a.ram", ram("rj-a", 1)),
        ("telemetry.rj-a.cpu", huge),
        ("telemetry.rj-a.ram", ram("rj-a", 2)),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, sample.msg_id().as_str());
        sink.js
            .publish_with_headers(subject, headers, sample.encode().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let message = tokio::time::timeout(Duration::from_secs(30), sink.dead.next())
        .await
        .expect("a dead letter within 30 s")
        .expect("subscription open");
    assert_eq!(message.subject.as_str(), "deadletter.telemetry.rj-a.cpu");
    let reason = message
        .headers
        .as_ref()
        .and_then(|h| h.get(HEADER_DEADLETTER_REASON))
        .map(|v| v.to_string());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.starts_with("cpu.cpus 10000 is above 4096 CPUs")),
        "{reason:?}"
    );

    let pool = common::pool(&sink.db.url()).await;
    let mut seqs = Vec::new();
    for _ in 0..100 {
        seqs = common::seqs(&pool, "ram_samples", "rj-a").await;
        if seqs.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seqs, [1, 2], "the rest of the batch is stored");
    assert!(common::seqs(&pool, "cpu_samples", "rj-a").await.is_empty());
    assert_eq!(sink.metrics.snapshot().dead_lettered, 1);
    sink.stop().await;
}
