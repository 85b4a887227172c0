//! The sampling defaults are the contract's constants; the schema repeats
//! them as SQL (a migration cannot name a Rust constant, and an applied
//! migration may not change), so this checks that the two agree.

use std::path::PathBuf;

use vigia_schema::sample::{DEFAULT_INTERVAL, DEFAULT_PROCS_INTERVAL};

/// The `DEFAULT` of every column definition named `column` in the
/// migrations, in the order they apply: the last is the one in force.
fn column_defaults(column: &str) -> Vec<u64> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mysql/migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let sql = std::fs::read_to_string(&file).unwrap();
        let code: String = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        for clause in code.split([',', ';']) {
            let words: Vec<&str> = clause.split_whitespace().collect();
            let names_it = words.iter().position(|w| *w == column);
            let default = words.iter().position(|w| w.eq_ignore_ascii_case("DEFAULT"));
            if let (Some(name), Some(default)) = (names_it, default) {
                if name < default {
                    found.push(words[default + 1].parse().unwrap());
                }
            }
        }
    }
    found
}

#[test]
fn the_hosts_tables_interval_defaults_are_the_publishers() {
    assert_eq!(
        column_defaults("interval_ms").last(),
        Some(&(DEFAULT_INTERVAL.as_millis() as u64))
    );
    assert_eq!(
        column_defaults("procs_interval_ms").last(),
        Some(&(DEFAULT_PROCS_INTERVAL.as_millis() as u64))
    );
}
