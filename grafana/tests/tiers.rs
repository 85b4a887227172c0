//! Raw samples are kept `--retention` (48 h by default), the rollups
//! longer; every panel that draws a host's history reads the raw rows where
//! they still are and the rollup before them. A range straddling that edge
//! must draw one continuous series, the same the raw rows drew before they
//! expired. And migration 0012 computes the Host dashboard's minute
//! columns for data stored before it exactly as the sink computes them.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use chrono::{DurationRound, Utc};
use sqlx::mysql::MySqlConnection;
use sqlx::Row;
use vigia_dashboards::dashboard::{self, Dashboard};
use vigia_dashboards::fill::{self, Plan};
use vigia_dashboards::runner;
use vigia_dashboards::template::{Value, Variables};
use vigia_dashboards::QueryWindow;

use common::{last, metrics, HOUR};

const HOSTS: u32 = 4;
const HOST: &str = "host-002";

/// Every row of a panel's first target as text, cell by cell, numbers
/// rounded so two sums of the same values in another order compare equal.
async fn series(
    conn: &mut MySqlConnection,
    d: &Dashboard,
    title: &str,
    vars: &Variables,
    window: &QueryWindow,
) -> Result<Vec<Vec<String>>> {
    let panel = d
        .panels
        .iter()
        .find(|p| p.title == title)
        .with_context(|| format!("no panel {title}"))?;
    let sql = vigia_dashboards::expand(&panel.targets[0].raw_sql, vars, window)?;
    let rows = runner::query(conn, &sql).await?;
    let mut out = Vec::new();
    for row in &rows {
        let mut cells = Vec::new();
        for i in 0..row.len() {
            let text = runner::cell_text(row, i)?;
            cells.push(match text.parse::<f64>() {
                Ok(x) if i > 0 => format!("{:.6e}", x),
                _ => text,
            });
        }
        out.push(cells);
    }
    Ok(out)
}

/// The hour before `to` with a fixed interval, so both tiers' points fall
/// on the same buckets.
fn window(to: chrono::DateTime<Utc>, interval: Duration) -> Result<QueryWindow> {
    Ok(QueryWindow {
        from: to - chrono::Duration::from_std(HOUR)?,
        to,
        interval,
    })
}

#[tokio::test]
async fn a_range_straddling_raw_and_rollup_draws_the_series_the_raw_rows_drew() -> Result<()> {
    let db = common::TestDb::create("tiers").await?;
    fill::fill(&db.url(), &Plan::small(HOSTS, Duration::from_secs(40 * 60))).await?;
    let mut conn = runner::connect(&db.url()).await?;
    let dir = dashboard::dashboards_dir();
    let host = dashboard::load(&dir.join("host.json"))?;
    let process = dashboard::load(&dir.join("process.json"))?;
    let mut vars = Variables::new();
    vars.set("host", Value::Single(HOST.into()), false);
    let name: String = sqlx::query_scalar(
        "SELECT name FROM process_samples WHERE host = ? GROUP BY name ORDER BY COUNT(*) DESC LIMIT 1",
    )
    .bind(HOST)
    .fetch_one(&mut conn)
    .await?;
    vars.set("process", Value::Multi(vec![name]), true);

    // The panels and the bucket each tier can be compared at: a minute for
    // host_minutes, ten for process_ten_minutes.
    let minute = Duration::from_secs(60);
    let ten = Duration::from_secs(600);
    let panels: [(&Dashboard, &str, Duration); 7] = [
        (&host, "CPU busy %", minute),
        (&host, "CPU by state %", minute),
        (&host, "RAM", minute),
        (&host, "Load average", minute),
        (&host, "Processes by state", minute),
        (&process, "CPU %", ten),
        (&process, "RSS", ten),
    ];
    // One window end for both readings: the same buckets, the same rows.
    let to = Utc::now();
    let mut before = Vec::new();
    for (d, title, bucket) in panels {
        before.push(series(&mut conn, d, title, &vars, &window(to, bucket)?).await?);
    }
    let tops = ["Top processes by CPU", "Top processes by RSS"];
    let mut tops_before = Vec::new();
    for title in tops {
        tops_before.push(metrics(&mut conn, &host, title, &vars, &last(HOUR)?).await?);
    }

    // Retention drops the raw rows older than an edge 20 minutes back, on
    // a ten-minute boundary (a dropped day's edge is on every boundary).
    let edge = (Utc::now() - chrono::Duration::minutes(20))
        .duration_trunc(chrono::Duration::minutes(10))?
        .naive_utc();
    for table in [
        "cpu_samples",
        "ram_samples",
        "procs_snapshots",
        "process_samples",
    ] {
        let gone = sqlx::query(&format!("DELETE FROM {table} WHERE ts < ?"))
            .bind(edge)
            .execute(&mut conn)
            .await?
            .rows_affected();
        ensure!(gone > 0, "{table}: nothing before the edge");
    }

    for ((d, title, bucket), was) in panels.into_iter().zip(&before) {
        let now = series(&mut conn, d, title, &vars, &window(to, bucket)?).await?;
        ensure!(
            now.len() >= 3 && now.len() == was.len(),
            "{title}: {} points before the raw rows went, {} after",
            was.len(),
            now.len()
        );
        for (a, b) in was.iter().zip(&now) {
            ensure!(a == b, "{title}: {a:?} became {b:?}");
        }
        // Points on both sides of the edge, in every bucket without a gap.
        let mut times: Vec<i64> = now
            .iter()
            .map(|r| r[0].parse::<f64>().unwrap() as i64)
            .collect();
        times.dedup();
        let edge_s = edge.and_utc().timestamp();
        ensure!(times.iter().any(|&t| t < edge_s) && times.iter().any(|&t| t >= edge_s));
        let step = bucket.as_secs() as i64;
        ensure!(
            times.windows(2).all(|w| w[1] - w[0] == step),
            "{title}: a gap in {times:?}"
        );
    }
    // A short range starting before the edge reads the ten-minute rollup
    // for the top processes: the same eight as before.
    for (title, was) in tops.into_iter().zip(&tops_before) {
        let now = metrics(&mut conn, &host, title, &vars, &last(HOUR)?).await?;
        ensure!(
            now.len() == 8 && &now == was,
            "{title}: {was:?} became {now:?}"
        );
    }
    Ok(())
}

