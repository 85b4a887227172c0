//! The sink's own health, seen from outside: `/metrics` scraped by a real
//! HTTP client and read by a Prometheus text parser, `/healthz` as compose
//! probes it, and the `sink_health` rows the Pipeline dashboard reads.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use prometheus_parse::{Scrape, Value};
use vigia_schema::subject::HEADER_MSG_ID;
use vigia_schema::{RamBody, Sample, SampleBody, SCHEMA_VERSION};
use vigia_testkit::{binary, free_port, wait_for_port, Child, NatsServer, TestDatabase};

fn ram(seq: u64) -> Sample {
    Sample {
        v: SCHEMA_VERSION,
        host: "ex-a".into(),
        boot: "b0".into(),
        seq,
        ts: chrono::Utc::now().timestamp_nanos_opt().unwrap(),
        body: SampleBody::Ram(RamBody {
            total: 1 << 30,
            ..RamBody::default()
        }),
    }
}

/// GET `path`: status and body, whatever the status.
fn get(port: u16, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// The scrape, parsed: every sample by name and labels.
fn scrape(port: u16) -> (Scrape, HashMap<String, f64>) {
    let (status, text) = get(port, "/metrics");
    assert_eq!(status, 200, "{text}");
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let mut values = HashMap::new();
    for s in &parsed.samples {
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let key = if labels.is_empty() {
            s.metric.clone()
        } else {
            format!("{}{{{}}}", s.metric, labels.join(","))
        };
        let value = match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => continue,
        };
        values.insert(key, value);
    }
    (parsed, values)
}

async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_and_health_rows_count_what_the_sink_stored_and_dead_lettered() {
    let mut nats = NatsServer::start();
    let db = TestDatabase::new("exporter");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _sink = Child::spawn(
        binary("vigia-sink"),
        &[
            "--nats-url",
            &nats.url(),
            "--database-url",
            &db.url(),
            "--batch-wait",
            "50ms",
            "--metrics-addr",
            &addr,
            "--health-interval",
            "300ms",
            "--instance",
            "exporter-sink",
        ],
        &[("RUST_LOG", "info")],
    );
    assert!(
        wait_for_port(port, Duration::from_secs(60)),
        "no /metrics on {addr}"
    );

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    for seq in 1..=5 {
        let s = ram(seq);
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, s.msg_id().as_str());
        js.publish_with_headers(s.subject(), headers, s.encode().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    js.publish("telemetry.ex-a.ram", b"\xc1 not msgpack"[..].into())
        .await
        .unwrap()
        .await
        .unwrap();

    let values = until("5 stored and 1 dead letter in /metrics", async || {
        let (_, v) = scrape(port);
        let stored = v.get("vigia_sink_stored_total").copied();
        let dead = v
            .get("vigia_sink_dead_lettered_total{reason=decode}")
            .copied();
        (stored == Some(5.0) && dead == Some(1.0) && v.contains_key("vigia_sink_lag_seconds"))
            .then_some(v)
    })
    .await;
    for class in ["mismatch", "invalid", "mysql"] {
        assert_eq!(
            values[&format!("vigia_sink_dead_lettered_total{{reason={class}}}")],
            0.0
        );
    }
    assert!(values["vigia_sink_batches_total"] >= 1.0);
    assert_eq!(values["vigia_sink_write_retries_total"], 0.0);
    assert_eq!(values["vigia_sink_ingest_stalled"], 0.0);
    let (parsed, _) = scrape(port);
    let histogram = parsed
        .samples
        .iter()
        .find(|s| s.metric == "vigia_sink_batch_write_seconds")
        .expect("the write-time histogram");
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("vigia_sink_batch_write_seconds is {:?}", histogram.value);
    };
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    assert!(buckets.last().unwrap().count >= 1.0);
    assert!(
        parsed.docs.contains_key("vigia_sink_stored"),
        "{:?}",
        parsed.docs
    );

    // The Pipeline dashboard's numbers: the same counters, in MySQL.
    let pool = common::pool(&db.url()).await;
    let row: (u64, u64, u64, Option<f64>, Option<f64>) =
        until("a sink_health row with the counters", async || {
            sqlx::query_as(
                "SELECT stored, dead_decode, batches, lag_seconds, write_ms_p99 FROM sink_health \
                 WHERE sink = 'exporter-sink' AND stored = 5 AND dead_decode = 1 \
                 ORDER BY ts DESC LIMIT 1",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
        })
        .await;
    assert!(row.2 >= 1);
    assert!(row.3.is_some_and(|lag| lag >= 0.0), "lag {:?}", row.3);
    let timed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sink_health WHERE sink = 'exporter-sink' AND write_ms_p99 >= write_ms_p50",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(timed >= 1, "a row with the batch write times");

    // /healthz says what is wrong, and other requests are refused.
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(port, "/nothing").0, 404);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = agent
        .post(&format!("http://127.0.0.1:{port}/metrics"))
        .send("x")
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    nats.stop();
    let (status, body) = until("/healthz to fail without NATS", async || {
        let (status, body) = get(port, "/healthz");
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!((status, body.as_str()), (503, "not connected to NATS\n"));
    nats.restart();
    until("/healthz to recover", async || {
        (get(port, "/healthz").0 == 200).then_some(())
    })
    .await;
}
