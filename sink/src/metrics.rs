//! Counters of what the sink did, shared by its tasks and logged once a
//! minute, so an operator sees throughput and dead letters without a
//! metrics stack.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages written (or found already written) and acknowledged.
    pub stored: AtomicU64,
    /// Messages sent to `deadletter.>` and terminated.
    pub dead_lettered: AtomicU64,
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Failed attempts to write a batch (each retried).
    pub write_retries: AtomicU64,
    /// Rows removed by retention.
    pub expired_rows: AtomicU64,
    /// True while ingest cannot write to MySQL (liveness waits meanwhile).
    pub ingest_stalled: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub stored: u64,
    pub dead_lettered: u64,
    pub batches: u64,
    pub write_retries: u64,
    pub expired_rows: u64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            stored: get(&self.stored),
            dead_lettered: get(&self.dead_lettered),
            batches: get(&self.batches),
            write_retries: get(&self.write_retries),
            expired_rows: get(&self.expired_rows),
        }
    }
}
