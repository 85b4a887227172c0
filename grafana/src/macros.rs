//! Grafana's MySQL macros, expanded as Grafana's MySQL back end expands them
//! (pkg/tsdb/mysql, macros.go) for a time range and an interval.
//!
//! | macro | becomes |
//! |---|---|
//! | `$__time(c)`, `$__timeEpoch(c)` | `UNIX_TIMESTAMP(c) as time_sec` |
//! | `$__timeFilter(c)` | `c BETWEEN FROM_UNIXTIME(from) AND FROM_UNIXTIME(to)` |
//! | `$__timeFrom()`, `$__timeTo()` | `FROM_UNIXTIME(from)`, `FROM_UNIXTIME(to)` |
//! | `$__timeGroup(c, '5m'[, fill])` | `UNIX_TIMESTAMP(c) DIV 300 * 300` |
//! | `$__timeGroupAlias(c, '5m'[, fill])` | the same `AS "time"` |
//! | `$__unixEpochFilter(c)` | `c >= from AND c <= to` (seconds) |
//! | `$__unixEpochNanoFilter(c)` | the same in nanoseconds |
//! | `$__unixEpochFrom()`, `$__unixEpochTo()`, `...NanoFrom/To()` | the numbers |
//! | `$__unixEpochGroup(c, '5m'[, fill])` | `c DIV 300 * 300`, `...Alias` adds `AS "time"` |
//!
//! `from` and `to` are whole unix seconds (truncated). `FROM_UNIXTIME` and
//! `UNIX_TIMESTAMP` use the session time zone, which is why the data source
//! sets it to UTC. Before the macros, the back end replaces `$__interval_ms`,
//! `$__interval`, `$__unixEpochFrom()` and `$__unixEpochTo()`, and refuses a
//! query naming `user()`, `current_user`, `session_user()`,
//! `system_user()` or `SHOW GRANTS`.

use std::sync::LazyLock;

use anyhow::{anyhow, bail, Result};
use regex::{Captures, Regex};

use crate::{interval, QueryWindow};

static MACRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)").expect("the macro pattern is valid")
});

static RESTRICTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)(\s*show\s+grants|[\s,]session_user\([^\)]*\)|[\s,]current_user(\([^\)]*\))?|[\s,]system_user\([^\)]*\)|[\s,]user\([^\)]*\))([\s,;]|$)",
    )
    .expect("the restricted pattern is valid")
});

