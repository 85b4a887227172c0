//! Envelopes: who sent a sample, in which run, in what order, and when.
//!
//! The contract promises `seq` 1, 2, 3, … per boot and kind with no gaps
//! (a reader proves a boot complete with it), so everything that makes
//! samples in sequence — the publisher, the synthetic fleets of the tests
//! and benchmarks — numbers them here, in one way.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{HostToken, Kind, Sample, SampleBody};

/// Stamps bodies into samples of one host and boot with a gap-free
/// sequence number per kind (1, 2, 3, …).
#[derive(Debug, Clone)]
pub struct Stamper {
    host: HostToken,
    boot: String,
    next_seq: [u64; Kind::ALL.len()],
}

impl Stamper {
    /// `boot` is unique to this start of the sender (the publisher makes
    /// 16 random hex digits); every kind starts at seq 1.
    pub fn new(host: HostToken, boot: String) -> Self {
        Self {
            host,
            boot,
            next_seq: [1; Kind::ALL.len()],
        }
    }

    pub fn host(&self) -> &HostToken {
        &self.host
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }

    /// The last seq stamped for each kind that has had a sample: what a
    /// bye announces ([`crate::ByeBody::last_seq`]).
    pub fn last_seqs(&self) -> BTreeMap<String, u64> {
        Kind::ALL
            .iter()
            .zip(self.next_seq)
            .filter(|(_, next)| *next > 1)
            .map(|(kind, next)| (kind.as_str().to_owned(), next - 1))
            .collect()
    }

    /// The next sample of the body's kind, taken now.
    pub fn stamp(&mut self, body: SampleBody) -> Sample {
        self.stamp_at(body, unix_nanos())
    }

    /// The next sample of the body's kind, taken at `ts` (unix
    /// nanoseconds).
    pub fn stamp_at(&mut self, body: SampleBody, ts: i64) -> Sample {
        let slot = &mut self.next_seq[body.kind().index()];
        let seq = *slot;
        *slot += 1;
        Sample::new(self.host.as_str(), self.boot.as_str(), seq, ts, body)
    }
}

/// Now, in unix nanoseconds (a sample's `ts`); 0 for a clock before 1970.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByeBody, RamBody};

    fn stamper() -> Stamper {
        Stamper::new(HostToken::parse("h").unwrap(), "b00t".into())
    }

    #[test]
    fn seq_counts_per_kind_from_one() {
        let mut s = stamper();
        let seqs: Vec<(Kind, u64)> = [
            SampleBody::Ram(RamBody::default()),
            SampleBody::Ram(RamBody::default()),
            SampleBody::Bye(ByeBody::default()),
            SampleBody::Ram(RamBody::default()),
        ]
        .into_iter()
        .map(|b| {
            let sample = s.stamp(b);
            (sample.kind(), sample.seq)
        })
        .collect();
        assert_eq!(
            seqs,
            [
                (Kind::Ram, 1),
                (Kind::Ram, 2),
                (Kind::Bye, 1),
                (Kind::Ram, 3)
            ]
        );
    }

    #[test]
    fn the_envelope_carries_the_host_boot_and_time() {
        let mut s = stamper();
        let sample = s.stamp_at(SampleBody::Ram(RamBody::default()), 42);
        assert_eq!(
            (sample.host.as_str(), sample.boot.as_str(), sample.ts),
            ("h", "b00t", 42)
        );
        assert_eq!(sample.v, crate::SCHEMA_VERSION);
    }

    #[test]
    fn last_seqs_name_only_the_kinds_stamped() {
        let mut s = stamper();
        assert!(s.last_seqs().is_empty());
        s.stamp(SampleBody::Ram(RamBody::default()));
        s.stamp(SampleBody::Ram(RamBody::default()));
        assert_eq!(s.last_seqs(), BTreeMap::from([("ram".to_owned(), 2)]));
    }

    #[test]
    fn now_is_after_2020() {
        assert!(unix_nanos() > 1_577_836_800_000_000_000);
    }
}
