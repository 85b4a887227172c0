//! Every dashboard on a database filled through the sink's insert path:
//! each panel query, expanded as Grafana expands it, succeeds and returns
//! rows, and the fleet counts match the generated churn.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use sqlx::mysql::MySqlConnection;
use sqlx::Row;
use vigia_dashboards::dashboard::{self, Dashboard};
use vigia_dashboards::fill::{self, Plan};
use vigia_dashboards::runner;
use vigia_dashboards::template::{Value, Variables};
use vigia_dashboards::QueryWindow;

use common::{last, metrics, panel_sql, HOUR};

const HOSTS: u32 = 20;

async fn filled(tag: &str) -> Result<common::TestDb> {
    let db = common::TestDb::create(tag).await?;
    let plan = Plan::small(HOSTS, Duration::from_secs(15 * 60));
    fill::fill(&db.url(), &plan).await?;
    Ok(db)
}

fn last_hour() -> Result<QueryWindow> {
    last(HOUR)
}

/// Runs every panel of `d` with its variables resolved as on first open;
/// every target must return rows.
async fn every_panel_has_rows(
    conn: &mut MySqlConnection,
    d: &Dashboard,
    window: &QueryWindow,
) -> Result<usize> {
    let vars = runner::resolve_variables(conn, d, window).await?;
    let mut ran = 0;
    for p in &d.panels {
        for o in runner::run_panel(conn, p, &vars, window).await? {
            ensure!(
                o.rows > 0,
                "{}: panel {} returned no rows:\n{}",
                d.title,
                p.title,
                o.sql
            );
            ran += 1;
        }
    }
    Ok(ran)
}

#[tokio::test]
async fn every_panel_returns_rows_on_a_filled_fleet() -> Result<()> {
    let db = filled("all").await?;
    let mut conn = runner::connect(&db.url()).await?;
    // The dashboards' default range, and a day: ranges over 6 h read
    // the coarser rollups (0005_long_range_rollups.sql).
    for range in [HOUR, 24 * HOUR] {
        let window = last(range)?;
        let mut ran = 0;
        for d in dashboard::load_all(&dashboard::dashboards_dir())? {
            ran += every_panel_has_rows(&mut conn, &d, &window)
                .await
                .with_context(|| format!("{} over {range:?}", d.title))?;
        }
        ensure!(ran >= 20, "only {ran} queries ran over {range:?}");
    }
    Ok(())
}

/// The number in the first cell of a panel's first target.
async fn single_number(conn: &mut MySqlConnection, d: &Dashboard, title: &str) -> Result<i64> {
    let sql = panel_sql(d, title, &Variables::new(), &last_hour()?)?;
    let rows = runner::query(conn, &sql).await?;
    Ok(rows[0].try_get::<i64, _>(0)?)
}

#[tokio::test]
async fn fleet_counts_follow_the_churn() -> Result<()> {
    let db = filled("fleet").await?;
    let mut conn = runner::connect(&db.url()).await?;
    let fleet = dashboard::load(&dashboard::dashboards_dir().join("fleet.json"))?;
    // Of 20 hosts, host-008 said bye and host-018 went silent.
    assert_eq!(single_number(&mut conn, &fleet, "Hosts online").await?, 18);
    assert_eq!(single_number(&mut conn, &fleet, "Hosts offline").await?, 2);
    assert_eq!(single_number(&mut conn, &fleet, "Left in range").await?, 2);
    // Every host said hello in the last hour; two of them late.
    assert_eq!(
        single_number(&mut conn, &fleet, "Joined in range").await?,
        20,
    );

    // The CPU panel has one series per host that reported.
    let vars = Variables::new();
    let hosts = metrics(
        &mut conn,
        &fleet,
        "CPU busy % per host",
        &vars,
        &last_hour()?,
    )
    .await?;
    assert_eq!(hosts.len(), HOSTS as usize);
    Ok(())
}

#[tokio::test]
async fn long_ranges_read_the_rollups_and_agree_with_the_raw_rows() -> Result<()> {
    let db = filled("long").await?;
    let mut conn = runner::connect(&db.url()).await?;
    let dir = dashboard::dashboards_dir();
    let fleet = dashboard::load(&dir.join("fleet.json"))?;
    let host = dashboard::load(&dir.join("host.json"))?;
    // Up to 6 h (3 h for the process panels) reads the finer tables, a
    // minute more the coarser ones; both cover the whole 15 minutes of
    // data, so each panel must draw the same series: every host, and
    // the same top eight processes.
    let minute = Duration::from_secs(60);
    let (short, long) = (last(6 * HOUR)?, last(6 * HOUR + minute)?);
    for title in ["CPU busy % per host", "RAM used % per host"] {
        let vars = Variables::new();
        let a = metrics(&mut conn, &fleet, title, &vars, &short).await?;
        let b = metrics(&mut conn, &fleet, title, &vars, &long).await?;
        assert_eq!(a.len(), HOSTS as usize);
        assert_eq!(&a, &b, "{title}");
    }
    let mut vars = Variables::new();
    vars.set("host", Value::Single("host-005".into()), false);
    let (short, long) = (last(3 * HOUR)?, last(3 * HOUR + minute)?);
    for title in ["Top processes by CPU", "Top processes by RSS"] {
        let a = metrics(&mut conn, &host, title, &vars, &short).await?;
        let b = metrics(&mut conn, &host, title, &vars, &long).await?;
        assert_eq!(a.len(), 8);
        assert_eq!(&a, &b, "{title}");
    }
    Ok(())
}