/// The columns 0012 adds to host_minutes.
const COLUMNS_0012: [&str; 18] = [
    "cpu_user_pct",
    "cpu_system_pct",
    "cpu_iowait_pct",
    "cpu_steal_pct",
    "cpu_idle_pct",
    "load5",
    "load15",
    "cpus",
    "ram_used",
    "ram_cached",
    "ram_free",
    "ram_total",
    "procs_running",
    "procs_sleeping",
    "procs_blocked",
    "procs_zombie",
    "procs_other",
    "procs_samples",
];

async fn minute_columns(conn: &mut MySqlConnection) -> Result<Vec<String>> {
    let cells: Vec<String> = COLUMNS_0012
        .iter()
        .map(|c| format!("COALESCE(ROUND({c}, 6), '-')"))
        .collect();
    let sql = format!(
        "SELECT CONCAT_WS('|', host, minute, {}) FROM host_minutes ORDER BY host, minute",
        cells.join(", ")
    );
    Ok(sqlx::query_scalar(&sql).fetch_all(conn).await?)
}

#[tokio::test]
async fn migration_0012_fills_the_minutes_of_data_stored_before_it_as_the_sink_does() -> Result<()>
{
    let db = common::TestDb::create("tiers_0012").await?;
    fill::fill(&db.url(), &Plan::small(HOSTS, Duration::from_secs(15 * 60))).await?;
    let mut conn = runner::connect(&db.url()).await?;
    let by_the_sink = minute_columns(&mut conn).await?;
    ensure!(by_the_sink.len() > 40, "{} minutes", by_the_sink.len());
    ensure!(!by_the_sink[0].contains("|-|"), "{}", by_the_sink[0]);
    // The rows as a database before 0012 held them: none of its columns.
    let reset: Vec<String> = COLUMNS_0012
        .iter()
        .map(|c| {
            if *c == "procs_samples" {
                format!("{c} = 0")
            } else {
                format!("{c} = NULL")
            }
        })
        .collect();
    sqlx::query(&format!("UPDATE host_minutes SET {}", reset.join(", ")))
        .execute(&mut conn)
        .await?;
    ensure!(minute_columns(&mut conn).await? != by_the_sink);
    // 0012's pass over the data.
    let file = dashboard::grafana_dir()
        .join("../mysql/migrations/0012_host_minutes_for_the_host_dashboard.sql");
    let text = std::fs::read_to_string(&file)?;
    let pass = text
        .split_once("-- Existing data")
        .context("0012 has its pass over existing data")?
        .1
        .split_once('\n')
        .context("a line after the comment")?
        .1;
    for statement in pass.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let statement: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if statement.trim().is_empty() {
            continue;
        }
        sqlx::query(&statement).execute(&mut conn).await?;
    }
    ensure!(minute_columns(&mut conn).await? == by_the_sink);
    Ok(())
}

#[tokio::test]
async fn top_processes_read_the_raw_history_of_a_period_the_sink_has_not_settled_yet() -> Result<()>
{
    // The sink computes a process period a little after it closes (up to
    // two minutes, sink/src/store/rollup.rs). Until then the Host
    // dashboard's top processes must read that period from the raw
    // history: the same figures, no hole.
    let db = common::TestDb::create("tiers_unsettled").await?;
    fill::fill(&db.url(), &Plan::small(HOSTS, Duration::from_secs(40 * 60))).await?;
    let mut conn = runner::connect(&db.url()).await?;
    let host = dashboard::load(&dashboard::dashboards_dir().join("host.json"))?;
    let mut vars = Variables::new();
    vars.set("host", Value::Single(HOST.into()), false);
    // Over 3 h: the branch that reads the ten-minute rollup.
    let to = Utc::now();
    let range = QueryWindow {
        from: to - chrono::Duration::hours(6),
        to,
        interval: Duration::from_secs(600),
    };
    let tops = ["Top processes by CPU", "Top processes by RSS"];
    let mut settled = Vec::new();
    for title in tops {
        let mut drawn = series(&mut conn, &host, title, &vars, &range).await?;
        ensure!(!drawn.is_empty(), "{title}: nothing drawn");
        // Rows of one bucket come in any order.
        drawn.sort();
        settled.push(drawn);
    }
    let deleted = sqlx::query(
        "DELETE FROM process_ten_minutes WHERE host = ? AND period = \
         (SELECT newest FROM (SELECT MAX(period) AS newest FROM process_ten_minutes \
          WHERE host = ?) n)",
    )
    .bind(HOST)
    .bind(HOST)
    .execute(&mut conn)
    .await?
    .rows_affected();
    ensure!(deleted > 0, "the fill left no period to unsettle");
    for (title, was) in tops.into_iter().zip(&settled) {
        let mut now = series(&mut conn, &host, title, &vars, &range).await?;
        now.sort();
        ensure!(
            now == *was,
            "{title}: the newest period unsettled draws {now:?}, settled {was:?}"
        );
    }
    Ok(())
}
