//! A private database per test on the MariaDB at VIGIA_TEST_MYSQL
//! (default mysql://root@127.0.0.1:3306), dropped when the test ends
//! (vigia_testkit::TestDatabase), however it ends.

#![allow(dead_code)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use sqlx::migrate::MigrateDatabase;
use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::Connection;
use vigia_testkit::TestDatabase;

pub struct TestDb {
    db: TestDatabase,
}

impl TestDb {
    /// A fresh, empty database with a name unique to this process and call.
    pub async fn create(tag: &str) -> Result<Self> {
        let db = TestDatabase::new(&format!("dash_{tag}"));
        let url = db.url();
        MySql::create_database(&url)
            .await
            .with_context(|| format!("creating {url}"))?;
        Ok(Self { db })
    }

    pub fn url(&self) -> String {
        self.db.url()
    }

    /// Applies the repository's migrations in order, as the sink does at
    /// start.
    pub async fn migrate_from_files(&self) -> Result<()> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mysql/migrations");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.retain(|p| p.extension().is_some_and(|e| e == "sql"));
        files.sort();
        let mut conn = MySqlConnection::connect(&self.url()).await?;
        for f in files {
            let sql = std::fs::read_to_string(&f)?;
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .with_context(|| format!("applying {}", f.display()))?;
        }
        Ok(())
    }
}
