//! Moves samples from the [`Outbox`] into JetStream.
//!
//! Publishing is pipelined: up to `window` messages are sent before the
//! oldest acknowledgement is awaited, so throughput does not pay one round
//! trip per message. A message leaves the outbox for good only when the
//! stream has acknowledged it. On any failure (NATS away, stream missing,
//! ack timed out) every unacknowledged message goes back to the front of the
//! outbox and is sent again later with the same `Nats-Msg-Id`: the stream's
//! duplicate window ([`vigia_schema::subject::DUPLICATE_WINDOW`], two
//! minutes; retries come within seconds) drops whatever had already landed,
//! so a retry neither loses nor duplicates.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use tokio::time::Instant;
use vigia_schema::backoff::Backoff;
use vigia_schema::subject::{CONTENT_TYPE_MSGPACK, HEADER_CONTENT_TYPE, HEADER_MSG_ID};

use crate::outbox::{Outbox, Outgoing};

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

struct InFlight {
    message: Outgoing,
    ack: AckFuture,
}

/// What one step of forwarding found.
enum Step {
    /// Everything queued is acknowledged.
    Idle,
    /// At least one message was acknowledged.
    Progress,
}

pub struct Forwarder {
    jetstream: Context,
    client: async_nats::Client,
    outbox: Arc<Outbox>,
    in_flight: VecDeque<InFlight>,
    window: usize,
    backoff: Backoff,
    acknowledged: u64,
    /// Messages dropped because the server's max_payload is smaller.
    too_large: u64,
    /// The message being handed to the client right now, if any.
    sending: Option<Outgoing>,
}

impl Forwarder {
    pub fn new(client: async_nats::Client, outbox: Arc<Outbox>, window: usize) -> Self {
        let jetstream = async_nats::jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            // Dropped ack futures (on a retry) keep a permit until this
            // expires; keep it as short as the awaited ack timeout.
            .ack_timeout(Duration::from_secs(5))
            .max_ack_inflight(window * 4)
            .backpressure_on_inflight(true)
            .build(client.clone());
        Self {
            jetstream,
            client,
            outbox,
            in_flight: VecDeque::with_capacity(window),
            window: window.max(1),
            backoff: Backoff::new(),
            acknowledged: 0,
            too_large: 0,
            sending: None,
        }
    }

    /// Messages the stream has acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    /// Forwards until `stop` resolves, and returns what it resolved to;
    /// what is queued then stays queued.
    pub async fn run<T>(&mut self, stop: impl Future<Output = T>) -> T {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                value = &mut stop => return value,
                idle = self.step_or_back_off() => {
                    if idle {
                        tokio::select! {
                            value = &mut stop => return value,
                            _ = self.outbox.ready() => {}
                        }
                    }
                }
            }
        }
    }

    /// Forwards until the outbox is empty and acknowledged, or `deadline`.
    /// Returns whether everything was delivered.
    pub async fn drain(&mut self, deadline: Instant) -> bool {
        let drained = async { while !self.step_or_back_off().await {} };
        let done = tokio::time::timeout_at(deadline, drained).await.is_ok();
        if !done {
            // Whatever was sent but not acknowledged counts as undelivered.
            self.requeue_in_flight();
        }
        done
    }

    /// One step; on failure waits for NATS and backs off. Returns true when
    /// idle (nothing queued, nothing in flight).
    async fn step_or_back_off(&mut self) -> bool {
        match self.step().await {
            Ok(Step::Idle) => true,
            Ok(Step::Progress) => {
                if self.backoff.succeeded() {
                    tracing::info!(queued = self.outbox.len(), "publishing to JetStream again");
                }
                false
            }
            Err(error) => {
                self.requeue_in_flight();
                let failure = self.backoff.failed();
                if failure.first {
                    tracing::warn!(
                        %error,
                        queued = self.outbox.len(),
                        "cannot publish to JetStream; keeping samples in the outbox and retrying"
                    );
                }
                self.wait_for_connection().await;
                tokio::time::sleep(failure.pause).await;
                false
            }
        }
    }

    async fn step(&mut self) -> Result<Step, PublishError> {
        while self.in_flight.len() < self.window {
            // A message being handed to the client sits in `sending` until
            // it is in flight, so a cancelled step (shutdown) cannot lose it.
            let message = match self.sending.take().or_else(|| self.outbox.pop()) {
                Some(message) => message,
                None => break,
            };
            let mut headers = HeaderMap::new();
            headers.insert(HEADER_MSG_ID, message.msg_id.as_str());
            headers.insert(HEADER_CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
            let (subject, payload) = (message.subject.clone(), message.payload.clone());
            self.sending = Some(message);
            let sent = self
                .jetstream
                .publish_with_headers(subject, headers, payload)
                .await;
            // Put there just above; only a cancelled step leaves it.
            let Some(message) = self.sending.take() else {
                break;
            };
            match sent {
                Ok(ack) => self.in_flight.push_back(InFlight {
                    message,
                    ack: ack.into_future(),
                }),
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    // Retrying cannot help a message the server will never
                    // take; keeping it would block everything behind it.
                    self.too_large += 1;
                    tracing::error!(
                        subject = %message.subject,
                        bytes = message.payload.len(),
                        dropped_total = self.too_large,
                        "sample larger than the NATS server's max_payload; dropped (raise max_payload)"
                    );
                }
                Err(error) => {
                    self.outbox.requeue(std::iter::once(message));
                    return Err(error);
                }
            }
        }
        let Some(oldest) = self.in_flight.front_mut() else {
            return Ok(Step::Idle);
        };
        (&mut oldest.ack).await?;
        self.in_flight.pop_front();
        self.acknowledged += 1;
        Ok(Step::Progress)
    }

    fn requeue_in_flight(&mut self) {
        let unacknowledged: Vec<Outgoing> = self
            .in_flight
            .drain(..)
            .map(|f| f.message)
            .chain(self.sending.take())
            .collect();
        self.outbox.requeue(unacknowledged.into_iter());
    }

    async fn wait_for_connection(&self) {
        while self.client.connection_state() != State::Connected {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
