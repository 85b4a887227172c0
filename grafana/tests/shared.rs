//! Two machines publishing under one host token show on the Fleet
//! dashboard: the "Shared host tokens" stat counts the host, and the Hosts
//! table lists its live boots, until one of them says bye. Written through
//! the sink's own insert path, read with the panels' own SQL.

mod common;

use anyhow::{Context, Result};
use chrono::Utc;
use sqlx::Row;
use vigia_dashboards::dashboard::{self, Dashboard};
use vigia_dashboards::runner;
use vigia_dashboards::template::Variables;
use vigia_schema::{ByeBody, CpuBody, HelloBody, Sample, SampleBody};
use vigia_sink::store::Writer;

/// A boot's hello and a cpu sample a second later, starting at `ts`. A
/// one-minute interval keeps the boot live for three minutes after its
/// last sample, far longer than the test takes.
fn boot(host: &str, boot: &str, ts: i64) -> Vec<Sample> {
    vec![
        Sample::new(
            host,
            boot,
            1,
            ts,
            SampleBody::Hello(HelloBody {
                cpus: 2,
                interval_ms: 60_000,
                procs_interval_ms: 5000,
                source: "procfs".into(),
                ..HelloBody::default()
            }),
        ),
        Sample::new(
            host,
            boot,
            1,
            ts + 1_000_000_000,
            SampleBody::Cpu(CpuBody {
                cpus: 2,
                ..CpuBody::default()
            }),
        ),
    ]
}

async fn first_target(
    conn: &mut sqlx::MySqlConnection,
    d: &Dashboard,
    title: &str,
) -> Result<Vec<sqlx::mysql::MySqlRow>> {
    let panel = d
        .panels
        .iter()
        .find(|p| p.title == title)
        .with_context(|| format!("no panel {title}"))?;
    let window = common::last(common::HOUR)?;
    let sql = vigia_dashboards::expand(&panel.targets[0].raw_sql, &Variables::new(), &window)?;
    runner::query(conn, &sql).await
}

/// host → shared_by, in the table's order.
async fn hosts_table(
    conn: &mut sqlx::MySqlConnection,
    fleet: &Dashboard,
) -> Result<Vec<(String, Option<String>)>> {
    Ok(first_target(conn, fleet, "Hosts")
        .await?
        .iter()
        .map(|r| (r.get("host"), r.get("shared_by")))
        .collect())
}

#[tokio::test]
async fn a_host_token_two_machines_share_shows_on_the_fleet_dashboard() -> Result<()> {
    let db = common::TestDb::create("shared").await?;
    let pool = vigia_sink::store::connect(&db.url(), 2).await?;
    let writer = Writer::new(pool.clone(), 10);
    let now = Utc::now()
        .timestamp_nanos_opt()
        .context("a time in range")?;
    let start = now - 5_000_000_000;
    // col.x and col.y both publish as `col`; web-1 is alone.
    let mut batch = boot("col", "aaaa000000000001", start);
    batch.extend(boot("col", "bbbb000000000002", start + 500_000_000));
    batch.extend(boot("web-1", "cccc000000000003", start));
    let refs: Vec<&Sample> = batch.iter().collect();
    writer.write(&refs).await?;

    let mut conn = runner::connect(&db.url()).await?;
    let fleet = dashboard::load(&dashboard::dashboards_dir().join("fleet.json"))?;
    let shared = first_target(&mut conn, &fleet, "Shared host tokens").await?;
    assert_eq!(shared[0].try_get::<i64, _>(0)?, 1);
    assert_eq!(
        hosts_table(&mut conn, &fleet).await?,
        [
            (
                "col".to_owned(),
                Some("aaaa000000000001, bbbb000000000002".to_owned())
            ),
            ("web-1".to_owned(), None),
        ]
    );

    // col.x stops cleanly: col is one machine's again.
    let bye = Sample::new(
        "col",
        "aaaa000000000001",
        1,
        start + 2_000_000_000,
        SampleBody::Bye(ByeBody::default()),
    );
    writer.write(&[&bye]).await?;
    let shared = first_target(&mut conn, &fleet, "Shared host tokens").await?;
    assert_eq!(shared[0].try_get::<i64, _>(0)?, 0);
    assert!(hosts_table(&mut conn, &fleet)
        .await?
        .iter()
        .all(|(_, by)| by.is_none()));
    pool.close().await;
    Ok(())
}
