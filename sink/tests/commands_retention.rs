//! The `commands` audit trail has a retention of its own
//! (`--commands-retention`): the samples' retention leaves it alone, and
//! its own deletes only the commands older than it.

use std::time::Duration;

use vigia_schema::stamp::unix_nanos;
use vigia_schema::{EventBody, Outcome, Sample, SampleBody};
use vigia_sink::retention::Retention;
use vigia_sink::store::{connect, Writer};
use vigia_testkit::TestDatabase;

const DAY: i64 = 86_400 * 1_000_000_000;
const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn kill(seq: u64, ts: i64) -> Sample {
    Sample::new(
        "h",
        "b",
        seq,
        ts,
        SampleBody::Event(EventBody {
            action: "kill".into(),
            pid: Some(4242),
            outcome: Outcome::Ok,
            ..EventBody::default()
        }),
    )
}

async fn seqs(pool: &sqlx::MySqlPool) -> Vec<u64> {
    sqlx::query_scalar("SELECT seq FROM commands ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn commands_outlive_the_samples_retention_and_expire_with_their_own() {
    let db = TestDatabase::new("commands_retention");
    let pool = connect(&db.url(), 2).await.expect("connect and migrate");
    let now = unix_nanos();
    let (ancient, old, new) = (
        kill(1, now - 400 * DAY),
        kill(2, now - 30 * DAY),
        kill(3, now),
    );
    Writer::new(pool.clone(), 2)
        .write(&[&ancient, &old, &new])
        .await
        .unwrap();

    vigia_sink::retention::expire(&pool, &Retention::uniform(WEEK))
        .await
        .unwrap();
    assert_eq!(seqs(&pool).await, [1, 2, 3], "the samples' retention");

    let year = Duration::from_secs(365 * 86_400);
    let deleted = vigia_sink::retention::expire_commands(&pool, year)
        .await
        .unwrap();
    assert_eq!((deleted, seqs(&pool).await), (1, vec![2, 3]));
    vigia_sink::retention::expire_commands(&pool, WEEK)
        .await
        .unwrap();
    assert_eq!(seqs(&pool).await, [3]);
}
