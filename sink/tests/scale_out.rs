//! Several sinks sharing the durable consumer under load: JetStream hands
//! each message to one of them, and losing one mid-batch must lose and
//! duplicate nothing (its unacknowledged messages go to the others after
//! the ack wait; the tables' unique keys make any replay a no-op).

mod common;

use std::time::Duration;

use common::{assert_complete, byes, pool, stop_all, Spine};

#[tokio::test(flavor = "multi_thread")]
async fn one_of_three_sinks_killed_mid_batch_loses_and_duplicates_nothing() {
    let spine = Spine::new("threesinks");
    let mut sinks = [spine.sink(), spine.sink(), spine.sink()];
    // Six hosts sampling every 100 ms keep every sink writing a batch at
    // almost any moment, so the kill lands in the middle of one.
    let hosts = [
        "scale-a", "scale-b", "scale-c", "scale-d", "scale-e", "scale-f",
    ];
    let mut publishers: Vec<_> = hosts.iter().map(|h| spine.publisher(h)).collect();
    let pool = pool(&spine.db.url()).await;
    // Wait until rows are being written, so each sink holds messages.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cpu_samples")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        if rows > 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing written in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    sinks[1].signal("KILL");
    sinks[1]
        .wait_for_exit(Duration::from_secs(5))
        .expect("the sink dies");
    // The two others go on alone while the publishers still publish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_all(&mut publishers);
    assert_complete(&pool, &byes(&spine.nats.url()).await, &hosts).await;
    for (i, sink) in sinks.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        assert!(
            sink.wait_for_exit(Duration::from_millis(1)).is_none(),
            "sink {i} still runs"
        );
    }
}

/// Several sinks started together on a new database: each runs the
/// migrations, one at a time, and every one comes up (sqlx's own lock
/// does not hold on MariaDB; see sink/src/store/migrate.rs).
#[tokio::test(flavor = "multi_thread")]
async fn sinks_starting_together_on_a_new_database_all_come_up() {
    let db = vigia_testkit::TestDatabase::new("together");
    let url = db.url();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { vigia_sink::store::connect(&url, 1).await })
        })
        .collect();
    for start in starts {
        let pool = start
            .await
            .expect("a start")
            .unwrap_or_else(|e| panic!("a sink failed to start: {e:#}"));
        pool.close().await;
    }
    let pool = pool(&url).await;
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../mysql/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(applied, files as i64, "every migration applied once");
}
