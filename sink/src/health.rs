//! The sink's own state, written to MySQL every few seconds (table
//! `sink_health`, mysql/migrations/0007_pipeline_health.sql), where the
//! Pipeline dashboard and the alert rules read it.
//!
//! Each row is one sink instance at one moment: its cumulative counters,
//! the write times of the batches since its previous row, and the
//! consumer's lag as JetStream tells it. The lag is read here, not in
//! ingest, so the write path pays nothing for it: one consumer info and at
//! most one stream read per interval. A row that cannot be written (MySQL
//! away) is skipped, never queued: the next one carries the same counters.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::stream::Stream;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::MySqlPool;

use crate::discards::Discards;
use crate::metrics::{Lag, Metrics, Percentiles};

/// Longest a sink instance name may be (the `sink` column).
pub(crate) const MAX_INSTANCE_LEN: usize = 128;

/// What the health task needs.
pub(crate) struct Reporter {
    pub pool: MySqlPool,
    pub consumer: PullConsumer,
    pub stream: Stream,
    pub metrics: Arc<Metrics>,
    pub instance: String,
    pub started: DateTime<Utc>,
    pub every: Duration,
    pub discards: Discards,
}

/// The default instance name: host name and pid, so two sinks on one
/// machine, and a restarted sink, are told apart.
pub(crate) fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    instance_name(&format!("{}/{}", host.trim(), std::process::id()))
}

/// `name` reduced to what the `sink` column holds: ASCII letters, digits
/// and `._/-`, anything else as `-`, at most [`MAX_INSTANCE_LEN`].
pub(crate) fn instance_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._/-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_INSTANCE_LEN)
        .collect()
}

/// Reads the consumer's lag: what waits, and how old the oldest message
/// not yet acknowledged is (the one just past the ack floor, or the
/// stream's first when the stream dropped that one). Also the stream's
/// first sequence and the consumer's last delivered, for [`Discards`].
pub(crate) async fn read_lag(
    consumer: &mut PullConsumer,
    stream: &Stream,
) -> (Option<Lag>, Option<(u64, u64)>) {
    let Ok(info) = consumer.info().await.cloned() else {
        return (None, None);
    };
    let state = stream.get_info().await.ok().map(|i| i.state);
    let sequences = state
        .as_ref()
        .map(|s| (s.first_sequence, info.delivered.stream_sequence));
    let (pending, ack_pending) = (info.num_pending, info.num_ack_pending as u64);
    if pending + ack_pending == 0 {
        let lag = Lag {
            pending,
            ack_pending,
            seconds: 0.0,
        };
        return (Some(lag), sequences);
    }
    let first = state.map_or(0, |s| s.first_sequence);
    let Ok(oldest) = stream
        .get_raw_message((info.ack_floor.stream_sequence + 1).max(first))
        .await
    else {
        return (None, sequences);
    };
    let stored: SystemTime = oldest.time.into();
    let seconds = SystemTime::now()
        .duration_since(stored)
        .unwrap_or_default()
        .as_secs_f64();
    let lag = Lag {
        pending,
        ack_pending,
        seconds,
    };
    (Some(lag), sequences)
}

impl Reporter {
    /// Reads the stream once: the lag for the metrics, and any messages
    /// the stream dropped unread, counted and logged. Called once at start,
    /// before ingest pulls (so the gap an outage left is seen whole), then
    /// every interval by [`Self::run`].
    pub async fn read(&mut self) -> Option<Lag> {
        let (lag, sequences) = read_lag(&mut self.consumer, &self.stream).await;
        self.metrics.set_lag(lag);
        if let Some((first, delivered)) = sequences {
            if let Some(gap) = self.discards.observe(first, delivered) {
                Metrics::add(&self.metrics.stream_discarded, gap.messages());
                tracing::warn!(
                    messages = gap.messages(),
                    first = gap.first,
                    last = gap.last,
                    "the stream discarded telemetry no sink had read: an outage of the sinks or \
                     MySQL outlasted what the stream holds (--stream-max-bytes, --stream-max-age)"
                );
            }
        }
        lag
    }

    /// Writes a row every `every`, forever.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticker.tick().await;
            let lag = self.read().await;
            match self.write(lag).await {
                Ok(()) => failing = false,
                Err(error) => {
                    if !failing {
                        failing = true;
                        tracing::debug!(%error, "cannot record the sink's health; trying again");
                    }
                }
            }
        }
    }

    async fn write(&self, lag: Option<Lag>) -> Result<(), sqlx::Error> {
        write_row(
            &self.pool,
            &self.instance,
            self.started.naive_utc(),
            Utc::now().naive_utc(),
            &self.metrics,
            lag,
        )
        .await
    }
}

/// One row of `sink_health` from the counters now. The write times since
/// the previous row are taken (and so forgotten) only once the row is
/// built; a failed insert loses those percentiles, not the counters.
pub async fn write_row(
    pool: &MySqlPool,
    instance: &str,
    started: NaiveDateTime,
    now: NaiveDateTime,
    metrics: &Metrics,
    lag: Option<Lag>,
) -> Result<(), sqlx::Error> {
    let totals = metrics.snapshot();
    let [decode, mismatch, invalid, mysql] = metrics.dead_by_class();
    let times: Option<Percentiles> = metrics.write_times.take_percentiles();
    sqlx::query(
        "INSERT INTO sink_health (sink, ts, started, stored, dead_decode, dead_mismatch, \
         dead_invalid, dead_mysql, batches, write_retries, write_ms_p50, write_ms_p99, \
         write_ms_max, pending, ack_pending, lag_seconds, stream_discarded) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(instance)
    .bind(now)
    .bind(started)
    .bind(totals.stored)
    .bind(decode)
    .bind(mismatch)
    .bind(invalid)
    .bind(mysql)
    .bind(totals.batches)
    .bind(totals.write_retries)
    .bind(times.map(|t| t.p50))
    .bind(times.map(|t| t.p99))
    .bind(times.map(|t| t.max))
    .bind(lag.map(|l| l.pending))
    .bind(lag.map(|l| l.ack_pending))
    .bind(lag.map(|l| l.seconds))
    .bind(totals.stream_discarded)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_fit_the_column() {
        assert_eq!(instance_name("central-1/4242"), "central-1/4242");
        assert_eq!(instance_name("café 1\n"), "caf--1-");
        assert_eq!(instance_name(&"x".repeat(500)).len(), MAX_INSTANCE_LEN);
        assert!(default_instance().ends_with(&format!("/{}", std::process::id())));
    }
}
