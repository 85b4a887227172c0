//! The dashboards as files: loading them and checking that Grafana would
//! take them as they are.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// The data source uid every panel must name; the provisioning file gives it.
pub const DATASOURCE_UID: &str = "vigia-mysql";

/// The oldest dashboard schema the dashboards are written for (Grafana 10.4).
pub const MIN_SCHEMA_VERSION: u64 = 39;

/// `grafana/` in the repository.
pub fn grafana_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `grafana/dashboards/`, which the provisioning loads.
pub fn dashboards_dir() -> PathBuf {
    grafana_dir().join("dashboards")
}

/// How Grafana reads a query's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Needs a `time` column, rows sorted by it.
    TimeSeries,
    Table,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub ref_id: String,
    pub format: Format,
    pub raw_sql: String,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub id: u64,
    pub title: String,
    pub kind: String,
    pub targets: Vec<Target>,
}

/// A query variable (`type: query`), the only kind vigia uses.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub query: String,
    pub multi: bool,
    pub include_all: bool,
    /// The stored selection: `$__all`, some values, or none (first option).
    pub current: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub file: PathBuf,
    pub uid: String,
    pub title: String,
    pub panels: Vec<Panel>,
    pub variables: Vec<Variable>,
}

/// Loads and checks every `*.json` of `dir`, and that uids and titles are
/// unique among them.
pub fn load_all(dir: &Path) -> Result<Vec<Dashboard>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let dashboards = files.iter().map(|f| load(f)).collect::<Result<Vec<_>>>()?;
    let mut uids = HashSet::new();
    let mut titles = HashSet::new();
    for d in &dashboards {
        if !uids.insert(d.uid.clone()) {
            bail!("uid {:?} is used twice ({})", d.uid, d.file.display());
        }
        if !titles.insert(d.title.clone()) {
            bail!("title {:?} is used twice ({})", d.title, d.file.display());
        }
    }
    Ok(dashboards)
}

/// Loads one dashboard file and checks it; the error names every problem.
pub fn load(file: &Path) -> Result<Dashboard> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    check(&json).map_err(|problems| {
        anyhow!(
            "{} is not a valid dashboard:\n  {}",
            file.display(),
            problems.join("\n  ")
        )
    })?;
    let mut panels = Vec::new();
    collect_panels(&json["panels"], &mut panels);
    Ok(Dashboard {
        file: file.to_path_buf(),
        uid: str_of(&json["uid"]).to_string(),
        title: str_of(&json["title"]).to_string(),
        panels: panels.iter().map(|p| to_panel(p)).collect(),
        variables: json["templating"]["list"]
            .as_array()
            .map(|vs| vs.iter().map(to_variable).collect())
            .unwrap_or_default(),
    })
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Every panel, with the panels of collapsed rows.
fn collect_panels<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
    for p in list.as_array().into_iter().flatten() {
        out.push(p);
        collect_panels(&p["panels"], out);
    }
}

fn to_panel(p: &Value) -> Panel {
    Panel {
        id: p["id"].as_u64().unwrap_or_default(),
        title: str_of(&p["title"]).to_string(),
        kind: str_of(&p["type"]).to_string(),
        targets: p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| Target {
                ref_id: str_of(&t["refId"]).to_string(),
                format: if t["format"] == "time_series" {
                    Format::TimeSeries
                } else {
                    Format::Table
                },
                raw_sql: str_of(&t["rawSql"]).to_string(),
            })
            .collect(),
    }
}

fn to_variable(v: &Value) -> Variable {
    let current = match &v["current"]["value"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| str_of(s).to_string()).collect(),
        _ => Vec::new(),
    };
    Variable {
        name: str_of(&v["name"]).to_string(),
        query: match &v["query"] {
            Value::String(s) => s.clone(),
            q => str_of(&q["rawSql"]).to_string(),
        },
        multi: v["multi"].as_bool().unwrap_or(false),
        include_all: v["includeAll"].as_bool().unwrap_or(false),
        current,
    }
}

fn check_datasource(what: &str, ds: &Value, problems: &mut Vec<String>) {
    if ds["uid"] != DATASOURCE_UID || ds["type"] != "mysql" {
        problems.push(format!(
            "{what}: data source {ds} is not {{type: mysql, uid: {DATASOURCE_UID}}}"
        ));
    }
}

