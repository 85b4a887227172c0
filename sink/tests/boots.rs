//! Two machines on one host token are recorded as two live boots of one
//! host (`host_boots`, view `live_boots`); a publisher restarted on one
//! machine is not. Real publishers, a real sink, NATS and MariaDB.

mod common;

use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use vigia_testkit::unique_name;

/// (boot, shared) of each live boot of `host`, in boot order.
async fn live_boots(pool: &MySqlPool, host: &str) -> Vec<(String, bool)> {
    sqlx::query_as::<_, (String, bool)>(
        "SELECT boot, shared FROM live_boots WHERE host = ? ORDER BY boot",
    )
    .bind(host)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

/// Waits until `check` accepts the live boots of `host`; returns them.
async fn wait_for(
    pool: &MySqlPool,
    host: &str,
    what: &str,
    check: impl Fn(&[(String, bool)]) -> bool,
) -> Vec<(String, bool)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let boots = live_boots(pool, host).await;
        if check(&boots) {
            return boots;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: live boots of {host} after 30 s: {boots:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_machines_on_one_token_show_as_a_shared_host_until_one_says_bye() {
    let spine = common::Spine::new("boots_shared");
    let _sink = spine.sink();
    let token = unique_name("col");
    let mut x = spine.publisher(&format!("{token}.x"));
    let _y = spine.publisher(&format!("{token}.y"));
    let pool = common::pool(&spine.db.url()).await;

    let boots = wait_for(&pool, &token, "two live boots, shared", |b| {
        b.len() == 2 && b.iter().all(|(_, shared)| *shared)
    })
    .await;
    assert_ne!(boots[0].0, boots[1].0);
    // Each boot's span is its own samples': both rows hold a first and
    // last sample, and the hosts table still has a single row.
    let hosts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hosts WHERE host = ?")
        .bind(&token)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(hosts, 1);

    // x says bye: its boot ends, and the host is one machine's again.
    assert!(x.terminate(Duration::from_secs(10)).is_some());
    let boots = wait_for(&pool, &token, "one live boot, not shared", |b| {
        b.len() == 1 && !b[0].1
    })
    .await;
    let ended: Option<String> =
        sqlx::query_scalar("SELECT boot FROM host_boots WHERE host = ? AND ended IS NOT NULL")
            .bind(&token)
            .fetch_optional(&pool)
            .await
            .unwrap();
    let ended = ended.expect("x's boot ended with its bye");
    assert_ne!(ended, boots[0].0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_killed_and_restarted_on_one_machine_is_not_a_shared_host() {
    let spine = common::Spine::new("boots_restart");
    let _sink = spine.sink();
    let host = unique_name("solo");
    let mut first = spine.publisher(&host);
    let pool = common::pool(&spine.db.url()).await;
    let before = wait_for(&pool, &host, "one live boot", |b| b.len() == 1).await;
    // Killed without a bye, restarted at once: the old boot stays live for
    // its few seconds of grace while the new one starts.
    first.kill();
    let _second = spine.publisher(&host);
    let after = wait_for(&pool, &host, "the new boot live", |b| {
        b.iter().any(|(boot, _)| *boot != before[0].0)
    })
    .await;
    assert!(
        after.iter().all(|(_, shared)| !shared),
        "a restart is not a second machine: {after:?}"
    );
    // Both boots are recorded, one after the other.
    let spans: Vec<(String, chrono::NaiveDateTime, chrono::NaiveDateTime)> = sqlx::query_as(
        "SELECT boot, first_seen, last_seen FROM host_boots WHERE host = ? ORDER BY first_seen",
    )
    .bind(&host)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(spans[0].0, before[0].0);
    assert!(spans[0].2 < spans[1].1, "{spans:?}");
}
