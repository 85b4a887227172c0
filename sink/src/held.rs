//! The messages this sink holds and has neither acknowledged nor handed
//! back, kept alive with progress acknowledgements (`+WPI`).
//!
//! The consumer's ack wait (60 s) hands an unacknowledged message to
//! another sink. A message here can wait longer than that without anything
//! being wrong: its batch waits for the one being written, and a write
//! waits out a MySQL outage for as long as it lasts. Telling the server
//! every [`KEEP_ALIVE_EVERY`] that each held message is still in progress
//! keeps it with this sink; if the sink dies, the progress stops and the
//! ack wait does its job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::message::Message;
use async_nats::{Client, Subject};
use bytes::Bytes;

use crate::jetstream::ACK_WAIT;

/// A third of the ack wait, so one late tick does not matter.
pub(crate) const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(ACK_WAIT.as_secs() / 3);

/// The reply subjects of the held messages, by batch.
#[derive(Default)]
pub struct Held {
    next: AtomicU64,
    batches: Mutex<HashMap<u64, Vec<Subject>>>,
}

impl Held {
    /// Starts holding `messages`; returns the id to let go of them by.
    pub fn hold(&self, messages: &[Message]) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let replies = messages.iter().filter_map(|m| m.reply.clone()).collect();
        self.lock().insert(id, replies);
        id
    }

    /// The batch `id` was acknowledged or handed back.
    pub fn let_go(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// How many messages are held now.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends a progress acknowledgement for every held message, `every`
    /// ([`KEEP_ALIVE_EVERY`] in the sink); runs until dropped.
    pub async fn keep_alive(&self, client: &Client, every: Duration) -> std::convert::Infallible {
        let progress = Bytes::from_static(b"+WPI");
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let replies: Vec<Subject> = self.lock().values().flatten().cloned().collect();
            for reply in replies {
                if client.publish(reply, progress.clone()).await.is_err() {
                    // NATS is away; the next tick tries again.
                    break;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Subject>>> {
        // The map stays consistent whatever panicked while holding it.
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }
}
