//! `--once`: one sample of each kind, as JSON lines on stdout, no NATS.
//! For a first look at a host, and for tests that compare with /proc.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;
use crate::sampler::{Sampler, Schedule};

/// The first interval: long enough for CPU counters to move.
const FIRST_INTERVAL: Duration = Duration::from_millis(250);

pub fn run(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let host = crate::agent::host_token(config)?;
    let source = crate::source::open(config.source)?;
    let mut sampler = Sampler::new(
        source,
        host,
        Schedule {
            interval: FIRST_INTERVAL,
            procs_interval: FIRST_INTERVAL,
            health_interval: FIRST_INTERVAL,
        },
    );
    let hello = sampler.hello();
    sampler.prime();
    std::thread::sleep(FIRST_INTERVAL);
    let samples = [Some(hello), sampler.cpu(), sampler.ram(), sampler.procs()];
    for sample in samples {
        let sample = sample.context("reading the data source (see the warning above)")?;
        serde_json::to_writer(&mut *out, &sample).context("writing to stdout")?;
        out.write_all(b"\n").context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")
}
