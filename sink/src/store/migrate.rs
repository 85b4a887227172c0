//! Running the migrations when several sinks start at once.
//!
//! sqlx's migrator serialises concurrent runs with `GET_LOCK(name, -1)`
//! and ignores the result. MySQL reads a negative timeout as "wait
//! forever"; MariaDB returns NULL at once without taking the lock (seen on
//! 10.11). So two sinks starting together on a new MariaDB database both
//! apply migration 1, and one of them dies on a duplicate key in
//! `_sqlx_migrations` — exactly what a scaled-out deployment does on its
//! first start. Here a sink takes its own named lock, with a positive
//! timeout both servers honour, around the whole run: the first migrates,
//! the others wait and then find nothing left to do.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{ConnectOptions as _, Connection as _};

use super::db::MIGRATOR;

/// Longest wait for another sink's migrations (a large table's ALTER can
/// take minutes).
pub const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// Runs every pending migration on `pool`'s database (which `options`
/// reach), one sink at a time.
pub async fn migrate(pool: &MySqlPool, options: &MySqlConnectOptions) -> anyhow::Result<()> {
    // The lock is a session's: held by a connection of its own (outside
    // the pool, whose size may be one) while the migrator runs on the
    // pool, released below or when that connection closes.
    let mut lock = options.connect().await?;
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('vigia-migrate:', SHA1(DATABASE())), ?)")
            .bind(MIGRATION_LOCK_WAIT.as_secs())
            .fetch_one(&mut lock)
            .await
            .context("taking the migration lock")?;
    anyhow::ensure!(
        locked == Some(1),
        "another sink held the migration lock for {MIGRATION_LOCK_WAIT:?}"
    );
    let result = MIGRATOR.run(pool).await;
    // Released even when the migration failed, so the next sink retries.
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('vigia-migrate:', SHA1(DATABASE())))")
        .execute(&mut lock)
        .await;
    let _ = lock.close().await;
    result.map_err(anyhow::Error::from)
}
