//! The alert rules as Grafana provisions them (grafana/provisioning/alerting/),
//! loaded and checked without Grafana.
//!
//! Grafana reads a provisioning file as YAML, then expands environment
//! references in every string value (pkg/services/provisioning/values):
//! the value is split on `$$`, each part goes through Go's `os.ExpandEnv`
//! (`$NAME` and `${NAME}`), and the parts are joined with a literal `$`.
//! [`interpolate`] does the same, except that a name missing from the
//! environment is an error rather than an empty string, so a macro written
//! `$__timeTo()` instead of `$$__timeTo()` (which Grafana would silently
//! turn into `()`) fails the tests.
//!
//! [`check`] holds the file to the provisioning schema (apiVersion 1; rule
//! groups with orgId, name, folder, interval and rules; each rule with uid,
//! title, condition, data, noDataState, execErrState, for; contact points
//! and a policy naming one of them) and to vigia's own rules: every query
//! on the data source `vigia-mysql` as raw SQL in table format, every
//! expression on `__expr__` reading a query of the same rule.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::dashboard::{grafana_dir, DATASOURCE_UID};

/// The data source uid of Grafana's server-side expressions.
pub const EXPRESSION_UID: &str = "__expr__";

/// `grafana/provisioning/alerting/vigia.yaml`.
pub fn rules_file() -> PathBuf {
    grafana_dir().join("provisioning/alerting/vigia.yaml")
}

/// `.env.example` at the repository root: the documented defaults of every
/// setting, the alert thresholds among them.
pub fn env_example() -> PathBuf {
    grafana_dir().join("../.env.example")
}

/// The `NAME=value` lines of an env file.
pub fn read_env_file(file: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// One value expanded as Grafana's provisioning expands it.
pub fn interpolate(value: &str, env: &HashMap<String, String>) -> Result<String> {
    let parts = value
        .split("$$")
        .map(|part| expand_env(part, env))
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join("$"))
}

