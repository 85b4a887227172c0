//! The synthetic fleet: samples that look like real publishers', made
//! without reading /proc, for every test and benchmark that needs many
//! hosts. Two ways to use it, one vocabulary (names, users, RAM, the same
//! CPU and RAM curves):
//!
//! - A fleet living through a span of time ([`Plan`], [`Timeline`]): each
//!   host starts with a `hello`, samples CPU and RAM every `interval` and
//!   its processes every `procs_interval`, sends its `health` every minute;
//!   a tenth of the hosts join late and another tenth leave before the end
//!   (half with a `bye`, half going silent, which the sink's liveness sweep
//!   then marks offline): the autoscaling churn the Fleet dashboard shows.
//!   Every ten minutes each host also records a kill request's audit
//!   `event`, as a publisher does for process control. `vigia_dashboards::
//!   fill` writes it through the sink's own insert path for the dashboards'
//!   tests and the storage and dashboard benchmarks.
//! - Single bodies for the benchmarks that publish a flood
//!   ([`steady_processes`], [`cpu_body`], [`ram_body`]). They count the
//!   rows the sink writes, so their process table fixes which processes
//!   make the history (the top [`HISTORY_TOP`] by CPU and by RSS never
//!   overlap); the living fleet's processes move instead, as the
//!   dashboards need series that change.
//!
//! Every sample is numbered by the contract's [`Stamper`], so each host's
//! seqs are 1, 2, 3, … per kind as a publisher's are.

use std::time::Duration;

use vigia_schema::sample::{DEFAULT_HEALTH_INTERVAL, DEFAULT_INTERVAL, DEFAULT_PROCS_INTERVAL};
use vigia_schema::stamp::unix_nanos;
use vigia_schema::{
    ByeBody, CpuBody, EventBody, HealthBody, HelloBody, HostToken, HostTokenError, Outcome,
    ProcessEntry, ProcsBody, RamBody, Sample, SampleBody, Stamper,
};

/// RAM of every synthetic host, in bytes.
pub const TOTAL_RAM: u64 = 16 << 30;
/// CPUs of every synthetic host.
pub const CPUS: u32 = 4;

/// Processes of each [`steady_processes`] snapshot that the sink keeps in
/// the history with its default `--history-top 10`.
pub const HISTORY_ROWS: usize = 2 * HISTORY_TOP;
/// The sink's default `--history-top`.
pub const HISTORY_TOP: usize = 10;

const NAMES: [&str; 20] = [
    "systemd",
    "sshd",
    "nginx",
    "postgres",
    "java",
    "python3",
    "node",
    "redis-server",
    "containerd",
    "dockerd",
    "kworker/0:1",
    "rsyslogd",
    "cron",
    "vigia-publisher",
    "bash",
    "envoy",
    // A quote, for the dashboards' SQL quoting.
    "o'reilly-agent",
    "chronyd",
    "journald",
    "etcd",
];
const USERS: [(u32, &str); 4] = [
    (0, "root"),
    (33, "www-data"),
    (105, "postgres"),
    (1000, "app"),
];
const SECOND: i64 = 1_000_000_000;

/// `{prefix}-{index:03}`: `host-005`, `sim-1234`.
pub fn host_name(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index:03}")
}

/// The index [`host_name`] put after `prefix`.
pub fn host_index(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()
}

