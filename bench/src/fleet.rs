//! The benchmarks' simulated hosts: the synthetic fleet's steady bodies
//! (`vigia_testkit::fleet`), stamped and published as the publisher does.

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use tokio::time::Instant;
use vigia_schema::sample::{DEFAULT_INTERVAL, DEFAULT_PROCS_INTERVAL};
use vigia_schema::stamp::unix_nanos;
use vigia_schema::subject::{CONTENT_TYPE_MSGPACK, HEADER_CONTENT_TYPE, HEADER_MSG_ID};
use vigia_schema::{HostToken, Kind, ProcsBody, Sample, SampleBody, Stamper};
use vigia_testkit::fleet::{self, cpu_body, ram_body, steady_processes};

pub use vigia_testkit::fleet::{HISTORY_ROWS, HISTORY_TOP};

/// Every simulated host is `sim-<n>`.
const PREFIX: &str = "sim";

pub fn host_name(h: usize) -> String {
    fleet::host_name(PREFIX, h)
}

/// The `h` of a [`host_name`], when it is one.
pub fn host_index(name: &str) -> Option<usize> {
    fleet::host_index(name, PREFIX)
}

/// A boot id naming the benchmark (`tag`) and the host.
pub fn boot_id(h: usize, tag: &str) -> String {
    format!("{tag}{h:012x}")
}

/// A process table whose history the benchmarks count
/// ([`steady_processes`]).
pub fn processes(h: usize, n: usize) -> ProcsBody {
    steady_processes(h, n)
}

/// Simulated hosts, each with its process table and its stamper; the
/// fleet only grows.
pub struct Hosts {
    tag: &'static str,
    processes: usize,
    stampers: Vec<Stamper>,
    bodies: Vec<ProcsBody>,
}

impl Hosts {
    /// Hosts whose boots are named for `tag`, `processes` in each table.
    pub fn new(tag: &'static str, processes: usize) -> Self {
        Self {
            tag,
            processes,
            stampers: Vec::new(),
            bodies: Vec::new(),
        }
    }

    pub fn grow(&mut self, hosts: usize) -> anyhow::Result<()> {
        for h in self.stampers.len()..hosts {
            let name = HostToken::parse(&host_name(h))?;
            self.stampers.push(Stamper::new(name, boot_id(h, self.tag)));
            self.bodies.push(processes(h, self.processes));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.stampers.len()
    }

    /// Host `h`'s next sample of `kind` (cpu, ram or procs), taken now.
    pub fn sample(&mut self, h: usize, kind: Kind) -> Sample {
        self.sample_at(h, kind, unix_nanos())
    }

    /// Host `h`'s next sample of `kind`, stamped `ts` (ns).
    pub fn sample_at(&mut self, h: usize, kind: Kind, ts: i64) -> Sample {
        let body = match kind {
            Kind::Cpu => SampleBody::Cpu(cpu_body(h as u64, ts)),
            Kind::Ram => SampleBody::Ram(ram_body(h as u64, ts)),
            _ => SampleBody::Procs(self.bodies[h].clone()),
        };
        self.stampers[h].stamp_at(body, ts)
    }
}

/// How often each simulated host samples: the publisher's defaults unless
/// told otherwise.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Cadence {
    /// cpu and ram interval, ms.
    #[arg(long, default_value_t = DEFAULT_INTERVAL.as_millis() as u64)]
    pub interval_ms: u64,
    /// procs interval, ms (a multiple of --interval-ms).
    #[arg(long, default_value_t = DEFAULT_PROCS_INTERVAL.as_millis() as u64)]
    pub procs_interval_ms: u64,
}

impl Cadence {
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.interval_ms > 0 && self.procs_interval_ms.is_multiple_of(self.interval_ms),
            "--procs-interval-ms must be a multiple of --interval-ms"
        );
        Ok(())
    }

    /// Messages a second from `hosts` hosts.
    pub fn messages_per_s(&self, hosts: usize) -> f64 {
        hosts as f64
            * 1000.0
            * (2.0 / self.interval_ms as f64 + 1.0 / self.procs_interval_ms as f64)
    }

    /// One procs interval of `hosts` hosts' samples, in time order: (ms
    /// into the cycle, host, kind). Hosts are spread evenly over each
    /// interval, as unsynchronised publishers are.
    pub fn cycle(&self, hosts: usize) -> Vec<(u64, usize, Kind)> {
        let (every, procs_every) = (self.interval_ms, self.procs_interval_ms);
        let mut cycle = Vec::new();
        for h in 0..hosts {
            let offset = h as u64 * every / hosts as u64;
            for tick in 0..procs_every / every {
                cycle.push((tick * every + offset, h, Kind::Cpu));
                cycle.push((tick * every + offset, h, Kind::Ram));
            }
            cycle.push((h as u64 * procs_every / hosts as u64, h, Kind::Procs));
        }
        cycle.sort_by_key(|e| e.0);
        cycle
    }
}

/// Publishes every host's samples at `cadence` from `start` for
/// `duration`, each stamped right before it goes out; `sent` sees each
/// (host, sample) just before it is published.
pub async fn publish_for(
    client: &async_nats::Client,
    hosts: &mut Hosts,
    cadence: Cadence,
    start: Instant,
    duration: Duration,
    mut sent: impl FnMut(usize, &Sample) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let cycle = cadence.cycle(hosts.len());
    for n in 0.. {
        for &(at_ms, h, kind) in &cycle {
            let due = start + Duration::from_millis(n * cadence.procs_interval_ms + at_ms);
            if due - start >= duration {
                return Ok(());
            }
            tokio::time::sleep_until(due).await;
            let sample = hosts.sample(h, kind);
            let message = message(&sample);
            sent(h, &sample)?;
            client
                .publish_with_headers(message.subject, message.headers, message.payload)
                .await?;
        }
    }
    Ok(())
}

/// Subject, headers (with `Nats-Msg-Id`) and payload, as the publisher
/// sends them.
pub struct Message {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

pub fn message(sample: &Sample) -> Message {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, sample.msg_id().as_str());
    headers.insert(HEADER_CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    Message {
        subject: sample.subject(),
        headers,
        payload: Bytes::from(sample.encode()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_holds_every_hosts_samples_of_one_procs_interval_in_order() {
        let cadence = Cadence {
            interval_ms: 1000,
            procs_interval_ms: 5000,
        };
        let cycle = cadence.cycle(4);
        assert_eq!(cycle.len(), 4 * (5 * 2 + 1));
        assert!(cycle.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(cycle.iter().all(|e| e.0 < 5000));
    }

    #[test]
    fn hosts_number_their_samples_per_kind() {
        let mut hosts = Hosts::new("t", 30);
        hosts.grow(2).unwrap();
        let seqs: Vec<u64> = [Kind::Cpu, Kind::Cpu, Kind::Procs]
            .into_iter()
            .map(|k| hosts.sample(1, k).seq)
            .collect();
        assert_eq!(seqs, [1, 2, 1]);
        assert_eq!(host_index(&hosts.sample(1, Kind::Ram).host), Some(1));
    }
}
