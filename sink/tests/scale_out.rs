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

/// Every sink runs the liveness sweep; three sweeping the same hosts at
/// once mark each silent host offline exactly once, with the same
/// offline_since one sink alone would write (derived from last_seen, not
/// from when a sweep ran), and leave a live host alone.
#[tokio::test(flavor = "multi_thread")]
async fn three_sinks_sweeping_liveness_at_once_agree() {
    use vigia_schema::{CpuBody, SampleBody};
    let db = vigia_testkit::TestDatabase::new("liveness3");
    let pool = vigia_sink::store::connect(&db.url(), 2).await.unwrap();
    let writer = vigia_sink::store::Writer::new(pool.clone(), 2);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let minute_ago = now - 60_000_000_000;
    let silent: Vec<String> = (0..20).map(|i| format!("silent-{i:02}")).collect();
    let mut samples: Vec<vigia_schema::Sample> = silent
        .iter()
        .map(|h| common::sample(h, "b1", 1, minute_ago, SampleBody::Cpu(CpuBody::default())))
        .collect();
    samples.push(common::sample(
        "alive",
        "b1",
        1,
        now + 3_600_000_000_000,
        SampleBody::Cpu(CpuBody::default()),
    ));
    writer
        .write(&samples.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    let mut sweeps = Vec::new();
    for _ in 0..3 {
        let sink_pool = vigia_sink::store::connect(&db.url(), 2).await.unwrap();
        sweeps.push(tokio::spawn(async move {
            vigia_sink::liveness::sweep(&sink_pool).await
        }));
    }
    let mut marked: Vec<String> = Vec::new();
    for sweep in sweeps {
        marked.extend(sweep.await.unwrap().expect("a sweep"));
    }
    marked.sort();
    assert_eq!(
        marked, silent,
        "each silent host marked once, by one of the sinks"
    );
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT host, CAST(status AS CHAR), CAST(offline_since AS CHAR), \
         CAST(last_seen + INTERVAL 3 SECOND AS CHAR) FROM hosts ORDER BY host",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (host, status, offline_since, expected) in rows {
        if host == "alive" {
            assert_eq!((status.as_str(), offline_since), ("online", None));
        } else {
            assert_eq!(status, "offline", "{host}");
            assert_eq!(offline_since.as_deref(), Some(expected.as_str()), "{host}");
        }
    }
}
