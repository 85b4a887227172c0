//! The sink's main loop: pull a batch, store it in one transaction, then
//! acknowledge it.
//!
//! Acknowledging only after the commit is what makes the sink lose
//! nothing: a crash between the two leaves messages unacknowledged, the
//! stream redelivers them, and the unique keys make the second write a
//! no-op. While MySQL is away the batch in hand is retried with a capped
//! backoff and nothing is acknowledged; the stream holds the rest.
//!
//! Two stages run at once, joined by a channel that holds one batch:
//!
//! ```text
//! pull:  gather → decode + encode lists (blocking thread) ─┐ channel(1)
//! write:                       transaction → commit → ack ◄┘
//! ```
//!
//! so the CPU work of batch N+1 overlaps MySQL's work on batch N, and the
//! sink holds at most three batches (gathering, waiting, writing), each
//! capped by count and bytes, plus what the client has pulled ahead (at
//! most one pull of a thousand messages). Batches are written one at a
//! time, in the order they were pulled. Held messages are kept alive
//! against the ack wait ([`Held`]) however long MySQL takes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::Stream as Messages;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::Message;
use async_nats::jetstream::{AckKind, Context};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use vigia_schema::bounds::TimeWindow;
use vigia_schema::text::Escaped;
use vigia_schema::Sample;

use crate::classify::{classify, Rejection};
use crate::deadletter;
use crate::held::{Held, KEEP_ALIVE_EVERY};
use crate::metrics::Metrics;
use crate::retry::{LogLimit, Retry};
use crate::shutdown::Shutdown;
use crate::store::{ProcessLists, WriteError, Writer};

mod isolate;

/// A batch also closes when no message came for this long (the stream is
/// drained), instead of always waiting the whole batch wait.
const IDLE_GAP: Duration = Duration::from_millis(20);

/// How often the writer looks for open minutes of the rollup to recompute
/// between batches (store/open_minutes.rs).
const REFRESH_TICK: Duration = Duration::from_secs(1);

/// How often the writer computes the last process periods of hosts that
/// went quiet before those settled (store/rollup.rs).
const SETTLE_TICK: Duration = Duration::from_secs(60);

/// How long a stopping sink gives that recompute.
const FLUSH_AT_STOP: Duration = Duration::from_secs(3);

pub(crate) struct Ingest {
    pub consumer: PullConsumer,
    pub jetstream: Context,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub stream: String,
    pub batch_size: usize,
    pub batch_wait: Duration,
    /// Payload bytes that end a batch early, whatever its message count:
    /// memory is bounded by bytes, not only by messages.
    pub batch_max_bytes: usize,
    pub dead_letter_log: LogLimit,
    /// How long MySQL keeps samples (--retention): an older sample is
    /// dead-lettered, not stored to be deleted at the next pass.
    pub retention: Duration,
}

/// A message and what it turned out to be.
struct Classified {
    message: Message,
    verdict: Result<Sample, Rejection>,
}

/// A batch between the stages: decoded, its lists encoded, not yet written.
struct Batch {
    /// Its id in [`Held`].
    held: u64,
    items: Vec<Classified>,
    lists: ProcessLists,
    bytes: usize,
    gathered: Duration,
    decoded: Duration,
}

impl Batch {
    /// The CPU half of a batch's work, for a blocking thread.
    fn prepare(
        messages: Vec<Message>,
        bytes: usize,
        held: u64,
        gathered: Duration,
        retention: Duration,
    ) -> Batch {
        let started = std::time::Instant::now();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        // A grace short of the retention, so a sample taken is written
        // before its day can be dropped (crate::retention::GRACE).
        let keep = crate::retention::accepted(retention);
        let keep = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
        let window = TimeWindow::keeping(now, keep, "the sink's retention horizon (--retention)");
        let items: Vec<Classified> = messages
            .into_iter()
            .map(|message| {
                let verdict = classify(&message.subject, &message.payload, &window);
                Classified { message, verdict }
            })
            .collect();
        let samples: Vec<&Sample> = items
            .iter()
            .filter_map(|c| c.verdict.as_ref().ok())
            .collect();
        let lists = ProcessLists::encode(&samples);
        Batch {
            held,
            items,
            lists,
            bytes,
            gathered,
            decoded: started.elapsed(),
        }
    }

