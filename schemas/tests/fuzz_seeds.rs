//! The seed corpora of the fuzz targets (fuzz/corpus/<target>/): valid
//! payloads of every kind, made here from the contract's own types so that
//! they follow it as it changes.
//!
//! This test fails when a committed seed differs from what the contract
//! encodes today; `VIGIA_WRITE_FUZZ_SEEDS=1 cargo test -p vigia-schema
//! --test fuzz_seeds` rewrites them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vigia_schema::{
    ByeBody, CommandReply, CommandRequest, CpuBody, Encoding, EventBody, HealthBody, HelloBody,
    Outcome, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody, SignalSpec,
};

fn sample(seq: u64, body: SampleBody) -> Sample {
    Sample::new(
        "web-1",
        "5f3a9c0d2e1b4a67",
        seq,
        1_764_000_000_123_456_789,
        body,
    )
}

fn samples() -> Vec<(&'static str, Sample)> {
    let process = |pid: i32, name: &str, cpu_pct: f32| ProcessEntry {
        pid,
        ppid: 1,
        name: name.into(),
        uid: 1000,
        user: "alice".into(),
        state: "S".into(),
        rss: 12 << 20,
        mem_pct: 0.3,
        cpu_pct,
        threads: 4,
        start_ts: 1_763_990_000_000_000_000,
    };
    vec![
        (
            "cpu",
            sample(
                1,
                SampleBody::Cpu(CpuBody {
                    busy_pct: 12.5,
                    user_pct: 10.0,
                    system_pct: 2.0,
                    iowait_pct: 0.25,
                    steal_pct: 0.25,
                    idle_pct: 87.25,
                    per_cpu_busy_pct: vec![20.0, 5.0],
                    load1: 0.42,
                    load5: 0.3,
                    load15: 0.2,
                    cpus: 2,
                }),
            ),
        ),
        (
            "ram",
            sample(
                2,
                SampleBody::Ram(RamBody {
                    total: 8 << 30,
                    used: 2 << 30,
                    free: 1 << 30,
                    available: 6 << 30,
                    buffers: 100 << 20,
                    cached: 4 << 30,
                    swap_total: 2 << 30,
                    swap_free: 2 << 30,
                }),
            ),
        ),
        (
            "procs",
            sample(
                3,
                SampleBody::Procs(ProcsBody {
                    processes: vec![process(1, "systemd", 0.0), process(4242, "stress", 99.5)],
                }),
            ),
        ),
        (
            "hello",
            sample(
                1,
                SampleBody::Hello(HelloBody {
                    agent_version: "0.1.0".into(),
                    kernel: "6.1.0-28-amd64".into(),
                    os: "Debian GNU/Linux 12 (bookworm)".into(),
                    cpus: 2,
                    ram_total: 8 << 30,
                    boot_time: 1_763_900_000_000_000_000,
                    source: "procfs".into(),
                    interval_ms: 1000,
                    procs_interval_ms: 5000,
                }),
            ),
        ),
        (
            "bye",
            sample(
                1,
                SampleBody::Bye(ByeBody {
                    reason: "SIGTERM".into(),
                    dropped: 0,
                    last_seq: BTreeMap::from([("cpu".into(), 60), ("ram".into(), 60)]),
                }),
            ),
        ),
        (
            "event",
            sample(
                1,
                SampleBody::Event(EventBody {
                    action: "kill".into(),
                    pid: Some(4242),
                    name: Some("stress".into()),
                    signal: Some("TERM".into()),
                    requested_by: Some("alice@ops".into()),
                    nats_user: Some("ops".into()),
                    outcome: Outcome::Refused,
                    error: Some("pid 4242 (stress) is protected by the deny list".into()),
                }),
            ),
        ),
        (
            "health",
            sample(
                2,
                SampleBody::Health(HealthBody {
                    dropped: 120,
                    outbox_depth: 3,
                    reconnects: 1,
                    source: "procfs".into(),
                    agent_version: "0.1.0".into(),
                }),
            ),
        ),
    ]
}

