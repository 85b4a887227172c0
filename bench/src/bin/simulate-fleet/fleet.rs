//! The simulated instance group: publishers that join and leave on a
//! schedule, and the record of who lived when, which the verification
//! judges against.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;
use vigia_testkit::Child;

use crate::log;

/// A sampling interval as the publisher's flag takes it (`500ms`, `2s`),
/// kept as typed so the publisher reads the same text.
#[derive(Clone, Debug)]
pub struct Period {
    pub text: String,
    pub every: Duration,
}

impl FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match humantime::parse_duration(text) {
            Ok(every) if !every.is_zero() => Ok(Self {
                text: text.to_owned(),
                every,
            }),
            _ => Err(format!("duration '{text}': use e.g. 500ms, 2s, 1m")),
        }
    }
}

/// How long the sink takes to call a silent host offline: three missed
/// intervals, never less than its minimum silence (sink/src/liveness.rs).
pub fn grace(interval: &Period) -> Duration {
    use vigia_sink::liveness::{MIN_SILENCE, MISSED_INTERVALS};
    (interval.every * MISSED_INTERVALS).max(MIN_SILENCE)
}

/// How a host left the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// SIGTERM: it flushes and sends `bye`.
    Bye,
    /// SIGKILL: gone without a word.
    Kill,
}

impl Departure {
    pub fn as_str(self) -> &'static str {
        match self {
            Departure::Bye => "bye",
            Departure::Kill => "kill",
        }
    }
}

/// One simulated VM.
pub struct Host {
    pub name: String,
    /// Wall-clock milliseconds, comparable with the sink's timestamps.
    pub started_ms: i64,
    pub stopped_ms: Option<i64>,
    pub departure: Option<Departure>,
    process: Option<Child>,
    log: PathBuf,
}

pub struct Fleet {
    publisher: PathBuf,
    nats_url: String,
    run: String,
    interval: String,
    procs_interval: String,
    work: PathBuf,
    /// Every host that ever joined, in joining order.
    pub hosts: Vec<Host>,
    /// Indices into `hosts` of those running, oldest first.
    alive: VecDeque<usize>,
    removals: u32,
    /// `(wall-clock ms, hosts running)` after each change.
    pub curve: Vec<(i64, usize)>,
    pub started_ms: i64,
}

impl Fleet {
    pub fn new(
        publisher: &Path,
        nats_url: &str,
        run: &str,
        interval: &Period,
        procs_interval: &Period,
        work: &Path,
    ) -> Self {
        Self {
            publisher: publisher.to_owned(),
            nats_url: nats_url.to_owned(),
            run: run.to_owned(),
            interval: interval.text.clone(),
            procs_interval: procs_interval.text.clone(),
            work: work.to_owned(),
            hosts: Vec::new(),
            alive: VecDeque::new(),
            removals: 0,
            curve: Vec::new(),
            started_ms: now_ms(),
        }
    }

    /// The SQL LIKE pattern of this run's host names.
    pub fn host_like(&self) -> String {
        format!("sim-{}-%", self.run)
    }

    /// Grows or shrinks the fleet to each step's size in turn, one step
    /// every `step`, checking after each that no publisher died by itself.
    pub async fn follow(&mut self, steps: &[u32], step: Duration) -> anyhow::Result<()> {
        self.started_ms = now_ms();
        for &target in steps {
            let target = target as usize;
            while self.alive.len() < target {
                self.join();
            }
            while self.alive.len() > target {
                self.leave();
            }
            self.curve.push((now_ms(), self.alive.len()));
            log(&format!(
                "t={}s  {} hosts",
                (now_ms() - self.started_ms) / 1000,
                self.alive.len()
            ));
            tokio::time::sleep(step).await;
            for &i in &self.alive {
                let host = &mut self.hosts[i];
                if let Some(process) = host.process.as_mut() {
                    if process.wait_for_exit(Duration::ZERO).is_some() {
                        bail!(
                            "{}'s publisher died by itself: {}",
                            host.name,
                            tail(&host.log)
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The rest leave cleanly, as when the whole group is deleted.
    pub fn disband(&mut self) {
        while !self.alive.is_empty() {
            self.removals = 0;
            self.leave();
        }
        self.curve.push((now_ms(), 0));
    }

    fn join(&mut self) {
        let name = format!("sim-{}-{:02}", self.run, self.hosts.len() + 1);
        let log = self.work.join(format!("{name}.log"));
        let process = Child::spawn_with_log(
            &self.publisher,
            &[
                "--nats-url",
                &self.nats_url,
                "--host",
                &name,
                "--interval",
                &self.interval,
                "--procs-interval",
                &self.procs_interval,
            ],
            &[],
            Some(&log),
        );
        self.alive.push_back(self.hosts.len());
        self.hosts.push(Host {
            name,
            started_ms: now_ms(),
            stopped_ms: None,
            departure: None,
            process: Some(process),
            log,
        });
    }

    /// Takes the oldest host away, alternately cleanly and by a kill, so
    /// both happen whenever the fleet shrinks more than once.
    fn leave(&mut self) {
        let Some(i) = self.alive.pop_front() else {
            return;
        };
        let host = &mut self.hosts[i];
        let departure = if self.removals.is_multiple_of(2) {
            Departure::Bye
        } else {
            Departure::Kill
        };
        if let Some(mut process) = host.process.take() {
            match departure {
                Departure::Bye => match process.terminate(Duration::from_secs(60)) {
                    Some(status) if status.success() => {}
                    Some(status) => log(&format!(
                        "{}: publisher exited with {status} after SIGTERM",
                        host.name
                    )),
                    None => log(&format!(
                        "{}: publisher still running 60 s after SIGTERM",
                        host.name
                    )),
                },
                Departure::Kill => process.kill(),
            }
        }
        host.departure = Some(departure);
        host.stopped_ms = Some(now_ms());
        self.removals += 1;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The last lines of a log, for an error message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..]
        .iter()
        .map(|line| vigia_schema::text::escape(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(text: &str) -> Period {
        text.parse().expect("a duration")
    }

    #[test]
    fn a_period_keeps_the_text_the_publisher_will_read() {
        let p = period("500ms");
        assert_eq!(
            (p.text.as_str(), p.every),
            ("500ms", Duration::from_millis(500))
        );
        assert!("".parse::<Period>().is_err());
    }

    #[test]
    fn the_grace_is_three_intervals_but_never_under_the_sinks_minimum_silence() {
        assert_eq!(grace(&period("100ms")), Duration::from_secs(2));
        assert_eq!(grace(&period("1s")), Duration::from_secs(3));
    }
}
