//! A private database per test on the MariaDB at VIGIA_TEST_MYSQL
//! (default mysql://root@127.0.0.1:3306), dropped when the test ends
//! (vigia_testkit::TestDatabase), however it ends; and the time window a
//! dashboard asks for.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use sqlx::migrate::MigrateDatabase;
use sqlx::mysql::MySql;
use sqlx::mysql::MySqlConnection;
use sqlx::Row;
use vigia_dashboards::dashboard::Dashboard;
use vigia_dashboards::runner;
use vigia_dashboards::template::Variables;
use vigia_dashboards::QueryWindow;
use vigia_testkit::TestDatabase;

pub const HOUR: Duration = Duration::from_secs(3600);

/// The last `range`, on a 1000-point panel with the data source's 1 s
/// minimum interval, as Grafana asks for it.
pub fn last(range: Duration) -> Result<QueryWindow> {
    QueryWindow::for_range(Utc::now(), range, 1000, Duration::from_secs(1))
}

pub struct TestDb {
    db: TestDatabase,
}

impl TestDb {
    /// A fresh, empty database with a name unique to this process and call.
    pub async fn create(tag: &str) -> Result<Self> {
        let db = TestDatabase::new(&format!("dash_{tag}"));
        let url = db.url();
        MySql::create_database(&url)
            .await
            .with_context(|| format!("creating {url}"))?;
        Ok(Self { db })
    }

    pub fn url(&self) -> String {
        self.db.url()
    }

    /// Brings the schema up to date with the sink's own migrator, as the
    /// sink does at start (`vigia_sink::store::connect`).
    pub async fn migrate(&self) -> Result<()> {
        vigia_sink::store::connect(&self.url(), 1)
            .await?
            .close()
            .await;
        Ok(())
    }
}

/// The SQL of the first target of the panel titled `title`, expanded.
pub fn panel_sql(
    d: &Dashboard,
    title: &str,
    vars: &Variables,
    window: &QueryWindow,
) -> Result<String> {
    let panel = d
        .panels
        .iter()
        .find(|p| p.title == title)
        .with_context(|| format!("no panel {title}"))?;
    vigia_dashboards::expand(&panel.targets[0].raw_sql, vars, window)
}

/// The distinct `metric` values a panel returns.
pub async fn metrics(
    conn: &mut MySqlConnection,
    d: &Dashboard,
    title: &str,
    vars: &Variables,
    window: &QueryWindow,
) -> Result<Vec<String>> {
    let sql = panel_sql(d, title, vars, window)?;
    let rows = runner::query(conn, &sql).await?;
    let mut out: Vec<String> = rows.iter().map(|r| r.get::<String, _>("metric")).collect();
    out.sort();
    out.dedup();
    Ok(out)
}
