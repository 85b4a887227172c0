//! A scratch MariaDB database per test, dropped on drop.

use sqlx::{Connection as _, Executor as _};

/// The server the tests use: MariaDB on loopback as root, no password
/// (scripts/services.sh sets it up). `VIGIA_TEST_MYSQL` overrides it.
pub fn server_url() -> String {
    std::env::var("VIGIA_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub struct TempDatabase {
    pub name: String,
    pub url: String,
}

impl TempDatabase {
    /// Creates an empty database named after `prefix`.
    pub async fn create(prefix: &str) -> TempDatabase {
        let name = crate::unique(prefix).replace('-', "_");
        let mut conn = sqlx::MySqlConnection::connect(&server_url())
            .await
            .expect("connecting to MariaDB (scripts/services.sh starts it)");
        conn.execute(format!("CREATE DATABASE `{name}`").as_str())
            .await
            .expect("creating a test database");
        let _ = conn.close().await;
        TempDatabase {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }

    pub async fn connect(&self) -> sqlx::MySqlConnection {
        sqlx::MySqlConnection::connect(&self.url)
            .await
            .expect("connecting to the test database")
    }

    /// Runs every statement of a migration file.
    pub async fn apply(&self, sql: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("applying a migration");
        let _ = conn.close().await;
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Drop runs outside any runtime guarantee; a thread with its own
        // small runtime does the async work.
        let url = server_url();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::MySqlConnection::connect(&url).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str())
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}
