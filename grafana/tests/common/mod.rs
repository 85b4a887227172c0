//! A private database per test on the MariaDB at VIGIA_TEST_MYSQL
//! (default mysql://root@127.0.0.1:3306), dropped when the test ends.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use sqlx::mysql::MySqlConnection;
use sqlx::Connection;

pub fn server_url() -> String {
    std::env::var("VIGIA_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A fresh, empty database with a name unique to this process and call.
    pub async fn create(tag: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vigia_dash_{tag}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = MySqlConnection::connect(&server_url())
            .await
            .with_context(|| format!("connecting to {}", server_url()))?;
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"
        ))
        .execute(&mut admin)
        .await?;
        Ok(Self {
            url: format!("{}/{name}", server_url()),
            name,
        })
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
        let mut conn = MySqlConnection::connect(&self.url).await?;
        for f in files {
            let sql = std::fs::read_to_string(&f)?;
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .with_context(|| format!("applying {}", f.display()))?;
        }
        Ok(())
    }

    pub async fn drop(self) -> Result<()> {
        let mut admin = MySqlConnection::connect(&server_url()).await?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .execute(&mut admin)
            .await?;
        Ok(())
    }
}