/// A cheap deterministic pseudo-random number in [0, 1) from integers.
pub fn noise(a: u64, b: u64) -> f32 {
    let mut x = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

/// Host `host`'s CPU at `ts`: a level that drifts every ten minutes, a
/// little noise every second.
pub fn cpu_body(host: u64, ts: i64) -> CpuBody {
    let t = (ts / SECOND) as u64;
    let base = 10.0 + 70.0 * noise(host, t / 600);
    let busy = (base + 10.0 * noise(host, t)).min(100.0);
    let user = busy * 0.7;
    let system = busy * 0.25;
    let iowait = (100.0 - busy) * 0.02;
    CpuBody {
        busy_pct: busy,
        user_pct: user,
        system_pct: system,
        iowait_pct: iowait,
        steal_pct: busy - user - system,
        idle_pct: 100.0 - busy - iowait,
        per_cpu_busy_pct: vec![busy; CPUS as usize],
        load1: busy / 25.0,
        load5: base / 25.0,
        load15: base / 25.0,
        cpus: CPUS,
    }
}

/// Host `host`'s memory at `ts`: a use that drifts every fifteen minutes,
/// half of the rest page cache.
pub fn ram_body(host: u64, ts: i64) -> RamBody {
    let t = (ts / SECOND) as u64;
    let used = (TOTAL_RAM as f32 * (0.2 + 0.6 * noise(host + 7, t / 900))) as u64;
    let cached = (TOTAL_RAM - used) / 2;
    RamBody {
        total: TOTAL_RAM,
        used,
        free: TOTAL_RAM - used - cached,
        available: TOTAL_RAM - used,
        buffers: 64 << 20,
        cached,
        swap_total: 0,
        swap_free: 0,
    }
}

/// `n` processes of host `host`, idle and empty: pid 1 first, the others
/// its children, started a second apart before `started`.
fn process_table(host: usize, n: usize, started: i64) -> Vec<ProcessEntry> {
    (0..n)
        .map(|k| {
            let (uid, user) = USERS[k % USERS.len()];
            ProcessEntry {
                pid: if k == 0 {
                    1
                } else {
                    100 + k as i32 * 7 + (host % 5) as i32
                },
                ppid: if k == 0 { 0 } else { 1 },
                name: NAMES[k % NAMES.len()].to_owned(),
                uid,
                user: user.to_owned(),
                state: "S".into(),
                rss: 0,
                mem_pct: 0.0,
                cpu_pct: 0.0,
                threads: 1 + (k % 8) as u32,
                start_ts: started - k as i64 * SECOND,
            }
        })
        .collect()
}

/// A process table of `n` processes whose history the benchmarks can
/// count: the first [`HISTORY_TOP`] are the busiest by CPU and small; the
/// next [`HISTORY_TOP`] are the largest by RSS and idle; the rest are idle
/// and small. So the history of a snapshot is exactly [`HISTORY_ROWS`]
/// rows, the first ones of the table.
pub fn steady_processes(host: usize, n: usize) -> ProcsBody {
    let mut processes = process_table(host, n, 1_700_000_000 * SECOND);
    for (k, p) in processes.iter_mut().enumerate() {
        (p.cpu_pct, p.rss) = if k < HISTORY_TOP {
            (90.0 - k as f32, 4 << 20)
        } else if k < HISTORY_ROWS {
            (0.0, (2 << 30) - (k as u64) * (1 << 20))
        } else {
            (0.0, (1 << 20) + (k as u64) * 4096)
        };
        p.mem_pct = p.rss as f32 / TOTAL_RAM as f32 * 100.0;
        if k % 50 == 0 {
            p.state = "R".into();
        }
    }
    ProcsBody { processes }
}

/// A fleet living through a span of time, ending when it is generated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hosts: u32,
    /// Host names are `{prefix}-{n:03}`.
    pub prefix: String,
    pub span: Duration,
    pub interval: Duration,
    pub procs_interval: Duration,
    /// Processes in each snapshot (the sink keeps the top N by CPU and by
    /// RSS of them in the history and all of the newest in `processes`).
    pub processes: u32,
    /// Samples per batch, as the sink's batch size.
    pub batch: usize,
    /// Writers working at once, each on its own share (part) of the hosts.
    pub writers: u32,
    /// The sink's `--history-top` to write with.
    pub history_top: usize,
}

impl Plan {
    /// A small fleet over the last `span` at the publisher's defaults, for
    /// tests.
    pub fn small(hosts: u32, span: Duration) -> Self {
        Self {
            hosts,
            prefix: "host".into(),
            span,
            interval: DEFAULT_INTERVAL,
            procs_interval: DEFAULT_PROCS_INTERVAL,
            processes: 40,
            batch: 5000,
            writers: 1,
            history_top: HISTORY_TOP,
        }
    }
}

