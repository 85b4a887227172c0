//! Runs dashboards against a database the way a first open in Grafana does:
//! variables resolved from their queries (first option, or All), then every
//! panel target expanded and executed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::NaiveDateTime;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Column, ConnectOptions, Row, TypeInfo, ValueRef};

use crate::dashboard::{Dashboard, Format, Panel, Target};
use crate::template::{Value, Variables};
use crate::{expand, QueryWindow};

/// A connection as Grafana's MySQL data source opens one: the session time
/// zone set to UTC (the provisioned `timezone: "+00:00"`).
pub async fn connect(url: &str) -> Result<MySqlConnection> {
    let options: MySqlConnectOptions = url
        .parse()
        .with_context(|| format!("bad database URL {url}"))?;
    let mut conn = options
        .timezone(Some("+00:00".to_string()))
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    sqlx::raw_sql("SET time_zone = '+00:00'")
        .execute(&mut conn)
        .await
        .context("setting the session time zone")?;
    Ok(conn)
}

/// Runs one statement the way Grafana's driver does: as text, not prepared.
pub async fn query(conn: &mut MySqlConnection, sql: &str) -> Result<Vec<MySqlRow>> {
    sqlx::raw_sql(sql)
        .fetch_all(conn)
        .await
        .with_context(|| format!("running\n{sql}"))
}

/// Resolves the dashboard's variables in order, each query seeing the ones
/// before it: the stored selection if it is among the options, All for an
/// include-All variable set to All, otherwise the first option.
pub async fn resolve_variables(
    conn: &mut MySqlConnection,
    dashboard: &Dashboard,
    window: &QueryWindow,
) -> Result<Variables> {
    let mut vars = Variables::new();
    for v in &dashboard.variables {
        let sql = expand(&v.query, &vars, window)
            .with_context(|| format!("{}: variable {}", dashboard.title, v.name))?;
        let rows = query(conn, &sql).await?;
        let options = rows
            .iter()
            .map(|r| cell_text(r, 0))
            .collect::<Result<Vec<_>>>()?;
        if options.is_empty() {
            bail!(
                "{}: variable {} has no options:\n{sql}",
                dashboard.title,
                v.name
            );
        }
        let kept: Vec<String> = v
            .current
            .iter()
            .filter(|c| options.contains(c))
            .cloned()
            .collect();
        let value = if v.include_all && v.current.iter().any(|c| c == "$__all") {
            Value::Multi(options)
        } else if !kept.is_empty() {
            if v.multi {
                Value::Multi(kept)
            } else {
                Value::Single(kept[0].clone())
            }
        } else if v.multi {
            Value::Multi(vec![options[0].clone()])
        } else {
            Value::Single(options[0].clone())
        };
        vars.set(&v.name, value, v.multi || v.include_all);
    }
    Ok(vars)
}

/// A cell as text, whatever its SQL type.
pub fn cell_text(row: &MySqlRow, i: usize) -> Result<String> {
    if row.try_get_raw(i)?.is_null() {
        return Ok(String::new());
    }
    if let Ok(s) = row.try_get::<String, _>(i) {
        return Ok(s);
    }
    if let Ok(v) = row.try_get::<i64, _>(i) {
        return Ok(v.to_string());
    }
    if let Ok(v) = row.try_get::<u64, _>(i) {
        return Ok(v.to_string());
    }
    if let Ok(v) = row.try_get::<f64, _>(i) {
        return Ok(v.to_string());
    }
    let ty = row.column(i).type_info().name().to_string();
    bail!("column {i} of type {ty} cannot be read as text")
}

/// The `time` of a row as unix seconds: an integer (the group macros), or a
/// DATETIME/TIMESTAMP in UTC.
fn time_of(row: &MySqlRow, i: usize) -> Result<f64> {
    if let Ok(v) = row.try_get::<i64, _>(i) {
        return Ok(v as f64);
    }
    if let Ok(v) = row.try_get::<NaiveDateTime, _>(i) {
        return Ok(v.and_utc().timestamp_micros() as f64 / 1e6);
    }
    if let Ok(v) = row.try_get::<f64, _>(i) {
        return Ok(v);
    }
    bail!(
        "the time column has SQL type {}",
        row.column(i).type_info().name()
    )
}

/// What one target returned.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sql: String,
    pub rows: usize,
    pub columns: Vec<String>,
    pub elapsed: Duration,
}

/// Expands and runs a target, and checks the result has the shape its
/// format needs: a time series has a `time` column, sorted, and at least one
/// value column.
pub async fn run_target(
    conn: &mut MySqlConnection,
    target: &Target,
    vars: &Variables,
    window: &QueryWindow,
) -> Result<Outcome> {
    let sql = expand(&target.raw_sql, vars, window)?;
    let start = Instant::now();
    let rows = query(conn, &sql).await?;
    let elapsed = start.elapsed();
    let columns: Vec<String> = rows
        .first()
        .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
        .unwrap_or_default();
    if target.format == Format::TimeSeries && !rows.is_empty() {
        let Some(t) = columns.iter().position(|c| c == "time") else {
            bail!("time series without a `time` column (columns {columns:?}):\n{sql}");
        };
        if columns.len() < 2 {
            bail!("time series without a value column:\n{sql}");
        }
        let mut last = f64::MIN;
        for row in &rows {
            let now = time_of(row, t).with_context(|| sql.clone())?;
            if now < last {
                bail!("time series rows are not sorted by time:\n{sql}");
            }
            last = now;
        }
    }
    Ok(Outcome {
        sql,
        rows: rows.len(),
        columns,
        elapsed,
    })
}

/// Every target of a panel, with the panel for reporting.
pub async fn run_panel(
    conn: &mut MySqlConnection,
    panel: &Panel,
    vars: &Variables,
    window: &QueryWindow,
) -> Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for t in &panel.targets {
        out.push(run_target(conn, t, vars, window).await.with_context(|| {
            format!("panel {} ({}) target {}", panel.id, panel.title, t.ref_id)
        })?);
    }
    Ok(out)
}
