//! The sink running inside the test process (its counters can be read),
//! with a subscription to its dead letters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures::StreamExt;
use vigia_schema::subject::{HEADER_DEADLETTER_REASON, HEADER_MSG_ID};
use vigia_schema::Sample;
use vigia_sink::config::Config;
use vigia_sink::metrics::Metrics;

pub struct InProcessSink {
    pub metrics: Arc<Metrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub js: async_nats::jetstream::Context,
    pub dead: async_nats::Subscriber,
}

/// A dead letter as received: subject, reason, payload.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub subject: String,
    pub reason: String,
    pub payload: bytes::Bytes,
}

impl InProcessSink {
    /// Starts the sink against `nats_url` and `database_url`, its flags
    /// the defaults with `batch_wait`.
    pub async fn start(nats_url: &str, database_url: &str, batch_wait: Duration) -> Self {
        Self::start_with(Config {
            nats_url: nats_url.into(),
            database_url: database_url.into(),
            batch_wait,
            ..<Config as clap::Parser>::parse_from(["vigia-sink"])
        })
        .await
    }

    /// Starts the sink with `config`.
    pub async fn start_with(config: Config) -> Self {
        let nats_url = config.nats_url.clone();
        let metrics = Arc::new(Metrics::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(vigia_sink::run(config, metrics.clone(), async {
            let _ = stopped.await;
        }));
        let client = async_nats::connect(nats_url.as_str()).await.unwrap();
        let dead = client.subscribe("deadletter.>").await.unwrap();
        let js = async_nats::jetstream::new(client);
        for _ in 0..300 {
            if js.get_stream(vigia_schema::subject::STREAM).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            metrics,
            stop,
            task,
            js,
            dead,
        }
    }

    /// Publishes `payload` on `subject` and waits for the stream to take
    /// it. A missed acknowledgement (a loaded machine) is retried with the
    /// same `Nats-Msg-Id`, which the stream deduplicates.
    pub async fn publish(&self, subject: &str, id: &str, payload: Vec<u8>) {
        let payload = bytes::Bytes::from(payload);
        let mut attempt = 0;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER_MSG_ID, id);
            let acked = match self
                .js
                .publish_with_headers(subject.to_owned(), headers, payload.clone())
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match acked {
                Ok(()) => return,
                Err(error) if attempt < 5 => {
                    attempt += 1;
                    eprintln!("publishing {id} again: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("publishing {id}: {error}"),
            }
        }
    }

    /// Publishes a sample on its own subject.
    pub async fn send(&self, sample: &Sample) {
        let subject = format!("telemetry.{}.{}", sample.host, sample.kind());
        self.publish(&subject, &sample.msg_id(), sample.encode())
            .await;
    }

    /// The next dead letter, within `timeout`.
    pub async fn next_dead_letter(&mut self, timeout: Duration) -> DeadLetter {
        let message = tokio::time::timeout(timeout, self.dead.next())
            .await
            .unwrap_or_else(|_| panic!("a dead letter within {timeout:?}"))
            .expect("subscription open");
        let reason = message
            .headers
            .as_ref()
            .and_then(|h| h.get(HEADER_DEADLETTER_REASON))
            .map(|v| v.to_string())
            .expect("a reason header");
        DeadLetter {
            subject: message.subject.to_string(),
            reason,
            payload: message.payload,
        }
    }

    /// Stops the sink and checks it ended without an error.
    pub async fn stop(self) {
        assert!(!self.task.is_finished(), "the sink keeps going");
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Every dead letter, as it comes, read by a subscription of its own.
pub struct DeadLetters {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DeadLetters {
    pub async fn collect(nats_url: &str) -> Self {
        let mut subscription = async_nats::connect(nats_url)
            .await
            .unwrap()
            .subscribe("deadletter.>")
            .await
            .unwrap();
        let letters: Arc<Mutex<Vec<DeadLetter>>> = Arc::default();
        let task = {
            let letters = letters.clone();
            tokio::spawn(async move {
                while let Some(message) = subscription.next().await {
                    let reason = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(HEADER_DEADLETTER_REASON))
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    letters.lock().unwrap().push(DeadLetter {
                        subject: message.subject.to_string(),
                        reason,
                        payload: message.payload,
                    });
                }
            })
        };
        Self { letters, task }
    }

    /// The dead letters received so far.
    pub fn received(&self) -> Vec<DeadLetter> {
        self.letters.lock().unwrap().clone()
    }
}

impl Drop for DeadLetters {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches a sink's batch counter: the longest time between two commits.
pub struct CommitGaps {
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Duration>,
}

impl CommitGaps {
    pub fn watch(metrics: Arc<Metrics>) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let task = {
            let running = running.clone();
            tokio::spawn(async move {
                let (mut last, mut at, mut longest) =
                    (metrics.snapshot().batches, Instant::now(), Duration::ZERO);
                while running.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let batches = metrics.snapshot().batches;
                    if batches != last {
                        longest = longest.max(at.elapsed());
                        (last, at) = (batches, Instant::now());
                    }
                }
                longest.max(at.elapsed())
            })
        };
        Self { running, task }
    }

    /// Stops watching; the longest gap seen.
    pub async fn longest(self) -> Duration {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Now, unix nanoseconds.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap()
}
