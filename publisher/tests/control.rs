//! Process control against a real nats-server and a real publisher process:
//! requests on cmd.<host>, their replies, and the event samples they leave.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt as _;
use vigia_schema::{
    CommandReply, CommandRequest, Encoding, EventBody, Outcome, Sample, SampleBody,
};
use vigia_testkit::commands::{event_outcomes, gather, who};
use vigia_testkit::telemetry::{connect, create_telemetry_stream, stored_samples};
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::{unique_name, Child, NatsServer};

/// A publisher under test, and its host token.
struct Publisher {
    process: Child,
    host: String,
}

impl Publisher {
    fn is_running(&mut self) -> bool {
        self.process.wait_for_exit(Duration::ZERO).is_none()
    }
}

/// A server with the telemetry stream and a publisher taking commands.
async fn setup(prefix: &str, args: &[&str]) -> (NatsServer, async_nats::Client, Publisher) {
    let server = NatsServer::start();
    let client = connect(&server.url()).await;
    create_telemetry_stream(&client).await;
    let host = unique_name(prefix);
    let process = start_publisher(&server.url(), &host, args);
    server.wait_for_subscription(&format!("cmd.{host}"));
    (server, client, Publisher { process, host })
}

/// A hand-written JSON kill of `pid` with `signal`, as a script would
/// send it, and the reply.
async fn kill(
    client: &async_nats::Client,
    host: &str,
    pid: impl std::fmt::Display,
    signal: &str,
) -> CommandReply {
    let request = format!(r#"{{"action":"kill","pid":{pid},"signal":"{signal}"}}"#);
    CommandReply::decode(&ask(client, host, request.into_bytes()).await).unwrap()
}

async fn ask(client: &async_nats::Client, host: &str, payload: Vec<u8>) -> Vec<u8> {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(format!("cmd.{host}"), payload.into()),
    )
    .await
    .expect("a reply within 5 s")
    .expect("a reply");
    reply.payload.to_vec()
}

fn spawn_sleep() -> std::process::Child {
    Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawning sleep")
}

/// A NATS client written from the protocol text, sharing no code with
/// vigia: what a person's script or another language would do.
fn raw_request(port: u16, subject: &str, payload: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    let inbox = "_INBOX.handwritten.1";
    write!(
        writer,
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"handwritten\"}}\r\nSUB {inbox} 1\r\nPUB {subject} {inbox} {}\r\n",
        payload.len()
    )
    .unwrap();
    writer.write_all(payload).unwrap();
    writer.write_all(b"\r\n").unwrap();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .expect("a reply before the timeout");
        if line.starts_with("PING") {
            writer.write_all(b"PONG\r\n").unwrap();
            continue;
        }
        if let Some(header) = line.strip_prefix("MSG ") {
            let size: usize = header.split_whitespace().last().unwrap().parse().unwrap();
            let mut body = vec![0; size + 2];
            reader.read_exact(&mut body).unwrap();
            body.truncate(size);
            return body;
        }
        assert!(!line.starts_with("-ERR"), "{line}");
    }
}

