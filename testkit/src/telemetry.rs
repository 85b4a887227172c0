//! The telemetry stream, from a test's side: created as the sink creates
//! it, and read back sample by sample.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;
use vigia_schema::subject::{DUPLICATE_WINDOW, STREAM, TELEMETRY_ALL};
use vigia_schema::Sample;

pub async fn connect(url: &str) -> async_nats::Client {
    async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Stream TELEMETRY on `telemetry.>` with a duplicate window, so that a
/// publisher can publish before any sink has started.
pub async fn create_telemetry_stream(client: &async_nats::Client) {
    jetstream::new(client.clone())
        .get_or_create_stream(jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec![TELEMETRY_ALL.into()],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .expect("creating stream TELEMETRY");
}

/// The samples stored on `subject` in stream TELEMETRY, oldest first,
/// waiting up to `timeout` until there are at least `count`, then 300 ms
/// more for any extra ones (so that a test comparing counts sees them).
pub async fn stored_samples(
    client: &async_nats::Client,
    subject: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Sample> {
    let stream = jetstream::new(client.clone())
        .get_stream(STREAM)
        .await
        .expect("stream TELEMETRY");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await
        .expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("consuming");
    let decode = |payload: &[u8]| Sample::decode(payload).expect("a stored sample decodes");
    let mut samples = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while samples.len() < count {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(message))) => samples.push(decode(&message.payload)),
            Ok(Some(Err(error))) => panic!("reading {subject}: {error}"),
            Ok(None) | Err(_) => panic!(
                "{subject}: {} samples after {timeout:?}, expected {count}",
                samples.len()
            ),
        }
    }
    let linger = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(linger, messages.next()).await {
        samples.push(decode(&message.payload));
    }
    samples
}

/// Every sample stored on `subject` in stream TELEMETRY right now, oldest
/// first, read through the server at `url`.
///
/// In a cluster that has just lost a node the JetStream API can time out
/// while the survivors elect new leaders (the meta leader, the stream's,
/// a consumer's); that says nothing about the data, so the read starts over,
/// for up to a minute, before the test is failed.
pub async fn all_stored(url: &str, subject: &str) -> Vec<Sample> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match read_all_once(url, subject).await {
            Ok(payloads) => {
                return payloads
                    .iter()
                    .map(|payload| Sample::decode(payload).expect("a stored sample decodes"))
                    .collect()
            }
            Err(error) if tokio::time::Instant::now() < deadline => {
                eprintln!("reading {subject} through {url}: {error}; starting over");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => panic!("reading {subject} through {url}: {error}"),
        }
    }
}

async fn read_all_once(url: &str, subject: &str) -> Result<Vec<Vec<u8>>, String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let stream = jetstream::new(client)
        .get_stream(STREAM)
        .await
        .map_err(|e| format!("stream {STREAM}: {e}"))?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("an ordered consumer: {e}"))?;
    let pending = consumer.cached_info().num_pending;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("consuming: {e}"))?;
    let mut payloads = Vec::new();
    while (payloads.len() as u64) < pending {
        match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
            Ok(Some(Ok(message))) => payloads.push(message.payload.to_vec()),
            Ok(Some(Err(error))) => return Err(format!("message {}: {error}", payloads.len())),
            Ok(None) => return Err("the consumer ended".into()),
            Err(_) => return Err(format!("{} of {pending} after 10 s", payloads.len())),
        }
    }
    Ok(payloads)
}
