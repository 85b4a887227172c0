//! `/metrics` in the Prometheus text format and `/healthz`, for vigia's
//! sink and publisher: the container healthcheck's probe and a scrape
//! target for operators who already run Prometheus.
//!
//! Each program registers its own collector in a `prometheus-client`
//! registry (names, types, units and escaping follow the exposition format
//! without hand formatting) and says what healthy means through [`Probe`].
//! The server is a bare HTTP/1 hyper connection per client: two paths, GET
//! (or HEAD) only, nothing read from the request but its method and path,
//! at most [`MAX_CONNECTIONS`] clients at once, and a client that has not
//! sent its request within [`HEADER_TIMEOUT`] is dropped. It is small on
//! purpose: the publisher carries it too, and its footprint is a goal.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Scrapers and probes served at once; more wait for the listener.
pub const MAX_CONNECTIONS: usize = 16;
/// A client that has not sent its request by then is dropped.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The `Content-Type` of what `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether the program is well, for `/healthz`.
pub trait Probe: Send + Sync + 'static {
    /// None when healthy, else why not, in a line.
    fn trouble(&self) -> Option<String>;
}

/// The text `/metrics` serves now.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Binds `addr` now (so a taken port fails the start, naming the flag and
/// the address) and returns the address bound and the server to spawn.
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