#[tokio::test]
async fn a_hand_written_json_request_gets_a_json_reply_and_kills() {
    let (server, client, publisher) = setup("ctl-raw", &[]).await;
    let mut sleeper = spawn_sleep();
    let pid = sleeper.id();
    let request = format!(r#"{{"action":"kill","pid":{pid},"requested_by":"script"}}"#);
    let subject = format!("cmd.{}", publisher.host);
    let port = server.port;
    let reply =
        tokio::task::spawn_blocking(move || raw_request(port, &subject, request.as_bytes()))
            .await
            .unwrap();

    let text = String::from_utf8(reply).expect("a text reply");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("a JSON reply");
    // Every reply names the boot that answered (the events' boot, below).
    let boot = json
        .as_object_mut()
        .and_then(|o| o.remove("boot"))
        .expect("the reply names its boot");
    assert_eq!(
        json,
        serde_json::json!({"ok": true, "pid": pid, "name": "sleep", "signal": "TERM"}),
        "{text}"
    );
    let status = sleeper.wait().unwrap();
    assert_eq!(status.signal(), Some(15), "sleep ended by SIGTERM");

    let events = stored_samples(
        &client,
        &format!("telemetry.{}.event", publisher.host),
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, 1);
    assert_eq!(boot, events[0].boot.as_str());
    assert_eq!(
        events[0].body,
        SampleBody::Event(EventBody {
            action: "kill".into(),
            pid: Some(i64::from(pid)),
            name: Some("sleep".into()),
            signal: Some("TERM".into()),
            requested_by: Some("script".into()),
            nats_user: None,
            outcome: Outcome::Ok,
            error: None,
        })
    );
}

#[tokio::test]
async fn malformed_requests_and_unknown_actions_get_errors_and_publishing_goes_on() {
    let (_server, client, mut publisher) = setup("ctl-bad", &[]).await;
    let host = publisher.host.clone();

    let cases: Vec<(Vec<u8>, Encoding, &str)> = vec![
        (b"{oops".to_vec(), Encoding::Json, "malformed request"),
        (
            vec![0xc1, 0x00, 0xff],
            Encoding::MessagePack,
            "malformed request",
        ),
        (
            br#"{"pid":5}"#.to_vec(),
            Encoding::Json,
            "malformed request",
        ),
        (
            br#"{"action":"reboot","pid":5}"#.to_vec(),
            Encoding::Json,
            "unknown action \"reboot\"",
        ),
        (
            CommandRequest {
                action: "dance".into(),
                ..CommandRequest::default()
            }
            .encode(Encoding::MessagePack),
            Encoding::MessagePack,
            "unknown action \"dance\"",
        ),
        (
            br#"{"action":"kill","pid":5,"signal":"BOGUS"}"#.to_vec(),
            Encoding::Json,
            "unknown signal",
        ),
    ];
    for (payload, encoding, says) in &cases {
        let bytes = ask(&client, &host, payload.clone()).await;
        assert_eq!(Encoding::detect(&bytes), *encoding, "reply encoding");
        let reply = CommandReply::decode(&bytes).expect("a reply of the contract's shape");
        assert!(!reply.ok);
        let error = reply.error.unwrap_or_default();
        assert!(error.contains(says), "{error:?} should say {says:?}");
    }
    // No reply subject: nothing to answer, nothing may break.
    client
        .publish(format!("cmd.{host}"), "not even json".into())
        .await
        .unwrap();
    client.flush().await.unwrap();

    // Still publishing: fresh cpu samples keep coming.
    let mut cpu = client
        .subscribe(format!("telemetry.{host}.cpu"))
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(5), cpu.next())
            .await
            .expect("cpu samples keep coming")
            .unwrap();
        seqs.push(Sample::decode(&message.payload).unwrap().seq);
    }
    assert!(seqs[1] > seqs[0]);
    assert!(publisher.is_running());

    // Each request left one event, in order, with its outcome.
    let events = stored_samples(
        &client,
        &format!("telemetry.{host}.event"),
        cases.len() + 1,
        Duration::from_secs(10),
    )
    .await;
    let seen: Vec<(u64, Outcome, String)> = events
        .iter()
        .map(|s| match &s.body {
            SampleBody::Event(e) => (s.seq, e.outcome, e.action.clone()),
            other => panic!("not an event: {other:?}"),
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, Outcome::Invalid, String::new()),
            (2, Outcome::Invalid, String::new()),
            (3, Outcome::Invalid, String::new()),
            (4, Outcome::Refused, "reboot".into()),
            (5, Outcome::Refused, "dance".into()),
            (6, Outcome::Invalid, "kill".into()),
            (7, Outcome::Invalid, String::new()),
        ]
    );
}

