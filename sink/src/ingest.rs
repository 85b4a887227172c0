//! The sink's main loop: pull a batch, store it in one transaction, then
//! acknowledge it.
//!
//! Acknowledging only after the commit is what makes the sink lose
//! nothing: a crash between the two leaves messages unacknowledged, the
//! stream redelivers them, and the unique keys make the second write a
//! no-op. While MySQL is away the batch in hand is retried with a capped
//! backoff and nothing is acknowledged; the stream holds the rest.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::Message;
use async_nats::jetstream::{AckKind, Context};
use futures::StreamExt;
use tokio::time::Instant;
use vigia_schema::Sample;

use crate::classify::{classify, Rejection};
use crate::deadletter;
use crate::metrics::Metrics;
use crate::store::{WriteError, Writer};

/// Longest a batch write may take before it counts as failed and is
/// retried: a half-open connection to MySQL would otherwise hang ingest
/// (and shutdown) until TCP gives up, minutes later.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Payload bytes that end a batch early, whatever its message count:
/// memory is bounded by bytes, not only by messages.
const BATCH_MAX_BYTES: usize = 64 << 20;

/// A batch also closes when no message came for this long (the stream is
/// drained), instead of always waiting the whole batch wait.
const IDLE_GAP: Duration = Duration::from_millis(20);

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct Ingest {
    pub consumer: PullConsumer,
    pub jetstream: Context,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub stream: String,
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub dead_letter_log: LogLimit,
}

/// Allows one log line per period.
pub struct LogLimit {
    period: Duration,
    last: std::sync::Mutex<Option<Instant>>,
}

impl LogLimit {
    pub fn every(period: Duration) -> Self {
        Self {
            period,
            last: std::sync::Mutex::new(None),
        }
    }

    pub fn allow(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.period) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// A message and what it turned out to be.
struct Classified {
    message: Message,
    verdict: Result<Sample, Rejection>,
}

/// Logs a failing dependency once when it fails and once when it is back.
#[derive(Default)]
struct Health {
    failing: bool,
}

impl Health {
    fn failed(&mut self, what: &str, error: &dyn std::fmt::Display, holding: usize) {
        if !self.failing {
            self.failing = true;
            tracing::warn!(%error, holding, "{what} failed; acknowledging nothing and retrying");
        }
    }

