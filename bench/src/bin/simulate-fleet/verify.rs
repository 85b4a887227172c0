//! What the simulation checks: midway, every running host online and every
//! departed one offline; at the end, each host's data complete (the
//! shared `vigia_testkit::completeness` check) and its hosts row offline;
//! and the hosts-online curve the hosts table tells, against the one the
//! simulation produced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use vigia_testkit::completeness::{wait_for_complete, Expected};

use crate::fleet::{grace, Departure, Fleet, Period};

/// Checks passed and failed; each failure is printed as it is found.
#[derive(Debug, Default)]
pub struct Tally {
    pub passed: u32,
    pub failed: u32,
}

impl Tally {
    fn check(&mut self, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => {
                self.failed += 1;
                println!("FAIL {why}");
            }
        }
    }
}

/// Runs every check over a fleet that has followed its schedule, and
/// disbands it on the way.
pub async fn judge_fleet(
    pool: &MySqlPool,
    fleet: &mut Fleet,
    interval: &Period,
    procs_interval: &Period,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let grace = grace(interval);
    let like = fleet.host_like();

    // Midway: a killed host is offline once the sink has missed it for
    // the grace (it sweeps every second); running hosts are still online.
    tokio::time::sleep(grace + Duration::from_millis(2500)).await;
    let status = statuses(pool, &like).await?;
    for host in &fleet.hosts {
        let want = if host.stopped_ms.is_some() {
            "offline"
        } else {
            "online"
        };
        let got = status.get(&host.name).map_or("absent", |(s, _)| s.as_str());
        let how = host.departure.map_or("runs", Departure::as_str);
        tally.check(if got == want {
            Ok(())
        } else {
            Err(format!(
                "{}: status {got} while it {how}, want {want}",
                host.name
            ))
        });
    }

    fleet.disband();
    // Until the sink has written the last of it: every host offline.
    for _ in 0..60 {
        let online = statuses(pool, &like)
            .await?
            .values()
            .filter(|(s, _)| s == "online")
            .count();
        if online == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let status = statuses(pool, &like).await?;
    println!(
        "{:<16} {:>6} {:>5}  {:<9} {:<9} {:<9} {:<5} {:<3} status",
        "host", "lived", "left", "cpu", "ram", "procs", "hello", "bye"
    );
    // A last batch may still be in flight: the check waits up to 10 s in
    // all for the rows to come whole.
    let deadline = Instant::now() + Duration::from_secs(10);
    let periods = [interval.every, interval.every, procs_interval.every];
    for host in &fleet.hosts {
        let lived = host.stopped_ms.unwrap_or(host.started_ms) - host.started_ms;
        let lived = Duration::from_millis(u64::try_from(lived).unwrap_or(0));
        // At least half the samples its life allowed: the machine is shared
        // and a killed publisher loses what it had not sent yet. cpu and
        // ram are sampled at start, so even the shortest life has one.
        let at_least: [u64; 3] = std::array::from_fn(|i| {
            let half = (lived.as_millis() / periods[i].as_millis().max(1) / 2) as u64;
            if i < 2 {
                half.max(1)
            } else {
                half
            }
        });
        let bye = host.departure == Some(Departure::Bye);
        let expected = Expected {
            last_seq: None,
            at_least,
            bye,
        };
        let (rows, verdict) = wait_for_complete(pool, &host.name, &expected, deadline).await?;
        let mut columns = Vec::new();
        for kind in &verdict.kinds {
            columns.push(match kind {
                Ok(0) => "-".to_owned(),
                Ok(n) => format!("1..{n}"),
                Err(_) => "BAD".to_owned(),
            });
            tally.check(kind.as_ref().map(|_| ()).map_err(Clone::clone));
        }
        tally.check(verdict.events.clone());
        let hello = rows.events.iter().find(|e| e.kind == "hello");
        let hello_boot = hello.map_or("-", |e| e.boot.as_str());
        let (row_status, row_boot) = status
            .get(&host.name)
            .map_or(("absent", "-"), |(s, b)| (s.as_str(), b.as_str()));
        tally.check(if (row_status, row_boot) == ("offline", hello_boot) {
            Ok(())
        } else {
            Err(format!(
                "{}: hosts row '{row_status}:{row_boot}', want offline:{hello_boot}",
                host.name
            ))
        });
        let count = |kind: &str| rows.events.iter().filter(|e| e.kind == kind).count();
        println!(
            "{:<16} {:>5}s {:>5}  {:<9} {:<9} {:<9} {:<5} {:<3} {row_status}",
            host.name,
            lived.as_secs(),
            host.departure.map_or("-", Departure::as_str),
            columns[0],
            columns[1],
            columns[2],
            count("hello"),
            count("bye"),
        );
    }

    println!();
    println!(
        "hosts online: simulated, and as the hosts table tells it (first_seen .. offline_since)"
    );
    println!("{:>8} {:>10} {:>8}", "t (s)", "simulated", "in db");
    for &(at, simulated) in &fleet.curve {
        // Read once the sink can know: a killed host counts as online for
        // the grace.
        let probe = at + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX) + 500;
        let in_db = online_at(pool, &like, probe).await?;
        let t = (at - fleet.started_ms) as f64 / 1000.0;
        println!("{t:>8.1} {simulated:>10} {in_db:>8}");
        tally.check(if in_db == simulated as i64 {
            Ok(())
        } else {
            Err(format!(
                "at t={}s the hosts table shows {in_db} hosts online, the simulation had {simulated}",
                (at - fleet.started_ms) / 1000
            ))
        });
    }
    println!();
    Ok(tally)
}

/// host → (status, boot) of this run's hosts.
async fn statuses(
    pool: &MySqlPool,
    like: &str,
) -> Result<BTreeMap<String, (String, String)>, sqlx::Error> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT host, CAST(status AS CHAR), boot FROM hosts WHERE host LIKE ?")
            .bind(like)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(h, s, b)| (h, (s, b))).collect())
}

/// How many of this run's hosts the hosts table calls online at `at_ms`
/// (first seen by then, not yet offline).
async fn online_at(pool: &MySqlPool, like: &str, at_ms: i64) -> anyhow::Result<i64> {
    let at = chrono::DateTime::from_timestamp_millis(at_ms)
        .ok_or_else(|| anyhow::anyhow!("time {at_ms} ms out of range"))?
        .naive_utc();
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM hosts WHERE host LIKE ? AND first_seen <= ? \
         AND (offline_since IS NULL OR offline_since > ?)",
    )
    .bind(like)
    .bind(at)
    .bind(at)
    .fetch_one(pool)
    .await?)
}
