//! The bounded queue between sampling and publishing.
//!
//! Sampling never waits for the network: it pushes here and goes on. When
//! NATS is away the queue fills; once it holds `capacity` messages the
//! oldest is dropped for each new one, the drop is counted, and a warning is
//! logged at most once a minute. Memory stays bounded however long NATS is
//! away; what is lost is the oldest data, which matters least to an operator
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

pub struct Outbox {
    queue: Mutex<VecDeque<Outgoing>>,
    capacity: usize,
    dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    ready: Notify,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            ready: Notify::new(),
        }
    }

    /// Queues a message, dropping the oldest when full.
    pub fn push(&self, message: Outgoing) {
        let dropped = {
            let mut queue = self.lock();
            let dropped = self.make_room(&mut queue, 1);
            queue.push_back(message);
            dropped
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
            let over = queue.len().saturating_sub(self.capacity);
            queue.drain(..over);
            over as u64
        };
        self.note_drops(dropped);
        self.ready.notify_one();
    }

    pub fn pop(&self) -> Option<Outgoing> {
        self.lock().pop_front()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
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

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Outgoing>> {
        // A panic while holding this lock leaves a VecDeque that is still
        // valid, so a poisoned lock is safe to keep using.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn make_room(&self, queue: &mut VecDeque<Outgoing>, incoming: usize) -> u64 {
        let over = (queue.len() + incoming).saturating_sub(self.capacity);
        queue.drain(..over.min(queue.len()));
        over as u64
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
            payload: Bytes::new(),
        }
    }

    fn ids(outbox: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.pop())
            .map(|m| m.msg_id)
            .collect()
    }

    #[test]
    fn drops_the_oldest_when_full_and_counts() {
        let outbox = Outbox::new(3);
        for i in 1..=5 {
            outbox.push(msg(i));
        }
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(ids(&outbox), ["3", "4", "5"]);
    }

    #[test]
    fn requeued_messages_go_first_in_order() {
        let outbox = Outbox::new(10);
        outbox.push(msg(3));
        outbox.requeue(vec![msg(1), msg(2)].into_iter());
        assert_eq!(ids(&outbox), ["1", "2", "3"]);
    }

    #[test]
    fn requeue_stays_bounded() {
        let outbox = Outbox::new(2);
        outbox.push(msg(3));
        outbox.push(msg(4));
        outbox.requeue(vec![msg(1), msg(2)].into_iter());
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(ids(&outbox), ["3", "4"]);
    }
}
