//! Narrowing is cheap per refused sample (issue 11's review, defect a).
//!
//! Each sample MySQL refused on its own was tried three times, with pauses
//! of 200 and 400 ms of its own, one sample after another: 400 refused
//! samples from one hostile client stalled every other host's storage for
//! about 247 s. Now a sample that fails alone with an error MySQL does not
//! call passing is dead-lettered at once, and a batch pauses at most once
//! per round, whatever it holds.

mod common;

use std::time::{Duration, Instant};

use common::inproc::{now_ns, CommitGaps, DeadLetters, InProcessSink};
use vigia_schema::{HealthBody, Sample, SampleBody};
use vigia_testkit::{NatsServer, TestDatabase};

const LIVE: &str = "rf-live";
/// Samples MySQL refuses, sent beside the live publisher.
const REFUSED: usize = 400;

/// A health sample whose agent_version a latin1 column cannot hold: MariaDB
/// refuses it with 1366 (Incorrect string value), which no classifier sees.
fn refused(i: usize) -> Sample {
    common::sample(
        &format!("rf-x{}", i % 5),
        "hostile",
        i as u64 + 1,
        now_ns(),
        SampleBody::Health(HealthBody {
            source: "procfs".into(),
            agent_version: format!("版本-{i}"),
            ..HealthBody::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_samples_mysql_refuses_one_by_one_are_dead_lettered_while_a_live_host_stays_complete(
) {
    let nats = NatsServer::start();
    let db = TestDatabase::new("refused_flood");
    let pool = vigia_sink::store::connect(&db.url(), 2).await.unwrap();
    // An operator's latin1 column: a refusal MySQL makes, sample by sample.
    sqlx::query(
        "ALTER TABLE publisher_health \
         MODIFY agent_version VARCHAR(64) CHARACTER SET latin1 NOT NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    let sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(200)).await;
    let dead = DeadLetters::collect(&nats.url()).await;
    let gaps = CommitGaps::watch(sink.metrics.clone());
    let mut live = vec![common::publisher(&nats.url(), LIVE)];

    // In bursts, so that batches hold refused samples beside live ones.
    let started = Instant::now();
    for i in 0..REFUSED {
        sink.send(&refused(i)).await;
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let sent_in = started.elapsed();
    common::stop_all(&mut live);

    // Every refused sample dead-lettered, with MySQL's reason, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let letters = loop {
        let letters = dead.received();
        if letters.len() >= REFUSED {
            break letters;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {REFUSED} refused samples dead-lettered 60 s after the last was sent",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut seqs: Vec<u64> = letters
        .iter()
        .map(|letter| {
            assert!(
                letter
                    .reason
                    .starts_with("MySQL rejected it: publisher_health: ")
                    && letter.reason.contains("1366"),
                "{}",
                letter.reason
            );
            let sample = Sample::decode(&letter.payload).unwrap();
            assert_eq!(
                letter.subject,
                format!("deadletter.telemetry.{}.health", sample.host)
            );
            let sent = refused(sample.seq as usize - 1);
            assert_eq!(
                (&sample.host, &sample.boot, &sample.body),
                (&sent.host, &sent.boot, &sent.body),
                "the payload as sent"
            );
            sample.seq
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=REFUSED as u64).collect::<Vec<_>>());

    let last = common::byes_of(&nats.url(), &[LIVE]).await;
    common::assert_complete(&pool, &last, &[LIVE]).await;
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM publisher_health WHERE boot = 'hostile'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "no refused sample stored");
    let longest = gaps.longest().await;
    assert_eq!(sink.metrics.snapshot().dead_lettered, REFUSED as u64);
    sink.stop().await;
    println!(
        "{REFUSED} samples MySQL refuses, sent in {:.1} s beside a live publisher: all \
         dead-lettered; longest time between two commits: {} ms",
        sent_in.as_secs_f64(),
        longest.as_millis()
    );
}
