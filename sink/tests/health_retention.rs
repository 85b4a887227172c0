//! The pipeline's health rows (0007_pipeline_health.sql) expire with the
//! samples: retention deletes old `sink_health` and `publisher_health`
//! rows and keeps the recent ones.

mod common;

use std::time::Duration;

use chrono::Utc;
use vigia_schema::{HealthBody, SampleBody};
use vigia_sink::metrics::{Lag, Metrics};
use vigia_sink::retention::Retention;
use vigia_sink::store::{connect, Writer};
use vigia_testkit::TestDatabase;

async fn count(pool: &sqlx::MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn retention_expires_old_health_rows_like_samples() {
    let db = TestDatabase::new("health_retention");
    let pool = connect(&db.url(), 2).await.expect("connect and migrate");
    let writer = Writer::new(pool.clone(), 2);
    let now = Utc::now();
    let ten_days_ago = now - chrono::Duration::days(10);
    let health = |seq, at: chrono::DateTime<Utc>| {
        common::sample(
            "h",
            "b",
            seq,
            at.timestamp_nanos_opt().unwrap(),
            SampleBody::Health(HealthBody {
                dropped: seq,
                source: "procfs".into(),
                agent_version: "0.1.0".into(),
                ..HealthBody::default()
            }),
        )
    };
    let (old, new) = (health(1, ten_days_ago), health(2, now));
    writer.write(&[&old, &new]).await.unwrap();
    let metrics = Metrics::default();
    let lag = Some(Lag {
        pending: 0,
        ack_pending: 0,
        seconds: 0.0,
    });
    for at in [ten_days_ago, now] {
        vigia_sink::health::write_row(
            &pool,
            "sink-1",
            ten_days_ago.naive_utc(),
            at.naive_utc(),
            &metrics,
            lag,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM publisher_health").await,
        2
    );
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM sink_health").await, 2);

    vigia_sink::retention::expire(&pool, &Retention::uniform(Duration::from_secs(7 * 86_400)))
        .await
        .unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT CAST(MAX(seq) AS SIGNED) FROM publisher_health"
        )
        .await,
        2
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM publisher_health").await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM sink_health WHERE ts > UTC_TIMESTAMP() - INTERVAL 1 DAY"
        )
        .await,
        1
    );
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM sink_health").await, 1);
}