#[tokio::test]
async fn process_dashboard_quotes_multiple_names() -> Result<()> {
    let db = filled("proc").await?;
    let mut conn = runner::connect(&db.url()).await?;
    let proc = dashboard::load(&dashboard::dashboards_dir().join("process.json"))?;
    let window = last_hour()?;
    // Two names at once, one with a quote in it: both must come back.
    let mut vars = Variables::new();
    vars.set("host", Value::Single("host-005".into()), false);
    vars.set(
        "process",
        Value::Multi(vec!["o'reilly-agent".into(), "systemd".into()]),
        true,
    );
    for p in &proc.panels {
        let sql = vigia_dashboards::expand(&p.targets[0].raw_sql, &vars, &window)?;
        let rows = runner::query(&mut conn, &sql).await?;
        let mut names: Vec<String> = rows
            .iter()
            .map(|r| {
                r.try_get::<String, _>("metric")
                    .or_else(|_| r.try_get::<String, _>("name"))
            })
            .collect::<Result<_, _>>()?;
        names.sort();
        names.dedup();
        let joined = names.join(" ");
        ensure!(joined.contains("o'reilly-agent"), "{}: {joined}", p.title);
        ensure!(joined.contains("systemd"), "{}: {joined}", p.title);
    }
    // The variable's first option is the busiest process now.
    let resolved = runner::resolve_variables(&mut conn, &proc, &window).await?;
    let Some(Value::Single(host)) = resolved.get("host").map(|v| v.value.clone()) else {
        anyhow::bail!("host did not resolve to one value");
    };
    let busiest: String = sqlx::query_scalar(
        "SELECT name FROM processes WHERE host = ? GROUP BY name ORDER BY SUM(cpu_pct) DESC LIMIT 1",
    )
    .bind(&host)
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(
        resolved.get("process").map(|v| v.value.clone()),
        Some(Value::Multi(vec![busiest]))
    );
    Ok(())
}

#[tokio::test]
async fn the_session_is_utc() -> Result<()> {
    let db = common::TestDb::create("tz").await?;
    let mut conn = runner::connect(&db.url()).await?;
    let tz: String = sqlx::query_scalar("SELECT @@session.time_zone")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(tz.as_str(), "+00:00");
    Ok(())
}

#[tokio::test]
async fn pipeline_counts_follow_the_sinks_and_publishers() -> Result<()> {
    let db = filled("pipeline").await?;
    let mut conn = runner::connect(&db.url()).await?;
    let pipeline = dashboard::load(&dashboard::dashboards_dir().join("pipeline.json"))?;
    // The fill's two sinks reported to the end; one publisher in twenty
    // (host-005) lost its connection half-way and dropped samples.
    assert_eq!(single_number(&mut conn, &pipeline, "Sinks alive").await?, 2);
    assert_eq!(
        single_number(&mut conn, &pipeline, "Publishers dropping").await?,
        1
    );
    let window = last_hour()?;
    let vars = Variables::new();
    let dropped = metrics(
        &mut conn,
        &pipeline,
        "Samples dropped by publishers",
        &vars,
        &window,
    )
    .await?;
    assert_eq!(dropped, ["host-005"]);
    let reasons = metrics(
        &mut conn,
        &pipeline,
        "Dead letters by reason",
        &vars,
        &window,
    )
    .await?;
    assert_eq!(reasons, ["decode", "invalid", "mismatch", "mysql"]);
    // Hosts by source: every third host runs the module; of the 18 online
    // hosts (host-008 and host-018 left), host-000, 003, 006, 009, 012 and
    // 015 do.
    let sql = panel_sql(&pipeline, "Hosts by source", &vars, &window)?;
    let rows = runner::query(&mut conn, &sql).await?;
    let by_source: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.get::<String, _>("source"), r.get::<i64, _>("hosts")))
        .collect();
    assert_eq!(
        by_source,
        [("procfs".to_owned(), 12), ("module".to_owned(), 6)]
    );
    Ok(())
}

/// A publisher's `dropped` is cumulative per boot, but the sink stores
/// whatever a host sends: one host whose counter goes down (a bug, a
/// forged sample from a stolen VM) must not take the fleet's panels down
/// with it. `dropped - LAG(dropped)` on BIGINT UNSIGNED is MariaDB error
/// 1690 when it would be negative.
#[tokio::test]
async fn a_publisher_counter_going_down_breaks_no_pipeline_panel() -> Result<()> {
    let db = filled("pipeline_down").await?;
    let mut conn = runner::connect(&db.url()).await?;
    runner::query(
        &mut conn,
        "INSERT INTO publisher_health (host, boot, seq, ts, dropped, outbox_depth, \
         reconnects, source, agent_version) VALUES \
         ('evil', 'b', 1, UTC_TIMESTAMP(6) - INTERVAL 90 SECOND, 18446744073709551615, \
          18446744073709551615, 18446744073709551615, 'procfs', 'x'), \
         ('evil', 'b', 2, UTC_TIMESTAMP(6) - INTERVAL 30 SECOND, 0, 0, 0, 'procfs', 'x')",
    )
    .await?;
    let pipeline = dashboard::load(&dashboard::dashboards_dir().join("pipeline.json"))?;
    let window = last_hour()?;
    let vars = runner::resolve_variables(&mut conn, &pipeline, &window).await?;
    for p in &pipeline.panels {
        runner::run_panel(&mut conn, p, &vars, &window)
            .await
            .with_context(|| format!("panel {}", p.title))?;
    }
    // The honest host that dropped samples still counts; the one whose
    // counter went down lost nothing that can be told.
    assert_eq!(
        single_number(&mut conn, &pipeline, "Publishers dropping").await?,
        1
    );
    Ok(())
}
