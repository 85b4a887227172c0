//! `/metrics` in the Prometheus text format and `/healthz`, on
//! `--metrics-addr`, for operators who already run Prometheus and for the
//! container's healthcheck.
//!
//! The counters are the sink's own ([`Metrics`]), read at each scrape by a
//! collector and written by `prometheus-client`, so names, types, units
//! and escaping follow the exposition format without hand formatting.
//! The server is a bare HTTP/1 hyper connection per client: two paths,
//! GET only, nothing read from the request but its method and path, and
//! at most [`MAX_CONNECTIONS`] clients at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::{DeadLetterClass, Metrics};

/// Scrapers and probes served at once; more wait for the listener.
pub const MAX_CONNECTIONS: usize = 16;
/// A client that has not sent its request by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether the sink is well, for `/healthz`: NATS connected and MySQL
/// taking writes.
pub trait Probe: Send + Sync + 'static {
    /// None when healthy, else why not.
    fn trouble(&self) -> Option<String>;
}

/// The sink's probe: its NATS client and its ingest's stall flag.
pub struct SinkProbe {
    pub client: async_nats::Client,
    pub metrics: Arc<Metrics>,
}

impl Probe for SinkProbe {
    fn trouble(&self) -> Option<String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Some("not connected to NATS".into());
        }
        if self.metrics.ingest_stalled.load(Ordering::Relaxed) {
            return Some("cannot write to MySQL".into());
        }
        None
    }
}

/// Reads [`Metrics`] at each scrape.
#[derive(Debug)]
struct SinkCollector(Arc<Metrics>);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        let totals = m.snapshot();
        counter(
            &mut encoder,
            "stored",
            "Messages written to MySQL (or found already written) and acknowledged.",
            totals.stored,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "dead_lettered",
                "Messages sent to deadletter.> by reason class.",
                None,
                MetricType::Counter,
            )?;
            for (class, n) in DeadLetterClass::ALL.iter().zip(m.dead_by_class()) {
                let labels = [("reason", class.as_str())];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut encoder,
            "batches",
            "Transactions committed.",
            totals.batches,
        )?;
        counter(
            &mut encoder,
            "write_retries",
            "Failed attempts to write a batch (each retried).",
            totals.write_retries,
        )?;
        counter(
            &mut encoder,
            "expired_rows",
            "Rows removed by retention.",
            totals.expired_rows,
        )?;
        let stalled = m.ingest_stalled.load(Ordering::Relaxed);
        gauge(
            &mut encoder,
            "ingest_stalled",
            "1 while MySQL does not take the sink's writes.",
            None,
            f64::from(u8::from(stalled)),
        )?;
        let h = m.write_times.histogram();
        encoder
            .encode_descriptor(
                "batch_write",
                "Time from a batch's first write to its commit, retries included.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
        // The lag is read every health interval; before the first read,
        // or while NATS does not answer, it is absent rather than zero.
        if let Some(lag) = m.lag() {
            gauge(
                &mut encoder,
                "lag",
                "Age of the oldest telemetry message no sink has acknowledged.",
                Some(&Unit::Seconds),
                lag.seconds,
            )?;
            gauge(
                &mut encoder,
                "pending_messages",
                "Telemetry messages not yet delivered to a sink.",
                None,
                lag.pending as f64,
            )?;
            gauge(
                &mut encoder,
                "ack_pending_messages",
                "Telemetry messages delivered and not yet acknowledged.",
                None,
                lag.ack_pending as f64,
            )?;
        }
        Ok(())
    }
}

/// The registry behind `/metrics`: every name starts `vigia_sink_`.
pub fn registry(metrics: Arc<Metrics>) -> Registry {
    let mut registry = Registry::with_prefix("vigia_sink");
    registry.register_collector(Box::new(SinkCollector(metrics)));
    registry
}

/// The text `/metrics` serves now.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Binds `addr` now (so a taken port fails the start, naming it) and
/// returns the address bound and the server to spawn.
pub async fn bind(
    addr: SocketAddr,
    registry: Registry,
    probe: impl Probe,
) -> anyhow::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
    let bound = listener.local_addr()?;
    let shared = Arc::new((registry, probe));
    Ok((bound, serve(listener, shared)))
}

async fn serve<P: Probe>(listener: TcpListener, shared: Arc<(Registry, P)>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::debug!(%error, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&request, &shared.0, &shared.1)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn respond(
    request: &Request<Incoming>,
    registry: &Registry,
    probe: &impl Probe,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => match render(registry) {
            Ok(text) => reply(StatusCode::OK, CONTENT_TYPE, text),
            Err(_) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                "cannot encode\n".into(),
            ),
        },
        "/healthz" => match probe.trouble() {
            None => reply(StatusCode::OK, TEXT, "ok\n".into()),
            Some(why) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        _ => reply(StatusCode::NOT_FOUND, TEXT, "/metrics or /healthz\n".into()),
    }
}
