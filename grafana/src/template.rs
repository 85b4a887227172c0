//! Template variables, replaced the way Grafana's front end replaces them in
//! a MySQL panel's SQL before the query is sent.
//!
//! Forms: `$name`, `${name}`, `${name:format}` and the old `[[name]]`,
//! `[[name:format]]`. A name Grafana does not know (such as `$__timeFilter`,
//! a macro for the back end) is left as it is.
//!
//! Values without a format are written as the MySQL data source writes
//! them: a multi-value or include-All variable gives quoted literals joined
//! by commas (`'a','b'`), a single-value one its text with `'` doubled.

use std::collections::HashMap;
use std::sync::LazyLock;

use anyhow::{bail, Result};
use regex::{Captures, Regex};

use crate::{interval, QueryWindow};

/// The value a dashboard variable has when a query is expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Single(String),
    Multi(Vec<String>),
}

/// A dashboard variable as the query sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub value: Value,
    /// Multi-value or include-All: changes the default quoting.
    pub multi_or_all: bool,
}

/// The dashboard variables in force, by name.
#[derive(Debug, Clone, Default)]
pub struct Variables(HashMap<String, Variable>);

impl Variables {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: &str, value: Value, multi_or_all: bool) {
        self.0.insert(
            name.to_string(),
            Variable {
                value,
                multi_or_all,
            },
        );
    }

    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.0.get(name)
    }
}

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")
        .expect("the variable pattern is valid")
});

/// Replaces every known variable of `sql`.
pub fn interpolate(sql: &str, vars: &Variables, window: &QueryWindow) -> Result<String> {
    let builtins = builtins(window);
    let mut error = None;
    let out = VARIABLE.replace_all(sql, |caps: &Captures| {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        let name = caps
            .get(1)
            .or_else(|| caps.get(2))
            .or_else(|| caps.get(4))
            .map_or("", |m| m.as_str());
        let format = caps.get(3).or_else(|| caps.get(6)).map(|m| m.as_str());
        if caps.get(5).is_some() {
            error.get_or_insert_with(|| format!("field paths are not supported: {whole}"));
            return whole.to_string();
        }
        if let Some(value) = builtins.get(name) {
            return value.clone();
        }
        match vars.get(name) {
            None => whole.to_string(),
            Some(var) => match render(var, format) {
                Ok(text) => text,
                Err(e) => {
                    error.get_or_insert(format!("{whole}: {e}"));
                    whole.to_string()
                }
            },
        }
    });
    match error {
        Some(e) => bail!(e),
        None => Ok(out.into_owned()),
    }
}

/// Grafana's global variables that a SQL panel may use.
fn builtins(window: &QueryWindow) -> HashMap<&'static str, String> {
    let range = (window.to - window.from).num_milliseconds().max(0);
    HashMap::from([
        ("__interval", interval::format(window.interval)),
        ("__interval_ms", window.interval.as_millis().to_string()),
        ("__range_ms", range.to_string()),
        ("__range_s", (range / 1000).to_string()),
        ("__range", format!("{}s", range / 1000)),
        ("__from", window.from.timestamp_millis().to_string()),
        ("__to", window.to.timestamp_millis().to_string()),
    ])
}

fn values(value: &Value) -> Vec<&str> {
    match value {
        Value::Single(v) => vec![v.as_str()],
        Value::Multi(vs) => vs.iter().map(String::as_str).collect(),
    }
}

fn render(var: &Variable, format: Option<&str>) -> Result<String> {
    let all = values(&var.value);
    Ok(match format {
        None => match &var.value {
            Value::Single(v) if !var.multi_or_all => v.replace('\'', "''"),
            _ => all
                .iter()
                .map(|v| quote_literal(v))
                .collect::<Vec<_>>()
                .join(","),
        },
        Some("sqlstring") => all
            .iter()
            .map(|v| sqlstring(v))
            .collect::<Vec<_>>()
            .join(","),
        Some("raw") | Some("csv") => all.join(","),
        Some("singlequote") => all
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(","),
        Some("doublequote") => all
            .iter()
            .map(|v| format!("\"{}\"", v.replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => bail!("format {other:?} is not one a vigia dashboard uses"),
    })
}

/// The MySQL data source's literal: single quotes, `'` doubled.
fn quote_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Grafana's `:sqlstring` format: single quotes, `'` doubled and `"`
/// escaped with a backslash.
fn sqlstring(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\'' => out.push_str("''"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::time::Duration;

    fn window() -> QueryWindow {
        QueryWindow {
            from: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2024, 5, 1, 13, 0, 0).unwrap(),
            interval: Duration::from_secs(5),
        }
    }

    fn vars() -> Variables {
        let mut v = Variables::new();
        v.set("host", Value::Single("web-1".into()), false);
        v.set("odd", Value::Single("it's \"x\"".into()), false);
        v.set(
            "process",
            Value::Multi(vec!["nginx".into(), "o'neil".into()]),
            true,
        );
        v
    }

    #[test]
    fn sqlstring_quotes_single_and_multi_values() {
        let sql = "host = ${host:sqlstring} AND name IN (${process:sqlstring})";
        assert_eq!(
            interpolate(sql, &vars(), &window()).unwrap(),
            "host = 'web-1' AND name IN ('nginx','o''neil')"
        );
        assert_eq!(
            interpolate("${odd:sqlstring}", &vars(), &window()).unwrap(),
            r#"'it''s \"x\"'"#
        );
    }

    #[test]
    fn default_format_follows_the_mysql_data_source() {
        assert_eq!(
            interpolate("'$host' $process [[host]] ${odd}", &vars(), &window()).unwrap(),
            r#"'web-1' 'nginx','o''neil' web-1 it''s "x""#
        );
    }

    #[test]
    fn macros_and_unknown_names_stay() {
        let sql = "WHERE $__timeFilter(ts) AND x = $nope";
        assert_eq!(interpolate(sql, &vars(), &window()).unwrap(), sql);
    }

    #[test]
    fn builtins_are_replaced() {
        let sql = "$__interval $__interval_ms $__range_s";
        assert_eq!(
            interpolate(sql, &vars(), &window()).unwrap(),
            "5s 5000 3600"
        );
    }

    #[test]
    fn an_unknown_format_is_an_error() {
        assert!(interpolate("${host:lucene}", &vars(), &window()).is_err());
    }
}