/// One host's life in the plan.
struct Host {
    stamper: Stamper,
    index: u32,
    /// Nanoseconds.
    joins: i64,
    /// When it leaves, and whether with a bye.
    leaves: Option<(i64, bool)>,
    procs: Vec<ProcessEntry>,
}

/// Ticks between two kill requests to one host (10 minutes at 1 s).
const COMMAND_EVERY: i64 = 600;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Host {
    fn new(plan: &Plan, index: u32, start: i64, end: i64) -> Result<Host, HostTokenError> {
        let span = end - start;
        // Every tenth host joins a third of the way in; every tenth (offset
        // by five) leaves two thirds of the way in, alternately with a bye
        // or not.
        let joins = if index % 10 == 3 {
            start + span / 3
        } else {
            start
        };
        let leaves = (index % 10 == 8).then(|| (start + 2 * span / 3, index % 20 == 8));
        let name = HostToken::parse(&host_name(&plan.prefix, index as usize))?;
        Ok(Host {
            stamper: Stamper::new(name, format!("b{index:03}{:x}", joins / SECOND)),
            index,
            joins,
            leaves,
            procs: process_table(index as usize, plan.processes as usize, joins),
        })
    }

    fn alive_at(&self, ts: i64) -> bool {
        ts >= self.joins && self.leaves.is_none_or(|(l, _)| ts < l)
    }

    fn hello(&mut self, plan: &Plan) -> Sample {
        let body = SampleBody::Hello(HelloBody {
            agent_version: "0.1.0".into(),
            kernel: "6.1.0-synthetic".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            cpus: CPUS,
            ram_total: TOTAL_RAM,
            boot_time: self.joins - 3_600 * SECOND,
            source: self.source().into(),
            interval_ms: plan.interval.as_millis() as u64,
            procs_interval_ms: plan.procs_interval.as_millis() as u64,
        });
        self.stamper.stamp_at(body, self.joins)
    }

    fn cpu(&mut self, ts: i64) -> Sample {
        let body = SampleBody::Cpu(cpu_body(u64::from(self.index), ts));
        self.stamper.stamp_at(body, ts)
    }

    fn ram(&mut self, ts: i64) -> Sample {
        let body = SampleBody::Ram(ram_body(u64::from(self.index), ts));
        self.stamper.stamp_at(body, ts)
    }

    fn procs(&mut self, ts: i64) -> Sample {
        let t = (ts / SECOND) as u64;
        let host = u64::from(self.index);
        for (i, p) in self.procs.iter_mut().enumerate() {
            let weight = 1.0 / (1.0 + i as f32);
            p.cpu_pct = 100.0 * weight * noise(host * 1000 + i as u64, t / 30);
            p.rss = ((1u64 << 20) as f32 * 800.0 * weight * (0.5 + noise(host + i as u64, t / 300)))
                as u64;
            p.mem_pct = 100.0 * p.rss as f32 / TOTAL_RAM as f32;
            p.state = match i % 17 {
                0 if noise(host, t) < 0.5 => "R",
                16 => "I",
                13 => "D",
                _ => "S",
            }
            .into();
        }
        let body = SampleBody::Procs(ProcsBody {
            processes: self.procs.clone(),
        });
        self.stamper.stamp_at(body, ts)
    }

    /// Every third host reads the kernel module, the others procfs.
    fn source(&self) -> &'static str {
        if self.index.is_multiple_of(3) {
            "module"
        } else {
            "procfs"
        }
    }

    /// The publisher's own health: a host in twenty lost its NATS
    /// connection once, half-way, and dropped samples meanwhile; a tenth
    /// run an older agent.
    fn health(&mut self, ts: i64, halfway: i64) -> Sample {
        let troubled = self.index % 20 == 5 && ts >= halfway;
        let body = SampleBody::Health(HealthBody {
            dropped: if troubled { 120 } else { 0 },
            outbox_depth: u64::from(troubled) * 3,
            reconnects: u64::from(troubled),
            source: self.source().into(),
            agent_version: if self.index % 10 == 9 {
                "0.0.9"
            } else {
                "0.1.0"
            }
            .into(),
        });
        self.stamper.stamp_at(body, ts)
    }

    /// The audit record of a kill request an operator sent this host.
    fn event(&mut self, ts: i64, n: u64) -> Sample {
        let target = &self.procs[(n as usize) % self.procs.len()];
        let (pid, name) = (target.pid, target.name.clone());
        let (outcome, error) = match (u64::from(self.index) + n) % 5 {
            0 => (
                Outcome::Refused,
                Some("pid 1 and systemd are protected".to_string()),
            ),
            1 => (Outcome::Failed, Some("ESRCH: no such process".to_string())),
            _ => (Outcome::Ok, None),
        };
        let body = SampleBody::Event(EventBody {
            action: "kill".into(),
            pid: Some(i64::from(pid)),
            name: Some(name),
            signal: Some(if n.is_multiple_of(2) { "TERM" } else { "KILL" }.into()),
            requested_by: Some("operator@example".into()),
            nats_user: Some("ops".into()),
            outcome,
            error,
        });
        self.stamper.stamp_at(body, ts)
    }

    fn bye(&mut self, ts: i64) -> Sample {
        let body = SampleBody::Bye(ByeBody {
            reason: "SIGTERM".into(),
            dropped: 0,
            last_seq: self.stamper.last_seqs(),
        });
        self.stamper.stamp_at(body, ts)
    }
}