#[tokio::test]
async fn the_eleventh_command_within_a_second_is_refused() {
    let (_server, client, publisher) = setup("ctl-rate", &[]).await;
    let host = publisher.host.clone();
    // A pid far above any pid_max: each admitted request is refused as
    // missing, so nothing is signalled whatever happens.
    let request = br#"{"action":"kill","pid":999999999}"#.to_vec();
    // Sent together: all eleven arrive within milliseconds.
    let replies =
        futures::future::join_all((0..11).map(|_| ask(&client, &host, request.clone()))).await;
    let errors: Vec<String> = replies
        .iter()
        .map(|bytes| {
            CommandReply::decode(bytes)
                .unwrap()
                .error
                .unwrap_or_default()
        })
        .collect();
    let limited = errors
        .iter()
        .filter(|e| e.starts_with("rate limit"))
        .count();
    let missing = errors
        .iter()
        .filter(|e| *e == "no process with pid 999999999")
        .count();
    assert_eq!((missing, limited), (10, 1), "{errors:#?}");

    // Ten refusals and the first rate-limited one are audited.
    let events = stored_samples(
        &client,
        &format!("telemetry.{host}.event"),
        11,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(events.len(), 11);
    let last = match &events[10].body {
        SampleBody::Event(e) => e.clone(),
        other => panic!("not an event: {other:?}"),
    };
    assert_eq!(last.outcome, Outcome::Refused);
    assert!(last.error.unwrap_or_default().starts_with("rate limit"));

    // A second later the limiter admits again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = CommandReply::decode(&ask(&client, &host, request).await).unwrap();
    assert_eq!(
        reply.error.as_deref(),
        Some("no process with pid 999999999")
    );
}

#[tokio::test]
async fn a_lower_rate_limit_is_configurable() {
    let (_server, client, publisher) = setup("ctl-rate2", &["--control-rate", "2"]).await;
    let request = br#"{"action":"kill","pid":999999999}"#.to_vec();
    let replies =
        futures::future::join_all((0..3).map(|_| ask(&client, &publisher.host, request.clone())))
            .await;
    let limited = replies
        .iter()
        .filter(|bytes| {
            CommandReply::decode(bytes)
                .unwrap()
                .error
                .is_some_and(|e| e == "rate limit: at most 2 commands a second; try again shortly")
        })
        .count();
    assert_eq!(limited, 1);
}

#[tokio::test]
async fn the_publisher_and_its_parent_are_never_signalled() {
    let (_server, client, mut publisher) = setup("ctl-self", &[]).await;
    let own = publisher.process.pid();
    let parent = std::process::id();
    for (pid, says) in [(own, "vigia-publisher itself"), (parent, "parent")] {
        let reply = kill(&client, &publisher.host, pid, "KILL").await;
        assert!(!reply.ok);
        assert!(
            reply.error.as_deref().unwrap_or_default().contains(says),
            "{reply:?}"
        );
    }
    assert!(publisher.is_running());
}

#[tokio::test]
async fn a_denied_name_is_refused() {
    // The deny list matches names; `sleep` is denied here by configuration.
    let (_server, client, publisher) = setup("ctl-deny", &["--deny", "sshd,sle*"]).await;
    let mut sleeper = spawn_sleep();
    let pid = sleeper.id();
    let reply = kill(&client, &publisher.host, pid, "TERM").await;
    assert!(!reply.ok);
    assert_eq!(reply.name.as_deref(), Some("sleep"));
    assert!(
        reply
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("deny list (rule \"sle*\")"),
        "{reply:?}"
    );
    assert!(matches!(sleeper.try_wait(), Ok(None)), "sleep still runs");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// A kernel thread's pid, found in /proc by its flags: where the test runs
/// in a pid namespace without kernel threads, kthreadd's pid 2 stands in.
fn a_kernel_thread() -> i64 {
    let found = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .find(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the parenthesised name: state ppid pgrp session
            // tty_nr tpgid flags ...
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let flags: u32 = after.split(' ').nth(6).unwrap().parse().unwrap();
            *pid > 2 && flags & 0x0020_0000 != 0
        });
    found.unwrap_or(2)
}

#[tokio::test]
async fn kernel_threads_and_pid_1_are_refused() {
    let (_server, client, publisher) = setup("ctl-kthread", &[]).await;
    let init_started = std::fs::read_to_string("/proc/1/stat").unwrap();
    for (pid, says) in [
        (a_kernel_thread(), "kernel thread"),
        (2, "kernel thread"),
        (1, "pid 1 is init"),
        (0, "not a process"),
        (-1, "not a process"),
    ] {
        let reply = kill(&client, &publisher.host, pid, "KILL").await;
        assert!(!reply.ok, "pid {pid}");
        assert!(
            reply.error.as_deref().unwrap_or_default().contains(says),
            "pid {pid}: {reply:?}"
        );
    }
    // pid 1 is the same process, still running (its stat's start time is
    // unchanged).
    let init_now = std::fs::read_to_string("/proc/1/stat").unwrap();
    let start = |stat: &str| stat.split(' ').nth(21).map(str::to_owned);
    assert_eq!(start(&init_started), start(&init_now));
}

/// A copy of `sleep` run under `name`, so that both its comm and its
/// executable's file name are `name` (as a real sshd-session's are).
fn spawn_sleep_named(name: &str) -> (std::process::Child, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique_name("vigia-named"));
    std::fs::create_dir_all(&dir).unwrap();
    let sleep = which("sleep");
    let exe = dir.join(name);
    std::fs::copy(sleep, &exe).unwrap();
    let child = Command::new(&exe).arg("1000").spawn().expect("spawning");
    (child, dir)
}

fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|path| path.exists())
        })
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

