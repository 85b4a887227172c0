//! Commands become `event` samples, published like any other sample.
//!
//! The audit stamper shares the sampler's boot id but is used for events
//! only, so events get their own gap-free seq (1, 2, 3, ...) in the same
//! envelope; they go through the same outbox, so an event survives a NATS
//! outage like a cpu sample does, and the stream's duplicate window makes a
//! retried event land once.

use std::sync::Arc;

use vigia_schema::{EventBody, SampleBody, Stamper};

use crate::outbox::Outbox;
use crate::sampler::outgoing;

pub struct Audit {
    stamper: Stamper,
    outbox: Arc<Outbox>,
}

impl Audit {
    /// `stamper` must carry this run's boot id; only its `event` sequence
    /// is used.
    pub fn new(stamper: Stamper, outbox: Arc<Outbox>) -> Self {
        Self { stamper, outbox }
    }

    /// The last event seq of this boot, keyed `event` as in `bye`'s
    /// `last_seq`; empty before the first event.
    pub fn last_seqs(&self) -> std::collections::BTreeMap<String, u64> {
        self.stamper.last_seqs()
    }

    pub fn record(&mut self, event: EventBody) {
        let sample = self.stamper.stamp(SampleBody::Event(event));
        self.outbox.push(outgoing(&sample));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{HostToken, Kind, Outcome, Sample};

    #[test]
    fn events_are_samples_with_their_own_seq() {
        let outbox = Arc::new(Outbox::new(10, usize::MAX));
        let host = HostToken::parse("web-1").unwrap();
        let mut audit = Audit::new(Stamper::new(host, "b00t".into()), outbox.clone());
        for pid in [10, 11] {
            audit.record(EventBody {
                action: "kill".into(),
                pid: Some(pid),
                outcome: Outcome::Refused,
                ..EventBody::default()
            });
        }
        let first = outbox.pop().unwrap();
        assert_eq!(first.subject, "telemetry.web-1.event");
        assert_eq!(first.msg_id, "web-1.b00t.event.1");
        let second = Sample::decode(&outbox.pop().unwrap().payload).unwrap();
        assert_eq!(second.kind(), Kind::Event);
        assert_eq!(second.seq, 2);
        assert_eq!(
            audit.last_seqs().into_iter().collect::<Vec<_>>(),
            [("event".to_owned(), 2)]
        );
        assert!(matches!(
            second.body,
            SampleBody::Event(EventBody { pid: Some(11), .. })
        ));
    }
}
