//! A fresh install: the schema exists, nothing has been received yet. Every
//! panel query must still run (returning no rows), so a first `docker
//! compose up` shows empty panels, not errors.

mod common;

use vigia_dashboards::dashboard;
use vigia_dashboards::runner;
use vigia_dashboards::template::{Value, Variables};

#[tokio::test]
async fn every_panel_query_runs_on_an_empty_schema() -> anyhow::Result<()> {
    let db = common::TestDb::create("empty").await?;
    db.migrate().await?;
    let mut conn = runner::connect(&db.url()).await?;
    let window = common::last(common::HOUR)?;
    // No host has reported: variables have no options, so give them the
    // values Grafana would send for a host it does not know.
    let mut vars = Variables::new();
    vars.set("host", Value::Single("nobody".into()), false);
    vars.set("process", Value::Multi(vec!["nothing".into()]), true);
    let mut ran = 0;
    for d in dashboard::load_all(&dashboard::dashboards_dir())? {
        for v in &d.variables {
            let sql = vigia_dashboards::expand(&v.query, &vars, &window)?;
            runner::query(&mut conn, &sql).await?;
        }
        for p in &d.panels {
            for o in runner::run_panel(&mut conn, p, &vars, &window).await? {
                // Aggregates over nothing give one row (COUNT = 0).
                anyhow::ensure!(
                    o.rows <= 1,
                    "{}: {} rows from nothing\n{}",
                    p.title,
                    o.rows,
                    o.sql
                );
                ran += 1;
            }
        }
    }
    anyhow::ensure!(ran >= 20, "only {ran} queries ran");
    Ok(())
}
