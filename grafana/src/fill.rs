//! The synthetic fleet (`vigia_testkit::fleet`) written through the sink's
//! own insert path (`vigia_sink::store::Writer`), so the tables hold
//! exactly what the sink would store for real publishers: hosts kept
//! current, history trimmed to the top processes, procs snapshots,
//! lifecycle events; then the sink's liveness sweep, and the rows two sinks
//! would have written about themselves. The dashboards' tests run every
//! panel on it; the storage and dashboard benchmarks measure it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use vigia_schema::stamp::unix_nanos;
use vigia_schema::Sample;
use vigia_sink::store::{self, WriteError, Writer};
use vigia_testkit::fleet::Timeline;

pub use vigia_testkit::fleet::Plan;

/// What was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub samples: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

/// How often the fill's sinks record their own health (the sink's default).
const SINK_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Fills the database at `url` (created and migrated by the sink's own
/// connect) with `plan`'s fleet over the span ending now, then runs the
/// sink's liveness sweep.
pub async fn fill(url: &str, plan: &Plan) -> Result<Report> {
    let start = Instant::now();
    let end = unix_nanos();
    let pool = store::connect(url, plan.writers.max(1) + 1).await?;
    let mut tasks = Vec::new();
    for part in 0..plan.writers.max(1) {
        let writer = Writer::new(pool.clone(), plan.history_top);
        let timeline = Timeline::new(plan, part, end)
            .with_context(|| format!("host names {}-…", plan.prefix))?;
        tasks.push(tokio::spawn(
            async move { write_part(&writer, timeline).await },
        ));
    }
    let mut report = Report::default();
    let mut timelines = Vec::new();
    for t in tasks {
        let (r, timeline) = t.await.context("a fill writer panicked")??;
        report.samples += r.samples;
        report.batches += r.batches;
        timelines.push(timeline);
    }
    // The writers finish at different moments: one last sample from every
    // live host at the same instant, as running publishers would send, so
    // that the sweep below finds only the hosts that really went silent.
    let writer = Writer::new(pool.clone(), plan.history_top);
    let now = unix_nanos();
    let mut last: Vec<Sample> = timelines
        .iter_mut()
        .flat_map(|t| t.last_samples(now))
        .collect();
    flush(&writer, &mut last, &mut report).await?;
    vigia_sink::liveness::sweep(&pool)
        .await
        .context("marking silent hosts offline")?;
    // After the sweep: hundreds of single-row inserts on a busy server
    // could outlast the live hosts' silence limit (3 s).
    sink_health(&pool, plan, &report).await?;
    pool.close().await;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Writes one part of the fleet, a batch at a time.
async fn write_part(writer: &Writer, mut timeline: Timeline) -> Result<(Report, Timeline)> {
    let mut report = Report::default();
    while let Some(mut batch) = timeline.next_batch() {
        flush(writer, &mut batch, &mut report).await?;
    }
    Ok((report, timeline))
}

/// The rows two sinks would have written about themselves over the span,
/// through the sink's own function: what they stored (shared), a few dead
/// letters of each class, batch write times and a small lag.
async fn sink_health(pool: &sqlx::MySqlPool, plan: &Plan, report: &Report) -> Result<()> {
    use std::sync::atomic::Ordering;
    use vigia_sink::metrics::{DeadLetterClass, Lag, Metrics};
    let end = Utc::now();
    let span = chrono::Duration::from_std(plan.span)?;
    let started = (end - span).naive_utc();
    let rows = (plan.span.as_secs() / SINK_HEALTH_INTERVAL.as_secs()).max(1);
    for (i, sink) in ["sink-a", "sink-b"].into_iter().enumerate() {
        let metrics = Metrics::default();
        for row in 0..=rows {
            let at = end - span + chrono::Duration::from_std(SINK_HEALTH_INTERVAL * row as u32)?;
            let share = report.samples * row / rows / 2;
            metrics.stored.store(share, Ordering::Relaxed);
            metrics.batches.store(share / 500 + 1, Ordering::Relaxed);
            if row % 40 == 7 {
                metrics.dead_lettered(DeadLetterClass::ALL[(row / 40 % 4) as usize]);
            }
            for ms in [8 + i as u64, 12, 30 + row % 20] {
                metrics.write_times.observe(Duration::from_millis(ms));
            }
            let lag = Lag {
                pending: row % 50,
                ack_pending: 500,
                seconds: 0.2 + (row % 10) as f64 / 10.0,
            };
            vigia_sink::health::write_row(pool, sink, started, at.naive_utc(), &metrics, Some(lag))
                .await
                .context("writing sink_health")?;
        }
    }
    Ok(())
}

async fn flush(writer: &Writer, batch: &mut Vec<Sample>, report: &mut Report) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let refs: Vec<&Sample> = batch.iter().collect();
    // Writers on different hosts can still deadlock on InnoDB's gap locks;
    // the sink retries such a batch, and so does the fill.
    let mut attempt: u32 = 0;
    loop {
        match writer.write(&refs).await {
            Ok(()) => break,
            // Deadlock (1213) or lock wait (1205): the same rows succeed
            // once the other writer is done.
            Err(e @ WriteError::Statement { .. })
                if attempt < 20 && matches!(e.mysql_number(), Some(1205 | 1213)) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e).context("the sink's writer failed"),
        }
    }
    report.samples += batch.len() as u64;
    report.batches += 1;
    batch.clear();
    Ok(())
}
