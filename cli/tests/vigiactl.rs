//! vigiactl against a real nats-server, real publishers and MariaDB, run
//! as a person runs it: the binary, its output and its exit code.

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sqlx::Executor as _;
use vigia_schema::stamp::unix_nanos;
use vigia_schema::{
    ByeBody, CommandReply, CommandRequest, CpuBody, Encoding, EventBody, HelloBody, Outcome,
    ProcessEntry, ProcsBody, RamBody, Sample, SampleBody,
};
use vigia_testkit::commands::{event_outcomes, who};
use vigia_testkit::telemetry::{connect, create_telemetry_stream, stored_samples};
use vigia_testkit::vigia::{start_publisher, start_sink};
use vigia_testkit::{free_port, unique_name, Child, NatsServer, TestDatabase};

/// A publisher under test, and its host token.
struct Publisher {
    _process: Child,
    host: String,
}

fn vigiactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigiactl"))
        .args(args)
        .env_remove("VIGIA_NATS_URL")
        .env_remove("VIGIA_DATABASE_URL")
        .output()
        .expect("running vigiactl")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// vigiactl on a blocking thread, so that the runtime's one thread stays
/// free meanwhile for the test's own NATS work (stand-in publishers).
fn vigiactl_beside(args: &[&str]) -> tokio::task::JoinHandle<Output> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vigiactl(&args)
    })
}

