//! The migrations must run on MySQL 8 (Cloud SQL, `scripts/gcp/up
//! --cloud-sql`) as well as on MariaDB. No MySQL 8 server can be installed
//! on the machines that run these tests (Debian 12 ships only MariaDB, and
//! no PyPI package ships a mysqld), so every statement was reviewed against
//! the MySQL 8.0 reference (mysql/MYSQL8.md) and this test keeps the
//! constructs that only MariaDB accepts out of every migration, present
//! and future. Each entry names the MariaDB-only form and what both accept.

/// MariaDB-only SQL, each with the portable form to write instead.
const MARIADB_ONLY: &[(&str, &str)] = &[
    ("CREATE OR REPLACE", "DROP ... IF EXISTS, then CREATE"),
    (
        "ADD COLUMN IF NOT EXISTS",
        "a plain ADD COLUMN (each migration runs once)",
    ),
    ("DROP COLUMN IF EXISTS", "a plain DROP COLUMN"),
    ("ADD INDEX IF NOT EXISTS", "a plain ADD INDEX"),
    ("CREATE INDEX IF NOT EXISTS", "a plain CREATE INDEX"),
    (" RETURNING ", "a separate SELECT"),
    (
        "PAGE_COMPRESSED",
        "COMPRESSION='zlib' is MySQL's; measure and pick per server",
    ),
    ("ROW_FORMAT=PAGE", "ROW_FORMAT=DYNAMIC or COMPRESSED"),
    (
        "WITH SYSTEM VERSIONING",
        "a history table written by the sink",
    ),
    ("CREATE SEQUENCE", "AUTO_INCREMENT"),
    ("CONVERT PARTITION", "REORGANIZE PARTITION"),
    (" INET6", "VARBINARY(16)"),
    (" UUID ", "BINARY(16) or CHAR(36)"),
    (" PERSISTENT", "STORED (generated columns)"),
    ("JSON_DETAILED", "JSON_PRETTY"),
    ("JSON_EXISTS", "JSON_CONTAINS_PATH"),
    ("JSON_QUERY", "JSON_EXTRACT"),
    ("JSON_ARRAY_INTERSECT", "JSON_OVERLAPS"),
    ("ENGINE = ARIA", "ENGINE = InnoDB"),
    ("ENGINE=ARIA", "ENGINE=InnoDB"),
    (
        "DELETE_DOMAIN_ID",
        "nothing: replication settings stay out of the schema",
    ),
];

fn migrations() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../mysql/migrations");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("mysql/migrations")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a migration");
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

/// The SQL of a migration without its `--` comments (which may name the
/// very constructs they avoid) and upper-cased.
fn statements(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
        .to_uppercase()
}

#[test]
fn every_migration_avoids_what_only_mariadb_accepts() {
    let files = migrations();
    assert!(files.len() >= 5, "found {} migrations", files.len());
    let mut found = Vec::new();
    for (name, text) in &files {
        let sql = statements(text);
        for (construct, instead) in MARIADB_ONLY {
            if sql.contains(construct) {
                found.push(format!("{name}: {construct} (write {instead})"));
            }
        }
    }
    assert!(found.is_empty(), "MariaDB-only SQL:\n{}", found.join("\n"));
}

#[test]
fn the_portability_check_finds_what_it_looks_for() {
    let sql = statements(
        "-- CREATE OR REPLACE in a comment is fine\n\
         CREATE OR REPLACE VIEW v AS SELECT 1;\n\
         ALTER TABLE t ADD COLUMN IF NOT EXISTS c INT, PAGE_COMPRESSED = 1;",
    );
    let hits: Vec<&str> = MARIADB_ONLY
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| sql.contains(c))
        .collect();
    assert_eq!(
        hits,
        [
            "CREATE OR REPLACE",
            "ADD COLUMN IF NOT EXISTS",
            "PAGE_COMPRESSED"
        ]
    );
    assert!(!statements("-- RETURNING only here\nSELECT 1").contains(" RETURNING "));
}

#[test]
fn json_table_columns_use_types_both_servers_accept() {
    // MySQL's JSON_TABLE takes the SQL types MariaDB's does for these
    // columns, but not MariaDB's `FOR ORDINALITY` quirks or `ON EMPTY`
    // after `ON ERROR`; the view's columns are plain `type PATH '$.x'`.
    let (_, list) = migrations()
        .into_iter()
        .find(|(name, _)| name.starts_with("0004"))
        .expect("0004_process_lists.sql");
    let sql = statements(&list);
    assert!(sql.contains("JSON_TABLE(L.PROCESSES, '$[*]' COLUMNS ("));
    assert!(!sql.contains("ON EMPTY") && !sql.contains("ON ERROR"));
    assert!(sql.contains("CHECK (JSON_VALID(PROCESSES))"));
}
