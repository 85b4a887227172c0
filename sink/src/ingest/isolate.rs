//! Narrowing a failed batch down to the samples that fail on their own.
//!
//! Whether a failed write means "MySQL is away, wait" or "this data is
//! bad, dead-letter it" is not read from MySQL's error number: a list of
//! numbers is never complete, and an unlisted one (issue 11: 1690, out of
//! range in the rollup; a statement over max_allowed_packet, which drops
//! the connection) made the sink retry one batch forever. The sink asks
//! MySQL instead: a probe on a fresh connection, or the error itself when
//! MySQL sent one about the statement ([`WriteError::shows_mysql_up`]).
//! When MySQL does not answer, it is away and [`Outage`] waits; so too
//! when it answers but is read-only (`@@read_only`, which the probe reads:
//! a managed failover, a replica promoted late, maintenance), for every
//! write fails then whatever its data, and narrowing would dead-letter
//! every sample of every batch, with no replay. Nor does MySQL's refusal
//! for a server-wide option (1290, what read_only sends) show it up: the
//! probe judges. When MySQL answers and takes writes, the batch is split in
//! halves, each written in its own transaction, in order, the failing
//! halves split again, until single samples fail. Those are dead-lettered
//! with MySQL's error (naming the table), and everything else is stored.
//!
//! Narrowing costs writes, never sleeps per sample: a sample that fails
//! alone is dead-lettered at once, unless its error is one MySQL says may
//! pass on a retry (a deadlock, a lock wait, an interrupted statement:
//! [`WriteError::may_pass_later`]). Those are tried again in later rounds,
//! at most [`ROUNDS`] in all, each after one pause shared by every sample
//! it retries. So one batch spends at most 200 + 400 ms asleep however
//! many of its samples MySQL refuses (issue 11's review: 400 refused
//! samples, each tried three times with pauses of its own, stalled every
//! host's storage for 247 s).
//!
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

use super::{Classified, Ingest};
use crate::classify::Rejection;
use crate::metrics::{DeadLetterClass, Metrics};
use crate::retry::Retry;
use crate::shutdown::Shutdown;
use crate::store::{ProcessLists, WriteError};

/// Rounds of narrowing at most: the first finds the samples that fail
/// alone, the later ones retry those whose error may pass.
pub const ROUNDS: u32 = 3;
/// The pause before round n + 1 is n times this: a lock wait or a deadlock
/// clears meanwhile.
const PAUSE: Duration = Duration::from_millis(200);

/// Longest text of MySQL's error a reason quotes (it may echo values).
const REASON_MAX: usize = 1_024;

/// Waiting out MySQL's absence: one warning when it starts, one line when
/// it ends, a backoff in between, and the stall flag liveness reads.
pub(super) struct Outage(Retry);

impl Default for Outage {
    fn default() -> Self {
        Outage(Retry::new(
            "writing to MySQL",
            "acknowledging nothing and retrying",
        ))
    }
}

impl Outage {
    /// Waits the next backoff; false when shutdown came first.
    pub async fn wait(
        &mut self,
        metrics: &Metrics,
        error: &WriteError,
        holding: usize,
        shutdown: &Shutdown,
    ) -> bool {
        metrics.ingest_stalled.store(true, Ordering::Relaxed);
        Metrics::add(&metrics.write_retries, 1);
        let shown = error.to_string();
        self.0
            .pause_after(&Escaped(&shown), holding, shutdown)
            .await
    }

    /// MySQL answers again.
    pub fn over(&mut self, metrics: &Metrics) {
        self.0.ok();
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
    /// writing them all together, after which MySQL answered. Returns
    /// false when shutdown came while waiting for MySQL.
    pub(super) async fn isolate(
        &self,
        batch: &mut [Classified],
        suspects: Vec<usize>,
        lists: &ProcessLists,
        first: WriteError,
        outage: &mut Outage,
        shutdown: &Shutdown,
    ) -> bool {
        let shown = first.to_string();
        tracing::warn!(
            samples = suspects.len(),
            error = %Escaped(&truncate(&shown, REASON_MAX)),
            "MySQL answers but refused a batch; narrowing it down to the samples that fail alone"
        );
        let (total, mut rejected) = (suspects.len(), 0usize);
        let (mut suspects, mut known) = (suspects, Some(first));
        for round in 1..=ROUNDS {
            let Some(failed) = self
                .narrow(batch, &suspects, known.take(), lists, outage, shutdown)
                .await
            else {
                return false;
            };
            let mut again = Vec::new();
            for (i, error) in failed {
                if round < ROUNDS && error.may_pass_later() {
                    again.push(i);
                } else {
                    batch[i].verdict = Err(reason(&error));
                    rejected += 1;
                }
            }
            if again.is_empty() {
                break;
            }
            // One pause for every sample this round retries.
            tokio::select! {
                _ = shutdown.wait() => return false,
                _ = tokio::time::sleep(PAUSE * round) => {}
            }
            suspects = again;
        }
        tracing::info!(
            samples = total,
            rejected,
            "batch narrowed down: the rest is stored"
        );
        true
    }

    /// Writes the samples of `batch` at `suspects`, in order, splitting
    /// each part that fails in halves, and returns the samples that failed
    /// alone with their errors; `known` is the error of writing them all,
    /// when already known. None when shutdown came while waiting for MySQL.
    async fn narrow(
        &self,
        batch: &[Classified],
        suspects: &[usize],
        known: Option<WriteError>,
        lists: &ProcessLists,
        outage: &mut Outage,
        shutdown: &Shutdown,
    ) -> Option<Vec<(usize, WriteError)>> {
        let mut failed = Vec::new();
        // Parts still to write, the next one last.
        let mut parts: Vec<(Range<usize>, Option<WriteError>)> = vec![(0..suspects.len(), known)];
        while let Some((part, known)) = parts.pop() {
            let error = match known {
                Some(error) => error,
                None => match self.write_some(batch, &suspects[part.clone()], lists).await {
                    Ok(()) => continue,
                    Err(error) => {
                        if !self.answers(&error).await {
                            // MySQL went away meanwhile: wait, then the
                            // same part again.
                            if !outage
                                .wait(&self.metrics, &error, batch.len(), shutdown)
                                .await
                            {
                                return None;
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
            } else {
                failed.push((suspects[part.start], error));
            }
        }
        Some(failed)
    }

    /// Whether MySQL is up after a write failed with `error`: the error
    /// shows it, or a probe on a fresh connection answers.
    async fn answers(&self, error: &WriteError) -> bool {
        !error.sent_nothing() && (error.shows_mysql_up() || self.writer.probe().await.is_ok())
    }
}
