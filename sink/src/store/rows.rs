//! How a batch of samples maps onto the tables, before any SQL: grouping
//! by kind, the per-host summary that updates `hosts`, and the choice of
//! processes kept in the history. Pure functions, tested without MySQL.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime};
use vigia_schema::{
    CpuBody, EventBody, HealthBody, HelloBody, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody,
};

/// A unix-nanosecond time as the DATETIME(6) it is stored as (UTC).
pub fn datetime(ns: i64) -> NaiveDateTime {
    DateTime::from_timestamp_nanos(ns).naive_utc()
}

/// `s` cut to at most `max` characters, as a VARCHAR(max) column holds it.
pub fn fit(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// What one batch tells about one host.
#[derive(Debug)]
pub struct HostSeen<'a> {
    pub oldest_ts: i64,
    /// The newest sample of any kind: it decides boot, status, last_seen.
    pub newest: &'a Sample,
    pub hello: Option<(&'a Sample, &'a HelloBody)>,
    pub procs: Option<(&'a Sample, &'a ProcsBody)>,
}

impl HostSeen<'_> {
    pub fn newest_is_bye(&self) -> bool {
        matches!(self.newest.body, SampleBody::Bye(_))
    }
}

/// A batch sorted by destination.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    pub cpu: Vec<(&'a Sample, &'a CpuBody)>,
    pub ram: Vec<(&'a Sample, &'a RamBody)>,
    pub procs: Vec<(&'a Sample, &'a ProcsBody)>,
    /// hello and bye samples, for `host_events`.
    pub lifecycle: Vec<&'a Sample>,
    /// `event` samples: commands a publisher took on cmd.<host>, for
    /// `commands`.
    pub command_events: Vec<(&'a Sample, &'a EventBody)>,
    /// `health` samples: the publishers' own state, for `publisher_health`.
    pub health: Vec<(&'a Sample, &'a HealthBody)>,
    /// Sorted by host, which is also the order rows are locked in, so two
    /// sinks writing the same hosts cannot deadlock on them.
    pub hosts: BTreeMap<&'a str, HostSeen<'a>>,
}

impl<'a> Plan<'a> {
    pub fn new(samples: &[&'a Sample]) -> Self {
        let mut plan = Plan::default();
        for &sample in samples {
            match &sample.body {
                SampleBody::Cpu(b) => plan.cpu.push((sample, b)),
                SampleBody::Ram(b) => plan.ram.push((sample, b)),
                SampleBody::Procs(b) => plan.procs.push((sample, b)),
                SampleBody::Hello(_) | SampleBody::Bye(_) => plan.lifecycle.push(sample),
                SampleBody::Event(b) => plan.command_events.push((sample, b)),
                SampleBody::Health(b) => plan.health.push((sample, b)),
            }
            let seen = plan.hosts.entry(sample.host.as_str()).or_insert(HostSeen {
                oldest_ts: sample.ts,
                newest: sample,
                hello: None,
                procs: None,
            });
            seen.oldest_ts = seen.oldest_ts.min(sample.ts);
            if newer(sample, seen.newest) {
                seen.newest = sample;
            }
            match &sample.body {
                SampleBody::Hello(h) if seen.hello.is_none_or(|(s, _)| newer(sample, s)) => {
                    seen.hello = Some((sample, h));
                }
                SampleBody::Procs(p) if seen.procs.is_none_or(|(s, _)| newer(sample, s)) => {
                    seen.procs = Some((sample, p));
                }
                _ => {}
            }
        }
        plan
    }
}

/// Later in time; at the same time, `bye` is last of a boot.
fn newer(a: &Sample, b: &Sample) -> bool {
    let bye = |s: &Sample| matches!(s.body, SampleBody::Bye(_));
    (a.ts, bye(a)) > (b.ts, bye(b))
}

/// The processes of a snapshot kept in the history: the top `n` by CPU and
/// the top `n` by RSS, each process once.
pub fn history(procs: &ProcsBody, n: usize) -> Vec<&ProcessEntry> {
    let mut by_cpu: Vec<&ProcessEntry> = procs.processes.iter().collect();
    let mut by_rss = by_cpu.clone();
    by_cpu.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.pid.cmp(&b.pid)));
    by_rss.sort_by(|a, b| b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid)));
    let mut seen = HashSet::new();
    by_cpu
        .into_iter()
        .take(n)
        .chain(by_rss.into_iter().take(n))
        .filter(|p| seen.insert(p.pid))
        .collect()
}

/// Each pid once (a malformed snapshot could repeat one; the first wins).
pub fn unique_processes(procs: &ProcsBody) -> Vec<&ProcessEntry> {
    let mut seen = HashSet::with_capacity(procs.processes.len());
    procs
        .processes
        .iter()
        .filter(|p| seen.insert(p.pid))
        .collect()
}

/// Process counts by state: running, sleeping, blocked, zombie, other.
pub fn state_counts(procs: &ProcsBody) -> [u32; 5] {
    let mut counts = [0u32; 5];
    for p in &procs.processes {
        let slot = match p.state.as_str() {
            "R" => 0,
            "S" | "I" => 1,
            "D" => 2,
            "Z" => 3,
            _ => 4,
        };
        counts[slot] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{ByeBody, SCHEMA_VERSION};

    fn sample(host: &str, ts: i64, body: SampleBody) -> Sample {
        Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: "b".into(),
            seq: ts as u64,
            ts,
            body,
        }
    }

    fn process(pid: i32, cpu: f32, rss: u64, state: &str) -> ProcessEntry {
        ProcessEntry {
            pid,
            cpu_pct: cpu,
            rss,
            state: state.into(),
            ..ProcessEntry::default()
        }
    }

    #[test]
    fn plan_groups_and_summarises_hosts() {
        let samples = [
            sample("b", 5, SampleBody::Ram(RamBody::default())),
            sample("a", 3, SampleBody::Procs(ProcsBody::default())),
            sample("a", 9, SampleBody::Bye(ByeBody::default())),
            sample("a", 7, SampleBody::Procs(ProcsBody::default())),
            sample("a", 9, SampleBody::Ram(RamBody::default())),
        ];
        let refs: Vec<&Sample> = samples.iter().collect();
        let plan = Plan::new(&refs);
        assert_eq!(plan.ram.len(), 2);
        assert_eq!(plan.procs.len(), 2);
        assert_eq!(plan.lifecycle.len(), 1);
        assert_eq!(plan.hosts.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
        let a = &plan.hosts["a"];
        assert_eq!(a.oldest_ts, 3);
        assert!(a.newest_is_bye(), "bye is last at equal times");
        assert_eq!(a.procs.unwrap().0.ts, 7);
    }

    #[test]
    fn history_is_top_cpu_and_top_rss_once_each() {
        let procs = ProcsBody {
            processes: vec![
                process(1, 50.0, 10, "R"),
                process(2, 1.0, 900, "S"),
                process(3, 40.0, 800, "S"),
                process(4, 0.0, 5, "Z"),
            ],
        };
        let pids: Vec<i32> = history(&procs, 2).iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, 3, 2]);
        assert_eq!(state_counts(&procs), [1, 2, 0, 1, 0]);
    }

    #[test]
    fn fit_cuts_on_characters() {
        assert_eq!(fit("héllo", 2), "hé");
        assert_eq!(fit("hi", 5), "hi");
    }

    #[test]
    fn datetimes_are_utc_microseconds() {
        let dt = datetime(1_700_000_000_123_456_789);
        assert_eq!(dt.to_string(), "2023-11-14 22:13:20.123456789");
    }
}
