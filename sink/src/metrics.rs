//! Counters of what the sink did, shared by its tasks and logged once a
//! minute, so an operator sees throughput and dead letters without a
//! metrics stack; the same counters go to MySQL (health.rs) and to
//! `/metrics` (exporter.rs).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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
    /// Rows removed by retention from the tables that are not partitioned.
    pub expired_rows: AtomicU64,
    /// Whole days dropped by retention from the partitioned tables (one
    /// per table and day).
    pub expired_days: AtomicU64,
    /// Messages the stream discarded before any sink read them, as this
    /// sink saw (crate::discards).
    pub stream_discarded: AtomicU64,
    /// True while ingest cannot write to MySQL (liveness waits meanwhile).
    pub ingest_stalled: AtomicBool,
    /// Dead letters by [`DeadLetterClass`], in its order.
    pub dead_by_class: [AtomicU64; DeadLetterClass::ALL.len()],
    /// Batch write times: every batch in the histogram, and the batches
    /// since the last health row kept for its percentiles.
    pub write_times: WriteTimes,
    /// The consumer's lag as last read from JetStream (health.rs).
    pub lag: Mutex<Option<Lag>>,
}

/// Why a message was dead-lettered, in four classes an operator can act
/// on: a broken or foreign publisher (decode), a publisher on the wrong
/// subject (mismatch), a value the contract forbids (invalid), a row MySQL
/// would not take (mysql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterClass {
    Decode,
    Mismatch,
    Invalid,
    Mysql,
}

impl DeadLetterClass {
    pub const ALL: [DeadLetterClass; 4] = [
        DeadLetterClass::Decode,
        DeadLetterClass::Mismatch,
        DeadLetterClass::Invalid,
        DeadLetterClass::Mysql,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterClass::Decode => "decode",
            DeadLetterClass::Mismatch => "mismatch",
            DeadLetterClass::Invalid => "invalid",
            DeadLetterClass::Mysql => "mysql",
        }
    }
}

/// The consumer's lag, as JetStream tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Messages not yet delivered to any sink.
    pub pending: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: u64,
    /// Age of the oldest message not acknowledged; zero when caught up.
    pub seconds: f64,
}

/// Upper bounds of the write-time histogram, seconds.
pub(crate) const WRITE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Most write times kept between two health rows: at the smallest batch
/// wait a sink commits a few hundred batches in five seconds; beyond this
/// the percentiles come from the first ones, and the histogram still
/// counts every batch.
const RECENT_MAX: usize = 4096;

/// Batch write times.
#[derive(Debug, Default)]
pub struct WriteTimes {
    /// Batches with a time up to each bound of [`WRITE_BUCKETS`]
    /// (not cumulative; the exporter sums them).
    buckets: [AtomicU64; WRITE_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
    recent: Mutex<Vec<f64>>,
}

/// The histogram at one moment: sum (s), count, cumulative buckets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    pub sum: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

/// p50, p99 and max of some write times, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl WriteTimes {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = WRITE_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(WRITE_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() < RECENT_MAX {
            recent.push(seconds * 1e3);
        }
    }

    pub(crate) fn histogram(&self) -> Histogram {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(WRITE_BUCKETS.len() + 1);
        for (i, bound) in WRITE_BUCKETS.iter().chain([&f64::INFINITY]).enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        Histogram {
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: cumulative,
            buckets,
        }
    }

    /// The percentiles of the writes since the previous call, which
    /// forgets them; None when there was none.
    pub(crate) fn take_percentiles(&self) -> Option<Percentiles> {
        let mut times = std::mem::take(&mut *self.recent.lock().unwrap_or_else(|e| e.into_inner()));
        percentiles(&mut times)
    }
}

/// Nearest-rank percentiles.
fn percentiles(times: &mut [f64]) -> Option<Percentiles> {
    if times.is_empty() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let rank = |p: f64| times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    Some(Percentiles {
        p50: rank(0.50),
        p99: rank(0.99),
        max: times[times.len() - 1],
    })
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub stored: u64,
    pub dead_lettered: u64,
    pub batches: u64,
    pub write_retries: u64,
    pub expired_rows: u64,
    pub expired_days: u64,
    pub stream_discarded: u64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one dead letter in its class (the total is counted apart).
    pub fn dead_lettered(&self, class: DeadLetterClass) {
        Self::add(&self.dead_by_class[class as usize], 1);
    }

    pub(crate) fn dead_by_class(&self) -> [u64; DeadLetterClass::ALL.len()] {
        std::array::from_fn(|i| self.dead_by_class[i].load(Ordering::Relaxed))
    }

    pub(crate) fn set_lag(&self, lag: Option<Lag>) {
        *self.lag.lock().unwrap_or_else(|e| e.into_inner()) = lag;
    }

    pub(crate) fn lag(&self) -> Option<Lag> {
        *self.lag.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            stored: get(&self.stored),
            dead_lettered: get(&self.dead_lettered),
            batches: get(&self.batches),
            write_retries: get(&self.write_retries),
            expired_rows: get(&self.expired_rows),
            expired_days: get(&self.expired_days),
            stream_discarded: get(&self.stream_discarded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_count_in_their_class() {
        let metrics = Metrics::default();
        metrics.dead_lettered(DeadLetterClass::Invalid);
        metrics.dead_lettered(DeadLetterClass::Mysql);
        metrics.dead_lettered(DeadLetterClass::Mysql);
        assert_eq!(metrics.dead_by_class(), [0, 0, 1, 2]);
    }

    #[test]
    fn write_times_make_a_cumulative_histogram_and_percentiles() {
        let times = WriteTimes::default();
        for ms in 1..=100 {
            times.observe(Duration::from_millis(ms));
        }
        let h = times.histogram();
        assert_eq!(h.count, 100);
        assert!((h.sum - 5.05).abs() < 1e-9, "{}", h.sum);
        assert_eq!(h.buckets[0], (0.005, 5));
        assert_eq!(h.buckets[1], (0.01, 10));
        assert_eq!(h.buckets.last(), Some(&(f64::INFINITY, 100)));
        assert!(h.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        let p = times.take_percentiles().unwrap();
        assert_eq!((p.p50, p.p99, p.max), (50.0, 99.0, 100.0));
        // Taken: the next row covers only the writes after it.
        assert_eq!(times.take_percentiles(), None);
        assert_eq!(times.histogram().count, 100);
    }
}
