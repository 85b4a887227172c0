//! vigia's Grafana dashboards, checked without Grafana.
//!
//! Grafana cannot run here, so this crate does what Grafana does with a
//! panel's SQL before it reaches MySQL, and lets the tests and the
//! dashboard benchmark (`bench/src/dashboards.rs`) run the result on
//! MariaDB:
//!
//! 1. [`dashboard`] loads every dashboard JSON of `grafana/dashboards/` and
//!    checks its structure (uid, title, schemaVersion, panels, each target
//!    naming the provisioned data source).
//! 2. [`template`] replaces template variables the way Grafana's front end
//!    does (`$host`, `${host:sqlstring}`, multi-value, All, `$__interval`).
//! 3. [`macros`] expands Grafana's MySQL macros (`$__timeFilter`,
//!    `$__timeGroupAlias`, ...) the way Grafana's MySQL back end does for a
//!    given time range and interval.
//! 4. [`runner`] resolves the variables from the database as a first open of
//!    the dashboard would, then runs every panel query.
//! 5. [`alerting`] loads the provisioned alert rules as Grafana reads them
//!    (environment expanded) and checks them; [`evaluate`] runs a rule's
//!    query at a chosen time and applies its threshold, as Grafana's
//!    scheduler does at each evaluation.
//!
//! The data they run on: [`fill`] writes the synthetic fleet
//! (`vigia_testkit::fleet`) through the sink's own writer.

#![forbid(unsafe_code)]

pub mod alerting;
pub mod dashboard;
pub mod evaluate;
pub mod fill;
pub mod interval;
pub mod macros;
pub mod runner;
pub mod template;

use chrono::{DateTime, Utc};
use std::time::Duration;

/// What a panel query is expanded for: the dashboard's time range and the
/// panel's `$__interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Duration,
}

impl QueryWindow {
    /// The window Grafana would use for `range` ending at `to`, on a panel
    /// `max_data_points` wide, with the data source's minimum interval.
    pub fn for_range(
        to: DateTime<Utc>,
        range: Duration,
        max_data_points: u32,
        min_interval: Duration,
    ) -> anyhow::Result<Self> {
        let span = chrono::Duration::from_std(range)?;
        Ok(Self {
            from: to - span,
            to,
            interval: interval::calculate(range, max_data_points, min_interval),
        })
    }
}

/// Expands a panel's SQL completely: template variables first (Grafana's
/// front end), then the SQL data sources' global substitutions and the MySQL
/// macros (Grafana's back end).
pub fn expand(
    sql: &str,
    variables: &template::Variables,
    window: &QueryWindow,
) -> anyhow::Result<String> {
    let sql = template::interpolate(sql, variables, window)?;
    macros::interpolate(&sql, window)
}