/// The structural rules: what Grafana needs to show the dashboard, and what
/// vigia requires of its own (one data source, raw SQL queries).
fn check(d: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let uid = str_of(&d["uid"]);
    let uid_ok = !uid.is_empty()
        && uid.len() <= 40
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !uid_ok {
        problems.push(format!("uid {:?} must be 1-40 of [A-Za-z0-9_-]", d["uid"]));
    }
    if str_of(&d["title"]).trim().is_empty() {
        problems.push("title is missing".into());
    }
    match d["schemaVersion"].as_u64() {
        Some(v) if v >= MIN_SCHEMA_VERSION => {}
        _ => problems.push(format!(
            "schemaVersion {} is not a number >= {MIN_SCHEMA_VERSION}",
            d["schemaVersion"]
        )),
    }
    if d["time"]["from"].as_str().is_none() || d["time"]["to"].as_str().is_none() {
        problems.push("time.from and time.to must be set".into());
    }
    if !d["id"].is_null() {
        problems.push("id must be null or absent in a provisioned dashboard".into());
    }

    let mut names = HashSet::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let name = str_of(&v["name"]);
        if name.is_empty() || !names.insert(name) {
            problems.push(format!("variable name {name:?} is empty or repeated"));
        }
        if v["type"] != "query" {
            problems.push(format!("variable {name}: only query variables are used"));
            continue;
        }
        check_datasource(&format!("variable {name}"), &v["datasource"], &mut problems);
        if str_of(&v["query"]).trim().is_empty() {
            problems.push(format!("variable {name}: query is empty"));
        }
    }

    let mut panels = Vec::new();
    collect_panels(&d["panels"], &mut panels);
    if panels.is_empty() {
        problems.push("panels is empty".into());
    }
    let mut ids = HashSet::new();
    for p in panels {
        let title = str_of(&p["title"]);
        let what = format!("panel {:?} ({title})", p["id"]);
        match p["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            _ => problems.push(format!("{what}: id missing or repeated")),
        }
        if title.trim().is_empty() {
            problems.push(format!("{what}: title is missing"));
        }
        let kind = str_of(&p["type"]);
        const KINDS: &[&str] = &["timeseries", "stat", "table", "gauge", "bargauge", "row"];
        if !KINDS.contains(&kind) {
            problems.push(format!("{what}: type {kind:?} is not one of {KINDS:?}"));
        }
        let g = &p["gridPos"];
        match (
            g["x"].as_u64(),
            g["y"].as_u64(),
            g["w"].as_u64(),
            g["h"].as_u64(),
        ) {
            (Some(x), Some(_), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24 => {}
            _ => problems.push(format!("{what}: gridPos {g} is not inside the 24 columns")),
        }
        if kind == "row" {
            continue;
        }
        check_datasource(&what, &p["datasource"], &mut problems);
        let targets = p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{what}: no targets"));
        }
        let mut refs = HashSet::new();
        for t in targets {
            let r = str_of(&t["refId"]);
            if r.is_empty() || !refs.insert(r) {
                problems.push(format!("{what}: refId {r:?} empty or repeated"));
            }
            check_datasource(
                &format!("{what} target {r}"),
                &t["datasource"],
                &mut problems,
            );
            if str_of(&t["rawSql"]).trim().is_empty() || t["rawQuery"] != true {
                problems.push(format!("{what} target {r}: needs rawQuery true and rawSql"));
            }
            let format = str_of(&t["format"]);
            if format != "time_series" && format != "table" {
                problems.push(format!("{what} target {r}: format {format:?}"));
            }
            if kind == "timeseries" && format != "time_series" {
                problems.push(format!(
                    "{what} target {r}: a time series panel needs format time_series"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The uid and type of the data source that the provisioning file
/// `grafana/provisioning/datasources/vigia.yaml` declares. The file is ours
/// and flat, so its `uid:` and `type:` lines are read directly.
pub fn provisioned_datasource(file: &Path) -> Result<(String, String)> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let field = |key: &str| -> Result<String> {
        let found: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).to_string()),
            _ => bail!("{} must have exactly one {key} line", file.display()),
        }
    };
    Ok((field("uid:")?, field("type:")?))
}
