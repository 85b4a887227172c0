//! Connecting to MySQL and bringing its schema up to date.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{ConnectOptions, Connection};
use vigia_schema::url::redact;

/// The schema, embedded at build time from `mysql/migrations/`.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../mysql/migrations");

/// Connects to `url`, creating its database when missing (if the user
/// may), and runs the migrations. Errors name the URL, without password.
pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<MySqlPool> {
    let shown = redact(url);
    let options = MySqlConnectOptions::from_str(url)
        .with_context(|| format!("--database-url {shown}: not a MySQL URL"))?
        // Times are UTC everywhere in the schema.
        .timezone(Some(String::from("+00:00")))
        .log_statements(tracing::log::LevelFilter::Trace);
    let database = options
        .get_database()
        .map(str::to_owned)
        .with_context(|| format!("--database-url {shown}: names no database (add /vigia)"))?;
    create_database(url, &options, &database)
        .await
        .with_context(|| format!("cannot reach MySQL at {shown}"))?;
    let pool = MySqlPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot reach MySQL at {shown}"))?;
    super::migrate::migrate(&pool, &options)
        .await
        .with_context(|| format!("migrating {shown}"))?;
    Ok(pool)
}

async fn create_database(
    url: &str,
    options: &MySqlConnectOptions,
    database: &str,
) -> anyhow::Result<()> {
    // Probe: connecting with the database named also proves it exists.
    if options.connect().await.is_ok() {
        return Ok(());
    }
    let server = MySqlConnectOptions::from_str(&without_database(url))?;
    let mut conn = server.connect().await?;
    let quoted = database.replace('`', "``");
    sqlx::query(&format!(
        "CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4"
    ))
    .execute(&mut conn)
    .await
    .with_context(|| format!("creating database {database}"))?;
    conn.close().await?;
    Ok(())
}

/// The URL with its path (the database) removed, query kept.
fn without_database(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}?{q}"),
        None => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_database() {
        assert_eq!(
            without_database("mysql://u:p@h:3306/vigia?ssl-mode=disabled"),
            "mysql://u:p@h:3306?ssl-mode=disabled"
        );
        assert_eq!(without_database("mysql://h/vigia"), "mysql://h");
    }
}
