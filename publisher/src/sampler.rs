//! The sampling loop: reads the source on schedule, turns readings into
//! samples and pushes them into the outbox.
//!
//! It runs on a thread of its own because reads of /proc are blocking file
//! I/O, and so that a slow network never delays a sample: the outbox is the
//! only thing between the two, and it never blocks.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::Statistics;
use bytes::Bytes;
use vigia_schema::{HealthBody, HelloBody, HostToken, Sample, SampleBody, Stamper};

use crate::busiest;
use crate::hostinfo;
use crate::outbox::{Outbox, Outgoing};
use crate::rates::{ram_body, CpuRates, ProcessRates};
use crate::source::{Source, SourceError};
use crate::stamp;
use crate::users::UserNames;
use vigia_schema::bounds::{clip, MAX_KERNEL_LEN};

/// How often each kind is sampled.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// cpu and ram.
    pub interval: Duration,
    pub procs_interval: Duration,
    /// The publisher's own `health`.
    pub health_interval: Duration,
}

/// Everything that turns readings into samples; used by the loop and by
/// `--once`.
pub struct Sampler {
    source: Box<dyn Source>,
    stamper: Stamper,
    cpu: CpuRates,
    procs: ProcessRates,
    mem_total: u64,
    schedule: Schedule,
    /// Whether the last read failed, so a failing source logs once per
    /// change of state and not once per sample.
    failing: bool,
}

impl Sampler {
    pub fn new(source: Box<dyn Source>, host: HostToken, schedule: Schedule) -> Self {
        Self {
            source,
            stamper: stamp::for_this_run(host),
            cpu: CpuRates::default(),
            procs: ProcessRates::new(UserNames::new(), hostinfo::boot_time_ns()),
            mem_total: hostinfo::ram_total(),
            schedule,
            failing: false,
        }
    }

    pub fn stamper_mut(&mut self) -> &mut Stamper {
        &mut self.stamper
    }

    pub fn hello(&mut self) -> Sample {
        let cpus = self
            .source
            .cpu()
            .map(|c| c.per_cpu.len() as u32)
            .unwrap_or(0);
        self.stamper.stamp(SampleBody::Hello(HelloBody {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            // Cut to the contract's bounds, so the hello is never refused.
            kernel: clipped(hostinfo::kernel_release(), MAX_KERNEL_LEN),
            os: clipped(hostinfo::os_name(), MAX_KERNEL_LEN),
            cpus,
            ram_total: self.mem_total,
            boot_time: hostinfo::boot_time_ns(),
            source: self.source.kind().as_str().to_owned(),
            interval_ms: (self.schedule.interval.as_millis() as u64).max(1),
            procs_interval_ms: (self.schedule.procs_interval.as_millis() as u64).max(1),
        }))
    }

    /// Reads CPU counters; returns a cpu sample from the second call on.
    pub fn cpu(&mut self) -> Option<Sample> {
        let now = self.checked(|s| s.source.cpu())?;
        let body = self.cpu.next(now)?;
        Some(self.stamper.stamp(SampleBody::Cpu(body)))
    }

    pub fn ram(&mut self) -> Option<Sample> {
        let memory = self.checked(|s| s.source.memory())?;
        self.mem_total = memory.total;
        Some(self.stamper.stamp(SampleBody::Ram(ram_body(&memory))))
    }

    /// Reads the process table. CPU % is relative to the previous call;
    /// on the first call every process shows 0 %.
    pub fn procs(&mut self) -> Option<Sample> {
        let processes = self.checked(|s| s.source.processes())?;
        let mut body = self.procs.next(processes, Instant::now(), self.mem_total);
        busiest::within_bounds(&mut body);
        Some(self.stamper.stamp(SampleBody::Procs(body)))
    }