/// The samples of one part of a [`Plan`]'s hosts (`part`, `part +
/// writers`, …), in time order, a batch at a time, as a caught-up sink
/// would receive them; then on up to the present while taking them took
/// time.
pub struct Timeline {
    plan: Plan,
    hosts: Vec<Host>,
    start: i64,
    end: i64,
    step: i64,
    procs_every: i64,
    health_every: i64,
    halfway: i64,
    tick: i64,
    done: bool,
}

impl Timeline {
    /// Part `part` of `plan`'s fleet, whose span ends at `end` (unix
    /// nanoseconds; the same for every part). Fails when the prefix makes
    /// no host token.
    pub fn new(plan: &Plan, part: u32, end: i64) -> Result<Self, HostTokenError> {
        let start = end - nanos(plan.span);
        let step = nanos(plan.interval).max(1);
        let hosts = (0..plan.hosts)
            .filter(|i| i % plan.writers.max(1) == part)
            .map(|i| Host::new(plan, i, start, end))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            plan: plan.clone(),
            hosts,
            start,
            end,
            step,
            procs_every: (nanos(plan.procs_interval) / step).max(1),
            health_every: (nanos(DEFAULT_HEALTH_INTERVAL) / step).max(1),
            halfway: start + nanos(plan.span) / 2,
            tick: 0,
            done: false,
        })
    }

    /// The next [`Plan::batch`] samples or more (fewer at the end); `None`
    /// once the timeline has caught up with the present.
    pub fn next_batch(&mut self) -> Option<Vec<Sample>> {
        let mut batch = Vec::with_capacity(self.plan.batch + self.hosts.len() * 4);
        while !self.done && batch.len() < self.plan.batch {
            let ts = self.start + self.tick * self.step;
            if ts > self.end {
                self.end = unix_nanos();
                if ts > self.end {
                    self.done = true;
                    break;
                }
            }
            self.tick_into(ts, &mut batch);
            self.tick += 1;
        }
        (!batch.is_empty()).then_some(batch)
    }

    fn tick_into(&mut self, ts: i64, batch: &mut Vec<Sample>) {
        let (step, tick) = (self.step, self.tick);
        for h in self.hosts.iter_mut() {
            if ts <= h.joins && h.joins < ts + step {
                batch.push(h.hello(&self.plan));
            }
            if let Some((leaves, with_bye)) = h.leaves {
                if with_bye && ts <= leaves && leaves < ts + step {
                    batch.push(h.bye(leaves));
                }
            }
            if !h.alive_at(ts) {
                continue;
            }
            // A little jitter inside the interval, as real clocks have.
            let at = ts + (noise(u64::from(h.index), tick as u64) * 0.2 * step as f32) as i64;
            batch.push(h.cpu(at));
            batch.push(h.ram(at));
            if tick % self.procs_every == 0 {
                batch.push(h.procs(at));
            }
            if tick % self.health_every == 0 {
                batch.push(h.health(at, self.halfway));
            }
            // Now and then an operator kills something: every host gets a
            // request every `COMMAND_EVERY` ticks, spread over the hosts.
            if (tick + i64::from(h.index) * 37) % COMMAND_EVERY == 0 {
                batch.push(h.event(at, (tick / COMMAND_EVERY) as u64));
            }
        }
    }

    /// A cpu and a ram sample at `ts` from every host that has not left:
    /// what running publishers send at one instant.
    pub fn last_samples(&mut self, ts: i64) -> Vec<Sample> {
        self.hosts
            .iter_mut()
            .filter(|h| h.leaves.is_none())
            .flat_map(|h| [h.cpu(ts), h.ram(ts)])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use vigia_schema::Kind;

    #[test]
    fn the_steady_top_cpu_and_top_rss_do_not_overlap() {
        let body = steady_processes(3, 400);
        let mut by_cpu: Vec<&ProcessEntry> = body.processes.iter().collect();
        let mut by_rss = by_cpu.clone();
        by_cpu.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.pid.cmp(&b.pid)));
        by_rss.sort_by(|a, b| b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid)));
        let mut pids: Vec<i32> = by_cpu[..HISTORY_TOP]
            .iter()
            .chain(&by_rss[..HISTORY_TOP])
            .map(|p| p.pid)
            .collect();
        pids.sort();
        pids.dedup();
        assert_eq!(pids.len(), HISTORY_ROWS);
    }

    #[test]
    fn every_pid_of_a_table_is_distinct() {
        let body = steady_processes(4, 1000);
        let mut pids: Vec<i32> = body.processes.iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 1000);
    }

    #[test]
    fn host_names_read_back_to_their_index() {
        assert_eq!(host_name("host", 5), "host-005");
        assert_eq!(host_name("sim", 1234), "sim-1234");
        assert_eq!(host_index("sim-1234", "sim"), Some(1234));
        assert_eq!(host_index("simx-1", "sim"), None);
    }

    /// Every host's seqs are 1..N per kind, its hello first; a host that
    /// left with a bye announces the last seq of each kind it sent.
    #[test]
    fn a_timeline_numbers_every_host_as_a_publisher_would() {
        let plan = Plan {
            batch: 100,
            ..Plan::small(20, Duration::from_secs(120))
        };
        let mut timeline = Timeline::new(&plan, 0, unix_nanos()).unwrap();
        let mut seqs: BTreeMap<(String, Kind), Vec<u64>> = BTreeMap::new();
        let mut byes = BTreeMap::new();
        let mut first = BTreeMap::new();
        while let Some(batch) = timeline.next_batch() {
            for s in batch {
                first.entry(s.host.clone()).or_insert(s.kind());
                if let SampleBody::Bye(b) = &s.body {
                    byes.insert(s.host.clone(), b.last_seq.clone());
                }
                seqs.entry((s.host.clone(), s.kind()))
                    .or_default()
                    .push(s.seq);
            }
        }
        assert_eq!(first.len(), 20);
        assert!(first.values().all(|k| *k == Kind::Hello), "{first:?}");
        for ((host, kind), got) in &seqs {
            let want: Vec<u64> = (1..=got.len() as u64).collect();
            assert_eq!(got, &want, "{host} {kind}");
        }
        // host-008 left with a bye, host-018 went silent.
        assert_eq!(byes.keys().collect::<Vec<_>>(), ["host-008"]);
        assert_eq!(
            byes["host-008"]["cpu"],
            seqs[&("host-008".to_owned(), Kind::Cpu)].len() as u64
        );
    }

    #[test]
    fn a_prefix_that_is_no_host_token_is_refused() {
        let plan = Plan {
            prefix: "Web Server".into(),
            ..Plan::small(2, Duration::from_secs(10))
        };
        assert!(Timeline::new(&plan, 0, unix_nanos()).is_err());
    }
}