fn requests() -> Vec<(String, Vec<u8>)> {
    let kill = |pid: Option<i64>, signal: Option<SignalSpec>| CommandRequest {
        action: "kill".into(),
        pid,
        signal,
        requested_by: Some("alice@ops".into()),
        boot: None,
    };
    let mut seeds = vec![
        (
            "documented.json".to_owned(),
            br#"{"action":"kill","pid":1234,"signal":"TERM","requested_by":"operator"}"#.to_vec(),
        ),
        (
            "unknown-field.json".to_owned(),
            br#" {"action":"kill","pid":7,"signal":9,"x":[1]}"#.to_vec(),
        ),
    ];
    let cases = [
        // A pid no Linux process can have: the handler runs it to the end.
        ("no-such-pid", kill(Some(999_999_999), None)),
        (
            "sigkill-number",
            kill(Some(999_999_999), Some(SignalSpec::Number(9))),
        ),
        (
            "sighup-name",
            kill(Some(999_999_999), Some(SignalSpec::Name("sighup".into()))),
        ),
        ("no-pid", kill(None, Some(SignalSpec::Name("INT".into())))),
        ("pid-zero", kill(Some(0), None)),
        (
            "unknown-action",
            CommandRequest {
                action: "reboot".into(),
                ..kill(Some(1), None)
            },
        ),
        (
            "who",
            CommandRequest {
                action: "who".into(),
                ..CommandRequest::default()
            },
        ),
        (
            "for-a-boot",
            CommandRequest {
                boot: Some("5f3a9c0d2e1b4a67".into()),
                ..kill(Some(999_999_999), None)
            },
        ),
    ];
    for (name, request) in cases {
        seeds.push((format!("{name}.json"), request.encode(Encoding::Json)));
        seeds.push((
            format!("{name}.msgpack"),
            request.encode(Encoding::MessagePack),
        ));
    }
    seeds
}

fn replies() -> Vec<(String, Vec<u8>)> {
    let ok = CommandReply {
        ok: true,
        pid: Some(4242),
        name: Some("stress".into()),
        signal: Some("TERM".into()),
        error: None,
        ..CommandReply::default()
    };
    let who = CommandReply {
        ok: true,
        boot: Some("5f3a9c0d2e1b4a67".into()),
        hostname: Some("web-1.us-central1-a.c.my-project.internal".into()),
        ..CommandReply::default()
    };
    let refused = CommandReply {
        ok: false,
        pid: Some(1),
        error: Some("pid 1 is init; it is never signalled".into()),
        ..CommandReply::default()
    };
    let mut seeds = Vec::new();
    for (name, reply) in [("ok", ok), ("refused", refused), ("who", who)] {
        seeds.push((format!("{name}.json"), reply.encode(Encoding::Json)));
        seeds.push((
            format!("{name}.msgpack"),
            reply.encode(Encoding::MessagePack),
        ));
    }
    seeds
}

/// Every target's seeds: (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut all = Vec::new();
    for (name, s) in samples() {
        let bytes = s.encode();
        all.push(("sample_decode", format!("{name}.msgpack"), bytes.clone()));
        all.push(("vigiactl_decode", format!("{name}.msgpack"), bytes.clone()));
        // classify: mode byte 0, the subject the payload names.
        let mut derived = vec![0u8];
        derived.extend_from_slice(&bytes);
        all.push(("classify", format!("{name}.msgpack"), derived));
        // classify: mode byte 1, `<subject>\n<payload>` as sent.
        let mut sent = format!("\x01telemetry.{}.{}\n", s.host, s.kind()).into_bytes();
        sent.extend_from_slice(&bytes);
        all.push(("classify", format!("{name}-subject.bin"), sent));
    }
    for (name, bytes) in requests() {
        all.push(("control_request", name, bytes));
    }
    for (name, bytes) in replies() {
        all.push(("command_reply", name, bytes));
    }
    all
}

#[test]
fn committed_seeds_are_current() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = std::env::var_os("VIGIA_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (target, name, bytes) in seeds() {
        let path = corpus.join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(format!("{target}/{name}"));
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz seeds missing or stale: {stale:?}; rewrite them with \
         VIGIA_WRITE_FUZZ_SEEDS=1 cargo test -p vigia-schema --test fuzz_seeds"
    );
}

#[test]
fn seeds_are_what_their_decoders_accept() {
    for (target, name, bytes) in seeds() {
        match target {
            "sample_decode" | "vigiactl_decode" => {
                Sample::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "command_reply" => {
                CommandReply::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "control_request" => {
                CommandRequest::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => {}
        }
    }
}
