//! The server as a scraper and a probe meet it: a real HTTP client, the
//! text read back by a Prometheus text-format parser.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use vigia_exporter::{bind, Probe, CONTENT_TYPE, MAX_CONNECTIONS};

struct Flag(Arc<AtomicBool>);

impl Probe for Flag {
    fn trouble(&self) -> Option<String> {
        (!self.0.load(Ordering::Relaxed)).then(|| "not connected to NATS".into())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, String, String) {
    let mut r = agent().get(url).call().unwrap();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        content_type,
        r.body_mut().read_to_string().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_metrics_and_health_and_refuses_the_rest() {
    let mut registry = Registry::with_prefix("vigia_test");
    let counter: Counter = Counter::default();
    registry.register("things", "Things counted", counter.clone());
    counter.inc_by(41);
    counter.inc();
    let healthy = Arc::new(AtomicBool::new(true));
    let (addr, server) = bind(
        "127.0.0.1:0".parse().unwrap(),
        registry,
        Flag(healthy.clone()),
    )
    .await
    .unwrap();
    tokio::spawn(server);
    let base = format!("http://{addr}");
    let checks = tokio::task::spawn_blocking(move || {
        let (status, content_type, text) = get(&format!("{base}/metrics"));
        assert_eq!((status, content_type.as_str()), (200, CONTENT_TYPE));
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let things = scrape
            .samples
            .iter()
            .find(|s| s.metric == "vigia_test_things_total")
            .expect("the counter, named with _total");
        assert!(
            matches!(things.value, prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) if v == 42.0),
            "{:?}",
            things.value
        );
        assert_eq!(scrape.docs["vigia_test_things"], "Things counted.");
        assert!(text.ends_with("# EOF\n"), "{text}");

        assert_eq!(get(&format!("{base}/healthz")).2, "ok\n");
        healthy.store(false, Ordering::Relaxed);
        let (status, _, body) = get(&format!("{base}/healthz"));
        assert_eq!((status, body.as_str()), (503, "not connected to NATS\n"));
        assert_eq!(get(&format!("{base}/")).0, 404);
        assert_eq!(get(&format!("{base}/metrics/../etc")).0, 404);
        let post = agent().post(&format!("{base}/metrics")).send("x").unwrap();
        assert_eq!(post.status().as_u16(), 405);

        // More clients than the server takes at once, each idle: the
        // ones over the limit wait, and are served once the idle ones are
        // dropped at the header timeout.
        let idle: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let (status, _, _) = get(&format!("{base}/healthz"));
        assert_eq!(status, 503);
        drop(idle);
    });
    checks.await.unwrap();
}
