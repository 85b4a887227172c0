//! The benchmarks' simulated hosts: the synthetic fleet's steady bodies
//! (`vigia_testkit::fleet`), stamped and published as the publisher does.

use async_nats::HeaderMap;
use bytes::Bytes;
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
        let ts = unix_nanos();
        let body = match kind {
            Kind::Cpu => SampleBody::Cpu(cpu_body(h as u64, ts)),
            Kind::Ram => SampleBody::Ram(ram_body(h as u64, ts)),
            _ => SampleBody::Procs(self.bodies[h].clone()),
        };
        self.stampers[h].stamp_at(body, ts)
    }
}

/// One procs interval of a fleet's samples at the publisher's cadence, in
/// time order: (ms into the cycle, host, kind). Hosts are spread evenly
/// over each interval, as unsynchronised publishers are.
pub fn cycle(hosts: usize, interval_ms: u64, procs_interval_ms: u64) -> Vec<(u64, usize, Kind)> {
    let mut cycle = Vec::new();
    for h in 0..hosts {
        let offset = h as u64 * interval_ms / hosts as u64;
        for tick in 0..procs_interval_ms / interval_ms {
            cycle.push((tick * interval_ms + offset, h, Kind::Cpu));
            cycle.push((tick * interval_ms + offset, h, Kind::Ram));
        }
        cycle.push((h as u64 * procs_interval_ms / hosts as u64, h, Kind::Procs));
    }
    cycle.sort_by_key(|e| e.0);
    cycle
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
        let cycle = cycle(4, 1000, 5000);
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
