//! The MessagePack payload of every telemetry message.
//!
//! On the wire a sample is one map:
//! `{v, host, boot, kind, seq, ts, body}` where `body`'s fields depend on
//! `kind`. In Rust the kind is carried by the [`SampleBody`] variant, so a
//! sample whose kind and body disagree cannot be built.
//!
//! Decoding reads the envelope first (skipping the body) and then the body
//! with the type its `kind` names. Unknown fields are ignored anywhere, so a
//! newer publisher may add fields; a field of the wrong type is an error.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Version of this payload format; bumped only for a breaking change.
pub const SCHEMA_VERSION: u32 = 1;

/// How often a publisher sends cpu and ram samples unless told otherwise
/// (`--interval`); its hello announces the interval it uses
/// ([`HelloBody::interval_ms`]). A reader that has not seen a host's hello
/// assumes this one: the sink's `hosts.interval_ms` column defaults to it
/// (mysql/migrations/0001_telemetry.sql, checked by schemas/tests/defaults.rs).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How often a publisher sends procs samples unless told otherwise
/// (`--procs-interval`); likewise `hosts.procs_interval_ms`'s default.
pub const DEFAULT_PROCS_INTERVAL: Duration = Duration::from_secs(5);
/// How often a publisher sends its health unless told otherwise
/// (`--health-interval`); the Pipeline dashboard reads a publisher's
/// drops per minute.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(60);

/// What a sample holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Cpu,
    Ram,
    Procs,
    Hello,
    Bye,
    /// A command received on `cmd.<host>` and what became of it.
    Event,
    /// The publisher's own state, once a minute.
    Health,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Cpu,
        Kind::Ram,
        Kind::Procs,
        Kind::Hello,
        Kind::Bye,
        Kind::Event,
        Kind::Health,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Ram => "ram",
            Kind::Procs => "procs",
            Kind::Hello => "hello",
            Kind::Bye => "bye",
            Kind::Event => "event",
            Kind::Health => "health",
        }
    }

    pub fn from_token(token: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == token)
    }

    /// This kind's place in [`Kind::ALL`], for tables indexed by kind
    /// (`[T; Kind::ALL.len()]`): `Kind::ALL[kind.index()] == kind`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CPU use over the interval since the previous cpu sample.
/// Percentages are of all CPUs together (0–100), except `per_cpu_busy_pct`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CpuBody {
    /// 100 − idle − iowait.
    pub busy_pct: f32,
    /// user + nice.
    pub user_pct: f32,
    /// system + irq + softirq.
    pub system_pct: f32,
    pub iowait_pct: f32,
    pub steal_pct: f32,
    pub idle_pct: f32,
    /// Busy % of each CPU, in CPU order.
    pub per_cpu_busy_pct: Vec<f32>,
    pub load1: f32,
    pub load5: f32,
    pub load15: f32,
    pub cpus: u32,
}

/// Memory, in bytes, as read at the sample's time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RamBody {
    pub total: u64,
    /// total − available: what the system cannot hand out without swapping.
    pub used: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    /// Page cache plus reclaimable slab, as `free(1)` counts it.
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

/// One process (thread-group leader) in a procs snapshot.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessEntry {
    pub pid: i32,
    pub ppid: i32,
    pub name: String,
    pub uid: u32,
    /// The user name of `uid`, or the number as text when it has none.
    pub user: String,
    /// One letter as in ps: R S D Z T t X I ...
    pub state: String,
    /// Resident set size in bytes.
    pub rss: u64,
    /// rss / total RAM × 100.
    pub mem_pct: f32,
    /// CPU over the interval since the previous snapshot; 100 = one whole
    /// CPU, as top shows it. 0 for a process first seen in this snapshot.
    pub cpu_pct: f32,
    pub threads: u32,
    /// Start time, unix nanoseconds.
    pub start_ts: i64,
}

/// Every process on the host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcsBody {
    pub processes: Vec<ProcessEntry>,
}

/// Sent once when a publisher starts: what the host is and how it samples.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HelloBody {
    pub agent_version: String,
    /// Kernel release, as `uname -r`.
    pub kernel: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os: String,
    pub cpus: u32,
    /// Bytes.
    pub ram_total: u64,
    /// When the host booted, unix nanoseconds.
    pub boot_time: i64,
    /// Where the numbers come from: `module` or `procfs`.
    pub source: String,
    /// How often cpu and ram samples come, milliseconds.
    pub interval_ms: u64,
    /// How often procs samples come, milliseconds.
    pub procs_interval_ms: u64,
}