/// The stdout of a run that must have succeeded.
fn succeeded(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

/// A nats-server with the telemetry stream and one publisher taking
/// commands.
async fn setup(prefix: &str, args: &[&str]) -> (NatsServer, Publisher) {
    let server = NatsServer::start();
    create_telemetry_stream(&connect(&server.url()).await).await;
    let host = unique_name(prefix);
    let process = start_publisher(&server.url(), &host, args);
    server.wait_for_subscription(&format!("cmd.{host}"));
    (
        server,
        Publisher {
            _process: process,
            host,
        },
    )
}

fn kill(server: &NatsServer, host: &str, pid: &str, extra: &[&str]) -> Output {
    let url = server.url();
    let mut args = vec!["kill", "--nats-url", &url, "--host", host, "--pid", pid];
    args.extend_from_slice(extra);
    vigiactl(&args)
}

/// One row of `commands`, the columns a test checks.
type CommandRow = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

async fn command_rows(db: &TestDatabase, host: &str, count: usize) -> Vec<CommandRow> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        // The sink creates the database when it starts.
        use sqlx::Connection as _;
        if let Ok(conn) = sqlx::MySqlConnection::connect(&db.url()).await {
            break conn;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no database {}",
            db.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        // Until the sink has migrated, the table may not exist yet.
        let rows: Vec<CommandRow> = sqlx::query_as(
            "SELECT action, pid, process_name, signal_name, requested_by, \
                    CAST(outcome AS CHAR), error \
             FROM commands WHERE host = ? ORDER BY seq",
        )
        .bind(host)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        if rows.len() >= count {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} commands rows for {host} after 20 s",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kill_signals_a_process_names_it_and_the_sink_records_it() {
    let db = TestDatabase::new("cli_kill");
    let (server, publisher) = setup("cli-kill", &[]).await;
    let _sink = start_sink(&server.url(), &db.url());
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = sleeper.id().to_string();

    let out = kill(
        &server,
        &publisher.host,
        &pid,
        &["--signal", "KILL", "--requested-by", "tester"],
    );
    assert_eq!(
        succeeded(&out),
        format!("signalled pid {pid} (sleep) with SIGKILL\n")
    );
    let status = sleeper.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "sleep is gone, killed");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());

    // A refusal is recorded too.
    let out = kill(&server, &publisher.host, "1", &["--requested-by", "tester"]);
    assert_eq!(out.status.code(), Some(1));

    let rows = command_rows(&db, &publisher.host, 2).await;
    assert_eq!(
        rows,
        [
            (
                "kill".to_owned(),
                Some(pid.parse().unwrap()),
                Some("sleep".to_owned()),
                Some("KILL".to_owned()),
                Some("tester".to_owned()),
                "ok".to_owned(),
                None
            ),
            (
                "kill".to_owned(),
                Some(1),
                None,
                Some("TERM".to_owned()),
                Some("tester".to_owned()),
                "refused".to_owned(),
                Some("pid 1 is init; it is never signalled".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn pid_1_is_refused_with_exit_1() {
    let (server, publisher) = setup("cli-init", &[]).await;
    let before = std::fs::read_to_string("/proc/1/stat").unwrap();
    let out = kill(&server, &publisher.host, "1", &["--signal", "KILL"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "refused by {}: pid 1 is init; it is never signalled\n",
            publisher.host
        )
    );
    let after = std::fs::read_to_string("/proc/1/stat").unwrap();
    let start = |stat: &str| stat.split(' ').nth(21).map(str::to_owned);
    assert_eq!(start(&before), start(&after), "pid 1 is the same process");
}

#[tokio::test]
async fn a_missing_pid_is_an_error() {
    let (server, publisher) = setup("cli-missing", &[]).await;
    let out = kill(&server, &publisher.host, "999999999", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).ends_with(": no process with pid 999999999\n"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn no_control_refuses_and_signals_nothing() {
    let (server, publisher) = setup("cli-nocontrol", &["--no-control"]).await;
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = kill(&server, &publisher.host, &sleeper.id().to_string(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("--no-control"), "{}", stdout(&out));
    assert!(matches!(sleeper.try_wait(), Ok(None)), "sleep still runs");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[tokio::test]
async fn an_unknown_host_is_no_answer_with_exit_2() {
    let server = NatsServer::start();
    let out = kill(&server, "nobody-here", "1234", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stdout(&out),
        "no answer: no publisher listens on cmd.nobody-here (host down or unknown)\n"
    );
}

#[test]
fn an_unreachable_nats_is_one_clear_line() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let out = vigiactl(&["kill", "--nats-url", &url, "--host", "h", "--pid", "5"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("no answer: cannot connect to NATS at {url}")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    let out = vigiactl(&["watch", "--nats-url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.starts_with(&format!("vigiactl: cannot connect to NATS at {url}")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test]
async fn watch_prints_one_line_per_sample() {
    let (server, publisher) = setup("cli-watch", &[]).await;
    let out = vigiactl_beside(&[
        "watch",
        "--nats-url",
        &server.url(),
        "--host",
        &publisher.host,
        "--kind",
        "procs",
        "--count",
        "2",
    ])
    .await
    .unwrap();
    let text = succeeded(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in lines {
        assert!(
            line.contains(&format!(" {} procs #", publisher.host)),
            "{line}"
        );
        let listed = line.split("top by CPU: ").nth(1).unwrap_or_default();
        // This machine runs more than ten processes: exactly ten listed.
        assert_eq!(listed.split(", ").count(), 10, "{line}");
    }
}

#[tokio::test]
async fn hosts_lists_live_publishers() {
    let (server, publisher) = setup("cli-hosts", &[]).await;
    let client = connect(&server.url()).await;
    // Wait for the first ram sample, so the host has a last sample.
    stored_samples(
        &client,
        &format!("telemetry.{}.ram", publisher.host),
        1,
        Duration::from_secs(10),
    )
    .await;
    let out = vigiactl_beside(&["hosts", "--nats-url", &server.url()])
        .await
        .unwrap();
    let text = succeeded(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with(&publisher.host))
        .unwrap_or_else(|| panic!("{} not listed:\n{text}", publisher.host));
    let cells: Vec<&str> = line.split_whitespace().collect();
    let cpus = std::thread::available_parallelism()
        .unwrap()
        .get()
        .to_string();
    assert_eq!(cells[1], "online", "{line}");
    assert_eq!(cells[2], "procfs", "{line}");
    assert_eq!(cells[3], cpus, "{line}");
    let mem_total_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let ram = vigiactl::render::bytes(mem_total_kib * 1024);
    assert_eq!(format!("{} {}", cells[4], cells[5]), ram, "{line}");
    assert_eq!((cells[7], cells[8]), ("s", "ago"), "{line}");
    let age: f64 = cells[6].parse().unwrap();
    assert!(age < 60.0, "{line}");
}

#[tokio::test]
async fn hosts_reads_the_hosts_table() {
    let db = TestDatabase::new("cli_hosts");
    let mut conn = db.migrated().await;
    conn.execute(
        "INSERT INTO hosts (host, boot, status, first_seen, last_seen, source, cpus, ram_total) \
         VALUES ('db-host-1', 'b1', 'offline', UTC_TIMESTAMP(6) - INTERVAL 1 HOUR, \
                 UTC_TIMESTAMP(6) - INTERVAL 90 SECOND, 'procfs', 4, 8589934592)",
    )
    .await
    .unwrap();
    let out = vigiactl_beside(&["hosts", "--database-url", &db.url()])
        .await
        .unwrap();
    let text = succeeded(&out);
    let line = text.lines().nth(1).unwrap_or_default();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[..6],
        ["db-host-1", "offline", "procfs", "4", "8.0", "GiB"],
        "{text}"
    );
    let age: f64 = cells[6].parse().unwrap();
    assert!((90.0..120.0).contains(&age), "{text}");
    assert_eq!(cells[7..], ["s", "ago"], "{text}");
}

#[test]
fn an_unreachable_database_is_one_clear_line() {
    let port = free_port();
    let url = format!("mysql://root:hunter2@127.0.0.1:{port}/vigia");
    let out = vigiactl(&["hosts", "--database-url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.starts_with(&format!(
            "vigiactl: cannot connect to the database at mysql://root:***@127.0.0.1:{port}/vigia"
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

fn every_kind() -> Vec<Sample> {
    let bodies = vec![
        SampleBody::Cpu(CpuBody {
            busy_pct: 12.5,
            user_pct: 8.25,
            system_pct: 4.25,
            iowait_pct: 0.5,
            steal_pct: 0.0,
            idle_pct: 87.0,
            per_cpu_busy_pct: vec![10.0, 15.0],
            load1: 0.5,
            load5: 0.25,
            load15: 0.125,
            cpus: 2,
        }),
        SampleBody::Ram(RamBody {
            total: 8 << 30,
            used: 2 << 30,
            free: 1 << 30,
            available: 6 << 30,
            buffers: 1 << 20,
            cached: 3 << 30,
            swap_total: 0,
            swap_free: 0,
        }),
        SampleBody::Procs(ProcsBody {
            processes: vec![ProcessEntry {
                pid: 1,
                ppid: 0,
                name: "init".into(),
                uid: 0,
                user: "root".into(),
                state: "S".into(),
                rss: 4096,
                mem_pct: 0.5,
                cpu_pct: 1.5,
                threads: 1,
                start_ts: 1_700_000_000_000_000_000,
            }],
        }),
        SampleBody::Hello(HelloBody {
            agent_version: "0.1.0".into(),
            kernel: "6.1.0".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            cpus: 2,
            ram_total: 8 << 30,
            boot_time: 1_700_000_000_000_000_000,
            source: "procfs".into(),
            interval_ms: 1000,
            procs_interval_ms: 5000,
        }),
        SampleBody::Bye(ByeBody {
            reason: "SIGTERM".into(),
            dropped: 3,
            last_seq: [("cpu".to_owned(), 41), ("event".to_owned(), 2)].into(),
        }),
        SampleBody::Event(EventBody {
            action: "kill".into(),
            pid: Some(1234),
            name: Some("stress".into()),
            signal: Some("TERM".into()),
            requested_by: Some("alice@laptop".into()),
            nats_user: Some("ops".into()),
            outcome: Outcome::Ok,
            error: None,
        }),
        SampleBody::Health(vigia_schema::HealthBody {
            dropped: 3,
            outbox_depth: 12,
            reconnects: 1,
            source: "procfs".into(),
            agent_version: "0.1.0".into(),
        }),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            Sample::new(
                "web-1",
                "5f3a9c0d2e1b4a67",
                i as u64 + 1,
                1_764_000_000_123_456_789,
                body,
            )
        })
        .collect()
}

fn decode(payload: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigiactl"))
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn decode_round_trips_every_kind() {
    let samples = every_kind();
    let kinds: std::collections::BTreeSet<_> = samples.iter().map(Sample::kind).collect();
    assert_eq!(
        kinds.len(),
        vigia_schema::Kind::ALL.len(),
        "every kind covered"
    );
    for sample in samples {
        let out = decode(&sample.encode());
        let text = succeeded(&out);
        assert_eq!(text.lines().count(), 1, "one line per payload: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json, serde_json::to_value(&sample).unwrap());
        assert_eq!(json["kind"], sample.kind().as_str());
        // And back: the JSON holds every field, so MessagePack written from
        // it decodes to the same sample.
        let again = rmp_serde::to_vec_named(&json).unwrap();
        assert_eq!(Sample::decode(&again).unwrap(), sample);
    }
}

#[test]
fn decode_rejects_what_is_not_a_sample() {
    let out = decode(b"{\"not\":\"msgpack\"}");
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.starts_with("vigiactl: stdin (17 bytes) is not a vigia sample: "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    assert!(stdout(&out).is_empty());
}

/// What an attacker who can publish puts where a name goes: a screen clear,
/// a terminal title, a bell, and a bidi override.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}evil\u{202e}gpj.sh";
const HOSTILE_SHOWN: &str = r"\u{1b}[2J\u{1b}]0;pwned\u{7}evil\u{202e}gpj.sh";

fn assert_safe(text: &str) {
    assert!(
        !text
            .chars()
            .filter(|c| *c != '\n')
            .any(vigia_schema::text::is_unsafe),
        "{text:?}"
    );
}

fn hostile_sample(host: &str, body: SampleBody) -> Sample {
    Sample::new(host, "0123456789abcdef", 1, unix_nanos(), body)
}

#[tokio::test]
async fn hosts_shows_a_hostile_hello_source_escaped() {
    let server = NatsServer::start();
    let client = connect(&server.url()).await;
    create_telemetry_stream(&client).await;
    let host = unique_name("cli-evil-hello");
    let hello = hostile_sample(
        &host,
        SampleBody::Hello(HelloBody {
            source: HOSTILE.into(),
            cpus: 2,
            ram_total: 1 << 30,
            ..HelloBody::default()
        }),
    );
    async_nats::jetstream::new(client.clone())
        .publish(format!("telemetry.{host}.hello"), hello.encode().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let out = vigiactl_beside(&["hosts", "--nats-url", &server.url()])
        .await
        .unwrap();
    let text = succeeded(&out);
    assert_safe(&text);
    let line = text
        .lines()
        .find(|l| l.starts_with(&host))
        .unwrap_or_else(|| panic!("{host} not listed:\n{text}"));
    assert!(line.contains(HOSTILE_SHOWN), "{line}");
}

#[tokio::test]
async fn watch_shows_a_bidi_override_escaped() {
    let server = NatsServer::start();
    let client = connect(&server.url()).await;
    let host = unique_name("cli-evil-watch");
    let watch = vigiactl_beside(&[
        "watch",
        "--nats-url",
        &server.url(),
        "--host",
        &host,
        "--count",
        "1",
    ]);
    server.wait_for_subscription(&format!("telemetry.{host}.*"));
    let procs = hostile_sample(
        &host,
        SampleBody::Procs(ProcsBody {
            processes: vec![ProcessEntry {
                pid: 4242,
                name: HOSTILE.into(),
                cpu_pct: 50.0,
                ..ProcessEntry::default()
            }],
        }),
    );
    // First something undecodable on a subject that clears the screen: the
    // complaint about it is escaped too.
    client
        .publish(format!("telemetry.{host}.x\u{1b}[2J"), "\u{202e}".into())
        .await
        .unwrap();
    client
        .publish(format!("telemetry.{host}.procs"), procs.encode().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let out = watch.await.unwrap();
    let text = succeeded(&out);
    assert_safe(&text);
    assert!(
        text.contains(&format!("4242 {HOSTILE_SHOWN} 50.0%")),
        "{text}"
    );
    let complaint = stderr(&out);
    assert_safe(&complaint);
    assert!(
        complaint.starts_with(&format!(
            "telemetry.{host}.x\\u{{1b}}[2J: undecodable payload: "
        )),
        "{complaint}"
    );
}

#[tokio::test]
async fn kill_shows_a_hostile_reply_escaped() {
    use futures::StreamExt as _;
    let server = NatsServer::start();
    let client = connect(&server.url()).await;
    let host = unique_name("cli-evil-reply");
    // Whoever answers on cmd.<host> writes the reply: here, an impostor.
    let mut requests = client.subscribe(format!("cmd.{host}")).await.unwrap();
    let responder = client.clone();
    let answering = tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let ask = vigia_schema::CommandRequest::decode(&request.payload).unwrap();
            let reply = vigia_schema::CommandReply {
                ok: false,
                pid: ask.pid,
                boot: ask.boot.clone(),
                error: Some(format!("nope\n{HOSTILE}")),
                ..Default::default()
            };
            let bytes = reply.encode(vigia_schema::Encoding::MessagePack);
            if let Some(to) = request.reply {
                responder.publish(to, bytes.into()).await.unwrap();
            }
        }
    });
    client.flush().await.unwrap();
    let out = vigiactl_beside(&[
        "kill",
        "--nats-url",
        &server.url(),
        "--host",
        &host,
        "--pid",
        "5",
    ])
    .await
    .unwrap();
    answering.abort();
    let text = stdout(&out);
    assert_safe(&text);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!(r"nope\u{{a}}{HOSTILE_SHOWN}")),
        "{text}"
    );
}

/// `<token>.x` and `<token>.y`: two machines publishing as one token,
/// both taking commands, on a server with the telemetry stream. (Bind
/// `_machines` when taking it apart: they stop when it drops.)
struct SharedToken {
    server: NatsServer,
    client: async_nats::Client,
    token: String,
    _machines: Vec<Child>,
    /// Their answers to `who`, sorted by host name.
    answers: Vec<CommandReply>,
}

impl SharedToken {
    async fn start(prefix: &str) -> SharedToken {
        let server = NatsServer::start();
        let client = connect(&server.url()).await;
        create_telemetry_stream(&client).await;
        let token = unique_name(prefix);
        let machines = ["x", "y"]
            .iter()
            .map(|zone| start_publisher(&server.url(), &format!("{token}.{zone}"), &[]))
            .collect();
        let answers = who(&client, &token, 2).await;
        SharedToken {
            server,
            client,
            token,
            _machines: machines,
            answers,
        }
    }
}

#[tokio::test]
async fn kill_refuses_a_shared_host_unless_told_which_boot() {
    let SharedToken {
        server,
        client,
        token,
        answers,
        _machines,
    } = SharedToken::start("cli-col").await;
    let boots: Vec<String> = answers.iter().map(|a| a.boot.clone().unwrap()).collect();
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = sleeper.id().to_string();

    // Without --boot: refused here, nothing sent, the process lives. The
    // publishers are listed in boot order, each with its host name.
    let out = kill(&server, &token, &pid, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let mut listed = [(&boots[0], "x"), (&boots[1], "y")];
    listed.sort();
    let listed: Vec<String> = listed
        .iter()
        .map(|(boot, zone)| format!("boot {boot} ({token}.{zone})"))
        .collect();
    assert_eq!(
        stdout(&out),
        format!(
            "refused: 2 publishers share host {token}: {}; name one with --boot; nothing was sent\n",
            listed.join(", ")
        )
    );
    assert!(matches!(sleeper.try_wait(), Ok(None)), "sleep still runs");

    // With --boot: exactly that machine signals.
    let out = kill(&server, &token, &pid, &["--boot", &boots[1]]);
    assert_eq!(
        succeeded(&out),
        format!("signalled pid {pid} (sleep) with SIGTERM\n")
    );
    assert_eq!(sleeper.wait().unwrap().signal(), Some(15));

    // One kill reached both: the named boot did it, the other refused it.
    let mut outcomes = event_outcomes(&client, &token, 2).await;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (boots[1].clone(), Outcome::Ok),
        (boots[0].clone(), Outcome::Refused),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(outcomes, expected);

    // A boot nobody has: no answer, and it says the others refused.
    let out = kill(&server, &token, &pid, &["--boot", "0000000000000000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("the publisher of boot 0000000000000000 did not answer, 2 other(s)"),
        "{}",
        stdout(&out)
    );
}

/// vigiactl asks `who` before every kill; at --control-rate 1 that used up
/// the requester's only command, and every kill was refused.
#[tokio::test]
async fn kill_works_with_the_publisher_at_one_command_a_second() {
    let (server, publisher) = setup("cli-rate1", &["--control-rate", "1"]).await;
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let out = kill(&server, &publisher.host, &pid, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        format!("signalled pid {pid} (sleep) with SIGTERM\n")
    );
    assert_eq!(sleeper.wait().unwrap().signal(), Some(15));
    // Still one command a second: a second kill at once is refused.
    let mut other = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = kill(&server, &publisher.host, &other.id().to_string(), &[]);
    let shown = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("rate limit: at most 1 commands a second"),
        "{shown}"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}

#[tokio::test]
async fn kill_fills_in_the_one_live_boot() {
    use futures::StreamExt as _;
    let server = NatsServer::start();
    let client = connect(&server.url()).await;
    let host = unique_name("cli-one-boot");
    // A stand-in publisher that records what each request named.
    let mut requests = client.subscribe(format!("cmd.{host}")).await.unwrap();
    client.flush().await.unwrap();
    let responder = client.clone();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(message) = requests.next().await {
            let request = CommandRequest::decode(&message.payload).unwrap();
            let reply = CommandReply {
                ok: true,
                pid: request.pid,
                name: request.pid.map(|_| "sleep".to_owned()),
                signal: request.pid.map(|_| "TERM".to_owned()),
                boot: Some("00c0ffee00c0ffee".into()),
                hostname: (request.action == "who").then(|| "one.zone".to_owned()),
                ..CommandReply::default()
            };
            responder
                .publish(
                    message.reply.unwrap(),
                    reply.encode(Encoding::MessagePack).into(),
                )
                .await
                .unwrap();
            seen.push((request.action.clone(), request.boot.clone()));
            if request.action == "kill" {
                return seen;
            }
        }
        seen
    });
    // The runtime's one thread must stay free for the stand-in.
    let out = vigiactl_beside(&[
        "kill",
        "--nats-url",
        &server.url(),
        "--host",
        &host,
        "--pid",
        "4242",
    ])
    .await
    .unwrap();
    assert_eq!(succeeded(&out), "signalled pid 4242 (sleep) with SIGTERM\n");
    assert_eq!(
        seen.await.unwrap(),
        [
            ("who".to_owned(), None),
            ("kill".to_owned(), Some("00c0ffee00c0ffee".to_owned()))
        ]
    );
}

#[tokio::test]
async fn hosts_marks_a_token_two_live_machines_share() {
    let SharedToken {
        server,
        client,
        token,
        answers,
        _machines,
    } = SharedToken::start("cli-hosts-col").await;
    stored_samples(
        &client,
        &format!("telemetry.{token}.ram"),
        1,
        Duration::from_secs(10),
    )
    .await;
    let out = vigiactl_beside(&["hosts", "--nats-url", &server.url()])
        .await
        .unwrap();
    let text = succeeded(&out);
    assert!(
        text.lines()
            .next()
            .unwrap_or_default()
            .ends_with("SHARED BY"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&token))
        .unwrap_or_else(|| panic!("{token} not listed:\n{text}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[1], "shared", "{line}");
    let mut machines: Vec<String> = answers
        .iter()
        .map(|a| {
            format!(
                "{} ({})",
                a.boot.as_deref().unwrap(),
                a.hostname.as_deref().unwrap()
            )
        })
        .collect();
    machines.sort();
    assert!(line.ends_with(&machines.join(", ")), "{line}");
}

#[tokio::test]
async fn hosts_from_the_database_marks_a_shared_host_with_its_boots() {
    let db = TestDatabase::new("cli_hosts_shared");
    let mut conn = db.migrated().await;
    conn.execute(
        "INSERT INTO hosts (host, boot, status, first_seen, last_seen, source, cpus, ram_total) \
         VALUES ('col', 'b2', 'online', UTC_TIMESTAMP(6) - INTERVAL 1 HOUR, \
                 UTC_TIMESTAMP(6), 'procfs', 4, 8589934592), \
                ('web-1', 'w1', 'online', UTC_TIMESTAMP(6) - INTERVAL 1 HOUR, \
                 UTC_TIMESTAMP(6), 'procfs', 4, 8589934592)",
    )
    .await
    .unwrap();
    // col: two boots live side by side; web-1: a restart, one after the
    // other (its old boot still within its grace, but not overlapping).
    conn.execute(
        "INSERT INTO host_boots (host, boot, first_seen, last_seen, live_until) VALUES \
         ('col', 'b1', UTC_TIMESTAMP(6) - INTERVAL 10 MINUTE, UTC_TIMESTAMP(6), \
          UTC_TIMESTAMP(6) + INTERVAL 1 HOUR), \
         ('col', 'b2', UTC_TIMESTAMP(6) - INTERVAL 5 MINUTE, UTC_TIMESTAMP(6), \
          UTC_TIMESTAMP(6) + INTERVAL 1 HOUR), \
         ('web-1', 'w0', UTC_TIMESTAMP(6) - INTERVAL 10 MINUTE, \
          UTC_TIMESTAMP(6) - INTERVAL 2 MINUTE, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR), \
         ('web-1', 'w1', UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE, UTC_TIMESTAMP(6), \
          UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)",
    )
    .await
    .unwrap();
    let out = vigiactl_beside(&["hosts", "--database-url", &db.url()])
        .await
        .unwrap();
    let text = succeeded(&out);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0].last(), Some(&"BY"), "{text}");
    assert_eq!(lines[1][..2], ["col", "shared"], "{text}");
    assert_eq!(lines[1][9..], ["b1,", "b2"], "{text}");
    assert_eq!(lines[2][..2], ["web-1", "online"], "{text}");
    assert_eq!(lines[2][7..], ["s", "ago"], "{text}");
}
