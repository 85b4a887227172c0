use std::process::Command;
use std::time::Duration;

use crate::{free_port, unique_name, wait_for_port, Child, TempDir};

/// The machine's MariaDB, as scripts/services.sh leaves it.
pub const SHARED_MYSQL: &str = "mysql://root@127.0.0.1:3306";

/// A database of its own on the shared MariaDB, dropped on drop.
pub struct TestDatabase {
    pub name: String,
    server: String,
}

impl TestDatabase {
    /// A name for a database that does not exist yet; the sink creates it.
    pub fn new(prefix: &str) -> Self {
        let server = std::env::var("VIGIA_TEST_MYSQL").unwrap_or_else(|_| SHARED_MYSQL.into());
        Self {
            name: unique_name(&format!("vigia_t_{prefix}")),
            server,
        }
    }

    /// A name for a database on another server (`mysql://user@host:port`),
    /// dropped there on drop.
    pub fn on(server: &str, prefix: &str) -> Self {
        Self {
            name: unique_name(&format!("vigia_t_{prefix}")),
            server: server.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Creates the database and brings it to the repository's schema with
    /// sqlx's migrator on `mysql/migrations`, as the sink does at start
    /// (its migrator embeds the same directory), for a test that needs the
    /// tables without a sink; a connection to it.
    pub async fn migrated(&self) -> sqlx::MySqlConnection {
        use sqlx::migrate::MigrateDatabase as _;
        use sqlx::Connection as _;
        static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../mysql/migrations");
        let url = self.url();
        sqlx::MySql::create_database(&url)
            .await
            .unwrap_or_else(|e| panic!("creating {url}: {e}"));
        let mut conn = sqlx::MySqlConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        MIGRATOR
            .run(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("migrating {url}: {e}"));
        conn
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = self.server.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime: a small one of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::MySqlConnection::connect(&url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// A private mariadbd with its own data directory, on a free port, that
/// a test may stop and restart. Runs with grant tables off: root without
/// a password, only on 127.0.0.1.
pub struct Mariadbd {
    pub port: u16,
    datadir: TempDir,
    /// The option file it runs with (`--defaults-file`); none: small
    /// settings for tests.
    config: Option<std::path::PathBuf>,
    process: Option<Child>,
}

impl Mariadbd {
    /// A server with small settings, for tests.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server with the settings in `config` (an option file such as
    /// `mysql/conf/vigia.cnf`): what a benchmark runs against.
    pub fn start_with_config(config: &std::path::Path) -> Self {
        Self::start_with(Some(config.to_owned()))
    }

    fn start_with(config: Option<std::path::PathBuf>) -> Self {
        let datadir = TempDir::new("vigia-mariadb");
        let status = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.path().display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg(format!("--user={}", current_user()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running mariadb-install-db");
        assert!(status.success(), "mariadb-install-db failed");
        let mut server = Self {
            port: free_port(),
            datadir,
            config,
            process: None,
        };
        server.restart();
        server
    }

    /// A private mariadbd with the settings vigia ships
    /// (`mysql/conf/vigia.cnf`, which docker compose gives MariaDB).
    pub fn shipped() -> Self {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../mysql/conf/vigia.cnf")
            .canonicalize()
            .expect("mysql/conf/vigia.cnf beside the testkit crate");
        Self::start_with_config(&config)
    }

    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::pid)
    }

    /// SIGKILL: an outage, not a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let dir = self.datadir.path();
        // The option-file flag must come first.
        let mut args = vec![match &self.config {
            Some(config) => format!("--defaults-file={}", config.display()),
            None => "--no-defaults".to_owned(),
        }];
        args.extend([
            format!("--datadir={}", dir.display()),
            format!("--socket={}", dir.join("mysqld.sock").display()),
            format!("--pid-file={}", dir.join("mysqld.pid").display()),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".to_owned(),
            "--skip-grant-tables".to_owned(),
            format!("--user={}", current_user()),
        ]);
        if self.config.is_none() {
            args.extend([
                "--innodb-buffer-pool-size=64M".to_owned(),
                "--innodb-log-file-size=16M".to_owned(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = dir.join("mariadbd.log");
        self.process = Some(Child::spawn_with_log("mariadbd", &args, &[], Some(&log)));
        assert!(
            wait_for_port(self.port, Duration::from_secs(60)),
            "mariadbd did not listen on 127.0.0.1:{}",
            self.port
        );
    }
}

impl Drop for Mariadbd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn current_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// Waits until InnoDB has written every changed page to its file, so that
/// the files' allocated blocks are what steady state leaves (with page
/// compression a page is compressed when it is written, not when it is
/// changed); an error if pages are still dirty after 5 minutes. The
/// server's `innodb_max_dirty_pages_pct` is 0 meanwhile, and as it was
/// after.
pub async fn flush_dirty_pages(pool: &sqlx::MySqlPool) -> Result<(), sqlx::Error> {
    let was: f64 = sqlx::query_scalar("SELECT @@GLOBAL.innodb_max_dirty_pages_pct + 0e0")
        .fetch_one(pool)
        .await?;
    sqlx::query("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        .execute(pool)
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let flushed = loop {
        let status: Result<(String, String), _> =
            sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                .fetch_one(pool)
                .await;
        match status {
            Ok((_, dirty)) if dirty != "0" => {
                if std::time::Instant::now() >= deadline {
                    break Err(sqlx::Error::Protocol(format!(
                        "{dirty} InnoDB pages still dirty after 300 s"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => break other.map(drop),
        }
    };
    sqlx::query("SET GLOBAL innodb_max_dirty_pages_pct = ?")
        .bind(was)
        .execute(pool)
        .await?;
    flushed
}