/// Sent when a publisher stops cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ByeBody {
    /// Why it stopped, e.g. `SIGTERM`.
    pub reason: String,
    /// Samples this boot dropped because its queue was full.
    pub dropped: u64,
    /// The last seq this boot stamped for each kind (`cpu`, `ram`,
    /// `procs`, ...): with it a reader can tell a complete boot from one
    /// whose newest samples were lost.
    #[serde(default)]
    pub last_seq: BTreeMap<String, u64>,
}

/// What became of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The signal was sent.
    Ok,
    /// A rule said no: a protected pid or name, an unknown action, a pid
    /// that does not exist, control disabled, or the rate limit.
    Refused,
    /// Allowed, but the kernel said no (the process exited in between, or
    /// the publisher lacks the permission).
    Failed,
    /// The request could not be read: not JSON or MessagePack of the
    /// request's shape, or a signal that is not one.
    #[default]
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The audit record of one command received on `cmd.<host>`: what was
/// asked, by whom, and what happened. Fields that the request did not carry
/// or that could not be learnt are absent (nil), never made up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventBody {
    /// The action as requested (`kill`, or an unknown action's text as
    /// sent); empty when the request could not be read at all.
    pub action: String,
    /// The pid as requested (it may be out of range: that is what was
    /// asked).
    pub pid: Option<i64>,
    /// The target's process name (`comm`), when the process was found.
    pub name: Option<String>,
    /// The signal's name without `SIG` (`TERM`, `KILL`, ...), once resolved.
    pub signal: Option<String>,
    /// Who the request says asked; a claim of the requester, not proof.
    pub requested_by: Option<String>,
    /// The NATS user of the requester, when the server passed it on
    /// (`Nats-Request-Info` of a shared service import).
    pub nats_user: Option<String>,
    pub outcome: Outcome,
    /// Why it was refused or failed; absent on success.
    pub error: Option<String>,
}

/// The publisher's own state, sent every `--health-interval` (a minute by
/// default): what it lost and why, so the Pipeline dashboard shows a
/// publisher in trouble before its host's graphs go blank. Counters are
/// cumulative since the publisher started (its boot).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthBody {
    /// Samples dropped from the full outbox (NATS away too long).
    pub dropped: u64,
    /// Samples waiting in the outbox now.
    pub outbox_depth: u64,
    /// Times the connection to NATS was made again after a loss.
    pub reconnects: u64,
    /// Where the numbers come from: `module` or `procfs`.
    pub source: String,
    pub agent_version: String,
}

/// The body of a sample; its variant is the sample's kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SampleBody {
    Cpu(CpuBody),
    Ram(RamBody),
    Procs(ProcsBody),
    Hello(HelloBody),
    Bye(ByeBody),
    Event(EventBody),
    Health(HealthBody),
}

impl SampleBody {
    pub fn kind(&self) -> Kind {
        match self {
            SampleBody::Cpu(_) => Kind::Cpu,
            SampleBody::Ram(_) => Kind::Ram,
            SampleBody::Procs(_) => Kind::Procs,
            SampleBody::Hello(_) => Kind::Hello,
            SampleBody::Bye(_) => Kind::Bye,
            SampleBody::Event(_) => Kind::Event,
            SampleBody::Health(_) => Kind::Health,
        }
    }
}

/// One telemetry message.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Schema version, [`SCHEMA_VERSION`].
    pub v: u32,
    /// The publisher's host token.
    pub host: String,
    /// Unique to each start of a publisher.
    pub boot: String,
    /// 1, 2, 3, … per boot and kind, with no gaps.
    pub seq: u64,
    /// When the sample was taken, unix nanoseconds.
    pub ts: i64,
    pub body: SampleBody,
}

/// Why a payload is not a sample.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a vigia sample: {0}")]
    Envelope(FieldError),
    #[error("unsupported schema version {0} (this build reads 1 to {SCHEMA_VERSION})")]
    Version(u32),
    #[error("bad {kind} body: {source}")]
    Body { kind: Kind, source: FieldError },
}