    /// The publisher's own state: what the outbox lost and holds, how
    /// often NATS had to be reached again (`connects` counts the first
    /// connection too).
    pub fn health(&mut self, outbox: &Outbox, connects: u64) -> Sample {
        self.stamper.stamp(SampleBody::Health(HealthBody {
            dropped: outbox.dropped(),
            outbox_depth: outbox.len() as u64,
            reconnects: connects.saturating_sub(1),
            source: self.source.kind().as_str().to_owned(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    /// Takes the first readings of the cumulative counters without making
    /// samples, so that the first cpu and procs samples already cover a
    /// whole interval (and consume no sequence number now).
    pub fn prime(&mut self) {
        if let Some(cpu) = self.checked(|s| s.source.cpu()) {
            self.cpu.next(cpu);
        }
        if let Some(processes) = self.checked(|s| s.source.processes()) {
            self.procs.next(processes, Instant::now(), self.mem_total);
        }
    }

    fn checked<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, SourceError>) -> Option<T> {
        match read(self) {
            Ok(value) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(source = %self.source.kind(), "reading the source again");
                }
                Some(value)
            }
            Err(error) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(%error, "cannot read the source; skipping samples until it recovers");
                }
                None
            }
        }
    }

    /// Samples on schedule into `outbox` until `stop` receives a message or
    /// its sender goes away. Returns the stamper so that `bye` continues
    /// this boot's sequence.
    pub fn run(
        mut self,
        outbox: Arc<Outbox>,
        stop: Receiver<()>,
        connections: Arc<Statistics>,
    ) -> Stamper {
        let push = |sample: Sample| outbox.push(outgoing(&sample));
        push(self.hello());
        self.prime();
        let start = Instant::now();
        let mut next_fast = start + self.schedule.interval;
        let mut next_procs = start + self.schedule.procs_interval;
        let mut next_health = start + self.schedule.health_interval;
        loop {
            let wake = next_fast.min(next_procs).min(next_health);
            match stop.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_fast {
                if let Some(s) = self.cpu() {
                    push(s);
                }
                if let Some(s) = self.ram() {
                    push(s);
                }
                next_fast = next_tick(next_fast, self.schedule.interval, now);
            }
            if now >= next_procs {
                if let Some(s) = self.procs() {
                    push(s);
                }
                next_procs = next_tick(next_procs, self.schedule.procs_interval, now);
            }
            if now >= next_health {
                let connects = connections
                    .connects
                    .load(std::sync::atomic::Ordering::Relaxed);
                push(self.health(&outbox, connects));
                next_health = next_tick(next_health, self.schedule.health_interval, now);
            }
        }
        self.stamper
    }
}

/// The tick after `due`; ticks missed while the host was suspended or
/// overloaded are skipped, not fired in a burst.
fn next_tick(due: Instant, every: Duration, now: Instant) -> Instant {
    let next = due + every;
    if next <= now {
        now + every
    } else {
        next
    }
}

/// The message for a sample: subject, id and MessagePack payload.
pub fn outgoing(sample: &Sample) -> Outgoing {
    Outgoing {
        subject: sample.subject(),
        msg_id: sample.msg_id(),
        payload: Bytes::from(sample.encode()),
    }
}

/// `text` cut to `max` bytes, as the contract's bounds take it.
fn clipped(mut text: String, max: usize) -> String {
    clip(&mut text, max);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_do_not_burst_after_a_stall() {
        let t0 = Instant::now();
        let every = Duration::from_secs(1);
        assert_eq!(next_tick(t0, every, t0), t0 + every);
        let late = t0 + Duration::from_secs(10);
        assert_eq!(next_tick(t0, every, late), late + every);
    }

    #[test]
    fn outgoing_names_subject_and_id() {
        let mut stamper = Stamper::new(HostToken::parse("web-1").unwrap(), "b00t".into());
        let sample = stamper.stamp(SampleBody::Bye(Default::default()));
        let out = outgoing(&sample);
        assert_eq!(out.subject, "telemetry.web-1.bye");
        assert_eq!(out.msg_id, "web-1.b00t.bye.1");
        assert_eq!(Sample::decode(&out.payload).unwrap(), sample);
    }
}
