//! The bounded queue between sampling and publishing.
//!
//! Sampling never waits for the network: it pushes here and goes on. When
//! NATS is away the queue fills; once it holds `capacity` messages, or
//! `max_bytes` of payload, the oldest are dropped for each new one, the
//! drops are counted, and a warning is logged at most once a minute. Memory
//! stays bounded however long NATS is away (a count alone would not bound
//! it: a procs sample of a busy host is a thousand times a cpu sample);
//! what is lost is the oldest data, which matters least to an operator
//! watching now.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

const WARN_EVERY: Duration = Duration::from_secs(60);

/// One encoded sample, ready for JetStream.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub subject: String,
    /// `Nats-Msg-Id`: the same on every retry, so the stream keeps one copy.
    pub msg_id: String,
    pub payload: Bytes,
}

/// The queued messages and the payload bytes they hold.
#[derive(Default)]
struct Queue {
    messages: VecDeque<Outgoing>,
    bytes: usize,
}

impl Queue {
    fn push_back(&mut self, message: Outgoing) {
        self.bytes += message.payload.len();
        self.messages.push_back(message);
    }

    fn push_front(&mut self, message: Outgoing) {
        self.bytes += message.payload.len();
        self.messages.push_front(message);
    }

    fn pop_front(&mut self) -> Option<Outgoing> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.payload.len();
        Some(message)
    }
}

pub struct Outbox {
    queue: Mutex<Queue>,
    capacity: usize,
    max_bytes: usize,
    dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    ready: Notify,
}

impl Outbox {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            ready: Notify::new(),
        }
    }

    /// Queues a message, dropping the oldest when full.
    pub fn push(&self, message: Outgoing) {
        let dropped = {
            let mut queue = self.lock();
            queue.push_back(message);
            self.shrink(&mut queue)
        };
        self.note_drops(dropped);
        self.ready.notify_one();
    }

    /// Puts back messages that were sent but not acknowledged, ahead of
    /// everything queued since, in their original order.
    pub fn requeue(&self, messages: impl DoubleEndedIterator<Item = Outgoing>) {
        let dropped = {
            let mut queue = self.lock();
            for message in messages.rev() {
                queue.push_front(message);
            }
            self.shrink(&mut queue)
        };
        self.note_drops(dropped);
        self.ready.notify_one();
    }

    /// Puts `message` ahead of everything and keeps it: when the queue is
    /// full, the oldest of the others make room. For the `bye`, which must
    /// go first and, unlike a requeued sample, must not be the one dropped.
    pub fn push_first(&self, message: Outgoing) {
        let dropped = {
            let mut queue = self.lock();
            let mut dropped = 0;
            while !queue.messages.is_empty()
                && (queue.messages.len() + 1 > self.capacity
                    || queue.bytes + message.payload.len() > self.max_bytes)
            {
                queue.pop_front();
                dropped += 1;
            }
            queue.push_front(message);
            dropped
        };
        self.note_drops(dropped);
        self.ready.notify_one();
    }

    pub fn pop(&self) -> Option<Outgoing> {
        self.lock().pop_front()
    }

    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped since start because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Resolves when something was pushed since the last call.
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every update of a Queue completes before the lock is released,
        // so a poisoned lock still guards a valid queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the oldest messages until both limits hold again; the newest
    /// message always stays, even if it alone is over `max_bytes`.
    fn shrink(&self, queue: &mut Queue) -> u64 {
        let mut dropped = 0;
        while queue.messages.len() > 1
            && (queue.messages.len() > self.capacity || queue.bytes > self.max_bytes)
        {
            queue.pop_front();
            dropped += 1;
        }
        dropped
    }

    fn note_drops(&self, dropped: u64) {
        if dropped == 0 {
            return;
        }
        let total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                capacity = self.capacity,
                max_bytes = self.max_bytes,
                dropped_total = total,
                "outbox full: dropping the oldest samples until NATS takes them again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: u32) -> Outgoing {
        Outgoing {
            subject: "s".into(),
            msg_id: i.to_string(),
            payload: Bytes::from(vec![0u8; 10]),
        }
    }

    const UNLIMITED: usize = usize::MAX;

    fn ids(outbox: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.pop())
            .map(|m| m.msg_id)
            .collect()
    }

    #[test]
    fn drops_the_oldest_when_full_and_counts() {
        let outbox = Outbox::new(3, UNLIMITED);
        for i in 1..=5 {
            outbox.push(msg(i));
        }
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(ids(&outbox), ["3", "4", "5"]);
    }

    #[test]
    fn requeued_messages_go_first_in_order() {
        let outbox = Outbox::new(10, UNLIMITED);
        outbox.push(msg(3));
        outbox.requeue(vec![msg(1), msg(2)].into_iter());
        assert_eq!(ids(&outbox), ["1", "2", "3"]);
    }

    #[test]
    fn requeue_stays_bounded() {
        let outbox = Outbox::new(2, UNLIMITED);
        outbox.push(msg(3));
        outbox.push(msg(4));
        outbox.requeue(vec![msg(1), msg(2)].into_iter());
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(ids(&outbox), ["3", "4"]);
    }

    #[test]
    fn a_message_put_first_is_kept_even_when_full() {
        let outbox = Outbox::new(3, UNLIMITED);
        for i in 1..=3 {
            outbox.push(msg(i));
        }
        outbox.push_first(msg(9));
        assert_eq!(outbox.dropped(), 1);
        assert_eq!(ids(&outbox), ["9", "2", "3"]);

        let by_bytes = Outbox::new(100, 25);
        by_bytes.push(msg(1));
        by_bytes.push(msg(2));
        by_bytes.push_first(msg(9));
        assert_eq!(ids(&by_bytes), ["9", "2"]);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let outbox = Outbox::new(100, 25);
        for i in 1..=4 {
            outbox.push(msg(i));
        }
        assert_eq!(outbox.bytes(), 20);
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(ids(&outbox), ["3", "4"]);
        assert_eq!(outbox.bytes(), 0);
    }
}