    fn into_messages(self) -> Vec<Message> {
        self.items.into_iter().map(|c| c.message).collect()
    }
}

/// Longest a stopping sink spends handing unwritten messages back.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Hands messages that will not be written back to the stream at once
/// (a NAK), instead of letting them wait out the ack wait before another
/// sink, or this one restarted, gets them.
///
/// Best effort: seen with nats-server 2.9.10, the first message handed
/// back after this sink unsubscribed can still go to its last pull request
/// (which the server drops only after that failed delivery); that one
/// message waits out the ack wait, the rest are redelivered at once.
async fn release(messages: impl IntoIterator<Item = Message>) {
    let naks = async {
        for message in messages {
            if message.ack_with(AckKind::Nak(None)).await.is_err() {
                // NATS is away: the ack wait redelivers them instead.
                break;
            }
        }
    };
    let _ = tokio::time::timeout(RELEASE_TIMEOUT, naks).await;
}

/// Messages the server already delivered to this sink that the pull has
/// not taken yet (a pull asks for up to a thousand), without waiting.
fn delivered(messages: &mut Messages) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        out.push(message);
    }
    out
}

impl Ingest {
    /// Runs until `shutdown` resolves; a batch being written then is
    /// finished first, unless it is waiting for MySQL, in which case it is
    /// handed back to the stream unacknowledged, as are batches not yet
    /// written.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let messages = self
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
        let shutdown_signal = Shutdown::new();
        let held = Held::default();
        let client = self.jetstream.client();
        let (ready_tx, ready_rx) = mpsc::channel(1);
        let work = async {
            let stages = async {
                let ((pulled, mut unwritten), more) = tokio::join!(
                    self.pull(messages, ready_tx, &held, &shutdown_signal),
                    self.write_all(ready_rx, &held, &shutdown_signal)
                );
                unwritten.extend(more);
                (pulled, unwritten)
            };
            tokio::select! {
                result = stages => result,
                never = held.keep_alive(&client, KEEP_ALIVE_EVERY) => match never {},
            }
        };
        tokio::pin!(work, shutdown);
        let (pulled, unwritten) = tokio::select! {
            result = &mut work => result,
            _ = &mut shutdown => {
                shutdown_signal.trigger();
                work.await
            }
        };
        // The pull stream is gone, so this sink has unsubscribed; once the
        // server knows, the messages handed back go to another sink, not
        // to this one's last pull request.
        let _ = tokio::time::timeout(RELEASE_TIMEOUT, client.flush()).await;
        release(unwritten).await;
        pulled
    }

    /// The first stage: gathers batches and prepares them on a blocking
    /// thread, then hands them to [`Ingest::write_all`], waiting while it
    /// is busy (this is the back-pressure: nothing more is pulled). Returns
    /// with the messages it holds at shutdown.
    async fn pull(
        &self,
        mut messages: Messages,
        ready: mpsc::Sender<Batch>,
        held: &Held,
        shutdown: &Shutdown,
    ) -> (anyhow::Result<()>, Vec<Message>) {
        let mut nats = Retry::new("pulling from JetStream", "retrying");
        loop {
            let first = tokio::select! {
                _ = shutdown.wait() => return (Ok(()), delivered(&mut messages)),
                next = messages.next() => next,
            };
            let mut batch = Vec::with_capacity(self.batch_size.min(4096));
            match first {
                None => {
                    let ended = anyhow::anyhow!("the consumer's message stream ended");
                    return (Err(ended), Vec::new());
                }
                Some(Err(error)) => {
                    nats.failed(&error, 0);
                    continue;
                }
                Some(Ok(message)) => batch.push(message),
            }
            nats.ok();
            let gathering = Instant::now();
            let deadline = gathering + self.batch_wait;
            let mut bytes = batch[0].payload.len();
            while batch.len() < self.batch_size && bytes < self.batch_max_bytes {
                // A stream that has gone quiet closes the batch early: there
                // is no point holding what arrived for messages not coming.
                let until = deadline.min(Instant::now() + IDLE_GAP);
                match tokio::time::timeout_at(until, messages.next()).await {
                    Ok(Some(Ok(message))) => {
                        bytes += message.payload.len();
                        batch.push(message);
                    }
                    Ok(Some(Err(error))) => {
                        nats.failed(&error, batch.len());
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if shutdown.is_triggered() {
                batch.extend(delivered(&mut messages));
                return (Ok(()), batch);
            }
            let gathered = gathering.elapsed();
            let id = held.hold(&batch);
            let retention = self.retention;
            let prepared = tokio::task::spawn_blocking(move || {
                Batch::prepare(batch, bytes, id, gathered, retention)
            })
            .await;
            let batch = match prepared {
                Ok(batch) => batch,
                // Only a panic gets here; the messages went with it and
                // the ack wait redelivers them.
                Err(error) => return (Err(error.into()), Vec::new()),
            };
            if let Err(mpsc::error::SendError(batch)) = ready.send(batch).await {
                // The writer stopped: shutdown.
                let mut held = batch.into_messages();
                held.extend(delivered(&mut messages));
                return (Ok(()), held);
            }
        }
    }

    /// The second stage: writes and acknowledges batches one at a time, in
    /// the order they were pulled, until shutdown or the end of the pull.
    /// Returns the messages of batches it did not write.
    async fn write_all(
        &self,
        mut ready: mpsc::Receiver<Batch>,
        held: &Held,
        shutdown: &Shutdown,
    ) -> Vec<Message> {
        let mut unwritten = Vec::new();
        let mut refresh = tokio::time::interval(REFRESH_TICK);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut settle = tokio::time::interval(SETTLE_TICK);
        settle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let refresh_log = LogLimit::every(Duration::from_secs(60));
        let settle_log = LogLimit::every(Duration::from_secs(60));
        loop {
            let batch = tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                // Before the batches, which would otherwise starve them
                // under load. Each is reset when its work ends, so a tick
                // never finds itself due again at once: however long a
                // pass takes, a batch is written between two passes.
                _ = refresh.tick() => {
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        () = self.rollup_pass(
                            "recomputing the rollup's unsettled minutes",
                            self.writer.refresh_open_minutes(),
                            &refresh_log,
                        ) => {
                            refresh.reset();
                            continue;
                        }
                    }
                }
                _ = settle.tick() => {
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        () = self.rollup_pass(
                            "computing the process periods of quiet hosts",
                            self.writer.settle_quiet_hosts(),
                            &settle_log,
                        ) => {
                            settle.reset();
                            continue;
                        }
                    }
                }
                batch = ready.recv() => match batch {
                    Some(batch) => batch,
                    None => break,
                },
            };
            let id = batch.held;
            match self.process(batch, shutdown).await {
                Ok(()) => held.let_go(id),
                Err(batch) => {
                    unwritten = batch.into_messages();
                    break;
                }
            }
        }
        ready.close();
        while let Ok(batch) = ready.try_recv() {
            unwritten.extend(batch.into_messages());
        }
        // The minutes this sink left for later are recomputed before it
        // goes: a sink scaled in has no successor whose start would.
        // Best effort: MySQL may be what stopped it.
        let _ = tokio::time::timeout(FLUSH_AT_STOP, self.writer.flush_open_minutes()).await;
        unwritten
    }

    /// Runs one of the writer's rollup passes between batches: the
    /// unsettled minutes batches left for later (store/open_minutes.rs), or
    /// the process periods of hosts gone quiet (store/rollup.rs). A failure
    /// is retried at the pass's next tick, and logged once a minute at most.
    async fn rollup_pass(
        &self,
        what: &'static str,
        pass: impl Future<Output = Result<usize, WriteError>>,
        log: &LogLimit,
    ) {
        match pass.await {
            Ok(hosts) if hosts > 0 => tracing::debug!(hosts, "{what}: done"),
            Ok(_) => {}
            Err(error) if log.allow() => {
                tracing::warn!(%error, "{what} failed; retrying at the next tick")
            }
            Err(_) => {}
        }
    }

    /// Stores, dead-letters and acknowledges one batch. Gives the batch
    /// back when shutdown came while it waited for MySQL, unwritten.
    async fn process(&self, mut batch: Batch, shutdown: &Shutdown) -> Result<(), Batch> {
        let started = Instant::now();
        if !self.store(&mut batch.items, &batch.lists, shutdown).await {
            return Err(batch);
        }
        let written = started.elapsed();
        self.metrics.write_times.observe(written);
        let mut stored = 0u64;
        let mut nats = Retry::new(
            "acknowledging",
            "the stream redelivers what it did not take",
        );
        for item in &batch.items {
            match &item.verdict {
                Ok(_) => {
                    if let Err(error) = item.message.ack().await {
                        // The stream redelivers it and the write is a no-op.
                        nats.failed(&error, 0);
                    }
                    stored += 1;
                }
                Err(rejection) => {
                    if !self.dead_letter(&item.message, rejection, shutdown).await {
                        // Stored and acknowledged as far as it got; the
                        // rest waits out the ack wait (NATS is away).
                        return Ok(());
                    }
                }
            }
        }
        Metrics::add(&self.metrics.stored, stored);
        Metrics::add(&self.metrics.batches, 1);
        // Where a batch's time goes, for whoever tunes the sink
        // (RUST_LOG=vigia_sink=debug); one line per batch, never per sample.
        tracing::debug!(
            messages = batch.items.len(),
            bytes = batch.bytes,
            gather_ms = batch.gathered.as_secs_f64() * 1e3,
            decode_ms = batch.decoded.as_secs_f64() * 1e3,
            write_ms = written.as_secs_f64() * 1e3,
            ack_ms = (started.elapsed() - written).as_secs_f64() * 1e3,
            "batch stored"
        );
        Ok(())
    }

    /// Writes the batch's samples. When the write fails, a probe asks
    /// MySQL whether it answers and takes writes: if not (away, or
    /// read-only during a failover), the whole batch is retried with a
    /// capped backoff, nothing dead-lettered; if it does, the data is suspect and the batch is narrowed down to the samples
    /// that fail on their own ([`isolate`]). No probe when the write works.
    /// Returns false when shutdown came while waiting for MySQL.
    async fn store(
        &self,
        batch: &mut [Classified],
        lists: &ProcessLists,
        shutdown: &Shutdown,
    ) -> bool {
        let mut outage = isolate::Outage::default();
        let everything: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].verdict.is_ok())
            .collect();
        loop {
            let error = match self.write_some(batch, &everything, lists).await {
                Ok(()) => {
                    outage.over(&self.metrics);
                    return true;
                }
                Err(error) => error,
            };
            if !error.sent_nothing() && self.writer.probe().await.is_ok() {
                outage.over(&self.metrics);
                return self
                    .isolate(batch, everything, lists, error, &mut outage, shutdown)
                    .await;
            }
            if !outage
                .wait(&self.metrics, &error, batch.len(), shutdown)
                .await
            {
                return false;
            }
        }
    }

    /// Writes the samples of `batch` at `which`, in one transaction.
    async fn write_some(
        &self,
        batch: &[Classified],
        which: &[usize],
        lists: &ProcessLists,
    ) -> Result<(), WriteError> {
        let samples: Vec<&Sample> = which
            .iter()
            .filter_map(|&i| batch[i].verdict.as_ref().ok())
            .collect();
        self.writer.write_prepared(&samples, lists).await
    }

    /// Republishes a message to the dead-letter subject, then terminates
    /// it so it is never redelivered.
    async fn dead_letter(
        &self,
        message: &Message,
        rejection: &Rejection,
        shutdown: &Shutdown,
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
        let mut nats = Retry::new(
            "publishing a dead letter",
            "acknowledging nothing and retrying",
        );
        loop {
            match deadletter::publish(
                &self.jetstream,
                &message.subject,
                &id,
                message.payload.clone(),
                &rejection.reason,
            )
            .await
            {
                Ok(()) => break nats.ok(),
                Err(error) => {
                    if !nats.pause_after(&error, 1, shutdown).await {
                        return false;
                    }
                }
            }
        }
        let _ = message.ack_with(AckKind::Term).await;
        Metrics::add(&self.metrics.dead_lettered, 1);
        self.metrics.dead_lettered(rejection.class);
        // A broken publisher can send thousands: the first of each minute
        // is a warning, the rest are counted (logged with the stats).
        if self.dead_letter_log.allow() {
            tracing::warn!(subject = %Escaped(&message.subject), reason = %rejection, "dead-lettered a message");
        } else {
            tracing::debug!(subject = %Escaped(&message.subject), reason = %rejection, "dead-lettered a message");
        }
        true
    }
}
