//! The hostile stream (issue 11): three real publishers run while another
//! client sends, interleaved, every kind of bad message there is: huge
//! values, process lists near max_payload, extreme and old timestamps,
//! over-long strings and arrays, garbage, wrong MessagePack types, a value
//! MySQL itself refuses, and valid samples mutated at random (huge and
//! negative numbers, empty and over-long strings and arrays, inside valid
//! MessagePack types).
//!
//! At the end every real host holds exactly seq 1..last_seq of each kind
//! (from its bye), every hostile message is either stored exactly as sent
//! or dead-lettered with a reason (never both, never neither), and the
//! longest time between two commits while it ran is printed.

mod common;

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use common::inproc::{now_ns, CommitGaps, DeadLetters, InProcessSink};
use sqlx::{MySqlPool, Row};
use vigia_schema::{
    ByeBody, CpuBody, HealthBody, HelloBody, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody,
};
use vigia_testkit::{NatsServer, TestDatabase};

const REAL_HOSTS: [&str; 3] = ["hs-a", "hs-b", "hs-c"];
/// Hostile messages sent, one every [`GAP`].
const HOSTILE: usize = 300;
const GAP: Duration = Duration::from_millis(30);
/// The test nats-server's max_payload (its default).
const MAX_PAYLOAD: usize = 1 << 20;
/// ram total the database refuses with MariaDB's 1690 (a trigger): a
/// refusal no classifier sees.
const REFUSED_TOTAL: u64 = 424_242;
const DAY: i64 = 86_400 * 1_000_000_000;

/// xorshift64*: the same hostile stream on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Clone>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize].clone()
    }

    fn u64(&mut self) -> u64 {
        let r = self.next();
        self.pick(&[
            0,
            1,
            r % 1000,
            1 << 30,
            1 << 50,
            (1 << 50) + 1,
            1 << 63,
            u64::MAX,
            r,
        ])
    }

    fn u32(&mut self) -> u32 {
        let r = self.next() as u32;
        self.pick(&[0, 1, 64, 4_096, 4_097, u32::MAX, r])
    }

    fn f32(&mut self) -> f32 {
        let r = (self.next() % 10_000) as f32 / 100.0;
        self.pick(&[
            0.0,
            50.0,
            100.0,
            100.9,
            101.5,
            -0.5,
            -1e9,
            1e30,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            r,
        ])
    }

    fn text(&mut self) -> String {
        let len = self.below(300) as usize;
        let random: String = (0..len)
            .map(|_| char::from(b' ' + self.below(95) as u8))
            .collect();
        self.pick(&[
            String::new(),
            "x".into(),
            "y".repeat(65),
            "z".repeat(10_000),
            "a\n2026-12-02T00:00:00Z ERROR vigia_sink: forged\u{1b}[2J".into(),
            "evil\u{202e}gpj.sh".into(),
            "é".repeat(40),
            random,
        ])
    }

    fn ts(&mut self, now: i64) -> i64 {
        let r = self.below(3_600) as i64 * 1_000_000_000;
        self.pick(&[
            now,
            now - r,
            now + 60_000_000_000,
            now + 3_600_000_000_000,
            now - 8 * DAY,
            0,
            -2_208_988_800_000_000_000, // 1900
            i64::MIN,
            i64::MAX,
        ])
    }
}

fn process(pid: i32, now: i64) -> ProcessEntry {
    ProcessEntry {
        pid,
        ppid: 1,
        name: "worker".into(),
        uid: 33,
        user: "www-data".into(),
        state: "S".into(),
        rss: 1 << 20,
        mem_pct: 0.5,
        cpu_pct: 1.5,
        threads: 4,
        start_ts: now - DAY,
    }
}

