//! One evaluation of a provisioned alert rule, as Grafana's scheduler makes
//! it: the rule's query expanded for the time range ending at the
//! evaluation time (Grafana's MySQL macros, [`crate::macros`]), run on the
//! database, its rows turned into alert instances (each string column a
//! label, the one numeric column the value), and the condition's threshold
//! applied to each.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::alerting::Rule;
use crate::{macros, runner, QueryWindow};

/// One row of a rule's query: what Grafana makes an alert instance of.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// Whether the rule's condition holds for it.
    pub firing: bool,
}

/// The SQL Grafana sends for `rule` when it evaluates at `at`.
pub fn expanded_sql(rule: &Rule, at: DateTime<Utc>) -> Result<String> {
    let window = QueryWindow {
        from: at - chrono::Duration::seconds(rule.range_seconds as i64),
        to: at,
        // Alert queries get the data source's minimum interval.
        interval: Duration::from_secs(1),
    };
    macros::interpolate(&rule.sql, &window).with_context(|| format!("rule {}", rule.uid))
}

/// Evaluates `rule` at `at`: every instance, firing or not.
pub async fn evaluate(
    conn: &mut MySqlConnection,
    rule: &Rule,
    at: DateTime<Utc>,
) -> Result<Vec<Instance>> {
    let sql = expanded_sql(rule, at)?;
    let rows = runner::query(conn, &sql)
        .await
        .with_context(|| format!("rule {}", rule.uid))?;
    rows.iter()
        .map(|row| {
            let (labels, value) =
                instance(row).with_context(|| format!("rule {}:\n{sql}", rule.uid))?;
            Ok(Instance {
                firing: rule.threshold.fires(value)?,
                labels,
                value,
            })
        })
        .collect()
}

/// The instances of `rule` at `at` whose condition holds.
pub async fn firing(
    conn: &mut MySqlConnection,
    rule: &Rule,
    at: DateTime<Utc>,
) -> Result<Vec<Instance>> {
    Ok(evaluate(conn, rule, at)
        .await?
        .into_iter()
        .filter(|i| i.firing)
        .collect())
}

fn is_text(type_name: &str) -> bool {
    matches!(
        type_name,
        "VARCHAR" | "CHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM"
    )
}

/// Labels and value of one row; Grafana refuses a table with no numeric
/// column or with several (it would not know which is the value).
fn instance(row: &MySqlRow) -> Result<(BTreeMap<String, String>, f64)> {
    let mut labels = BTreeMap::new();
    let mut value = None;
    for (i, column) in row.columns().iter().enumerate() {
        let type_name = column.type_info().name();
        if is_text(type_name) {
            labels.insert(column.name().to_owned(), runner::cell_text(row, i)?);
            continue;
        }
        if value.is_some() {
            bail!("more than one numeric column ({})", column.name());
        }
        if row.try_get_raw(i)?.is_null() {
            bail!("column {} is NULL: an alert needs a number", column.name());
        }
        let number = row
            .try_get::<f64, _>(i)
            .ok()
            .or_else(|| row.try_get::<i64, _>(i).ok().map(|v| v as f64))
            .or_else(|| row.try_get::<u64, _>(i).ok().map(|v| v as f64))
            // DECIMAL (sums and quotients of integers), which Grafana
            // reads as a number too: the text protocol sends it as text.
            .or_else(|| {
                row.try_get_unchecked::<String, _>(i)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
            });
        match number {
            Some(n) => value = Some(n),
            None => bail!("column {} ({type_name}) is not a number", column.name()),
        }
    }
    match value {
        Some(v) => Ok((labels, v)),
        None => bail!("no numeric column"),
    }
}
