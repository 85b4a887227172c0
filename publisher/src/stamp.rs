//! Envelopes: who sent a sample, in which run, in what order, and when.

use std::time::{SystemTime, UNIX_EPOCH};

use vigia_schema::{HostToken, Kind, Sample, SampleBody, SCHEMA_VERSION};

/// Stamps bodies into samples with this run's boot id and a gap-free
/// sequence number per kind (1, 2, 3, …).
pub struct Stamper {
    host: HostToken,
    boot: String,
    next_seq: [u64; Kind::ALL.len()],
}

impl Stamper {
    pub fn new(host: HostToken) -> Self {
        Self::with_boot(host, new_boot_id())
    }

    pub fn with_boot(host: HostToken, boot: String) -> Self {
        Self {
            host,
            boot,
            next_seq: [1; Kind::ALL.len()],
        }
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }

    /// The last seq stamped for each kind that has had a sample.
    pub fn last_seqs(&self) -> std::collections::BTreeMap<String, u64> {
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

    pub fn stamp_at(&mut self, body: SampleBody, ts: i64) -> Sample {
        let slot = &mut self.next_seq[body.kind() as usize];
        let seq = *slot;
        *slot += 1;
        Sample {
            v: SCHEMA_VERSION,
            host: self.host.to_string(),
            boot: self.boot.clone(),
            seq,
            ts,
            body,
        }
    }
}

/// Now, in unix nanoseconds.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// 16 hex digits from the OS's random source; with 64 bits two runs of the
/// same host never share an id in practice. Falls back to time and pid if
/// the random source fails, which keeps ids unique per start all the same.
fn new_boot_id() -> String {
    let mut bytes = [0u8; 8];
    let id = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => (unix_nanos() as u64) ^ ((std::process::id() as u64) << 40),
    };
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{ByeBody, RamBody};

    #[test]
    fn seq_counts_per_kind_from_one() {
        let mut s = Stamper::new(HostToken::parse("h").unwrap());
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
    fn boot_ids_differ_between_runs() {
        let a = Stamper::new(HostToken::parse("h").unwrap());
        let b = Stamper::new(HostToken::parse("h").unwrap());
        assert_ne!(a.boot(), b.boot());
        assert_eq!(a.boot().len(), 16);
    }
}