/// A decoding error and the field it happened in, e.g.
/// `seq: invalid type: string "three", expected u64`.
#[derive(Debug, thiserror::Error)]
#[error("{}{source}", path_prefix(path))]
pub struct FieldError {
    pub path: String,
    pub source: rmp_serde::decode::Error,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Deserializes; on failure, deserializes again keeping the path of the
/// failing field, so an operator reading a dead letter's reason knows which
/// field was wrong. Tracking the path costs on every field, so only the
/// rare failing payload pays it.
fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    rmp_serde::from_slice(bytes).or_else(|_| {
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| FieldError {
            path: e.path().to_string(),
            source: e.into_inner(),
        })
    })
}

/// The envelope as written: field order fixes the map's key order.
#[derive(Serialize)]
struct WireOut<'a> {
    v: u32,
    host: &'a str,
    boot: &'a str,
    kind: Kind,
    seq: u64,
    ts: i64,
    body: &'a SampleBody,
}

/// The envelope as read; `body` is skipped here and read by [`WireBody`].
#[derive(Deserialize)]
struct WireHead {
    v: u32,
    host: String,
    boot: String,
    kind: Kind,
    seq: u64,
    ts: i64,
}

#[derive(Deserialize)]
struct WireBody<B> {
    body: B,
}

impl Serialize for Sample {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            v: self.v,
            host: &self.host,
            boot: &self.boot,
            kind: self.kind(),
            seq: self.seq,
            ts: self.ts,
            body: &self.body,
        }
        .serialize(serializer)
    }
}

impl Sample {
    /// A sample of this schema version. The kind is the body's: there is
    /// no way to name one kind and carry another's body.
    pub fn new(
        host: impl Into<String>,
        boot: impl Into<String>,
        seq: u64,
        ts: i64,
        body: SampleBody,
    ) -> Sample {
        Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: boot.into(),
            seq,
            ts,
            body,
        }
    }

    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// The MessagePack map that goes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs of numbers, strings and vectors into a
        // Vec cannot fail: no map keys of foreign types, no I/O.
        rmp_serde::to_vec_named(self).expect("a Sample always serializes to MessagePack")
    }

    /// Reads a payload; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Sample, DecodeError> {
        let head: WireHead = from_slice(bytes).map_err(DecodeError::Envelope)?;
        if head.v == 0 || head.v > SCHEMA_VERSION {
            return Err(DecodeError::Version(head.v));
        }
        let body = match head.kind {
            Kind::Cpu => SampleBody::Cpu(body(bytes, head.kind)?),
            Kind::Ram => SampleBody::Ram(body(bytes, head.kind)?),
            Kind::Procs => SampleBody::Procs(body(bytes, head.kind)?),
            Kind::Hello => SampleBody::Hello(body(bytes, head.kind)?),
            Kind::Bye => SampleBody::Bye(body(bytes, head.kind)?),
            Kind::Event => SampleBody::Event(body(bytes, head.kind)?),
            Kind::Health => SampleBody::Health(body(bytes, head.kind)?),
        };
        Ok(Sample {
            v: head.v,
            host: head.host,
            boot: head.boot,
            seq: head.seq,
            ts: head.ts,
            body,
        })
    }

    /// The subject this sample is published on, `telemetry.<host>.<kind>`.
    pub fn subject(&self) -> String {
        crate::subject::telemetry(&self.host, self.kind())
    }

    /// `Nats-Msg-Id` of this sample.
    pub fn msg_id(&self) -> String {
        crate::subject::msg_id(&self.host, &self.boot, self.kind(), self.seq)
    }
}

