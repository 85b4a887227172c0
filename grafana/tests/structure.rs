//! The dashboard files as Grafana would load them: valid, unique, all on
//! the provisioned data source, and every query expandable.

mod common;

use vigia_dashboards::dashboard::{self, DATASOURCE_UID};
use vigia_dashboards::expand;
use vigia_dashboards::template::{Value, Variables};

#[test]
fn the_five_dashboards_load_with_fixed_uids() {
    let all = dashboard::load_all(&dashboard::dashboards_dir()).expect("dashboards load");
    let mut uids: Vec<&str> = all.iter().map(|d| d.uid.as_str()).collect();
    uids.sort();
    assert_eq!(
        uids,
        [
            "vigia-commands",
            "vigia-fleet",
            "vigia-host",
            "vigia-pipeline",
            "vigia-process"
        ]
    );
    for d in &all {
        assert!(!d.panels.is_empty(), "{} has panels", d.title);
    }
}

#[test]
fn panels_name_the_provisioned_data_source() {
    let (uid, kind) = dashboard::provisioned_datasource(
        &dashboard::grafana_dir().join("provisioning/datasources/vigia.yaml"),
    )
    .expect("provisioning file reads");
    assert_eq!(uid, DATASOURCE_UID);
    assert_eq!(kind, "mysql");
}

#[test]
fn the_host_and_process_dashboards_have_their_variables() {
    let all = dashboard::load_all(&dashboard::dashboards_dir()).expect("dashboards load");
    let vars = |uid: &str| -> Vec<String> {
        all.iter()
            .find(|d| d.uid == uid)
            .map(|d| d.variables.iter().map(|v| v.name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(vars("vigia-host"), ["host"]);
    assert_eq!(vars("vigia-process"), ["host", "process"]);
}

/// Every panel query and variable query expands with nothing of Grafana's
/// syntax left over: no `$name`, no macro.
#[test]
fn every_query_expands_completely() {
    let all = dashboard::load_all(&dashboard::dashboards_dir()).expect("dashboards load");
    let window = common::last(common::HOUR).expect("window");
    let mut vars = Variables::new();
    vars.set("host", Value::Single("web-1".into()), false);
    vars.set(
        "process",
        Value::Multi(vec!["nginx".into(), "o'brien".into()]),
        true,
    );
    let mut expanded = 0;
    for d in &all {
        let queries = d
            .panels
            .iter()
            .flat_map(|p| p.targets.iter().map(|t| t.raw_sql.as_str()))
            .chain(d.variables.iter().map(|v| v.query.as_str()));
        for sql in queries {
            let out =
                expand(sql, &vars, &window).unwrap_or_else(|e| panic!("{}: {e:#}\n{sql}", d.title));
            assert!(!out.contains('$'), "{}: left over in\n{out}", d.title);
            assert!(!out.contains("[["), "{}: left over in\n{out}", d.title);
            expanded += 1;
        }
    }
    assert!(expanded >= 20, "only {expanded} queries");
}
