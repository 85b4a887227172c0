//! Real trouble through the real sink: samples published to JetStream (some
//! with chosen timestamps in the past, so minutes of history take seconds),
//! stored by vigia's sink running in this process, and each provisioned
//! alert rule evaluated on the result as Grafana would evaluate it. Every
//! rule must fire on its trouble, name what is in trouble, and be quiet
//! again once the trouble is over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use async_nats::jetstream::Context as JetStream;
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlConnection;
use vigia_dashboards::alerting::{self, Provisioning, Rule};
use vigia_dashboards::evaluate::{self, Instance};
use vigia_dashboards::runner;
use vigia_schema::subject::HEADER_MSG_ID;
use vigia_schema::{
    ByeBody, CpuBody, EventBody, HelloBody, HostToken, Outcome, ProcessEntry, ProcsBody, RamBody,
    Sample, SampleBody, Stamper,
};
use vigia_sink::config::Config;
use vigia_sink::metrics::Metrics;
use vigia_testkit::{NatsServer, TestDatabase};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// The sink as `vigia-sink` runs it, in this process so the test can stop
/// and restart it.
struct Sink {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Sink {
    fn start(nats_url: &str, db_url: &str) -> Sink {
        Self::start_with(nats_url, db_url, &[])
    }

    /// Started with `extra` flags besides the scenario's.
    fn start_with(nats_url: &str, db_url: &str, extra: &[&str]) -> Sink {
        let mut args = vec![
            "vigia-sink",
            "--nats-url",
            nats_url,
            "--database-url",
            db_url,
            "--batch-wait",
            "50ms",
            "--health-interval",
            "250ms",
            "--instance",
            "scenario-sink",
        ];
        args.extend_from_slice(extra);
        let config = <Config as clap::Parser>::parse_from(args);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(vigia_sink::run(
            config,
            Arc::new(Metrics::default()),
            async {
                let _ = stopped.await;
            },
        ));
        Sink { stop, task }
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// Samples of one publisher run, with gap-free seqs per kind.
struct Host(Stamper);

impl Host {
    fn new(name: &str, boot: &str) -> Host {
        Host(Stamper::new(HostToken::parse(name).unwrap(), boot.into()))
    }

    fn sample(&mut self, at: DateTime<Utc>, body: SampleBody) -> Sample {
        self.0.stamp_at(body, at.timestamp_nanos_opt().unwrap())
    }

    fn hello(&mut self, at: DateTime<Utc>, interval: Duration) -> Sample {
        self.sample(
            at,
            SampleBody::Hello(HelloBody {
                agent_version: "0.1.0".into(),
                source: "procfs".into(),
                cpus: 2,
                ram_total: 8 * GIB,
                interval_ms: interval.as_millis() as u64,
                procs_interval_ms: interval.as_millis() as u64,
                ..HelloBody::default()
            }),
        )
    }

    fn cpu(&mut self, at: DateTime<Utc>, busy: f32) -> Sample {
        self.sample(
            at,
            SampleBody::Cpu(CpuBody {
                busy_pct: busy,
                user_pct: busy,
                idle_pct: 100.0 - busy,
                per_cpu_busy_pct: vec![busy, busy],
                cpus: 2,
                ..CpuBody::default()
            }),
        )
    }

    fn ram(&mut self, at: DateTime<Utc>, used_pct: u64, swap_used: u64) -> Sample {
        let total = 8 * GIB;
        let used = total / 100 * used_pct;
        self.sample(
            at,
            SampleBody::Ram(RamBody {
                total,
                used,
                free: total - used,
                available: total - used,
                swap_total: 4 * GIB,
                swap_free: 4 * GIB - swap_used,
                ..RamBody::default()
            }),
        )
    }

    fn procs(&mut self, at: DateTime<Utc>, hog_cpu: f32) -> Sample {
        let process = |pid: i32, name: &str, cpu: f32| ProcessEntry {
            pid,
            ppid: 1,
            name: name.into(),
            user: "root".into(),
            state: "R".into(),
            rss: 50 * MIB,
            mem_pct: 0.6,
            cpu_pct: cpu,
            threads: 1,
            start_ts: 1_700_000_000_000_000_000,
            ..ProcessEntry::default()
        };
        self.sample(
            at,
            SampleBody::Procs(ProcsBody {
                processes: vec![
                    process(1, "init", 0.1),
                    process(4242, "miner", hog_cpu),
                    process(77, "sshd", 0.4),
                ],
            }),
        )
    }

    fn refused(&mut self, at: DateTime<Utc>) -> Sample {
        self.sample(
            at,
            SampleBody::Event(EventBody {
                action: "kill".into(),
                pid: Some(1),
                outcome: Outcome::Refused,
                error: Some("pid 1 is init; it is never signalled".into()),
                requested_by: Some("intruder".into()),
                ..EventBody::default()
            }),
        )
    }

    fn bye(&mut self, at: DateTime<Utc>) -> Sample {
        self.sample(
            at,
            SampleBody::Bye(ByeBody {
                reason: "SIGTERM".into(),
                ..ByeBody::default()
            }),
        )
    }
}

async fn publish(js: &JetStream, samples: &[Sample]) -> Result<()> {
    let mut acks = Vec::new();
    for s in samples {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, s.msg_id().as_str());
        acks.push(
            js.publish_with_headers(s.subject(), headers, s.encode().into())
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    Ok(())
}

/// Waits for the sink to create its stream.
async fn stream_created(js: &JetStream) -> Result<()> {
    until("the sink to create its stream", async || {
        Ok(js
            .get_stream(vigia_schema::subject::STREAM)
            .await
            .ok()
            .map(|_| ()))
    })
    .await
}

/// Polls `check` until it holds; the sink works in its own time.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "waited 90 s for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Rules(Provisioning);

impl Rules {
    fn get(&self, uid: &str) -> &Rule {
        self.0
            .rules
            .iter()
            .find(|r| r.uid == uid)
            .unwrap_or_else(|| panic!("no rule {uid}"))
    }
}

async fn firing(
    conn: &mut MySqlConnection,
    rule: &Rule,
    at: DateTime<Utc>,
) -> Result<Vec<Instance>> {
    evaluate::firing(conn, rule, at).await
}

/// The label sets of what fires.
async fn who(
    conn: &mut MySqlConnection,
    rule: &Rule,
    at: DateTime<Utc>,
) -> Result<Vec<BTreeMap<String, String>>> {
    Ok(firing(conn, rule, at)
        .await?
        .into_iter()
        .map(|i| i.labels)
        .collect())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn count(conn: &mut MySqlConnection, sql: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(conn).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_rule_fires_on_real_trouble_through_the_sink_and_clears_after() -> Result<()> {
    let nats = NatsServer::start();
    let db = TestDatabase::new("alert_scenario");
    // The documented defaults, as compose gives them to Grafana; the two
    // wall-clock limits shortened so the test waits seconds, not minutes.
    let mut env = alerting::compose_env(&alerting::read_env_file(&alerting::env_example())?)?;
    env.insert("VIGIA_ALERT_SINK_LAG_SECONDS".into(), "3".into());
    env.insert("VIGIA_ALERT_SINK_SILENT_SECONDS".into(), "3".into());
    let rules = Rules(alerting::load(&alerting::rules_file(), &env)?);

    let mut sink = Sink::start(&nats.url(), &db.url());
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    stream_created(&js).await?;

    // Thirty-two minutes of history, a sample every 10 s, ending now:
    // `calm` idles; `hot` is pinned (CPU 97 %, RAM 95 %, `miner` at 180 %)
    // until 8 minutes ago, then quiet; its swap grows until 16 minutes ago,
    // then holds; and someone is refused six kills 20 minutes ago.
    let now = Utc::now();
    let t = |seconds_ago: i64| now - chrono::Duration::seconds(seconds_ago);
    let mut calm = Host::new("calm", "c0");
    let mut hot = Host::new("hot", "h0");
    // A 10-minute interval: history in the past does not make them offline.
    let mut batch = vec![
        calm.hello(t(32 * 60 + 5), Duration::from_secs(600)),
        hot.hello(t(32 * 60 + 5), Duration::from_secs(600)),
    ];
    for step in (0..=32 * 6).rev() {
        let at = t(step * 10);
        let pinned = step * 10 > 8 * 60;
        let swap_minutes = (32 * 60 - (step * 10).max(16 * 60)) as u64 / 60;
        batch.push(calm.cpu(at, 12.0));
        batch.push(calm.ram(at, 30, 0));
        batch.push(calm.procs(at, 1.0));
        batch.push(hot.cpu(at, if pinned { 97.0 } else { 20.0 }));
        batch.push(hot.ram(at, if pinned { 95 } else { 40 }, swap_minutes * 40 * MIB));
        batch.push(hot.procs(at, if pinned { 180.0 } else { 2.0 }));
    }
    for i in 0..6 {
        batch.push(hot.refused(t(20 * 60 - i * 10)));
    }
    publish(&js, &batch).await?;

    // A host that will go silent, one that leaves cleanly, and one that
    // keeps publishing fresh samples the whole test (the fleet goes on).
    let mut quiet = Host::new("quiet", "q0");
    let mut leaver = Host::new("leaver", "l0");
    let mut live = Host::new("live", "v0");
    let fast = Duration::from_millis(200);
    publish(
        &js,
        &[
            quiet.hello(Utc::now(), fast),
            quiet.cpu(Utc::now(), 5.0),
            leaver.hello(Utc::now(), fast),
            leaver.cpu(Utc::now(), 5.0),
            live.hello(Utc::now(), Duration::from_secs(1)),
        ],
    )
    .await?;
    publish(&js, &[leaver.bye(Utc::now())]).await?;
    let live_js = js.clone();
    let ticker = tokio::spawn(async move {
        loop {
            let sample = live.cpu(Utc::now(), 3.0);
            // NATS answers throughout; the sink may be stopped.
            if publish(&live_js, &[sample]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let mut conn = runner::connect(&db.url()).await?;
    let expected_cpu = (32 * 6 + 1) as i64;
    until("the history to be stored", async || {
        let n = count(
            &mut conn,
            "SELECT COUNT(*) FROM cpu_samples WHERE host = 'hot'",
        )
        .await?;
        let e = count(&mut conn, "SELECT COUNT(*) FROM commands").await?;
        Ok((n == expected_cpu && e == 6).then_some(()))
    })
    .await?;

    // CPU, RAM, the hog and the refused kills: true at the end of the
    // trouble, false now that it is over; `calm` never.
    let hot_only = vec![labels(&[("host", "hot")])];
    let ended = t(8 * 60);
    for uid in ["vigia-cpu-busy", "vigia-ram-used"] {
        assert_eq!(
            who(&mut conn, rules.get(uid), ended).await?,
            hot_only,
            "{uid}"
        );
        assert_eq!(
            who(&mut conn, rules.get(uid), now).await?,
            [],
            "{uid} after"
        );
    }
    let hog = firing(&mut conn, rules.get("vigia-process-hog"), ended).await?;
    assert_eq!(hog.len(), 1, "{hog:?}");
    assert_eq!(
        hog[0].labels,
        labels(&[("host", "hot"), ("pid", "4242"), ("process", "miner")])
    );
    assert!((hog[0].value - 180.0).abs() < 0.01, "{}", hog[0].value);
    assert_eq!(
        who(&mut conn, rules.get("vigia-process-hog"), now).await?,
        []
    );
    let swap = firing(&mut conn, rules.get("vigia-swap-growing"), t(16 * 60)).await?;
    assert_eq!(swap.len(), 1, "{swap:?}");
    assert_eq!(swap[0].labels, labels(&[("host", "hot")]));
    assert!(swap[0].value > 400.0, "grew {} MiB", swap[0].value);
    assert_eq!(
        who(&mut conn, rules.get("vigia-swap-growing"), now).await?,
        []
    );
    let refused = firing(&mut conn, rules.get("vigia-kills-refused"), t(19 * 60)).await?;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].labels.clone(), refused[0].value),
        (labels(&[("host", "hot")]), 6.0)
    );
    assert_eq!(
        who(&mut conn, rules.get("vigia-kills-refused"), now).await?,
        []
    );

    // A host goes silent: offline, by name; the one that said bye is not
    // an alert. It comes back: the alert clears.
    let offline = rules.get("vigia-host-offline");
    let gone = until("quiet to be marked offline", async || {
        let f = who(&mut conn, offline, Utc::now()).await?;
        Ok((!f.is_empty()).then_some(f))
    })
    .await?;
    assert_eq!(gone, [labels(&[("host", "quiet")])]);
    let left: String =
        sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM hosts WHERE host = 'leaver'")
            .fetch_one(&mut conn)
            .await?;
    assert_eq!(left, "offline", "the leaver is offline, and no alert");
    publish(&js, &[quiet.cpu(Utc::now(), 5.0)]).await?;
    until("quiet to be back", async || {
        Ok(who(&mut conn, offline, Utc::now())
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;

    // A poison message: dead-lettered, counted in sink_health, alerted by
    // sink; five minutes of nothing new later, quiet again.
    let dead = rules.get("vigia-dead-letters");
    assert_eq!(who(&mut conn, dead, Utc::now()).await?, []);
    js.publish("telemetry.hot.cpu", b"\x93 not a sample"[..].into())
        .await?
        .await?;
    let poisoned = until("the dead letter alert", async || {
        let f = firing(&mut conn, dead, Utc::now()).await?;
        Ok((!f.is_empty()).then_some(f))
    })
    .await?;
    assert_eq!(poisoned.len(), 1);
    assert_eq!(poisoned[0].labels, labels(&[("sink", "scenario-sink")]));
    assert_eq!(poisoned[0].value, 1.0);
    let later = Utc::now() + chrono::Duration::minutes(6);
    assert_eq!(who(&mut conn, dead, later).await?, []);

    // The sink stops while publishers go on: it falls behind and stops
    // reporting. Started again, it catches up and both clear.
    let lag = rules.get("vigia-sink-lag");
    let silent = rules.get("vigia-sink-silent");
    assert_eq!(who(&mut conn, lag, Utc::now()).await?, []);
    assert_eq!(who(&mut conn, silent, Utc::now()).await?, []);
    sink.stop().await?;
    let behind = until("the lag alert", async || {
        let f = firing(&mut conn, lag, Utc::now()).await?;
        Ok((!f.is_empty()).then_some(f))
    })
    .await?;
    assert!(
        behind[0].value > 3.0 && behind[0].labels.is_empty(),
        "{behind:?}"
    );
    until("the silent-sink alert", async || {
        Ok((!who(&mut conn, silent, Utc::now()).await?.is_empty()).then_some(()))
    })
    .await?;
    sink = Sink::start(&nats.url(), &db.url());
    until("the lag and silent-sink alerts to clear", async || {
        let clear = who(&mut conn, lag, Utc::now()).await?.is_empty()
            && who(&mut conn, silent, Utc::now()).await?.is_empty();
        Ok(clear.then_some(()))
    })
    .await?;

    ticker.abort();
    sink.stop().await.context("the sink stops cleanly")?;
    Ok(())
}

/// A sink outage longer than the stream holds: the stream drops the oldest
/// telemetry unread, the sink counts it when it is back, and the rule says
/// so; an hour without new losses later, it is quiet.
#[tokio::test(flavor = "multi_thread")]
async fn telemetry_the_stream_dropped_unread_fires_its_rule_and_clears_after() -> Result<()> {
    let nats = NatsServer::start();
    let db = TestDatabase::new("alert_discards");
    let env = alerting::compose_env(&alerting::read_env_file(&alerting::env_example())?)?;
    let rules = Rules(alerting::load(&alerting::rules_file(), &env)?);
    let rule = rules.get("vigia-stream-discarded");
    // A 1 MiB stream, the smallest --stream-max-bytes takes.
    let small = ["--stream-max-bytes", "1048576"];
    let sink = Sink::start_with(&nats.url(), &db.url(), &small);
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    stream_created(&js).await?;
    let mut conn = runner::connect(&db.url()).await?;
    let mut host = Host::new("lossy", "l0");
    let now = Utc::now();
    publish(
        &js,
        &[host.hello(now, Duration::from_secs(60)), host.cpu(now, 5.0)],
    )
    .await?;
    until("the first samples and a health row", async || {
        let stored = count(&mut conn, "SELECT COUNT(*) FROM cpu_samples").await? == 1
            && count(&mut conn, "SELECT COUNT(*) FROM sink_health").await? > 0;
        Ok(stored.then_some(()))
    })
    .await?;
    assert_eq!(who(&mut conn, rule, Utc::now()).await?, []);
    sink.stop().await?;

    // About 3 MiB of process lists while no sink runs.
    let processes: Vec<ProcessEntry> = (1..=300)
        .map(|pid| ProcessEntry {
            pid,
            name: format!("worker-{pid}"),
            user: "someone".into(),
            ..ProcessEntry::default()
        })
        .collect();
    let lists: Vec<Sample> = (0..150)
        .map(|i| {
            host.sample(
                now + chrono::Duration::seconds(i),
                SampleBody::Procs(ProcsBody {
                    processes: processes.clone(),
                }),
            )
        })
        .collect();
    publish(&js, &lists).await?;

    let sink = Sink::start_with(&nats.url(), &db.url(), &small);
    let lost = until("the rule to fire", async || {
        let f = firing(&mut conn, rule, Utc::now()).await?;
        Ok((!f.is_empty()).then_some(f))
    })
    .await?;
    assert_eq!(lost.len(), 1);
    assert!(lost[0].labels.is_empty(), "{lost:?}");
    assert!(lost[0].value >= 50.0, "most of 150 lists lost: {lost:?}");
    let later = Utc::now() + chrono::Duration::minutes(61);
    assert_eq!(who(&mut conn, rule, later).await?, []);
    sink.stop().await?;
    Ok(())
}