fn body<B: serde::de::DeserializeOwned>(bytes: &[u8], kind: Kind) -> Result<B, DecodeError> {
    from_slice::<WireBody<B>>(bytes)
        .map(|w| w.body)
        .map_err(|source| DecodeError::Body { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(body: SampleBody) -> Sample {
        Sample::new(
            "web-1",
            "5f3a9c0d2e1b4a67",
            42,
            1_764_000_000_123_456_789,
            body,
        )
    }

    #[test]
    fn each_kind_indexes_its_place_in_all() {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(Kind::ALL[kind.index()], kind);
        }
    }

    #[test]
    fn a_new_sample_is_of_this_version_and_its_bodys_kind() {
        let s = Sample::new("h", "b", 3, 5, SampleBody::Procs(ProcsBody::default()));
        assert_eq!(
            (s.v, s.kind(), s.seq, s.ts),
            (SCHEMA_VERSION, Kind::Procs, 3, 5)
        );
        assert_eq!((s.host.as_str(), s.boot.as_str()), ("h", "b"));
    }

    #[test]
    fn the_payload_is_a_map_with_named_fields() {
        let bytes = sample(SampleBody::Ram(RamBody {
            total: 8 << 30,
            ..RamBody::default()
        }))
        .encode();
        let value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        let map = value.as_map().expect("a map");
        let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["v", "host", "boot", "kind", "seq", "ts", "body"]);
        let kind = map
            .iter()
            .find(|(k, _)| k.as_str() == Some("kind"))
            .unwrap();
        assert_eq!(kind.1.as_str(), Some("ram"));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let value = rmpv::Value::Map(vec![
            ("v".into(), 1.into()),
            ("host".into(), "a".into()),
            ("boot".into(), "b".into()),
            ("kind".into(), "bye".into()),
            ("seq".into(), 3.into()),
            ("ts".into(), 5.into()),
            ("added_later".into(), "x".into()),
            (
                "body".into(),
                rmpv::Value::Map(vec![
                    ("reason".into(), "SIGTERM".into()),
                    ("dropped".into(), 0.into()),
                    ("also_new".into(), rmpv::Value::Array(vec![1.into()])),
                ]),
            ),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        let s = Sample::decode(&bytes).unwrap();
        assert_eq!(s.seq, 3);
        assert_eq!(
            s.body,
            SampleBody::Bye(ByeBody {
                reason: "SIGTERM".into(),
                dropped: 0,
                last_seq: BTreeMap::new(),
            })
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let mut bytes = Vec::new();
        let value = rmpv::Value::Map(vec![
            ("v".into(), 1.into()),
            ("host".into(), "a".into()),
            ("boot".into(), "b".into()),
            ("kind".into(), "ram".into()),
            ("seq".into(), "not a number".into()),
            ("ts".into(), 5.into()),
            ("body".into(), rmpv::Value::Map(vec![])),
        ]);
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        let err = Sample::decode(&bytes).unwrap_err();
        assert!(matches!(err, DecodeError::Envelope(_)));
        assert!(err.to_string().contains("seq: "), "{err}");

        let good = sample(SampleBody::Ram(RamBody::default())).encode();
        // A body that is a string instead of a map.
        let mut value = rmpv::decode::read_value(&mut &good[..]).unwrap();
        if let rmpv::Value::Map(m) = &mut value {
            m.last_mut().unwrap().1 = "oops".into();
        }
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        let err = Sample::decode(&bytes).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Body {
                    kind: Kind::Ram,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_and_future_version_are_errors() {
        let good = sample(SampleBody::Bye(ByeBody::default())).encode();
        let mut value = rmpv::decode::read_value(&mut &good[..]).unwrap();
        if let rmpv::Value::Map(m) = &mut value {
            m[3].1 = "from-the-future".into();
        }
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        assert!(Sample::decode(&bytes).is_err());

        let mut v2 = sample(SampleBody::Bye(ByeBody::default()));
        v2.v = 2;
        assert!(matches!(
            Sample::decode(&v2.encode()),
            Err(DecodeError::Version(2))
        ));
    }

    #[test]
    fn json_has_the_same_shape() {
        let s = sample(SampleBody::Bye(ByeBody {
            reason: "SIGTERM".into(),
            dropped: 2,
            last_seq: BTreeMap::from([("cpu".to_owned(), 9)]),
        }));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["kind"], "bye");
        assert_eq!(json["body"]["dropped"], 2);
        assert_eq!(json["body"]["last_seq"]["cpu"], 9);
        assert_eq!(json["seq"], 42);
    }

    fn pct() -> impl Strategy<Value = f32> {
        0.0f32..=100.0
    }

    fn cpu_body() -> impl Strategy<Value = CpuBody> {
        (
            (pct(), pct(), pct(), pct(), pct(), pct()),
            prop::collection::vec(pct(), 0..64),
            (0.0f32..500.0, 0.0f32..500.0, 0.0f32..500.0),
            any::<u32>(),
        )
            .prop_map(
                |((b, u, s, io, st, id), per, (l1, l5, l15), cpus)| CpuBody {
                    busy_pct: b,
                    user_pct: u,
                    system_pct: s,
                    iowait_pct: io,
                    steal_pct: st,
                    idle_pct: id,
                    per_cpu_busy_pct: per,
                    load1: l1,
                    load5: l5,
                    load15: l15,
                    cpus,
                },
            )
    }

    fn ram_body() -> impl Strategy<Value = RamBody> {
        any::<[u64; 8]>().prop_map(|n| RamBody {
            total: n[0],
            used: n[1],
            free: n[2],
            available: n[3],
            buffers: n[4],
            cached: n[5],
            swap_total: n[6],
            swap_free: n[7],
        })
    }

    fn process() -> impl Strategy<Value = ProcessEntry> {
        (
            (
                any::<i32>(),
                any::<i32>(),
                ".{0,20}",
                any::<u32>(),
                ".{0,12}",
            ),
            (
                "[RSDZTtXI]",
                any::<u64>(),
                pct(),
                0.0f32..6400.0,
                any::<u32>(),
            ),
            any::<i64>(),
        )
            .prop_map(
                |((pid, ppid, name, uid, user), (state, rss, mem, cpu, threads), start)| {
                    ProcessEntry {
                        pid,
                        ppid,
                        name,
                        uid,
                        user,
                        state,
                        rss,
                        mem_pct: mem,
                        cpu_pct: cpu,
                        threads,
                        start_ts: start,
                    }
                },
            )
    }

    fn body() -> impl Strategy<Value = SampleBody> {
        prop_oneof![
            cpu_body().prop_map(SampleBody::Cpu),
            ram_body().prop_map(SampleBody::Ram),
            prop::collection::vec(process(), 0..40)
                .prop_map(|processes| SampleBody::Procs(ProcsBody { processes })),
            (
                (".{0,10}", ".{0,30}", ".{0,30}", any::<u32>(), any::<u64>()),
                (any::<i64>(), "module|procfs", any::<u64>(), any::<u64>())
            )
                .prop_map(|((a, k, os, cpus, ram), (bt, src, i, pi))| {
                    SampleBody::Hello(HelloBody {
                        agent_version: a,
                        kernel: k,
                        os,
                        cpus,
                        ram_total: ram,
                        boot_time: bt,
                        source: src,
                        interval_ms: i,
                        procs_interval_ms: pi,
                    })
                }),
            (
                ".{0,20}",
                any::<u64>(),
                prop::collection::btree_map("[a-z]{1,8}", any::<u64>(), 0..4)
            )
                .prop_map(|(reason, dropped, last_seq)| SampleBody::Bye(ByeBody {
                    reason,
                    dropped,
                    last_seq
                })),
            event_body().prop_map(SampleBody::Event),
            (
                (any::<u64>(), any::<u64>(), any::<u64>()),
                ("module|procfs", ".{0,10}")
            )
                .prop_map(
                    |((dropped, outbox_depth, reconnects), (source, agent_version))| {
                        SampleBody::Health(HealthBody {
                            dropped,
                            outbox_depth,
                            reconnects,
                            source,
                            agent_version,
                        })
                    }
                ),
        ]
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Ok),
            Just(Outcome::Refused),
            Just(Outcome::Failed),
            Just(Outcome::Invalid),
        ]
    }

    fn event_body() -> impl Strategy<Value = EventBody> {
        (
            (
                ".{0,12}",
                any::<Option<i64>>(),
                proptest::option::of(".{0,15}"),
            ),
            (
                proptest::option::of("[A-Z0-9]{1,6}"),
                proptest::option::of(".{0,20}"),
                proptest::option::of(".{0,20}"),
            ),
            (outcome(), proptest::option::of(".{0,60}")),
        )
            .prop_map(
                |((action, pid, name), (signal, requested_by, nats_user), (outcome, error))| {
                    EventBody {
                        action,
                        pid,
                        name,
                        signal,
                        requested_by,
                        nats_user,
                        outcome,
                        error,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn every_kind_round_trips(
            body in body(),
            host in "[a-z0-9_-]{1,64}",
            boot in "[0-9a-f]{16}",
            seq in any::<u64>(),
            ts in any::<i64>(),
        ) {
            let s = Sample::new(host, boot, seq, ts, body);
            let back = Sample::decode(&s.encode()).unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Sample::decode(&bytes);
        }

        #[test]
        fn mangled_samples_never_panic(body in body(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
            let mut bytes = sample(body).encode();
            let i = cut.index(bytes.len());
            bytes[i] ^= flip;
            let _ = Sample::decode(&bytes);
            let _ = Sample::decode(&bytes[..i]);
        }
    }
}
