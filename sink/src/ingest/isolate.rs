//! Narrowing a failed batch down to the samples that fail on their own.
//!
//! Whether a failed write means "MySQL is away, wait" or "this data is
//! bad, dead-letter it" is not read from MySQL's error number: a list of
//! numbers is never complete, and an unlisted one (issue 11: 1690, out of
//! range in the rollup; a statement over max_allowed_packet, which drops
//! the connection) made the sink retry one batch forever. The sink asks
//! MySQL instead: a probe on a fresh connection. When it does not answer,
//! MySQL is away and [`Outage`] waits. When it answers, the batch is split
//! in halves, each written in its own transaction, in order, the failing
//! halves split again, until single samples fail. Those are dead-lettered
//! with MySQL's error (naming the table), and everything else is stored.
//!
//! Some errors come and go while MySQL answers (a deadlock, a lock wait,
//! a timeout), so a sample is dead-lettered only once it has failed alone
//! [`ATTEMPTS_ALONE`] times with a probe answering after each, unless the
//! error says no retry can help (a row larger than a statement may be).
//! A probe that fails in between turns the narrowing into a wait, and the
//! same part is tried again once MySQL is back: an outage never
//! dead-letters anything. Nor does the sink's own pool having no
//! connection to give (nothing was sent): that is waited out too.
//!
//! Acknowledging stays after commit: the batch is acknowledged only once
//! every part is stored or dead-lettered; a crash in between redelivers
//! the parts already committed, and writing them again is a no-op.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

use vigia_schema::text::{escape, truncate, Escaped};

use super::{Classified, Health, Ingest, Stop, BACKOFF_MAX, BACKOFF_START};
use crate::classify::Rejection;
use crate::metrics::DeadLetterClass;
use crate::metrics::Metrics;
use crate::store::{ProcessLists, WriteError};

/// Failures alone, each followed by an answering probe, that make a
/// sample's failure its own rather than the moment's.
pub const ATTEMPTS_ALONE: u32 = 3;
/// Pause before a sample is tried alone again, times its failures: a lock
/// wait or a deadlock clears meanwhile.
const PAUSE_ALONE: Duration = Duration::from_millis(200);
/// Longest text of MySQL's error a reason quotes (it may echo values).
const REASON_MAX: usize = 1_024;

/// Waiting out MySQL's absence: one warning when it starts, one line when
/// it ends, a backoff in between, and the stall flag liveness reads.
#[derive(Default)]
pub struct Outage {
    health: Health,
    backoff: Option<Duration>,
}

impl Outage {
    /// Waits the next backoff; false when shutdown came first.
    pub async fn wait(
        &mut self,
        metrics: &Metrics,
        error: &WriteError,
        holding: usize,
        stop: &Stop,
    ) -> bool {
        let shown = error.to_string();
        self.health
            .failed("writing to MySQL", &Escaped(&shown), holding);
        metrics.ingest_stalled.store(true, Ordering::Relaxed);
        Metrics::add(&metrics.write_retries, 1);
        let backoff = self.backoff.unwrap_or(BACKOFF_START);
        self.backoff = Some((backoff * 2).min(BACKOFF_MAX));
        tokio::select! {
            _ = stop.wait() => false,
            _ = tokio::time::sleep(backoff) => true,
        }
    }

    /// MySQL answers again.
    pub fn over(&mut self, metrics: &Metrics) {
        self.health.ok("writing to MySQL");
        self.backoff = None;
        metrics.ingest_stalled.store(false, Ordering::Relaxed);
    }
}

/// The reason a sample MySQL refused is dead-lettered with.
fn reason(error: &WriteError) -> Rejection {
    let text = format!("MySQL rejected it: {error}");
    Rejection::new(
        DeadLetterClass::Mysql,
        escape(&truncate(&text, REASON_MAX)).into_owned(),
    )
}

impl Ingest {
    /// Stores every sample of `batch` at `suspects` that MySQL takes, and
    /// turns those that fail alone into rejections; `first` is the error of
    /// writing them all together, after which the probe answered. Returns
    /// false when shutdown came while waiting for MySQL.
    pub(super) async fn isolate(
        &self,
        batch: &mut [Classified],
        suspects: Vec<usize>,
        lists: &ProcessLists,
        first: WriteError,
        outage: &mut Outage,
        stop: &Stop,
    ) -> bool {
        let shown = first.to_string();
        tracing::warn!(
            samples = suspects.len(),
            error = %Escaped(&truncate(&shown, REASON_MAX)),
            "MySQL answers but refused a batch; narrowing it down to the samples that fail alone"
        );
        let mut failures = vec![0u32; batch.len()];
        // Parts still to write, the next one last; the first part is the
        // whole batch, whose failure is known (and was probed already).
        let mut parts: Vec<(Range<usize>, Option<WriteError>)> =
            vec![(0..suspects.len(), Some(first))];
        let mut rejected = 0usize;
        while let Some((part, known)) = parts.pop() {
            let error = match known {
                Some(error) => error,
                None => match self.write_some(batch, &suspects[part.clone()], lists).await {
                    Ok(()) => continue,
                    Err(error) => {
                        if error.sent_nothing() || self.writer.probe().await.is_err() {
                            // MySQL went away meanwhile: wait, then the
                            // same part again.
                            if !outage.wait(&self.metrics, &error, batch.len(), stop).await {
                                return false;
                            }
                            parts.push((part, None));
                            continue;
                        }
                        outage.over(&self.metrics);
                        error
                    }
                },
            };
            if part.len() > 1 {
                let middle = part.start + part.len() / 2;
                parts.push((middle..part.end, None));
                parts.push((part.start..middle, None));
                continue;
            }
            let i = suspects[part.start];
            failures[i] += 1;
            if error.is_certain() || failures[i] >= ATTEMPTS_ALONE {
                batch[i].verdict = Err(reason(&error));
                rejected += 1;
                continue;
            }
            let pause = PAUSE_ALONE * failures[i];
            tokio::select! {
                _ = stop.wait() => return false,
                _ = tokio::time::sleep(pause) => {}
            }
            parts.push((part, None));
        }
        tracing::info!(
            samples = suspects.len(),
            rejected,
            "batch narrowed down: the rest is stored"
        );
        true
    }
}