/// A valid sample of `kind` (0..6), which [`mutate`] then spoils or not.
fn valid(kind: u64, now: i64) -> SampleBody {
    match kind {
        0 => SampleBody::Cpu(CpuBody {
            busy_pct: 12.5,
            user_pct: 10.0,
            system_pct: 2.5,
            idle_pct: 87.5,
            per_cpu_busy_pct: vec![10.0, 15.0],
            load1: 0.5,
            load5: 0.4,
            load15: 0.3,
            cpus: 2,
            ..CpuBody::default()
        }),
        1 => SampleBody::Ram(RamBody {
            total: 8 << 30,
            used: 2 << 30,
            free: 1 << 30,
            available: 6 << 30,
            buffers: 1 << 20,
            cached: 3 << 30,
            swap_total: 1 << 30,
            swap_free: 1 << 29,
        }),
        2 => SampleBody::Procs(ProcsBody {
            processes: (1..=20).map(|pid| process(pid, now)).collect(),
        }),
        3 => SampleBody::Hello(HelloBody {
            agent_version: "0.1.0".into(),
            kernel: "6.1.0".into(),
            os: "Debian GNU/Linux 12".into(),
            cpus: 2,
            ram_total: 8 << 30,
            boot_time: now - DAY,
            source: "procfs".into(),
            interval_ms: 1000,
            procs_interval_ms: 5000,
        }),
        4 => SampleBody::Bye(ByeBody {
            reason: "SIGTERM".into(),
            dropped: 0,
            last_seq: [("cpu".to_owned(), 3)].into(),
        }),
        _ => SampleBody::Health(HealthBody {
            dropped: 3,
            outbox_depth: 10,
            reconnects: 1,
            source: "procfs".into(),
            agent_version: "0.1.0".into(),
        }),
    }
}

/// Changes one to three fields of `body` to arbitrary values of their type.
fn mutate(body: &mut SampleBody, rng: &mut Rng, now: i64) {
    for _ in 0..=rng.below(3) {
        match body {
            SampleBody::Cpu(c) => match rng.below(6) {
                0 => c.busy_pct = rng.f32(),
                1 => c.load1 = rng.f32(),
                2 => c.cpus = rng.u32(),
                3 => {
                    let len = rng.pick(&[0usize, 1, 4_096, 4_097, 20_000]);
                    c.per_cpu_busy_pct = vec![rng.f32(); len];
                }
                4 => c.idle_pct = rng.f32(),
                _ => c.per_cpu_busy_pct.push(rng.f32()),
            },
            SampleBody::Ram(r) => match rng.below(5) {
                0 => r.total = rng.u64(),
                1 => r.used = rng.u64(),
                2 => r.swap_free = rng.u64(),
                3 => r.cached = rng.u64(),
                _ => {
                    r.total = rng.u64();
                    r.used = r.total / 2;
                }
            },
            SampleBody::Procs(p) => match rng.below(6) {
                0 => p.processes.clear(),
                1 => {
                    let n = rng.pick(&[10_001usize, 12_000]);
                    p.processes = (1..=n as i32).map(|pid| process(pid, now)).collect();
                }
                2 => {
                    let i = rng.below(p.processes.len().max(1) as u64) as usize;
                    if let Some(e) = p.processes.get_mut(i) {
                        e.name = rng.text();
                        e.user = rng.text();
                    }
                }
                3 => {
                    if let Some(e) = p.processes.first_mut() {
                        e.cpu_pct = rng.f32();
                        e.rss = rng.u64();
                        e.pid = rng.pick(&[-1, 0, i32::MAX, i32::MIN]);
                    }
                }
                4 => {
                    if let Some(e) = p.processes.last_mut() {
                        e.start_ts = rng.ts(now);
                        e.mem_pct = rng.f32();
                    }
                }
                _ => {
                    if let Some(e) = p.processes.first_mut() {
                        e.state = rng.text();
                        e.threads = rng.u32();
                    }
                }
            },
            SampleBody::Hello(h) => match rng.below(5) {
                0 => h.os = rng.text(),
                1 => h.kernel = rng.text(),
                2 => h.cpus = rng.u32(),
                3 => h.interval_ms = rng.u64(),
                _ => h.source = rng.text(),
            },
            SampleBody::Bye(b) => match rng.below(3) {
                0 => b.reason = rng.text(),
                1 => b.dropped = rng.u64(),
                _ => {
                    for k in 0..rng.pick(&[1usize, 17, 100]) {
                        b.last_seq.insert(format!("{}{k}", rng.text()), rng.u64());
                    }
                }
            },
            SampleBody::Health(h) => match rng.below(4) {
                0 => h.source = rng.text(),
                1 => h.agent_version = rng.text(),
                2 => h.dropped = rng.u64(),
                _ => h.outbox_depth = rng.u64(),
            },
            SampleBody::Event(_) => {}
        }
    }
}

