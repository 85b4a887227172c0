//! The provisioned alert rules as Grafana would load them: valid against
//! the provisioning schema, fixed uids, every threshold from the
//! environment that docker-compose.yml passes and .env.example documents,
//! and every rule's query runs on MariaDB, expanded as Grafana expands it.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use serde_json::Value;
use vigia_dashboards::alerting::{self, check, Provisioning};
use vigia_dashboards::dashboard::grafana_dir;
use vigia_dashboards::evaluate;
use vigia_dashboards::fill::{self, Plan};
use vigia_dashboards::runner;

fn rules() -> Provisioning {
    alerting::load_default().expect("the alert rules load")
}

#[test]
fn the_rules_load_with_fixed_uids_on_the_mysql_data_source() {
    let p = rules();
    let uids: Vec<&str> = p.rules.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(
        uids,
        [
            "vigia-host-offline",
            "vigia-cpu-busy",
            "vigia-ram-used",
            "vigia-swap-growing",
            "vigia-process-hog",
            "vigia-kills-refused",
            "vigia-dead-letters",
            "vigia-stream-discarded",
            "vigia-sink-lag",
            "vigia-sink-silent",
        ]
    );
    for group in p.json["groups"].as_array().unwrap() {
        assert_eq!(group["folder"], "vigia", "the dashboards' folder");
        for rule in group["rules"].as_array().unwrap() {
            assert_eq!(rule["data"][0]["datasourceUid"], "vigia-mysql");
            assert_eq!(
                rule["noDataState"], "OK",
                "{}: no rows means all is well",
                rule["uid"]
            );
        }
    }
    for r in &p.rules {
        assert!(
            r.labels.contains_key("severity"),
            "{}: severity label",
            r.uid
        );
        assert!(r.annotations.contains_key("summary"), "{}: summary", r.uid);
        // The templates survived the environment expansion as Grafana's.
        for text in r.annotations.values() {
            assert!(!text.contains("$$"), "{}: {text}", r.uid);
        }
        assert!(!r.sql.contains("${"), "{}: unexpanded\n{}", r.uid, r.sql);
        assert!(
            r.sql.contains("$__timeTo()"),
            "{}: now is $__timeTo()",
            r.uid
        );
    }
    let offline = &p.rules[0];
    assert!(offline.annotations["summary"].contains("{{ $labels.host }}"));
    let hog = p
        .rules
        .iter()
        .find(|r| r.uid == "vigia-process-hog")
        .unwrap();
    for label in ["$labels.host", "$labels.pid", "$labels.process"] {
        assert!(hog.annotations["summary"].contains(label), "{label}");
    }
}

/// The one place an operator edits: .env (documented in .env.example),
/// passed to Grafana by docker-compose.yml with the same defaults.
#[test]
fn every_threshold_is_an_env_setting_that_compose_passes_with_the_documented_default() {
    let yaml = std::fs::read_to_string(alerting::rules_file()).unwrap();
    let compose = std::fs::read_to_string(grafana_dir().join("../docker-compose.yml")).unwrap();
    let documented = alerting::read_env_file(&alerting::env_example()).unwrap();
    let used: BTreeSet<&str> = yaml
        .match_indices("${")
        .map(|(at, _)| {
            let rest = &yaml[at + 2..];
            &rest[..rest.find('}').unwrap()]
        })
        .collect();
    assert!(used.len() >= 15, "{used:?}");
    for name in used {
        assert!(name.starts_with("VIGIA_ALERT_"), "{name}");
        let line = compose
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("docker-compose.yml does not pass {name} to grafana"));
        let default = line
            .split(":-")
            .nth(1)
            .and_then(|d| d.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{line}: no default"));
        let doc = documented
            .get(name)
            .unwrap_or_else(|| panic!(".env.example lacks {name}"));
        if name != "VIGIA_ALERT_WEBHOOK_URL" {
            assert_eq!(default, doc, "{name}: compose and .env.example disagree");
        }
    }
}

fn mutated(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut json = rules().json;
    edit(&mut json);
    check(&json).expect_err("the broken file is refused")
}