/// Go's `os.ExpandEnv` over `env`, refusing unknown names.
fn expand_env(text: &str, env: &HashMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| anyhow!("unclosed ${{ in {text:?}"))?;
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            // Go keeps a lone `$` (followed by nothing it can read as a name).
            out.push('$');
        } else {
            let value = env.get(name).ok_or_else(|| {
                anyhow!("${name} is not set: Grafana would expand it to nothing (write $$ for a literal $)")
            })?;
            out.push_str(value);
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every string of a parsed file interpolated (keys are not).
fn interpolate_all(value: &mut Value, env: &HashMap<String, String>, at: &str) -> Result<()> {
    match value {
        Value::String(s) => *s = interpolate(s, env).with_context(|| at.to_owned())?,
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate_all(v, env, &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                interpolate_all(v, env, &format!("{at}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// How a threshold expression judges a query's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// `gt`, `lt`, `within_range` or `outside_range`.
    pub kind: String,
    pub params: Vec<f64>,
}

impl Threshold {
    /// Whether `value` meets the condition, as Grafana's threshold
    /// expression decides (strict comparisons, ranges exclusive).
    pub fn fires(&self, value: f64) -> Result<bool> {
        let p = |i: usize| {
            self.params
                .get(i)
                .copied()
                .ok_or_else(|| anyhow!("threshold {} needs {} params", self.kind, i + 1))
        };
        Ok(match self.kind.as_str() {
            "gt" => value > p(0)?,
            "lt" => value < p(0)?,
            "within_range" => value > p(0)? && value < p(1)?,
            "outside_range" => value < p(0)? || value > p(1)?,
            other => bail!("unknown threshold type {other}"),
        })
    }
}

/// One rule, as vigia writes them: a SQL query and a threshold on it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub uid: String,
    pub title: String,
    pub group: String,
    /// The query's SQL, environment expanded, Grafana's macros not yet.
    pub sql: String,
    /// `relativeTimeRange.from`, seconds before the evaluation.
    pub range_seconds: u64,
    pub threshold: Threshold,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The whole file, interpolated and checked.
#[derive(Debug, Clone)]
pub struct Provisioning {
    pub json: Value,
    pub rules: Vec<Rule>,
}

/// Loads and checks `file` with `env` as Grafana's environment.
pub fn load(file: &Path, env: &HashMap<String, String>) -> Result<Provisioning> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut json: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not YAML", file.display()))?;
    interpolate_all(&mut json, env, "").with_context(|| format!("{}", file.display()))?;
    let rules = check(&json).map_err(|problems| {
        anyhow!(
            "{} is not valid alert provisioning:\n  {}",
            file.display(),
            problems.join("\n  ")
        )
    })?;
    Ok(Provisioning { json, rules })
}

/// The environment docker-compose.yml gives the Grafana container for
/// the alert rules: each `NAME: ${NAME:-default}` line of the file, with
/// the value `env_file` sets (as compose reads .env), or the default when
/// it sets none or an empty one.
pub fn compose_env(env_file: &HashMap<String, String>) -> Result<HashMap<String, String>> {
    let compose = grafana_dir().join("../docker-compose.yml");
    let text = std::fs::read_to_string(&compose)
        .with_context(|| format!("reading {}", compose.display()))?;
    let mut env = HashMap::new();
    for line in text.lines().map(str::trim) {
        let Some((name, value)) = line.split_once(": ${") else {
            continue;
        };
        if !name.starts_with("VIGIA_ALERT_") {
            continue;
        }
        let Some((source, default)) = value.strip_suffix('}').and_then(|v| v.split_once(":-"))
        else {
            bail!("{}: {name} has no default", compose.display());
        };
        let chosen = env_file
            .get(source)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| default.to_owned());
        env.insert(name.to_owned(), chosen);
    }
    Ok(env)
}

/// Loads the repository's rules as Grafana gets them from `docker compose
/// up` with .env.example as the .env.
pub fn load_default() -> Result<Provisioning> {
    let env = compose_env(&read_env_file(&env_example())?)?;
    load(&rules_file(), &env)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn is_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 40
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A Grafana duration such as `0s`, `1m`, `5m`, `1h`.
fn is_duration(d: &str) -> bool {
    let digits = d.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &d[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["s", "m", "h", "d"].contains(&unit)
}

fn string_map(v: &Value, what: &str, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                match v.as_str() {
                    Some(s) => {
                        out.insert(k.clone(), s.to_owned());
                    }
                    None => problems.push(format!("{what}.{k} must be a string")),
                }
            }
        }
        _ => problems.push(format!("{what} must be a map of strings")),
    }
    out
}

/// The structural rules; returns the rules, or every problem found.
pub fn check(doc: &Value) -> Result<Vec<Rule>, Vec<String>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    if doc["apiVersion"].as_u64() != Some(1) {
        problems.push(format!("apiVersion {} is not 1", doc["apiVersion"]));
    }
    let groups = doc["groups"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if groups.is_empty() {
        problems.push("groups is empty".into());
    }
    let mut uids = HashSet::new();
    let mut titles = HashSet::new();
    let mut group_names = HashSet::new();
    for g in groups {
        let name = text(&g["name"]);
        let at = format!("group {name:?}");
        if g["orgId"].as_u64().is_none() {
            problems.push(format!("{at}: orgId missing"));
        }
        if name.is_empty() || !group_names.insert((text(&g["folder"]), name)) {
            problems.push(format!("{at}: name empty or repeated in its folder"));
        }
        if text(&g["folder"]).is_empty() {
            problems.push(format!("{at}: folder missing"));
        }
        if !is_duration(text(&g["interval"])) {
            problems.push(format!(
                "{at}: interval {} is not a duration",
                g["interval"]
            ));
        }
        let list = g["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
        if list.is_empty() {
            problems.push(format!("{at}: rules is empty"));
        }
        for r in list {
            if let Some(rule) = check_rule(r, name, &mut uids, &mut titles, &mut problems) {
                rules.push(rule);
            }
        }
    }
    let mut receivers = HashSet::new();
    let points = doc["contactPoints"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if points.is_empty() {
        problems.push("contactPoints is empty".into());
    }
    for cp in points {
        let name = text(&cp["name"]);
        if cp["orgId"].as_u64().is_none() || name.is_empty() {
            problems.push(format!(
                "contact point {name:?}: orgId and name are required"
            ));
        }
        receivers.insert(name.to_owned());
        let list = cp["receivers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if list.is_empty() {
            problems.push(format!("contact point {name:?}: receivers is empty"));
        }
        for r in list {
            let uid = text(&r["uid"]);
            if !is_uid(uid) || !uids.insert(uid.to_owned()) {
                problems.push(format!("receiver uid {uid:?} is invalid or repeated"));
            }
            if !r["settings"].is_object() {
                problems.push(format!("receiver {uid}: settings missing"));
            }
            match text(&r["type"]) {
                "webhook" if text(&r["settings"]["url"]).is_empty() => {
                    problems.push(format!("receiver {uid}: a webhook needs settings.url"))
                }
                "email" if text(&r["settings"]["addresses"]).is_empty() => {
                    problems.push(format!("receiver {uid}: an email needs settings.addresses"))
                }
                "" => problems.push(format!("receiver {uid}: type missing")),
                _ => {}
            }
        }
    }
    let policies = doc["policies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if policies.is_empty() {
        problems.push("policies is empty".into());
    }
    for p in policies {
        if p["orgId"].as_u64().is_none() || !receivers.contains(text(&p["receiver"])) {
            problems.push(format!(
                "policy: orgId required and receiver {} must be a contact point",
                p["receiver"]
            ));
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn check_rule(
    r: &Value,
    group: &str,
    uids: &mut HashSet<String>,
    titles: &mut HashSet<String>,
    problems: &mut Vec<String>,
) -> Option<Rule> {
    let uid = text(&r["uid"]);
    let title = text(&r["title"]);
    let at = format!("rule {uid:?} ({title})");
    let before = problems.len();
    if !is_uid(uid) || !uids.insert(uid.to_owned()) {
        problems.push(format!("{at}: uid must be 1-40 of [A-Za-z0-9_-], unique"));
    }
    if title.trim().is_empty() || !titles.insert(title.to_owned()) {
        problems.push(format!("{at}: title empty or repeated"));
    }
    if !["Alerting", "NoData", "OK", "KeepLast"].contains(&text(&r["noDataState"])) {
        problems.push(format!("{at}: noDataState {}", r["noDataState"]));
    }
    if !["Alerting", "Error", "OK", "KeepLast"].contains(&text(&r["execErrState"])) {
        problems.push(format!("{at}: execErrState {}", r["execErrState"]));
    }
    if !is_duration(text(&r["for"])) {
        problems.push(format!("{at}: for {} is not a duration", r["for"]));
    }
    let labels = string_map(&r["labels"], &format!("{at}: labels"), problems);
    let annotations = string_map(&r["annotations"], &format!("{at}: annotations"), problems);
    let data = r["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut refs = HashSet::new();
    let mut sql = None;
    let mut range_seconds = 0;
    let mut thresholds = HashMap::new();
    for d in data {
        let ref_id = text(&d["refId"]);
        let q = format!("{at} query {ref_id:?}");
        if ref_id.is_empty() || !refs.insert(ref_id) {
            problems.push(format!("{q}: refId empty or repeated"));
        }
        if text(&d["model"]["refId"]) != ref_id {
            problems.push(format!("{q}: model.refId differs"));
        }
        let (from, to) = (
            d["relativeTimeRange"]["from"].as_u64(),
            d["relativeTimeRange"]["to"].as_u64(),
        );
        if !matches!((from, to), (Some(f), Some(t)) if f >= t) {
            problems.push(format!(
                "{q}: relativeTimeRange needs from >= to, in seconds"
            ));
        }
        match text(&d["datasourceUid"]) {
            DATASOURCE_UID => {
                let m = &d["model"];
                if m["datasource"]["uid"] != DATASOURCE_UID || m["datasource"]["type"] != "mysql" {
                    problems.push(format!("{q}: model.datasource is not {DATASOURCE_UID}"));
                }
                if m["rawQuery"] != true || text(&m["rawSql"]).trim().is_empty() {
                    problems.push(format!("{q}: needs rawQuery true and rawSql"));
                }
                if m["format"] != "table" {
                    problems.push(format!("{q}: format must be table (one row per alert)"));
                }
                if sql.is_some() {
                    problems.push(format!("{q}: one SQL query per rule"));
                }
                sql = Some(text(&m["rawSql"]).to_owned());
                range_seconds = from.unwrap_or(0);
            }
            EXPRESSION_UID => {
                let m = &d["model"];
                if m["datasource"]["uid"] != EXPRESSION_UID {
                    problems.push(format!("{q}: model.datasource is not {EXPRESSION_UID}"));
                }
                if m["type"] != "threshold" {
                    problems.push(format!("{q}: only threshold expressions are used"));
                    continue;
                }
                let evaluator = &m["conditions"][0]["evaluator"];
                let params: Option<Vec<f64>> = evaluator["params"]
                    .as_array()
                    .map(|ps| ps.iter().filter_map(Value::as_f64).collect());
                thresholds.insert(
                    ref_id.to_owned(),
                    (
                        text(&m["expression"]).to_owned(),
                        Threshold {
                            kind: text(&evaluator["type"]).to_owned(),
                            params: params.unwrap_or_default(),
                        },
                    ),
                );
            }
            other => problems.push(format!(
                "{q}: data source {other:?} is neither {DATASOURCE_UID} nor {EXPRESSION_UID}"
            )),
        }
    }
    for (ref_id, (expression, threshold)) in &thresholds {
        if !refs.contains(expression.as_str()) || thresholds.contains_key(expression) {
            problems.push(format!(
                "{at}: expression {ref_id} reads {expression:?}, not a query of this rule"
            ));
        }
        if let Err(e) = threshold.fires(0.0) {
            problems.push(format!("{at}: expression {ref_id}: {e}"));
        }
    }
    let condition = text(&r["condition"]);
    let Some((_, threshold)) = thresholds.get(condition) else {
        problems.push(format!(
            "{at}: condition {condition:?} is not a threshold of this rule"
        ));
        return None;
    };
    let Some(sql) = sql else {
        problems.push(format!("{at}: no SQL query"));
        return None;
    };
    (problems.len() == before).then(|| Rule {
        uid: uid.to_owned(),
        title: title.to_owned(),
        group: group.to_owned(),
        sql,
        range_seconds,
        threshold: threshold.clone(),
        labels,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_like_grafana_with_dollar_dollar_kept_literal() {
        let e = env(&[("PCT", "90"), ("URL", "http://x/$y")]);
        assert_eq!(interpolate("> ${PCT} and $PCT", &e).unwrap(), "> 90 and 90");
        assert_eq!(
            interpolate("$$__timeTo() - $${PCT}", &e).unwrap(),
            "$__timeTo() - ${PCT}"
        );
        // A value's own `$` is not expanded again.
        assert_eq!(interpolate("${URL}", &e).unwrap(), "http://x/$y");
        assert_eq!(interpolate("cost: 5 $", &e).unwrap(), "cost: 5 $");
        let missing = interpolate("$__timeTo()", &e).unwrap_err().to_string();
        assert!(missing.contains("$__timeTo is not set"), "{missing}");
        assert!(interpolate("${UNCLOSED", &e).is_err());
    }

    #[test]
    fn thresholds_compare_strictly() {
        let gt = Threshold {
            kind: "gt".into(),
            params: vec![0.0],
        };
        assert!(gt.fires(0.5).unwrap());
        assert!(!gt.fires(0.0).unwrap());
        let within = Threshold {
            kind: "within_range".into(),
            params: vec![1.0, 2.0],
        };
        assert!(within.fires(1.5).unwrap() && !within.fires(2.0).unwrap());
        assert!(Threshold {
            kind: "gt".into(),
            params: vec![]
        }
        .fires(1.0)
        .is_err());
    }

    #[test]
    fn durations() {
        for ok in ["0s", "1m", "5m", "24h"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "m", "5", "1w", "-1m", "1.5m"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
