//! Publishers report their own health: a real publisher's `health`
//! samples reach `publisher_health` through the real sink, and an outage
//! of NATS shows in them as reconnects and a backlog in the outbox.

mod common;

use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use vigia_testkit::{binary, Child};

#[derive(Debug, sqlx::FromRow)]
struct Health {
    reconnects: u64,
    outbox_depth: u64,
    dropped: u64,
    source: String,
    agent_version: String,
}

async fn rows(pool: &MySqlPool) -> Vec<Health> {
    sqlx::query_as(
        "SELECT reconnects, outbox_depth, dropped, source, agent_version \
         FROM publisher_health WHERE host = 'ph-a' ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

async fn until(what: &str, pool: &MySqlPool, check: impl Fn(&[Health]) -> bool) -> Vec<Health> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = rows(pool).await;
        if check(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "waited 90 s for {what}: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn publisher_health_reaches_mysql_and_counts_a_nats_outage() {
    let mut spine = common::Spine::new("publisher_health");
    let _sink = spine.sink();
    let nats_url = spine.nats.url();
    let _publisher = Child::spawn(
        binary("vigia-publisher"),
        &[
            "--nats-url",
            &nats_url,
            "--host",
            "ph-a",
            "--interval",
            "100ms",
            "--procs-interval",
            "500ms",
            "--health-interval",
            "200ms",
        ],
        &[("RUST_LOG", "info")],
    );
    let pool = common::pool(&spine.db.url()).await;
    let before = until("two health rows", &pool, |r| r.len() >= 2).await;
    for h in &before {
        assert!(h.source == "procfs" || h.source == "module", "{h:?}");
        assert_eq!(h.agent_version, env!("CARGO_PKG_VERSION"));
        assert_eq!((h.reconnects, h.dropped), (0, 0), "{h:?}");
    }

    // NATS goes away for a while: samples queue in the outbox; once it is
    // back, the health taken meanwhile says so, and the reconnect counts.
    spine.nats.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    spine.nats.restart();
    let after = until("a reconnect in the health rows", &pool, |r| {
        r.iter().any(|h| h.reconnects >= 1)
    })
    .await;
    assert!(
        after.iter().any(|h| h.outbox_depth > 0),
        "a health sample taken during the outage shows the backlog: {after:?}"
    );
    let dashboards: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM hosts WHERE host = 'ph-a' AND status = 'online'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(dashboards, 1, "health samples keep the host's row current");
}
