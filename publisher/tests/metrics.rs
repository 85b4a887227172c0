//! The publisher's optional `/metrics` and `/healthz` (off by default, see
//! config.rs): a real scrape parsed by a Prometheus text parser shows
//! the outbox filling while NATS is away and the reconnect after.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vigia_testkit::telemetry::{connect, create_telemetry_stream};
use vigia_testkit::{binary, free_port, wait_for_port, Child, NatsServer};

fn get(port: u16, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, text) = get(port, "/metrics");
    assert_eq!(status, 200);
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    parsed
        .samples
        .into_iter()
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some((s.metric, v)),
            _ => None,
        })
        .collect()
}

fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn publisher(nats: &NatsServer, extra: &[&str]) -> Child {
    let url = nats.url();
    let mut args = vec![
        "--nats-url",
        url.as_str(),
        "--host",
        "metrics-a",
        "--interval",
        "100ms",
        "--procs-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    Child::spawn(binary("vigia-publisher"), &args, &[("RUST_LOG", "info")])
}

#[tokio::test]
async fn metrics_show_the_outbox_filling_during_an_outage_and_the_reconnect() {
    let mut nats = NatsServer::start();
    create_telemetry_stream(&connect(&nats.url()).await).await;

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _watched = publisher(&nats, &["--metrics-addr", &addr]);
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "no /metrics on {addr}"
    );
    let before = until("samples sent", || {
        let m = scrape(port);
        (m.get("vigia_publisher_sent_messages_total").copied()? >= 5.0).then_some(m)
    });
    assert_eq!(before["vigia_publisher_reconnects_total"], 0.0);
    assert_eq!(before["vigia_publisher_outbox_dropped_total"], 0.0);
    assert!(
        before.contains_key("vigia_publisher_outbox_bytes"),
        "{before:?}"
    );
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));

    nats.stop();
    let (status, body) = until("/healthz to see the outage and a backlog", || {
        let (status, body) = get(port, "/healthz");
        let waiting = scrape(port)["vigia_publisher_outbox_samples"];
        (status == 503 && waiting >= 5.0).then_some((status, body))
    });
    assert_eq!(status, 503);
    assert!(body.starts_with("not connected to NATS ("), "{body}");
    nats.restart();
    let after = until("the reconnect and the outbox drained", || {
        let m = scrape(port);
        (m["vigia_publisher_reconnects_total"] >= 1.0 && m["vigia_publisher_outbox_samples"] < 5.0)
            .then_some(m)
    });
    assert_eq!(after["vigia_publisher_outbox_dropped_total"], 0.0);
    assert_eq!(get(port, "/healthz").0, 200);
}