/// The largest process list under max_payload: 64-byte names and users.
fn near_max_payload(host: &str, boot: &str, seq: u64, now: i64) -> Sample {
    let mut n = 6_000;
    loop {
        let processes = (1..=n)
            .map(|pid| ProcessEntry {
                name: format!("{pid:0>64}"),
                user: "u".repeat(64),
                ..process(pid, now)
            })
            .collect();
        let s = common::sample(
            host,
            boot,
            seq,
            now,
            SampleBody::Procs(ProcsBody { processes }),
        );
        if s.encode().len() < MAX_PAYLOAD - 4_096 {
            return s;
        }
        n -= 250;
    }
}

/// Wrong types inside valid MessagePack, and bytes that are none.
fn garbage(rng: &mut Rng, host: &str, seq: u64) -> Vec<u8> {
    let value = |v: rmpv::Value| {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).unwrap();
        out
    };
    let map = |seq: rmpv::Value, body: rmpv::Value| {
        rmpv::Value::Map(vec![
            ("v".into(), 1.into()),
            ("host".into(), host.into()),
            ("boot".into(), "hostile".into()),
            ("kind".into(), "ram".into()),
            ("seq".into(), seq),
            ("ts".into(), now_ns().into()),
            ("body".into(), body),
        ])
    };
    match rng.below(5) {
        0 => b"\x93not msgpack at all".to_vec(),
        1 => value(map("three".into(), rmpv::Value::Map(vec![]))),
        2 => value(map(
            seq.into(),
            rmpv::Value::Map(vec![("total".into(), (-5).into())]),
        )),
        3 => value(map(
            seq.into(),
            rmpv::Value::Map(vec![(
                "total".into(),
                rmpv::Value::Array(vec![1.into(); 500]),
            )]),
        )),
        _ => value(rmpv::Value::Array(vec!["x".into(); 1000])),
    }
}

/// One hostile message as sent.
struct Sent {
    subject: String,
    payload: Vec<u8>,
}

fn hostile(i: usize, rng: &mut Rng) -> Sent {
    let now = now_ns();
    let host = format!("hx-{}", i % 7);
    let boot = format!("hostile-{i}");
    let seq = i as u64 + 1;
    let sample = |body: SampleBody| common::sample(&host, &boot, seq, now, body);
    let mut sample = match i % 10 {
        // A valid sample, spoilt at random (or not).
        0..=3 => {
            let mut body = valid(rng.below(6), now);
            mutate(&mut body, rng, now);
            sample(body)
        }
        4 => {
            let mut s = sample(valid(rng.below(6), now));
            s.ts = rng.ts(now);
            s
        }
        5 => match rng.below(3) {
            0 => sample(SampleBody::Ram(RamBody {
                total: u64::MAX,
                used: 1 << 63,
                ..RamBody::default()
            })),
            1 => near_max_payload(&host, &boot, seq, now),
            _ => sample(SampleBody::Ram(RamBody {
                total: REFUSED_TOTAL,
                used: 1_000,
                ..RamBody::default()
            })),
        },
        6 => {
            let mut s = sample(valid(rng.below(6), now));
            match rng.below(4) {
                0 => s.boot = rng.pick(&[String::new(), "b".repeat(65), "bad boot".into()]),
                1 => s.seq = 0,
                2 => s.host = rng.pick(&["HX".to_owned(), "x".repeat(65)]),
                _ => s.v = 99,
            }
            s
        }
        7 => {
            return Sent {
                subject: format!("telemetry.{host}.ram"),
                payload: garbage(rng, &host, seq),
            };
        }
        8 => {
            // The subject disagrees with the payload.
            let s = sample(valid(1, now));
            return Sent {
                subject: format!("telemetry.{host}.cpu"),
                payload: s.encode(),
            };
        }
        _ => sample(valid(rng.below(6), now)),
    };
    if sample.host.is_empty() {
        sample.host = host.clone();
    }
    if sample.encode().len() > MAX_PAYLOAD - 4_096 {
        // What NATS would refuse never reaches the sink: the largest list
        // it takes instead.
        sample = near_max_payload(&host, &boot, seq, now);
    }
    // Subjects take the host as a token; the payload keeps what it says.
    Sent {
        subject: format!("telemetry.{host}.{}", sample.kind()),
        payload: sample.encode(),
    }
}