#[tokio::test]
async fn openssh_login_processes_are_denied_by_default() {
    let (_server, client, publisher) = setup("ctl-sshd", &[]).await;
    for name in ["sshd-session", "sshd-auth"] {
        let (mut process, dir) = spawn_sleep_named(name);
        let pid = process.id();
        let reply = kill(&client, &publisher.host, pid, "KILL").await;
        assert!(!reply.ok, "{reply:?}");
        assert_eq!(reply.name.as_deref(), Some(name));
        let error = reply.error.unwrap_or_default();
        assert!(
            error.contains(&format!("deny list (rule \"{name}\")")),
            "{error}"
        );
        assert!(matches!(process.try_wait(), Ok(None)), "{name} still runs");
        let _ = process.kill();
        let _ = process.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
    // Exact, not a prefix: a name that merely starts alike is no login.
    let (mut process, dir) = spawn_sleep_named("sshd-sessionx");
    let pid = process.id();
    let reply = kill(&client, &publisher.host, pid, "TERM").await;
    assert!(reply.ok, "{reply:?}");
    let status = process.wait().unwrap();
    assert_eq!(status.signal(), Some(15));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_megabyte_where_the_pid_goes_gets_a_small_reply_and_audit_row() {
    let (_server, client, publisher) = setup("ctl-huge", &[]).await;
    let huge = "7".repeat(1_000_000);
    let pid = serde_json::json!({"action": "kill", "pid": huge});
    let signal = serde_json::json!({"action": "kill", "pid": 5, "signal": huge});
    // (payload, encoding, whether the decoder's error quotes the string)
    let cases = [
        (pid.to_string().into_bytes(), Encoding::Json, true),
        (signal.to_string().into_bytes(), Encoding::Json, true),
        (
            rmp_serde::to_vec_named(&pid).expect("encoding"),
            Encoding::MessagePack,
            false,
        ),
    ];
    let count = cases.len();
    for (payload, encoding, quoted) in cases {
        let sent = payload.len();
        let bytes = ask(&client, &publisher.host, payload).await;
        assert_eq!(Encoding::detect(&bytes), encoding);
        assert!(
            bytes.len() <= 1100,
            "a {sent}-byte request got a {}-byte reply",
            bytes.len()
        );
        let reply = CommandReply::decode(&bytes).unwrap();
        assert!(!reply.ok);
        let error = reply.error.unwrap_or_default();
        assert!(
            error.starts_with("malformed request") || error.starts_with("unknown signal"),
            "{error}"
        );
        assert_eq!(error.ends_with('…'), quoted, "cut, and says so: {error}");
    }
    let events = stored_samples(
        &client,
        &format!("telemetry.{}.event", publisher.host),
        count,
        Duration::from_secs(10),
    )
    .await;
    for event in events {
        let SampleBody::Event(e) = event.body else {
            panic!("not an event");
        };
        assert_eq!(e.outcome, Outcome::Invalid);
        let error = e.error.unwrap_or_default();
        assert!(error.len() <= 1024, "{} bytes", error.len());
    }
}

#[tokio::test]
async fn two_machines_on_one_token_answer_who_and_only_the_named_boot_acts() {
    let server = NatsServer::start();
    let client = connect(&server.url()).await;
    create_telemetry_stream(&client).await;
    // Two machines, one short name: `col.x` and `col.y` both become `col`.
    let token = unique_name("ctl-col");
    let names = [format!("{token}.x"), format!("{token}.y")];
    let _machines: Vec<Child> = names
        .iter()
        .map(|name| start_publisher(&server.url(), name, &[]))
        .collect();
    let subject = format!("cmd.{token}");
    // Both subscriptions, not just one: who asks until both answer.
    let answers = who(&client, &token, 2).await;
    let hostnames: Vec<&str> = answers
        .iter()
        .map(|a| a.hostname.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(hostnames, [names[0].as_str(), names[1].as_str()]);
    let boots: Vec<String> = answers.iter().map(|a| a.boot.clone().unwrap()).collect();
    assert_ne!(boots[0], boots[1], "each machine has its own boot");
    assert!(answers.iter().all(|a| a.ok));

    // A kill for the first boot: that machine signals, the other refuses.
    let mut sleeper = spawn_sleep();
    let pid = sleeper.id();
    let kill = CommandRequest {
        action: "kill".into(),
        pid: Some(i64::from(pid)),
        boot: Some(boots[0].clone()),
        ..CommandRequest::default()
    };
    let replies = gather(&client, &subject, &kill, 2).await;
    let done: Vec<&CommandReply> = replies.iter().filter(|r| r.ok).collect();
    assert_eq!(done.len(), 1, "{replies:#?}");
    assert_eq!(done[0].boot.as_deref(), Some(boots[0].as_str()));
    assert_eq!(done[0].name.as_deref(), Some("sleep"));
    let refused = replies.iter().find(|r| !r.ok).unwrap();
    assert_eq!(refused.boot.as_deref(), Some(boots[1].as_str()));
    assert!(
        refused
            .error
            .as_deref()
            .unwrap_or_default()
            .starts_with(&format!("this command is for boot {:?}", boots[0])),
        "{refused:?}"
    );
    assert_eq!(sleeper.wait().unwrap().signal(), Some(15));

    // Each machine audited what it did with the request, under its boot.
    let mut outcomes = event_outcomes(&client, &token, 2).await;
    outcomes.sort_by_key(|(boot, _)| boots.iter().position(|b| b == boot));
    assert_eq!(
        outcomes,
        [
            (boots[0].clone(), Outcome::Ok),
            (boots[1].clone(), Outcome::Refused)
        ]
    );
}