    fn ok(&mut self, what: &str) {
        if self.failing {
            self.failing = false;
            tracing::info!("{what} works again");
        }
    }
}

impl Ingest {
    /// Runs until `shutdown` resolves; a batch being written then is
    /// finished first, unless it is waiting for MySQL, in which case it is
    /// left unacknowledged for the stream to redeliver.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut messages = self
            .consumer
            .stream()
            // No max_bytes on the pull: with async-nats 0.51 a pull stream
            // that missed heartbeats (the sink paused, NATS away) stopped
            // asking for more once it counted bytes. Batches are capped by
            // bytes below instead.
            .max_messages_per_batch(self.batch_size.min(1000))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?;
        let mut nats = Health::default();
        loop {
            let first = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                next = messages.next() => next,
            };
            let mut batch = Vec::with_capacity(self.batch_size.min(4096));
            match first {
                None => anyhow::bail!("the consumer's message stream ended"),
                Some(Err(error)) => {
                    nats.failed("pulling from JetStream", &error, 0);
                    continue;
                }
                Some(Ok(message)) => batch.push(message),
            }
            nats.ok("pulling from JetStream");
            let deadline = Instant::now() + self.batch_wait;
            let mut bytes = batch[0].payload.len();
            while batch.len() < self.batch_size && bytes < BATCH_MAX_BYTES {
                // A stream that has gone quiet closes the batch early: there
                // is no point holding what arrived for messages not coming.
                let until = deadline.min(Instant::now() + IDLE_GAP);
                match tokio::time::timeout_at(until, messages.next()).await {
                    Ok(Some(Ok(message))) => {
                        bytes += message.payload.len();
                        batch.push(message);
                    }
                    Ok(Some(Err(error))) => {
                        nats.failed("pulling from JetStream", &error, batch.len());
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if !self.process(batch, &mut shutdown).await {
                return Ok(());
            }
        }
    }

    /// Stores, dead-letters and acknowledges one batch. Returns false when
    /// shutdown came while it waited for MySQL or NATS.
    async fn process(
        &self,
        batch: Vec<Message>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        let mut classified: Vec<Classified> = batch
            .into_iter()
            .map(|message| {
                let verdict = classify(&message.subject, &message.payload);
                Classified { message, verdict }
            })
            .collect();
        if !self.store(&mut classified, shutdown).await {
            return false;
        }
        let mut stored = 0u64;
        let mut nats = Health::default();
        for item in &classified {
            match &item.verdict {
                Ok(_) => {
                    if let Err(error) = item.message.ack().await {
                        // The stream redelivers it and the write is a no-op.
                        nats.failed("acknowledging", &error, 0);
                    }
                    stored += 1;
                }
                Err(rejection) => {
                    if !self.dead_letter(&item.message, rejection, shutdown).await {
                        return false;
                    }
                }
            }
        }
        Metrics::add(&self.metrics.stored, stored);
        Metrics::add(&self.metrics.batches, 1);
        true
    }

    /// Writes the batch's samples, retrying while MySQL is unavailable.
    /// Samples MySQL rejects as data are moved to the rejected side.
    async fn store(
        &self,
        batch: &mut [Classified],
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        let mut health = Health::default();
        let mut backoff = BACKOFF_START;
        loop {
            let samples: Vec<&Sample> = batch
                .iter()
                .filter_map(|c| c.verdict.as_ref().ok())
                .collect();
            let written = tokio::time::timeout(WRITE_TIMEOUT, self.writer.write(&samples))
                .await
                .unwrap_or_else(|_| Err(WriteError::TimedOut(WRITE_TIMEOUT)));
            let error = match written {
                Ok(()) => {
                    health.ok("writing to MySQL");
                    self.metrics
                        .ingest_stalled
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    return true;
                }
                Err(WriteError::Rejected(error)) if samples.len() > 1 => {
                    tracing::warn!(%error, "MySQL rejected a batch; writing its samples one by one");
                    match self.isolate_rejected(batch).await {
                        Ok(()) => return true,
                        Err(error) => error,
                    }
                }
                Err(WriteError::Rejected(error)) => {
                    if let Some(item) = batch.iter_mut().find(|c| c.verdict.is_ok()) {
                        item.verdict = Err(Rejection(format!("MySQL rejected it: {error}")));
                    }
                    return true;
                }
                Err(error) => error,
            };
            health.failed("writing to MySQL", &error, batch.len());
            self.metrics
                .ingest_stalled
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Metrics::add(&self.metrics.write_retries, 1);
            tokio::select! {
                _ = &mut *shutdown => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Writes each sample alone and marks those MySQL rejects.
    async fn isolate_rejected(&self, batch: &mut [Classified]) -> Result<(), WriteError> {
        for item in batch.iter_mut() {
            let Ok(sample) = &item.verdict else { continue };
            let written = tokio::time::timeout(WRITE_TIMEOUT, self.writer.write(&[sample]))
                .await
                .unwrap_or_else(|_| Err(WriteError::TimedOut(WRITE_TIMEOUT)));
            match written {
                Ok(()) => {}
                Err(WriteError::Rejected(error)) => {
                    item.verdict = Err(Rejection(format!("MySQL rejected it: {error}")));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Republishes a message to the dead-letter subject, then terminates
    /// it so it is never redelivered.
    async fn dead_letter(
        &self,
        message: &Message,
        rejection: &Rejection,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        // The original's stream sequence: a dead letter sent again after a
        // crash is stored once. Messages from a consumer always have it.
        let id = match message.info() {
            Ok(info) => format!("{}.{}", self.stream, info.stream_sequence),
            Err(_) => format!(
                "{}.{}.{}",
                self.stream,
                message.subject,
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
            ),
        };
        let mut health = Health::default();
        let mut backoff = BACKOFF_START;
        loop {
            match deadletter::publish(
                &self.jetstream,
                &message.subject,
                &id,
                message.payload.clone(),
                &rejection.0,
            )
            .await
            {
                Ok(()) => break,
                Err(error) => health.failed("publishing a dead letter", &error, 1),
            }
            tokio::select! {
                _ = &mut *shutdown => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        let _ = message.ack_with(AckKind::Term).await;
        Metrics::add(&self.metrics.dead_lettered, 1);
        // A broken publisher can send thousands: the first of each minute
        // is a warning, the rest are counted (logged with the stats).
        if self.dead_letter_log.allow() {
            tracing::warn!(subject = %message.subject, reason = %rejection, "dead-lettered a message");
        } else {
            tracing::debug!(subject = %message.subject, reason = %rejection, "dead-lettered a message");
        }
        true
    }
}