/// Expands the back end's substitutions and every macro of `sql`.
pub fn interpolate(sql: &str, window: &QueryWindow) -> Result<String> {
    if RESTRICTED.is_match(sql) {
        bail!(
            "Grafana refuses this query: show grants, session_user(), current_user(), \
             system_user() or user() are not allowed"
        );
    }
    let from = window.from.timestamp();
    let to = window.to.timestamp();
    let sql = sql
        .replace("$__interval_ms", &window.interval.as_millis().to_string())
        .replace("$__interval", &interval::format(window.interval))
        .replace("$__unixEpochFrom()", &from.to_string())
        .replace("$__unixEpochTo()", &to.to_string());

    let mut error = None;
    let out = MACRO.replace_all(&sql, |caps: &Captures| {
        let name = &caps[1];
        let args: Vec<&str> = caps[2].split(',').map(|a| a.trim_matches(' ')).collect();
        match evaluate(name, &args, window) {
            Ok(text) => text,
            Err(e) => {
                error.get_or_insert(e);
                "macro_error()".to_string()
            }
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

fn column<'a>(name: &str, args: &[&'a str]) -> Result<&'a str> {
    match args.first() {
        Some(c) if !c.is_empty() => Ok(c),
        _ => bail!("missing time column argument for macro {name}"),
    }
}

/// The interval argument of a group macro, and the optional fill mode
/// (a number, NULL or previous), which Grafana applies after the query.
fn group_interval(name: &str, args: &[&str]) -> Result<f64> {
    if args.len() < 2 {
        bail!("macro {name} needs time column and interval");
    }
    let seconds = interval::parse(args[1].trim_matches(|c| c == '\'' || c == '"'))
        .map_err(|e| anyhow!("error parsing interval {}: {e}", args[1]))?
        .as_secs_f64();
    if let Some(fill) = args.get(2) {
        let ok = *fill == "NULL" || *fill == "previous" || fill.parse::<f64>().is_ok();
        if !ok {
            bail!("error parsing fill value {fill}");
        }
    }
    Ok(seconds)
}

/// Go's `%v` of a float64 number of seconds: no trailing `.0`.
fn go_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn evaluate(name: &str, args: &[&str], w: &QueryWindow) -> Result<String> {
    let (from, to) = (w.from.timestamp(), w.to.timestamp());
    let nanos = |t: &chrono::DateTime<chrono::Utc>| {
        t.timestamp_nanos_opt()
            .ok_or_else(|| anyhow!("time {t} is out of the nanosecond range"))
    };
    Ok(match name {
        "__time" | "__timeEpoch" => format!("UNIX_TIMESTAMP({}) as time_sec", column(name, args)?),
        "__timeFilter" => format!(
            "{} BETWEEN FROM_UNIXTIME({from}) AND FROM_UNIXTIME({to})",
            column(name, args)?
        ),
        "__timeFrom" => format!("FROM_UNIXTIME({from})"),
        "__timeTo" => format!("FROM_UNIXTIME({to})"),
        "__timeGroup" => {
            let s = group_interval(name, args)?;
            format!("UNIX_TIMESTAMP({}) DIV {s:.0} * {s:.0}", args[0])
        }
        "__timeGroupAlias" => format!("{} AS \"time\"", evaluate("__timeGroup", args, w)?),
        "__unixEpochFilter" => {
            let c = column(name, args)?;
            format!("{c} >= {from} AND {c} <= {to}")
        }
        "__unixEpochNanoFilter" => {
            let c = column(name, args)?;
            format!("{c} >= {} AND {c} <= {}", nanos(&w.from)?, nanos(&w.to)?)
        }
        "__unixEpochNanoFrom" => nanos(&w.from)?.to_string(),
        "__unixEpochNanoTo" => nanos(&w.to)?.to_string(),
        "__unixEpochGroup" => {
            let s = go_float(group_interval(name, args)?);
            format!("{} DIV {s} * {s}", args[0])
        }
        "__unixEpochGroupAlias" => {
            format!("{} AS \"time\"", evaluate("__unixEpochGroup", args, w)?)
        }
        other => bail!("Unknown macro {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::time::Duration;

    fn window() -> QueryWindow {
        let from = Utc.with_ymd_and_hms(2018, 4, 12, 18, 0, 0).unwrap();
        QueryWindow {
            from,
            to: from + chrono::Duration::minutes(5),
            interval: Duration::from_secs(5),
        }
    }

    fn expand(sql: &str) -> Result<String> {
        interpolate(sql, &window())
    }

    #[test]
    fn time_filter_uses_whole_seconds() {
        let (f, t) = (window().from.timestamp(), window().to.timestamp());
        assert_eq!(
            expand("WHERE $__timeFilter(time_column)").unwrap(),
            format!("WHERE time_column BETWEEN FROM_UNIXTIME({f}) AND FROM_UNIXTIME({t})")
        );
        assert_eq!(
            expand("$__timeFrom() $__timeTo()").unwrap(),
            format!("FROM_UNIXTIME({f}) FROM_UNIXTIME({t})")
        );
        assert_eq!(
            expand("$__unixEpochFilter(t)").unwrap(),
            format!("t >= {f} AND t <= {t}")
        );
        assert_eq!(
            expand("$__unixEpochFrom() $__unixEpochTo()").unwrap(),
            format!("{f} {t}")
        );
    }

    #[test]
    fn time_group_divides_whole_seconds_and_aliases_time() {
        assert_eq!(
            expand("GROUP BY $__timeGroup(time_column,'5m')").unwrap(),
            "GROUP BY UNIX_TIMESTAMP(time_column) DIV 300 * 300"
        );
        assert_eq!(
            expand("$__timeGroupAlias(time_column , '5m')").unwrap(),
            "UNIX_TIMESTAMP(time_column) DIV 300 * 300 AS \"time\""
        );
        assert_eq!(
            expand("$__timeGroupAlias(ts, $__interval)").unwrap(),
            "UNIX_TIMESTAMP(ts) DIV 5 * 5 AS \"time\""
        );
        assert_eq!(
            expand("$__timeGroupAlias(ts, '1m', previous)").unwrap(),
            "UNIX_TIMESTAMP(ts) DIV 60 * 60 AS \"time\""
        );
        assert_eq!(
            expand("$__unixEpochGroupAlias(t,'5m')").unwrap(),
            "t DIV 300 * 300 AS \"time\""
        );
    }

    #[test]
    fn nano_filters() {
        let f = window().from.timestamp_nanos_opt().unwrap();
        let t = window().to.timestamp_nanos_opt().unwrap();
        assert_eq!(
            expand("$__unixEpochNanoFilter(t)").unwrap(),
            format!("t >= {f} AND t <= {t}")
        );
    }

    #[test]
    fn bad_macros_are_errors() {
        assert!(expand("$__timeFilter()").is_err());
        assert!(expand("$__timeGroup(ts)").is_err());
        assert!(expand("$__timeGroup(ts, 'often')").is_err());
        assert!(expand("$__timeGroup(ts, '1m', sometimes)").is_err());
        assert!(expand("$__nope(ts)").is_err());
    }

    #[test]
    fn user_functions_are_refused_but_user_columns_are_not() {
        assert!(expand("SELECT user()").is_err());
        assert!(expand("SELECT current_user").is_err());
        assert!(expand("show grants;").is_err());
        assert!(expand("SELECT `user`, user_pct, AVG(user_pct) AS `user` FROM p").is_ok());
    }
}