fn datetime(ns: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_nanos(ns / 1_000 * 1_000).naive_utc()
}

/// Whether MySQL holds `sample` exactly as sent (its table's columns).
async fn stored_as_sent(pool: &MySqlPool, sample: &Sample) -> bool {
    let (table, kind) = match &sample.body {
        SampleBody::Cpu(_) => ("cpu_samples", None),
        SampleBody::Ram(_) => ("ram_samples", None),
        SampleBody::Procs(_) => ("procs_snapshots", None),
        SampleBody::Hello(_) => ("host_events", Some("hello")),
        SampleBody::Bye(_) => ("host_events", Some("bye")),
        SampleBody::Event(_) => ("commands", None),
        SampleBody::Health(_) => ("publisher_health", None),
    };
    let sql = format!(
        "SELECT * FROM {table} WHERE host = ? AND boot = ? AND seq = ?{}",
        if kind.is_some() { " AND kind = ?" } else { "" }
    );
    let mut query = sqlx::query(&sql)
        .bind(&sample.host)
        .bind(&sample.boot)
        .bind(sample.seq);
    if let Some(kind) = kind {
        query = query.bind(kind);
    }
    let Some(row) = query.fetch_optional(pool).await.unwrap() else {
        return false;
    };
    let ts: NaiveDateTime = row.get("ts");
    assert_eq!(ts, datetime(sample.ts), "{table} ts of {sample:?}");
    match &sample.body {
        SampleBody::Cpu(c) => {
            let per_cpu: Vec<f32> =
                serde_json::from_str(row.get::<&str, _>("per_cpu_busy_pct")).unwrap();
            let got = (
                row.get::<f32, _>("busy_pct"),
                row.get::<f32, _>("idle_pct"),
                row.get::<f32, _>("load1"),
                row.get::<u32, _>("cpus"),
                per_cpu,
            );
            assert_eq!(
                got,
                (
                    c.busy_pct,
                    c.idle_pct,
                    c.load1,
                    c.cpus,
                    c.per_cpu_busy_pct.clone()
                ),
                "cpu stored as sent"
            );
        }
        SampleBody::Ram(r) => {
            let got: Vec<u64> = [
                "total",
                "used",
                "free",
                "available",
                "buffers",
                "cached",
                "swap_total",
                "swap_free",
            ]
            .iter()
            .map(|c| row.get::<u64, _>(*c))
            .collect();
            let sent = vec![
                r.total,
                r.used,
                r.free,
                r.available,
                r.buffers,
                r.cached,
                r.swap_total,
                r.swap_free,
            ];
            assert_eq!(got, sent, "ram stored as sent");
        }
        SampleBody::Procs(p) => {
            assert_eq!(
                row.get::<u32, _>("processes") as usize,
                p.processes.len(),
                "procs stored as sent"
            );
        }
        SampleBody::Health(h) => {
            let got = (
                row.get::<u64, _>("dropped"),
                row.get::<u64, _>("outbox_depth"),
                row.get::<u64, _>("reconnects"),
                row.get::<String, _>("source"),
                row.get::<String, _>("agent_version"),
            );
            let sent = (
                h.dropped,
                h.outbox_depth,
                h.reconnects,
                h.source.clone(),
                h.agent_version.clone(),
            );
            assert_eq!(got, sent, "health stored as sent");
        }
        _ => {}
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_stream_stalls_nothing_and_loses_nothing() {
    let nats = NatsServer::start();
    let db = TestDatabase::new("hostile");
    let pool = vigia_sink::store::connect(&db.url(), 2).await.unwrap();
    sqlx::query(&format!(
        "CREATE TRIGGER refuse_ram BEFORE INSERT ON ram_samples FOR EACH ROW \
         IF NEW.total = {REFUSED_TOTAL} THEN SIGNAL SQLSTATE '22003' SET MYSQL_ERRNO = 1690, \
         MESSAGE_TEXT = 'BIGINT UNSIGNED value is out of range'; END IF"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let sink = InProcessSink::start(&nats.url(), &db.url(), Duration::from_millis(100)).await;

    let dead = DeadLetters::collect(&nats.url()).await;
    let gaps = CommitGaps::watch(sink.metrics.clone());

    let mut publishers = common::publishers(&nats.url(), &REAL_HOSTS);
    let mut rng = Rng(0x005e_ed0f_1157);
    let mut sent = Vec::with_capacity(HOSTILE);
    let started = Instant::now();
    for i in 0..HOSTILE {
        let message = hostile(i, &mut rng);
        sink.publish(
            &message.subject,
            &format!("hostile-{i}"),
            message.payload.clone(),
        )
        .await;
        sent.push(message);
        tokio::time::sleep(GAP).await;
    }
    common::stop_all(&mut publishers);
    let last = common::byes_of(&nats.url(), &REAL_HOSTS).await;
    common::assert_complete(&pool, &last, &REAL_HOSTS).await;

    // Every hostile message: dead-lettered with a reason, or stored as sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    let mut pending: Vec<&Sent> = sent.iter().collect();
    loop {
        let dead_letters: std::collections::HashSet<(String, Vec<u8>)> = dead
            .received()
            .iter()
            .map(|d| (d.subject.clone(), d.payload.to_vec()))
            .collect();
        let mut next = Vec::new();
        for message in pending {
            let decoded = Sample::decode(&message.payload).ok();
            let in_mysql = match &decoded {
                Some(sample) if message.subject.ends_with(sample.kind().as_str()) => {
                    stored_as_sent(&pool, sample).await
                }
                _ => false,
            };
            if in_mysql {
                stored += 1;
            } else if !dead_letters.contains(&(
                format!("deadletter.{}", message.subject),
                message.payload.clone(),
            )) {
                next.push(message);
            }
        }
        pending = next;
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} hostile messages neither stored nor dead-lettered, e.g. {}",
            pending.len(),
            pending[0].subject
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let longest = gaps.longest().await;
    sink.stop().await;
    let dead = dead.received();
    let mut refused_by_mysql = 0;
    for letter in &dead {
        assert!(!letter.reason.is_empty(), "a reason for {}", letter.subject);
        if letter.reason.starts_with("MySQL rejected it") {
            refused_by_mysql += 1;
        }
        let original = letter.subject.strip_prefix("deadletter.").unwrap();
        assert!(
            sent.iter()
                .any(|s| s.subject == original && s.payload == letter.payload.as_ref()),
            "a dead letter nobody sent on {original}"
        );
        if let Ok(sample) = Sample::decode(&letter.payload) {
            assert!(
                !stored_as_sent(&pool, &sample).await,
                "{original} both stored and dead-lettered"
            );
        }
    }
    assert_eq!(stored + dead.len(), HOSTILE, "each hostile message once");
    assert!(refused_by_mysql >= 1, "MySQL refused the trigger's samples");
    println!(
        "hostile stream: {HOSTILE} hostile messages in {:.1} s beside 3 publishers: {stored} stored \
         as sent, {} dead-lettered ({refused_by_mysql} refused by MySQL, the rest by the \
         classifier); longest time between two commits: {} ms",
        started.elapsed().as_secs_f64(),
        dead.len(),
        longest.as_millis()
    );
}