#[test]
fn the_schema_check_refuses_broken_rules() {
    let problems = mutated(|j| j["groups"][0]["rules"][1]["uid"] = "vigia-host-offline".into());
    assert!(
        problems.iter().any(|p| p.contains("unique")),
        "{problems:?}"
    );
    let problems =
        mutated(|j| j["groups"][0]["rules"][0]["data"][0]["datasourceUid"] = "other-mysql".into());
    assert!(
        problems.iter().any(|p| p.contains("other-mysql")),
        "{problems:?}"
    );
    let problems = mutated(|j| j["groups"][0]["rules"][0]["condition"] = "C".into());
    assert!(
        problems.iter().any(|p| p.contains("condition")),
        "{problems:?}"
    );
    let problems = mutated(|j| j["groups"][0]["rules"][2]["for"] = "5 minutes".into());
    assert!(problems.iter().any(|p| p.contains("for")), "{problems:?}");
    let problems = mutated(|j| j["groups"][1]["rules"][0]["noDataState"] = "Maybe".into());
    assert!(
        problems.iter().any(|p| p.contains("noDataState")),
        "{problems:?}"
    );
    let problems = mutated(|j| {
        j["groups"][0]["rules"][0]["data"][0]["model"]["format"] = "time_series".into()
    });
    assert!(problems.iter().any(|p| p.contains("table")), "{problems:?}");
    let problems = mutated(|j| j["policies"][0]["receiver"] = "nobody".into());
    assert!(
        problems.iter().any(|p| p.contains("nobody")),
        "{problems:?}"
    );
    let problems =
        mutated(|j| j["contactPoints"][0]["receivers"][0]["settings"]["url"] = "".into());
    assert!(problems.iter().any(|p| p.contains("url")), "{problems:?}");
    let problems = mutated(|j| j["apiVersion"] = 2.into());
    assert!(
        problems.iter().any(|p| p.contains("apiVersion")),
        "{problems:?}"
    );
}

#[test]
fn a_macro_without_its_dollar_escape_is_caught() {
    let dir = vigia_testkit::TempDir::new("alerts");
    let file = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(alerting::rules_file())
        .unwrap()
        .replacen("$$__timeTo()", "$__timeTo()", 1);
    std::fs::write(&file, text).unwrap();
    let env =
        alerting::compose_env(&alerting::read_env_file(&alerting::env_example()).unwrap()).unwrap();
    let error = format!("{:#}", alerting::load(&file, &env).unwrap_err());
    assert!(error.contains("$__timeTo is not set"), "{error}");
    // And a threshold missing from the environment is named.
    let mut partial: HashMap<String, String> = env.clone();
    partial.remove("VIGIA_ALERT_CPU_BUSY_PCT");
    let error = format!(
        "{:#}",
        alerting::load(&alerting::rules_file(), &partial).unwrap_err()
    );
    assert!(error.contains("VIGIA_ALERT_CPU_BUSY_PCT"), "{error}");
}

#[tokio::test]
async fn every_rule_query_runs_on_an_empty_schema_and_fires_nothing() -> Result<()> {
    let db = common::TestDb::create("alerts_empty").await?;
    db.migrate().await?;
    let mut conn = runner::connect(&db.url()).await?;
    for rule in &rules().rules {
        let found = evaluate::evaluate(&mut conn, rule, Utc::now()).await?;
        anyhow::ensure!(found.is_empty(), "{}: {found:?}", rule.uid);
    }
    Ok(())
}

/// On a churning fleet (testkit/src/fleet.rs: one host left with a bye, one
/// went silent), every query runs; the silent host is the one offline
/// alert, and quiet hosts raise nothing else.
#[tokio::test]
async fn every_rule_query_runs_on_a_filled_fleet() -> Result<()> {
    let db = common::TestDb::create("alerts_filled").await?;
    fill::fill(&db.url(), &Plan::small(20, Duration::from_secs(15 * 60))).await?;
    let mut conn = runner::connect(&db.url()).await?;
    let mut firing = Vec::new();
    for rule in &rules().rules {
        for i in evaluate::firing(&mut conn, rule, Utc::now()).await? {
            firing.push((rule.uid.clone(), i.labels));
        }
    }
    let offline: Vec<_> = firing
        .iter()
        .filter(|(uid, _)| uid == "vigia-host-offline")
        .map(|(_, labels)| labels["host"].clone())
        .collect();
    assert_eq!(offline, ["host-018"], "{firing:?}");
    Ok(())
}
